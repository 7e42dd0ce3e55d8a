"""From a result dict to what a reader sees: plain data for the HTML template and the markdown summary.

Nothing here recomputes a statistic. It reads the gate verdicts, means, intervals and p-values from the result;
what it derives is arithmetic for display only (per-query differences, their ordering and histogram, rank moves).
"""
from __future__ import annotations

import json
import re
from typing import Any

from . import charts
from . import systems as sys_view
from .format import (STATUS_LABELS, confidence_label, is_number, message_head, message_reason, observed, parse_metric,
                     rank_move, requirement, short_model, when)

SHOWN_QUERIES = 15  # at most this many regressed and improved queries expanded, of those the result kept
TABLE_QUERIES = 5000  # rows in the collapsed table of every query, per dataset
TABLE_TEXT = 160  # characters of query text in that table
TREND_RUNS = 20
_MODEL_KEYS = ("name", "path", "source", "revision", "fingerprint", "weights_fingerprint", "dtype", "max_seq_length",
               "dimension", "normalize", "query_prompt", "document_prompt", "device")


def ordered_datasets(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """main first, then the other domain sets, then guards; otherwise in file order."""
    sections = list((result.get("datasets") or {}).items())
    rank = {name: i for i, (name, _) in enumerate(sections)}

    def key(item):
        name, sec = item
        return (0 if name == "main" else 1 if sec.get("role", "domain") == "domain" else 2, rank[name])

    return sorted(sections, key=key)


def suite_metrics(result: dict[str, Any], section: dict[str, Any] | None = None) -> list[str]:
    metrics = list((result.get("options") or {}).get("metrics") or [])
    if not metrics and section:
        for rows in (section.get("per_query") or {}).values():
            for values in rows.values():
                return list(values)
    return metrics


def primary_metric(result: dict[str, Any], dname: str, section: dict[str, Any] | None = None) -> str | None:
    """The metric the queries are ranked by: the first gate's metric on this set (as the gate run chooses which
    queries keep rankings), else the suite's first metric."""
    for g in result.get("gates") or []:
        if g.get("data", "main") == dname and g.get("metric"):
            return g["metric"]
    metrics = suite_metrics(result, section)
    return metrics[0] if metrics else None


# ------------------------------------------------------------------------------------------------ gates


def _reference(gate: dict[str, Any]) -> tuple[float | None, str]:
    """The line a gate's interval is judged against, besides zero (the gate class wrote it)."""
    ref = gate.get("reference") or {}
    return (ref.get("value"), ref.get("label") or "") if is_number(ref.get("value")) else (None, "")


def strip_domain(gates: list[dict[str, Any]]) -> tuple[float, float] | None:
    points = []
    for g in gates:
        ci = g.get("ci")
        if is_number(g.get("difference")) and ci and all(is_number(v) for v in ci):
            points += [g["difference"], *ci]
            ref = _reference(g)[0]
            if ref is not None:
                points.append(ref)
    return charts.strip_domain(points) if points else None


def gate_view(gate: dict[str, Any], domain: tuple[float, float] | None = None) -> dict[str, Any]:
    kind, th, det = gate.get("kind"), gate.get("threshold") or {}, gate.get("details") or {}
    reference, ref_label = _reference(gate)
    status = gate.get("status", "error")
    # the gate's base and candidate numbers are those of the system it judged and the one it was compared with
    system, against = sys_view.gate_sides(gate)
    return {
        "name": gate.get("name", "?"), "kind": kind or "?", "data": gate.get("data", "main"),
        "system": system, "against": against, "pair": sys_view.pair_label(system, against),
        "default_pair": sys_view.is_default_pair(system, against),
        "metric": gate.get("metric"), "status": status, "label": STATUS_LABELS.get(status, status.upper()),
        "base": gate.get("base"), "candidate": gate.get("candidate"), "difference": gate.get("difference"),
        "relative": gate.get("relative_difference"), "ci": gate.get("ci"), "p_value": gate.get("p_value"),
        "confidence": confidence_label(gate.get("confidence")), "test": gate.get("test"),
        "mde": gate.get("mde"), "n": gate.get("n_queries"), "requirement": requirement(gate),
        "observed": observed(gate), "threshold": th, "message": gate.get("message") or "",
        "head": message_head(gate.get("message")),
        "reason": message_reason(gate), "underpowered": bool(det.get("underpowered")),
        "decided_by": gate.get("decided_by"),
        "strip": charts.ci_strip(gate.get("difference"), gate.get("ci"), status, reference=reference,
                                 reference_label=ref_label, domain=domain,
                                 sides=f"{system} \u2212 {against or 'base'}"),
        "worst": [w for w in gate.get("worst_queries") or [] if isinstance(w, dict)],
        "golden": [p for p in det.get("pairs") or [] if isinstance(p, dict)] if kind == "golden" else [],
    }


# ------------------------------------------------------------------------------------------------ datasets


def curves(section: dict[str, Any]) -> list[dict[str, Any]]:
    """Per metric family: cut-offs, base and candidate means, the paired CI of the difference, and the chart."""
    comparisons = section.get("comparisons") or {}
    metrics = section.get("metrics") or {}
    names = list(comparisons) or list(dict.fromkeys([*(metrics.get("base") or {}), *(metrics.get("candidate") or {})]))
    families: dict[str, set[int]] = {}
    for name in names:
        parsed = parse_metric(name)
        if parsed:
            families.setdefault(parsed[0], set()).add(parsed[1])
    out = []
    conf = None
    for family, kset in families.items():
        ks = sorted(kset)
        rows = []
        for k in ks:
            name = f"{family}@{k}"
            cmp = comparisons.get(name) or {}
            base = cmp.get("base", (metrics.get("base") or {}).get(name))
            cand = cmp.get("candidate", (metrics.get("candidate") or {}).get(name))
            ci = cmp.get("ci")
            conf = conf or cmp.get("confidence")
            diff = cmp.get("difference")
            if diff is None and is_number(base) and is_number(cand):
                diff = cand - base
            rows.append({"k": k, "metric": name, "base": base, "candidate": cand, "difference": diff,
                         "relative": cmp.get("relative_difference"), "ci": ci if ci and len(ci) == 2 else None,
                         "p_value": cmp.get("p_value"), "n": cmp.get("n")})
        chart = charts.curve_chart(family, ks, [r["base"] for r in rows], [r["candidate"] for r in rows],
                                   [tuple(r["ci"]) if r["ci"] else None for r in rows], confidence_label(conf))
        out.append({"family": family, "rows": rows, "chart": chart})
    return out


def per_query_differences(section: dict[str, Any], metric: str) -> list[tuple[float, str]]:
    """(candidate - base, query id) for every query scored on both sides, most regressed first (ties by id)."""
    pq = section.get("per_query") or {}
    base, cand = pq.get("base") or {}, pq.get("candidate") or {}
    rows = []
    for qid, values in base.items():
        other = cand.get(qid)
        if other is None or not is_number(values.get(metric)) or not is_number(other.get(metric)):
            continue
        rows.append((other[metric] - values[metric], qid))
    rows.sort(key=lambda t: (t[0], t[1]))
    return rows


def histograms(result: dict[str, Any], section: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    comparisons = section.get("comparisons") or {}
    for metric in suite_metrics(result, section):
        diffs = per_query_differences(section, metric)
        if not diffs:
            continue
        values = [d for d, _ in diffs]
        mean = (comparisons.get(metric) or {}).get("difference")
        if not is_number(mean):
            mean = sum(values) / len(values)
        h = charts.bin_differences(values)
        out.append({"metric": metric, "chart": charts.difference_histogram(values, metric, mean), "mean": mean,
                    "down": sum(h.negative), "tied": h.ties, "up": sum(h.positive), "n": len(values)})
    return out


def _ranking(section: dict[str, Any], side: str, qid: str) -> list[tuple[str, float]]:
    return [(d, s) for d, s in ((section.get("rankings") or {}).get(side) or {}).get(qid) or []]


def query_view(result: dict[str, Any], section: dict[str, Any], qid: str, metric: str, anchor: str) -> dict[str, Any]:
    pq = section.get("per_query") or {}
    base_vals = (pq.get("base") or {}).get(qid) or {}
    cand_vals = (pq.get("candidate") or {}).get(qid) or {}
    metrics = [(m, base_vals.get(m), cand_vals.get(m),
                cand_vals[m] - base_vals[m] if is_number(base_vals.get(m)) and is_number(cand_vals.get(m)) else None)
               for m in suite_metrics(result, section) if m in base_vals or m in cand_vals]
    grades = ((section.get("qrels") or {}).get(qid)) or {}
    ranks = section.get("relevant_ranks") or {}
    base_ranks = (ranks.get("base") or {}).get(qid) or {}
    cand_ranks = (ranks.get("candidate") or {}).get(qid) or {}
    depth = (section.get("conventions") or {}).get("depth")
    documents = section.get("documents") or {}
    lists = {side: _ranking(section, side, qid) for side in ("base", "candidate")}
    positions = {side: {d: i + 1 for i, (d, _) in enumerate(hits)} for side, hits in lists.items()}
    side_ranks = {"base": base_ranks, "candidate": cand_ranks}

    def entries(side: str) -> list[dict[str, Any]]:
        other = "candidate" if side == "base" else "base"
        out = []
        for i, (doc, score) in enumerate(lists[side]):
            rank = i + 1
            other_rank = side_ranks[other].get(doc, positions[other].get(doc))
            if side == "candidate":
                move_text, move_class = rank_move(other_rank, rank, depth)
            else:
                move_text, move_class = rank_move(rank, other_rank, depth)
            out.append({"rank": rank, "doc": doc, "score": score, "grade": grades.get(doc), "text":
                        documents.get(doc, ""), "other_rank": other_rank, "move": move_text, "move_class": move_class,
                        "relevant": (grades.get(doc) or 0) > 0})
        return out

    relevant = []
    for doc, grade in sorted(grades.items(), key=lambda t: (-(t[1] if is_number(t[1]) else 0), t[0])):
        b = base_ranks.get(doc, positions["base"].get(doc))
        c = cand_ranks.get(doc, positions["candidate"].get(doc))
        move_text, move_class = rank_move(b, c, depth)
        relevant.append({"doc": doc, "grade": grade, "base_rank": b, "candidate_rank": c, "move": move_text,
                         "move_class": move_class, "text": documents.get(doc, "")})
    # relevant documents the kept top-k does not show, with where they are (or that they are beyond the depth)
    below = {side: [{"doc": r["doc"], "grade": r["grade"], "rank": r[f"{key}_rank"]} for r in relevant
                    if r["doc"] not in positions[side]]
             for side, key in (("base", "base"), ("candidate", "candidate"))}
    primary = next(((b, c, d) for m, b, c, d in metrics if m == metric), (None, None, None))
    return {"qid": qid, "text": (section.get("queries") or {}).get(qid, ""), "anchor": anchor, "metrics": metrics,
            "base": primary[0], "candidate": primary[1], "difference": primary[2],
            "base_list": entries("base"), "candidate_list": entries("candidate"), "relevant": relevant, "below": below,
            "has_rankings": bool(lists["base"] or lists["candidate"]), "depth": depth}


def dataset_view(result: dict[str, Any], dname: str, section: dict[str, Any], prefix: str,
                 shown: int = SHOWN_QUERIES) -> dict[str, Any]:
    metric = primary_metric(result, dname, section)
    diffs = per_query_differences(section, metric) if metric else []
    # which queries are expanded was decided by the gate run (it kept their rankings); this only orders them
    kept = set(section.get("shown_queries") or [q for _, q in diffs])
    regressed = [q for d, q in diffs if d < 0 and q in kept][:shown]
    improved = [q for d, q in reversed(diffs) if d > 0 and q in kept][:shown]
    anchors = {}
    views = {}
    for group, qids in (("down", regressed), ("up", improved)):
        for i, qid in enumerate(qids):
            anchors[qid] = f"{prefix}{_slug(dname)}-{group}{i}"
            views[qid] = query_view(result, section, qid, metric, anchors[qid])
    queries = section.get("queries") or {}
    table = [{"qid": q, "text": _clip(queries.get(q, ""), TABLE_TEXT), "difference": d,
              "base": ((section.get("per_query") or {}).get("base") or {}).get(q, {}).get(metric),
              "candidate": ((section.get("per_query") or {}).get("candidate") or {}).get(q, {}).get(metric),
              "anchor": anchors.get(q)} for d, q in diffs[:TABLE_QUERIES]]
    data = section.get("data") or {}
    headline = None
    if metric:
        cmp = (section.get("comparisons") or {}).get(metric) or {}
        m = section.get("metrics") or {}
        headline = {"metric": metric, "base": cmp.get("base", (m.get("base") or {}).get(metric)),
                    "candidate": cmp.get("candidate", (m.get("candidate") or {}).get(metric)),
                    "difference": cmp.get("difference"), "ci": cmp.get("ci"), "p_value": cmp.get("p_value")}
    return {
        "name": dname, "headline": headline, "id": f"{prefix}data-{_slug(dname)}",
        "role": section.get("role", "domain"), "data": data,
        "label": f"{data.get('name', dname)} {data.get('split', '')}".strip(), "metric": metric,
        "systems": sys_view.systems_view(section, suite_metrics(result, section), metric),
        "curves": curves(section), "histograms": histograms(result, section),
        "regressed": [views[q] for q in regressed], "improved": [views[q] for q in improved],
        "table": table, "table_total": len(diffs), "n_tied": sum(1 for d, _ in diffs if d == 0),
        "conventions": section.get("conventions") or {},
        "tied": {side: n for side, n in (section.get("tied_rankings") or {}).items() if isinstance(n, int) and n},
    }


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text) or "x"


def _clip(text: Any, n: int) -> str:
    text = text if isinstance(text, str) else ""
    return text if len(text) <= n else text[: n - 1] + "\u2026"


# ------------------------------------------------------------------------------------------------ fingerprints


def flatten(obj: Any, prefix: str = "", limit: int = 80) -> list[tuple[str, str]]:
    """Nested dicts -> [("a.b", "value")], for key-value tables (bounded; long values clipped)."""
    rows: list[tuple[str, str]] = []

    def walk(value: Any, key: str) -> None:
        if len(rows) >= limit:
            return
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(value, list) and value and all(isinstance(v, (str, int, float, bool)) for v in value):
            rows.append((key, _clip(", ".join(str(v) for v in value), 240)))
        elif isinstance(value, (dict, list)):
            rows.append((key, _clip(repr(value) if value else "(empty)", 240)))
        else:
            rows.append((key, _clip("null" if value is None else str(value), 240)))

    walk(obj, prefix)
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return _clip(json.dumps(value, sort_keys=True, default=str), 240)
    return str(value)


def models_view(result: dict[str, Any]) -> dict[str, Any]:
    models = result.get("models") or {}
    base, cand = models.get("base") or {}, models.get("candidate") or {}
    keys = [k for k in _MODEL_KEYS if k in base or k in cand]
    keys += sorted(k for k in {*base, *cand} - set(_MODEL_KEYS) if k not in ("training_manifest",))
    rows = []
    for k in keys:
        b, c = _cell(base.get(k)), _cell(cand.get(k))
        rows.append({"key": k, "base": b, "candidate": c, "differs": b != c})
    manifest = cand.get("training_manifest")
    return {"rows": rows, "manifest": flatten(manifest) if isinstance(manifest, dict) else [],
            "base_name": base.get("name"), "candidate_name": cand.get("name"),
            "base_short": short_model(base.get("name")), "candidate_short": short_model(cand.get("name")),
            "base_fp": base.get("fingerprint"), "candidate_fp": cand.get("fingerprint")}


def fingerprints_view(result: dict[str, Any]) -> dict[str, Any]:
    env = dict(result.get("environment") or {})
    packages = env.pop("packages", None) or {}
    data_rows = []
    for dname, section in ordered_datasets(result):
        d = section.get("data") or {}
        data_rows.append({"name": dname, "role": section.get("role", "domain"), "dataset": d.get("name", dname),
                          "split": d.get("split"), "content_hash": d.get("content_hash"), "source": d.get("source"),
                          "n_documents": d.get("n_documents"), "n_queries": d.get("n_queries"),
                          "n_positive": d.get("n_positive_judgments"), "graded": d.get("graded"),
                          "excluded": len(d.get("excluded_queries") or []),
                          "sampling": flatten(d.get("sampling")) if d.get("sampling") else []})
    suite = result.get("suite") or {}
    timings = result.get("timings") or {}
    return {"suite": suite, "data": data_rows, "models": models_view(result), "environment": flatten(env),
            "packages": sorted(packages.items()) if isinstance(packages, dict) else [],
            "options": flatten(result.get("options") or {}), "timings_total": timings.get("total_s"),
            "timings": flatten({k: v for k, v in (timings.get("datasets") or {}).items()}, limit=40)}


# ------------------------------------------------------------------------------------------------ trend


def run_summary(result: dict[str, Any]) -> dict[str, Any]:
    """What the trend keeps of a run: a few fields, so reading 20 earlier results stays cheap."""
    if result.get("_summary"):
        return result
    metric = None
    main = (result.get("datasets") or {}).get("main") or {}
    metric = primary_metric(result, "main", main)
    metrics = main.get("metrics") or {}
    base = (metrics.get("base") or {}).get(metric)
    cand = (metrics.get("candidate") or {}).get(metric)
    if base is None or cand is None:  # no datasets block (an errored run): fall back on its first gate
        g = next((g for g in result.get("gates") or [] if g.get("metric") == metric and g.get("data") == "main"), {})
        base, cand = g.get("base"), g.get("candidate")
    models = result.get("models") or {}
    gates = result.get("gates") or []
    return {"_summary": True, "created_at": result.get("created_at"), "verdict": result.get("verdict"),
            "summary": result.get("summary", ""), "suite": (result.get("suite") or {}).get("name"),
            "metric": metric, "base": base, "candidate": cand,
            "metrics": {side: dict(v) for side, v in metrics.items() if isinstance(v, dict)},
            "candidate_name": (models.get("candidate") or {}).get("name"),
            "candidate_fp": (models.get("candidate") or {}).get("fingerprint"),
            "passed": sum(1 for g in gates if g.get("status") == "pass"), "n_gates": len(gates),
            "file": (result.get("files") or {}).get("json") or result.get("_file")}


def trend_view(result: dict[str, Any], history: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """Earlier runs of the same suite, oldest first, ending with this one; None when there are none."""
    if not history:
        return None
    me = run_summary(result)
    earlier = []
    for h in history:
        s = run_summary(h)
        if s["suite"] != me["suite"]:
            continue
        if s["created_at"] == me["created_at"] and s["candidate_fp"] == me["candidate_fp"]:
            continue  # this run itself
        if me["created_at"] and s["created_at"] and s["created_at"] > me["created_at"]:
            continue  # a report re-rendered later shows what came before it, not after
        earlier.append(s)
    if not earlier:
        return None
    earlier.sort(key=lambda s: s["created_at"] or "")
    runs = earlier[-(TREND_RUNS - 1):] + [me]
    metric = me["metric"]
    for s in runs:
        if metric and s["metric"] != metric:  # the suite's gates changed since: read this run's metric there
            s["base"] = (s["metrics"].get("base") or {}).get(metric)
            s["candidate"] = (s["metrics"].get("candidate") or {}).get(metric)
    rows = [{"when": when(s["created_at"]), "verdict": s["verdict"], "summary": s["summary"],
             "candidate": short_model(s["candidate_name"]), "candidate_fp": s["candidate_fp"], "base": s["base"],
             "value": s["candidate"], "difference": (s["candidate"] - s["base"]) if is_number(s["candidate"]) and
             is_number(s["base"]) else None, "passed": s["passed"], "n_gates": s["n_gates"],
             "current": s is me} for s in runs]
    chart = charts.trend_chart([(r["when"], r["value"], r["verdict"] or "error") for r in rows],
                               [r["base"] for r in rows], metric or "")
    return {"metric": metric, "rows": list(reversed(rows)), "chart": chart, "n_earlier": len(runs) - 1}


# ------------------------------------------------------------------------------------------------ whole runs


def run_view(result: dict[str, Any], history: list[dict[str, Any]] | None = None, prefix: str = "",
             shown: int = SHOWN_QUERIES) -> dict[str, Any]:
    raw_gates = result.get("gates") or []
    domain = strip_domain(raw_gates)
    gates = [gate_view(g, domain) for g in raw_gates]
    datasets = [dataset_view(result, name, sec, prefix, shown) for name, sec in ordered_datasets(result)]
    fingerprints = fingerprints_view(result)
    suite = result.get("suite") or {}
    return {
        "prefix": prefix, "suite": suite.get("name", "?"), "description": suite.get("description") or "",
        "created_at": result.get("created_at"), "when": when(result.get("created_at")),
        "verdict": result.get("verdict", "error"), "summary": result.get("summary") or "",
        "error": result.get("error"), "gates": gates, "blocking": [g for g in gates if g["status"] != "pass"],
        "n_passed": sum(1 for g in gates if g["status"] == "pass"), "datasets": datasets,
        "fingerprints": fingerprints, "models": fingerprints["models"], "trend": trend_view(result, history),
        "options": result.get("options") or {}, "gate_sides": gate_columns(gates),
    }


def gate_columns(gates: list[dict[str, Any]]) -> tuple[str, str]:
    """Headers of the gates table's two number columns: "base" and "candidate" while every gate judged the
    candidate against the base; "against" and "judged" once some gate compared other systems (each such row then
    names its two systems)."""
    return ("base", "candidate") if all(g["default_pair"] for g in gates) else ("against", "judged")


def comparison_view(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs side by side: verdicts, each gate, the suite metrics per set, and warnings when the runs do not
    measure the same thing (suite, base model or data differ)."""
    runs = []
    for i, r in enumerate(results):
        cand = (r.get("models") or {}).get("candidate") or {}
        runs.append({"index": i + 1, "color": charts.RUN_COLORS[i % len(charts.RUN_COLORS)],
                     "suite": (r.get("suite") or {}).get("name"), "when": when(r.get("created_at")),
                     "verdict": r.get("verdict"), "summary": r.get("summary", ""),
                     "candidate": short_model(cand.get("name")), "candidate_name": cand.get("name"),
                     "candidate_fp": cand.get("fingerprint"), "id": f"run{i + 1}"})
    warnings = []
    suites = {r["suite"] for r in runs}
    if len(suites) > 1:
        warnings.append(f"the runs come from different suites ({', '.join(sorted(map(str, suites)))}): gates and data "
                        f"may not match")
    base_fps = {((r.get("models") or {}).get("base") or {}).get("fingerprint") for r in results} - {None}
    if len(base_fps) > 1:
        warnings.append("the base model differs between runs: differences are measured against different bases")
    hashes: dict[str, set[str]] = {}
    for r in results:
        for dname, sec in (r.get("datasets") or {}).items():
            h = (sec.get("data") or {}).get("content_hash")
            if h:
                hashes.setdefault(dname, set()).add(h)
    for dname, hs in hashes.items():
        if len(hs) > 1:
            warnings.append(f"data set '{dname}' has different content in different runs: its numbers are not "
                            f"comparable")
    gate_names = list(dict.fromkeys(g.get("name") for r in results for g in r.get("gates") or []))
    gate_rows = []
    for name in gate_names:
        cells = []
        for r in results:
            g = next((g for g in r.get("gates") or [] if g.get("name") == name), None)
            cells.append(gate_view(g) if g else None)
        gate_rows.append({"name": name, "cells": cells})
    metric_rows = []
    dnames = list(dict.fromkeys(n for r in results for n, _ in ordered_datasets(r)))
    for dname in dnames:
        metrics = list(dict.fromkeys(m for r in results for m in suite_metrics(r, (r.get("datasets") or {})
                                                                               .get(dname))))
        for metric in metrics:
            cells = []
            for r in results:
                sec = (r.get("datasets") or {}).get(dname) or {}
                cmp = (sec.get("comparisons") or {}).get(metric) or {}
                m = sec.get("metrics") or {}
                base = cmp.get("base", (m.get("base") or {}).get(metric))
                cand = cmp.get("candidate", (m.get("candidate") or {}).get(metric))
                cells.append({"base": base, "candidate": cand, "difference": cmp.get("difference"),
                              "ci": cmp.get("ci"), "p_value": cmp.get("p_value")} if sec else None)
            metric_rows.append({"data": dname, "metric": metric, "cells": cells})
    charts_out = []
    main = [((r.get("datasets") or {}).get("main") or {}) for r in results]
    families: dict[str, set[int]] = {}
    for sec in main:
        for name in (sec.get("metrics") or {}).get("candidate") or {}:
            parsed = parse_metric(name)
            if parsed:
                families.setdefault(parsed[0], set()).add(parsed[1])
    for family, kset in families.items():
        ks = sorted(kset)
        base = [((main[0].get("metrics") or {}).get("base") or {}).get(f"{family}@{k}") for k in ks]
        series = [charts.Series(f"run {run['index']}: {run['candidate']}",
                                [((sec.get("metrics") or {}).get("candidate") or {}).get(f"{family}@{k}") for k in ks],
                                run["color"]) for run, sec in zip(runs, main)]
        charts_out.append(charts.runs_chart(family, ks, base, series))
    return {"runs": runs, "warnings": warnings, "gates": gate_rows, "metrics": metric_rows, "charts": charts_out}
