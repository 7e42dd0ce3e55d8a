"""The systems a data set was scored with (the base, the candidate and references such as BM25, a hybrid, a
reranker or an embedding API), as the report's systems table, its curves of every system and the step summary
show them.

Everything is read from the result: means from ``metrics``, paired comparisons from ``versus``, what each system
is and costs from ``systems``. A result written before systems existed has none of these beyond base and candidate:
it then has no systems table, and a gate that names no sides judged the candidate against the base.
"""
from __future__ import annotations

from typing import Any

from . import charts
from .format import confidence_label, is_number, parse_metric, short_model

CANDIDATE, BASE = "candidate", "base"
SETTINGS_TEXT = 140  # characters of a system's settings line
# reference systems' colours: distinct from the base's grey and the candidate's blue (Okabe-Ito, no blue first)
REFERENCE_COLORS = ("#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#0072b2")


# ------------------------------------------------------------------------------------------------ sides


def gate_sides(gate: dict[str, Any]) -> tuple[str, str | None]:
    """(judged, against) of a gate. An older gate names neither: it judged the candidate against the base. A gate
    against a fixed floor may name no ``against`` at all (None)."""
    return gate.get("system") or CANDIDATE, gate.get("against", BASE)


def pair_label(system: str, against: str | None) -> str:
    return f"{system} vs {against}" if against else system


def is_default_pair(system: str, against: str | None) -> bool:
    return (system, against) == (CANDIDATE, BASE)


def paired(section: dict[str, Any], system: str, against: str, metric: str) -> dict[str, Any] | None:
    """The paired comparison of ``system`` (judged) against ``against`` on ``metric``. Candidate against base is
    also the curves' own comparison, which older results hold only there."""
    found = ((section.get("versus") or {}).get(pair_label(system, against)) or {}).get(metric)
    if found is None and is_default_pair(system, against):
        found = (section.get("comparisons") or {}).get(metric)
    return found or None


# ------------------------------------------------------------------------------------------------ one system


def system_names(section: dict[str, Any]) -> list[str]:
    """Every system scored on the set, in the result's order (the base and the candidate come first there)."""
    return list(dict.fromkeys([*(section.get("systems") or {}), *(section.get("metrics") or {})]))


def describes_systems(section: dict[str, Any]) -> bool:
    """Whether a set has more to show than base against candidate (which the curves already show): a summary of
    each system (its latency and index size), or references."""
    return bool(section.get("systems")) or len(system_names(section)) > 2


def _num_text(value: Any) -> str:
    return f"{value:g}" if is_number(value) else str(value)


def settings_line(kind: str, info: dict[str, Any]) -> str:
    """What a system is, in one line a reader can compare across rows: the settings that change its rankings."""
    info = info or {}
    if kind == "bm25":
        text = f"{info.get('method', 'bm25')} k1={_num_text(info.get('k1'))} b={_num_text(info.get('b'))}"
        if info.get("method") in ("bm25l", "bm25+") and info.get("delta") is not None:
            text += f" \u03b4={_num_text(info['delta'])}"
        text += f" \u00b7 stemmer {info.get('stemmer') or 'none'} \u00b7 stopwords {info.get('stopwords') or 'none'}"
    elif kind == "hybrid":
        text = f"{info.get('method', 'fusion')} of {' + '.join(map(str, info.get('systems') or [])) or '?'}"
        if info.get("rrf_k") is not None:
            text += f" (k={info['rrf_k']})"
        if info.get("norm"):
            text += f", {info['norm']} normalised"
        if info.get("weights"):
            text += f", weights {' / '.join(_num_text(w) for w in info['weights'])}"
        tuned = info.get("tuned")
        if isinstance(tuned, dict):
            text += f", tuned on {tuned.get('split', 'a dev split')} for {tuned.get('metric', '?')}"
    elif kind == "rerank":
        text = (f"{short_model(info.get('model'))} reranks the top {info.get('k', '?')} of "
                f"{info.get('first_stage', '?')}")
    elif kind == "api":
        text = f"{info.get('provider', 'api')} {info.get('model', '?')}"
        if info.get("dimensions"):
            text += f", {info['dimensions']} dimensions"
        if is_number(info.get("tokens")):
            text += f" \u00b7 {int(info['tokens']):,} tokens"
    elif kind == "bi-encoder" or "name" in info:
        text = short_model(info.get("name"))
        extras = [str(info["dtype"])] if info.get("dtype") else []
        if info.get("max_seq_length"):
            extras.append(f"max {info['max_seq_length']} tokens")
        if info.get("query_prompt"):
            extras.append(f"query prompt \u201c{info['query_prompt']}\u201d")
        text += "".join(f" \u00b7 {e}" for e in extras)
    else:  # a kind this version does not know: its plain settings, as written
        text = ", ".join(f"{k}={_num_text(v)}" for k, v in info.items()
                         if k != "kind" and isinstance(v, (str, int, float, bool)))
    return text if len(text) <= SETTINGS_TEXT else text[: SETTINGS_TEXT - 1] + "\u2026"


def latency_view(latency: dict[str, Any] | None) -> dict[str, Any]:
    """p50/p95 of ranking one query, as measured on the machine of the run; or why it was not measured."""
    latency = latency or {}
    measured = bool(latency.get("measured")) and is_number(latency.get("p50_ms"))
    return {"measured": measured, "p50": latency.get("p50_ms"), "p95": latency.get("p95_ms"),
            "batch": latency.get("batch"), "queries": latency.get("queries"), "where": latency.get("where") or "",
            "why": "" if measured else latency.get("why") or "not measured"}


