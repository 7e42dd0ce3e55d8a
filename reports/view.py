"""From a result dict to what a reader sees: plain data for the HTML template and the markdown summary.

Nothing here recomputes a statistic. It reads the gate verdicts, means, intervals and p-values from the result;
what it derives is arithmetic for display only (per-query differences, their ordering and histogram, rank moves).
"""
from __future__ import annotations

import json
import re
import statistics
from typing import Any

from . import charts
from . import systems as sys_view
from .format import (STATUS_LABELS, confidence_label, duration, is_hash, is_number, message_head, message_reason,
                     observed, parse_metric, rank_move, requirement, short_model, when)

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


def gate_view(gate: dict[str, Any], domain: tuple[float, float] | None = None,
              names: dict[str, str] | None = None) -> dict[str, Any]:
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
        # the gate decides whether more queries could change its verdict; results written before it said so: the
        # rule of the time (an underpowered NOT SHOWN)
        "too_small": bool(det["too_small"]) if "too_small" in det else
        bool(det.get("underpowered")) and status == "inconclusive",
        "decided_by": gate.get("decided_by"),
        "strip": charts.ci_strip(gate.get("difference"), gate.get("ci"), status, reference=reference,
                                 reference_label=ref_label, domain=domain,
                                 sides=f"{system} \u2212 {against or 'base'}"),
        "worst": [w for w in gate.get("worst_queries") or [] if isinstance(w, dict)],
        "golden": [p for p in det.get("pairs") or [] if isinstance(p, dict)] if kind == "golden" else [],
        "seeds": gate_seeds(det, names), "pooled": bool(det.get("pooled")),
    }


def gate_seeds(details: dict[str, Any], names: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """A recipe's gate, seed by seed (``details.seeds``): each candidate's status and difference, named as the
    seeds table names them."""
    out = []
    for i, d in enumerate(details.get("seeds") or []):
        if not isinstance(d, dict):
            continue
        label = str(d.get("candidate", ""))
        status = d.get("status") or "error"
        ci = d.get("ci")
        out.append({"name": (names or {}).get(label) or short_model(label), "candidate": label, "status": status,
                    "label": STATUS_LABELS.get(status, str(status).upper()), "difference": d.get("difference"),
                    "ci": ci if isinstance(ci, (list, tuple)) and len(ci) == 2 else None,
                    "observed": d.get("observed") or ""})
    return out


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
        "variants": sys_view.variants_view(section, suite_metrics(result, section), metric, result.get("models")),
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
            rows.append((key, _clip(json.dumps(value, default=str) if value else "(empty)", 240)))
        else:
            rows.append((key, _clip("null" if value is None else str(value), 240)))

    walk(obj, prefix)
    return rows


HASH_SHOWN = 12  # characters of a digest shown; the full value is the cell's title


def fp_value(value: Any) -> dict[str, Any]:
    """A value as a fingerprint cell shows it: a digest shortened (the full value in ``title``), a list joined, a
    number or flag as written, a long text clipped (in full in ``title``)."""
    if value is None:
        return {"text": "\u2014", "title": None, "hash": False}
    if isinstance(value, bool):
        return {"text": "yes" if value else "no", "title": None, "hash": False}
    if is_hash(value):
        return {"text": value[:HASH_SHOWN] + "\u2026", "title": value, "hash": True}
    if isinstance(value, list) and all(isinstance(v, (str, int, float, bool)) or v is None for v in value):
        text = ", ".join("null" if v is None else str(v) for v in value) or "(none)"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True, default=str) if value else "(none)"
    else:
        text = str(value)
    return {"text": _clip(text, 240), "title": text if len(text) > 240 else None, "hash": False}


def fp_rows(obj: Any, skip: tuple[str, ...] = (), depth: int = 2, limit: int = 60) -> list[dict[str, Any]]:
    """A dict as definition-list rows: nested keys joined with ' \u203a ' (two levels at most; deeper ones are
    shown as their JSON), each value through ``fp_value``."""
    rows: list[dict[str, Any]] = []

    def walk(value: Any, keys: list[str]) -> None:
        if len(rows) >= limit:
            return
        if isinstance(value, dict) and value and len(keys) < depth:
            for k, v in value.items():
                if not keys and k in skip:
                    continue
                walk(v, keys + [str(k)])
        else:
            rows.append({"key": " \u203a ".join(keys), **fp_value(value)})

    if isinstance(obj, dict):
        walk(obj, [])
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
        rows.append({"key": k, "base": b, "candidate": c, "differs": b != c,
                     "base_cell": fp_value(base.get(k)) if k in base else fp_value(""),
                     "candidate_cell": fp_value(cand.get(k)) if k in cand else fp_value("")})
    return {"rows": rows, "base_name": base.get("name"), "candidate_name": cand.get("name"),
            "base_short": short_model(base.get("name")), "candidate_short": short_model(cand.get("name")),
            "base_fp": base.get("fingerprint"), "candidate_fp": cand.get("fingerprint")}


