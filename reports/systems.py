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
from .format import confidence_label, is_number, num, parse_metric, short_model, signed

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
        serving = info.get("serving")
        if isinstance(serving, dict):  # a variant: how its vectors are stored and searched
            extras.append(serving_text(serving))
        text += "".join(f" \u00b7 {e}" for e in extras)
    else:  # a kind this version does not know: its plain settings, as written
        text = ", ".join(f"{k}={_num_text(v)}" for k, v in info.items()
                         if k != "kind" and isinstance(v, (str, int, float, bool)))
    return text if len(text) <= SETTINGS_TEXT else text[: SETTINGS_TEXT - 1] + "\u2026"


def serving_text(serving: dict[str, Any]) -> str:
    """'128 dims, stored int8, top 100 re-scored' (a variant's dimensions, storage precision and rescoring)."""
    dims = serving.get("dimensions", serving.get("truncate_dim"))
    text = f"{_num_text(dims)} dims, stored {serving.get('precision') or 'float32'}" if dims is not None else \
        f"stored {serving.get('precision') or 'float32'}"
    if serving.get("rescore"):
        text += f", top {serving['rescore']} re-scored"
    return text


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


# ------------------------------------------------------------------------------------------------ variants

PRECISION_ORDER = ("float32", "float16", "int8", "uint8", "binary", "ubinary")


def serving_info(section: dict[str, Any], name: str) -> dict[str, Any] | None:
    serving = (((section.get("systems") or {}).get(name) or {}).get("info") or {}).get("serving")
    return serving if isinstance(serving, dict) else None


def variant_parents(section: dict[str, Any]) -> dict[str, str]:
    """variant -> the system it derives from. A variant is a system whose info states how it is served
    (``info.serving``); it is named after its system (``candidate-128d-int8`` of ``candidate``, ``base-64d`` of
    ``base``), and the result compares it with that system (``versus["<variant> vs <system>"]``)."""
    systems = section.get("systems") or {}
    plain = [n for n in systems if serving_info(section, n) is None]
    versus = section.get("versus") or {}
    out = {}
    for name in systems:
        if serving_info(section, name) is None:
            continue
        by_name = sorted((p for p in plain if name.startswith(p + "-")), key=len, reverse=True)
        by_pair = [p for p in plain if f"{name} vs {p}" in versus]
        parent = by_name[0] if by_name else next((p for p in by_pair if p != BASE), by_pair[0] if by_pair else None)
        if parent:
            out[name] = parent
    return out