def latency_label(rows: list[dict[str, Any]]) -> str:
    """The conditions the table's latencies were measured under: the run's own machine, not a benchmark."""
    batches = {r["latency"]["batch"] for r in rows if r["latency"]["measured"]}
    if len(batches) == 1:
        return f"batch {next(iter(batches))}, this machine"
    return "batch as stated, this machine" if batches else "this machine"


def _comparison_row(cmp: dict[str, Any] | None) -> dict[str, Any] | None:
    if not cmp:
        return None
    ci = cmp.get("ci")
    return {"difference": cmp.get("difference"), "relative": cmp.get("relative_difference"),
            "ci": ci if ci and len(ci) == 2 else None, "p_value": cmp.get("p_value"), "n": cmp.get("n"),
            "system_mean": cmp.get("candidate"), "against_mean": cmp.get("base"), "wins": cmp.get("wins"),
            "ties": cmp.get("ties"), "losses": cmp.get("losses"), "confidence": cmp.get("confidence")}


def system_row(section: dict[str, Any], name: str, metrics: list[str], primary: str | None) -> dict[str, Any]:
    summary = (section.get("systems") or {}).get(name) or {}
    means = (section.get("metrics") or {}).get(name) or {}
    info = summary.get("info") or {}
    kind = summary.get("kind") or info.get("kind") or ""
    judged = name == CANDIDATE
    return {
        "name": name, "kind": kind or "n/a", "settings": settings_line(kind, info), "judged": judged,
        "info": [(k, _num_text(v)) for k, v in info.items() if isinstance(v, (str, int, float, bool))],
        "means": [means.get(m) for m in metrics], "primary_mean": means.get(primary) if primary else None,
        # the candidate's paired difference against this system (candidate minus this), on the primary metric
        "versus": None if judged or not primary else _comparison_row(paired(section, CANDIDATE, name, primary)),
        "latency": latency_view(summary.get("latency")),
        "index_bytes": summary.get("index_bytes"), "index_per_million": summary.get("index_bytes_per_million"),
        "cost_usd": summary.get("cost_usd"),
    }


# ------------------------------------------------------------------------------------------------ the set


def pair_rows(section: dict[str, Any], metrics: list[str]) -> list[dict[str, Any]]:
    """Every paired comparison the result holds (the candidate against each system, and each pair a gate judged),
    suite metrics in order."""
    rows = []
    for key, by_metric in (section.get("versus") or {}).items():
        for metric in [m for m in metrics if m in (by_metric or {})] + [m for m in by_metric or {} if m not in metrics]:
            row = _comparison_row(by_metric[metric])
            if row:
                rows.append({"pair": key, "metric": metric, **row})
    return rows


def system_colors(names: list[str]) -> dict[str, str]:
    refs = iter(REFERENCE_COLORS * (1 + len(names) // len(REFERENCE_COLORS)))
    return {n: charts.BASE_COLOR if n == BASE else charts.CANDIDATE_COLOR if n == CANDIDATE else next(refs)
            for n in names}


def _families(means: dict[str, dict[str, Any]]) -> dict[str, list[int]]:
    families: dict[str, set[int]] = {}
    for by_metric in means.values():
        for name in by_metric or {}:
            parsed = parse_metric(name)
            if parsed:
                families.setdefault(parsed[0], set()).add(parsed[1])
    return {family: sorted(ks) for family, ks in families.items()}


def system_curves(section: dict[str, Any], names: list[str]) -> list[dict[str, Any]]:
    """Per metric family: every system's mean at every cut-off the result holds (``metrics`` keeps the full grid
    for each system), as a chart with one line per system and the numbers behind it."""
    means = section.get("metrics") or {}
    colors = system_colors(names)
    out = []
    for family, ks in _families({n: means.get(n) for n in names}).items():
        rows = [{"system": n, "color": colors[n], "values": [(means.get(n) or {}).get(f"{family}@{k}") for k in ks]}
                for n in names]
        chart = charts.systems_chart(family, ks, [charts.Series(r["system"], r["values"], r["color"]) for r in rows])
        table = [(f"{family}@{k}", [r["values"][i] for r in rows]) for i, k in enumerate(ks)]  # one row a cut-off
        out.append({"family": family, "ks": ks, "rows": rows, "chart": chart, "table": table})
    return out


def systems_view(section: dict[str, Any], metrics: list[str], primary: str | None) -> dict[str, Any] | None:
    """The systems table of one data set, its comparisons and curves; None when the set scored base and candidate
    only and says nothing else about them (a result written before systems existed)."""
    if not describes_systems(section):
        return None
    if metrics and primary not in metrics:  # the comparisons of systems hold the suite's metrics only
        primary = metrics[0]
    names = system_names(section)
    rows = [system_row(section, n, metrics, primary) for n in names]
    pairs = pair_rows(section, metrics)
    conf = next((r["confidence"] for r in [*(r["versus"] or {} for r in rows), *pairs] if r.get("confidence")), None)
    colors = system_colors(names)
    for row in rows:
        row["color"] = colors[row["name"]]
    return {"rows": rows, "metrics": metrics, "primary": primary, "pairs": pairs,
            "confidence": confidence_label(conf), "latency_label": latency_label(rows),
            "has_cost": any(is_number(r["cost_usd"]) for r in rows),
            "has_index": any(is_number(r["index_bytes"]) for r in rows),
            "curves": system_curves(section, names) if len(names) > 2 else []}