# ------------------------------------------------------------------------------------------------ training


def _train_data(m: dict[str, Any]) -> dict[str, Any]:
    data = (m.get("data") or {}).get("train")
    return data if isinstance(data, dict) else {}


def _loss_text(loss: Any) -> str | None:
    if isinstance(loss, str):
        return loss
    if not isinstance(loss, dict):
        return None
    text = loss.get("class") or loss.get("name")
    if not text:
        return None
    params = [f"{k} {v:g}" for k, v in loss.items() if k in ("scale", "temperature", "margin") and is_number(v)]
    if isinstance(loss.get("matryoshka"), dict) and loss["matryoshka"].get("dims"):
        params.append("Matryoshka " + "/".join(str(d) for d in loss["matryoshka"]["dims"]))
    return text + (f" ({', '.join(params)})" if params else "")


def training_view(model: dict[str, Any] | None) -> dict[str, Any] | None:
    """How a candidate was trained, in one line, from its ``training_manifest`` (``harness.schema.
    TrainingManifest``): the recipe, the base model, the training pairs, the steps, the loss, the seed and the wall
    time, each as the manifest states it; None for a model that was not trained by embedgate."""
    m = (model or {}).get("training_manifest")
    if not isinstance(m, dict):
        return None
    tr = m.get("training") if isinstance(m.get("training"), dict) else {}
    data = _train_data(m)
    cont = m.get("contamination") if isinstance(m.get("contamination"), dict) else {}
    pairs = data.get("n_pairs") if is_number(data.get("n_pairs")) else tr.get("rows")
    return {
        "recipe": m.get("name"), "recipe_path": (m.get("recipe") or {}).get("path")
        if isinstance(m.get("recipe"), dict) else None,
        "base_model": (m.get("base_model") or {}).get("name") if isinstance(m.get("base_model"), dict) else None,
        "pairs": pairs, "data": " ".join(str(x) for x in (data.get("name"), data.get("split")) if x),
        "hard_negatives": bool(m.get("hard_negatives")),
        "steps": tr.get("global_step"), "epochs": tr.get("epochs"), "loss": _loss_text(tr.get("loss")),
        "seed": m.get("seed"), "wall_time_s": m.get("wall_time_s"), "wall": duration(m.get("wall_time_s")),
        "contamination": None if "clean" not in cont else "clean" if cont.get("clean") else "allowed",
        "n_overlaps": cont.get("n_overlaps"), "created_at": when(m.get("created_at")),
    }


def training_sections(m: Any) -> list[dict[str, Any]]:
    """The manifest in groups (recipe, base model, training data, hard negatives, training, dev, contamination,
    the candidate folder, timings): each a short definition list; bulky parts (mining statistics, the dev metrics
    of every step, the training environment) in JSON or left to the file."""
    if not isinstance(m, dict):
        return []
    out = []

    def add(title: str, obj: Any, **kw) -> None:
        rows = fp_rows(obj, **kw)
        if rows:
            out.append({"title": title, "rows": rows})

    recipe = m.get("recipe") if isinstance(m.get("recipe"), dict) else {}
    add("recipe", {"name": m.get("name"), "path": recipe.get("path"), "sha256": recipe.get("sha256"),
                   "suite": recipe.get("suite"), "overrides": recipe.get("overrides"), "seed": m.get("seed"),
                   "created": m.get("created_at"), "wall time": duration(m.get("wall_time_s"))})
    add("base model", m.get("base_model"), skip=("path", "device", "query_prompt", "document_prompt", "revision"))
    add("training data", _train_data(m))
    neg = m.get("hard_negatives")
    if isinstance(neg, dict):
        add("hard negatives", {k: neg.get(k) for k in ("model", "pairs_in", "pairs_out",
                                                       "pairs_dropped_without_negative", "queries", "candidate_pool",
                                                       "settings") if k in neg})
    tr = m.get("training")
    if isinstance(tr, dict):
        add("training", tr, skip=("best_checkpoint",))
    if isinstance(m.get("dev_selection"), dict):
        add("dev selection", m["dev_selection"])
    cont = m.get("contamination")
    if isinstance(cont, dict):
        add("contamination", {k: v for k, v in cont.items() if k not in ("policy", "overlaps", "checked_against")}
            | {"checked against": [c.get("name") for c in cont.get("checked_against") or [] if isinstance(c, dict)]})
    add("candidate folder", m.get("candidate"))
    add("timings (s)", m.get("timings"))
    return out


# ------------------------------------------------------------------------------------------------ fingerprints