def full_dimension(section: dict[str, Any], system: str, variants: dict[str, str],
                   models: dict[str, Any] | None = None) -> int | None:
    """The dimensions of a system as it is (un-truncated): stated by its un-truncated variants (a binary variant
    of the full vector), else by the model (``dimension``), else by its float32 index (4 bytes a dimension)."""
    for v, parent in variants.items():
        serving = serving_info(section, v) or {}
        if parent == system and serving.get("truncate_dim") is None and is_number(serving.get("dimensions")):
            return int(serving["dimensions"])
    summary = (section.get("systems") or {}).get(system) or {}
    for source in ((models or {}).get(system) or {}, summary.get("info") or {}):
        if is_number(source.get("dimension")):
            return int(source["dimension"])
    per_million = summary.get("index_bytes_per_million")
    if summary.get("kind") == "bi-encoder" and is_number(per_million) and per_million % 4_000_000 == 0:
        return int(per_million // 4_000_000)
    return None


def variants_view(section: dict[str, Any], metrics: list[str], primary: str | None,
                  models: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Quality against dimension and precision on one set: a row per variant (and one for each system it derives
    from, at its full dimension), with its mean on the primary metric, its paired difference against that system
    and against base, its index per 1M documents and p95 latency; and the chart of the same. None without
    variants."""
    variants = variant_parents(section)
    if not variants:
        return None
    if metrics and primary not in metrics:  # the comparisons of systems hold the suite's metrics only
        primary = metrics[0]
    systems = section.get("systems") or {}
    means = section.get("metrics") or {}
    parents = list(dict.fromkeys(p for p in [CANDIDATE, BASE, *variants.values()] if p in variants.values()))
    rows = []
    for parent in parents:
        full = full_dimension(section, parent, variants, models)
        group = []
        for name in [parent, *[v for v, p in variants.items() if p == parent]]:
            serving = serving_info(section, name) or {}
            summary = systems.get(name) or {}
            precision = serving.get("precision") or "float32"
            dims = serving.get("dimensions") if is_number(serving.get("dimensions")) else \
                serving.get("truncate_dim") if is_number(serving.get("truncate_dim")) else full
            is_full = name == parent
            vs_full = None if is_full else _comparison_row(paired(section, name, parent, primary))
            vs_base = None if name == BASE else vs_full if parent == BASE else \
                _comparison_row(paired(section, name, BASE, primary))
            group.append({
                "name": name, "of": parent, "full": is_full, "dims": dims, "precision": precision,
                "rescore": serving.get("rescore"), "truncated": serving.get("truncate_dim") is not None,
                "mean": (means.get(name) or {}).get(primary), "vs_full": vs_full, "vs_base": vs_base,
                "index_per_million": summary.get("index_bytes_per_million"),
                "latency": latency_view(summary.get("latency")), "search": serving.get("search") or "",
                "int8_ranges": (serving.get("int8_ranges") or {}).get("calibrated_on")
                if isinstance(serving.get("int8_ranges"), dict) else None})
        order = {p: i for i, p in enumerate(PRECISION_ORDER)}
        group[1:] = sorted(group[1:], key=lambda r: (order.get(r["precision"], len(order)), bool(r["rescore"]),
                                                     -(r["dims"] or 0)))
        rows += group
    conf = next((r[k]["confidence"] for r in rows for k in ("vs_full", "vs_base") if r[k] and r[k]["confidence"]),
                None)
    series: dict[tuple, charts.VariantSeries] = {}
    for r in rows:
        key = (r["of"], r["precision"], r["rescore"])
        label = f"{r['of']} {r['precision']}" + (f" re-scored top {r['rescore']}" if r["rescore"] else "")
        s = series.setdefault(key, charts.VariantSeries(
            label, charts.PRECISION_COLORS.get(r["precision"], charts.BASE_COLOR), r["of"] == BASE, []))
        parent_mean = (means.get(r["of"]) or {}).get(primary)
        cmp = r["vs_full"]
        band = (parent_mean + cmp["ci"][0], parent_mean + cmp["ci"][1]) if cmp and cmp["ci"] and \
            is_number(parent_mean) else None
        title = f"{r['name']}: {primary} = {num(r['mean'])} at {_num_text(r['dims'])} dimensions, {r['precision']}"
        if cmp:
            title += (f"; \u0394 vs {r['of']} {signed(cmp['difference'])}, {confidence_label(conf)} "
                      f"[{signed(cmp['ci'][0]) if cmp['ci'] else 'n/a'}, "
                      f"{signed(cmp['ci'][1]) if cmp['ci'] else 'n/a'}]")
        if r["vs_base"] and r["of"] != BASE:
            title += f"; vs base {signed(r['vs_base']['difference'])}"
        if is_number(r["dims"]):
            s.points.append(charts.VariantPoint(float(r["dims"]), r["mean"], band, title))
    base_mean = (means.get(BASE) or {}).get(primary)
    return {"rows": rows, "metric": primary, "confidence": confidence_label(conf),
            "chart": charts.variants_chart(primary or "", list(series.values()), base_mean, confidence_label(conf)),
            "latency_label": latency_label(rows), "names": list(variants), "parents": parents}


def systems_view(section: dict[str, Any], metrics: list[str], primary: str | None) -> dict[str, Any] | None:
    """The systems table of one data set, its comparisons and curves; None when the set scored base and candidate
    only and says nothing else about them (a result written before systems existed). Variants (the same
    bi-encoders truncated or quantized) have a table and chart of their own (``variants_view``): the systems table
    and curves list the systems, and count the variants."""
    if not describes_systems(section):
        return None
    if metrics and primary not in metrics:  # the comparisons of systems hold the suite's metrics only
        primary = metrics[0]
    variants = variant_parents(section)
    names = [n for n in system_names(section) if n not in variants]
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
            "curves": system_curves(section, names) if len(names) > 2 else [], "n_variants": len(variants),
            "variant_parents": sorted(set(variants.values()), key=[CANDIDATE, BASE, *variants.values()].index)}