def timings_view(result: dict[str, Any]) -> dict[str, Any] | None:
    """Seconds per system and data set (the parts, such as encoding and search, in each cell's title)."""
    timings = result.get("timings") or {}
    per_set = timings.get("datasets") if isinstance(timings.get("datasets"), dict) else {}
    sets = [d for d in per_set if isinstance(per_set[d], dict)]
    systems = list(dict.fromkeys(n for d in sets for n in per_set[d]))
    rows = []
    for name in systems:
        cells = []
        for d in sets:
            t = per_set[d].get(name)
            if not isinstance(t, dict):
                cells.append(None)
                continue
            parts = [f"{k} {v:g}" for k, v in t.items() if k.endswith("_s") and k != "total_s" and is_number(v)]
            enc = t.get("encode") if isinstance(t.get("encode"), dict) else {}
            for role, e in enc.items():
                if isinstance(e, dict) and is_number(e.get("requested")):
                    parts.append(f"{role}: {e.get('cached', 0)} of {e['requested']} cached")
            cells.append({"total": t.get("total_s"), "parts": "; ".join(parts)})
        rows.append({"system": name, "cells": cells})
    if not rows and timings.get("total_s") is None:
        return None
    return {"total": timings.get("total_s"), "sets": sets, "rows": rows}


def fingerprints_view(result: dict[str, Any]) -> dict[str, Any]:
    """What produced these numbers, in five groups: data (each set and the suite file), models (base and candidate
    side by side), training (the candidate's manifest), environment (and packages), timings."""
    env = dict(result.get("environment") or {})
    packages = env.pop("packages", None) or {}
    git = env.pop("git", None)
    env_rows = fp_rows({k: v for k, v in env.items()})
    if isinstance(git, dict):
        env_rows.insert(0, {"key": "git commit", **fp_value(git.get("commit"))})
        env_rows.insert(1, {"key": "git dirty", **fp_value(git.get("dirty"))})
    data_rows = []
    for dname, section in ordered_datasets(result):
        d = section.get("data") or {}
        excluded = d.get("excluded_queries")
        data_rows.append({"name": dname, "role": section.get("role", "domain"), "dataset": d.get("name", dname),
                          "split": d.get("split"), "content_hash": d.get("content_hash"),
                          "hash": fp_value(d.get("content_hash")), "source": d.get("source"),
                          "n_documents": d.get("n_documents"), "n_queries": d.get("n_queries"),
                          "n_positive": d.get("n_positive_judgments"), "graded": d.get("graded"),
                          "excluded": len(excluded) if isinstance(excluded, list) else excluded or 0,
                          "sampling": fp_rows(d.get("sampling")) if isinstance(d.get("sampling"), dict) else []})
    suite = result.get("suite") or {}
    cand = (result.get("models") or {}).get("candidate") or {}
    manifest = cand.get("training_manifest")
    return {"suite": suite, "suite_rows": fp_rows({"name": suite.get("name"), "path": suite.get("path"),
                                                   "sha256": suite.get("sha256") or None}),
            "options": fp_rows(result.get("options") or {}), "data": data_rows, "models": models_view(result),
            "training": training_sections(manifest), "environment": env_rows,
            "packages": [{"key": k, **fp_value(v)} for k, v in sorted(packages.items())]
            if isinstance(packages, dict) else [],
            "timings": timings_view(result)}


# ------------------------------------------------------------------------------------------------ seeds


def seed_names(seeds: list[dict[str, Any]]) -> dict[str, str]:
    """Each seed's candidate as the report names it, short enough for a gate row: the last part of its path less
    what every seed's shares up to a '-' or '_' (``/runs/legal-s0``, ``/runs/legal-s1`` -> ``s0``, ``s1``), or
    'seed k' when those clash."""
    labels = [str(s.get("candidate", "")) for s in seeds]
    last = [x.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or x for x in labels]
    common = last[0] if len(last) > 1 else ""
    for name in last[1:]:
        while not name.startswith(common):
            common = common[:-1]
    cut = max(common.rfind("-"), common.rfind("_")) + 1
    short = [name[cut:] or name for name in last]
    if len(set(short)) < len(short) or not all(short):
        short = [f"seed {i + 1}" for i in range(len(labels))]
    return dict(zip(labels, short))


def _seed_gate(gates: list[dict[str, Any]], dname: str, metric: str) -> dict[str, Any] | None:
    """The seed's own gate on this set and metric that judged the candidate against base by its interval, an
    improvement gate first: its difference and interval are the seed's."""
    found = [g for g in gates if isinstance(g, dict) and g.get("data", "main") == dname and g.get("metric") == metric
             and (g.get("system") or "candidate") == "candidate" and g.get("against", "base") == "base"
             and g.get("decided_by") == "interval" and is_number(g.get("difference"))]
    return next((g for g in found if g.get("kind") == "improvement"), found[0] if found else None)


def seeds_view(result: dict[str, Any]) -> dict[str, Any] | None:
    """A recipe gated over seeds: the pooling in words, each seed's verdict and its primary-metric mean and
    difference against base per data set (the interval from that seed's own gate), the pooled row the gates judged,
    and the spread of the seeds' differences. None for a run of one candidate."""
    seeds = [s for s in result.get("seeds") or [] if isinstance(s, dict)]
    if not seeds:
        return None
    names = seed_names(seeds)
    pooling = result.get("pooling") or {}
    sets = []
    for dname, sec in ordered_datasets(result):
        metric = primary_metric(result, dname, sec)
        if not metric:
            continue
        means = sec.get("metrics") or {}
        cmp = (sec.get("comparisons") or {}).get(metric) or {}
        sets.append({"name": dname, "metric": metric, "role": sec.get("role", "domain"),
                     "base": cmp.get("base", (means.get("base") or {}).get(metric)),
                     "pooled": cmp.get("candidate", (means.get("candidate") or {}).get(metric)),
                     "pooled_difference": cmp.get("difference"), "pooled_ci": cmp.get("ci")})
    rows = []
    for s in seeds:
        gates = s.get("gates") or []
        manifest = (s.get("model") or {}).get("training_manifest")
        cells = []
        for st in sets:
            mean = ((s.get("metrics") or {}).get(st["name"]) or {}).get(st["metric"])
            g = _seed_gate(gates, st["name"], st["metric"])
            diff = g["difference"] if g else (mean - st["base"]) if is_number(mean) and is_number(st["base"]) \
                else None
            ci = g.get("ci") if g else None
            cells.append({"mean": mean, "difference": diff, "ci": ci if ci and len(ci) == 2 else None,
                          "gate": g.get("name") if g else None})
        label = str(s.get("candidate", ""))
        rows.append({"name": names[label], "candidate": label, "short": short_model(label),
                     "verdict": s.get("verdict", "error"),
                     "summary": s.get("summary") or "", "cells": cells,
                     "passed": sum(1 for g in gates if isinstance(g, dict) and g.get("status") == "pass"),
                     "n_gates": len(gates),
                     "seed": manifest.get("seed") if isinstance(manifest, dict) else None,
                     "fingerprint": (s.get("model") or {}).get("fingerprint")})
    for i, st in enumerate(sets):
        diffs = [r["cells"][i]["difference"] for r in rows if is_number(r["cells"][i]["difference"])]
        st["spread"] = {"n": len(diffs), "min": min(diffs) if diffs else None, "max": max(diffs) if diffs else None,
                        "sd": statistics.stdev(diffs) if len(diffs) > 1 else None}
    n = pooling.get("candidates") if is_number(pooling.get("candidates")) else len(seeds)
    return {"n": n, "procedure": pooling.get("procedure") or "", "sets": sets, "rows": rows, "names": names,
            "n_passed": sum(1 for r in rows if r["verdict"] == "pass"),
            "has_seed": any(r["seed"] is not None for r in rows)}


def training_line(result: dict[str, Any]) -> dict[str, Any] | None:
    """The candidate's training line near the top; for a recipe over seeds, each seed's seed and wall time."""
    view = training_view((result.get("models") or {}).get("candidate"))
    if view is None:
        return None
    seeds = [training_view(s.get("model")) for s in result.get("seeds") or [] if isinstance(s, dict)]
    seeds = [v for v in seeds if v]
    view["seeds"] = [v["seed"] for v in seeds] if len(seeds) > 1 else []
    view["walls"] = [v["wall"] for v in seeds] if len(seeds) > 1 else []
    return view


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
    seeds = seeds_view(result)
    gates = [gate_view(g, domain, seeds["names"] if seeds else None) for g in raw_gates]
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
        "seeds": seeds, "training": training_line(result), "notes": gate_notes(gates, domain),
    }


def gate_notes(gates: list[dict[str, Any]], domain: tuple[float, float] | None) -> dict[str, Any]:
    """What the gates table's interval strip and MDE column mean, said once under the table."""
    conf = next((g["confidence"] for g in gates if g["ci"] and g["confidence"] != "CI"), "95% CI")
    level = conf.replace(" CI", "")
    mde = next((g for g in gates if is_number(g["mde"])), None)
    return {"confidence": conf, "level": level, "has_mde": mde is not None, "has_strip": bool(domain),
            "mde_example": {"name": mde["name"], "mde": mde["mde"], "n": mde["n"]} if mde else None,
            "domain": domain, "has_seeds": any(g["seeds"] for g in gates)}


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
