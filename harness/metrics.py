"""Per-query retrieval metrics with ranx, under conventions stated here and tested against trec_eval.

- Names: ``ndcg@k`` (graded, linear gain as trec_eval's ndcg_cut), ``mrr@k``, ``recall@k``, ``precision@k``,
  ``map@k`` and ``hit@k``; binary metrics count a document relevant when its score is >= 1.
- Recall@k divides by all relevant documents of the query (not min(k, R)), as trec_eval does.
- The ranking order is the harness's (score desc, then document id desc: trec_eval's order); ranx receives
  rank-derived scores so it cannot reorder ties by its own rule.
- A query whose ranking holds nothing relevant (or nothing at all) scores 0 and stays in the mean. Queries with no
  positive judgment never reach this module: the data loader reports and removes them.
"""
from __future__ import annotations

import re
import warnings
from typing import Iterable, Mapping, Sequence

import numpy as np

from .errors import ConfigError

FAMILIES = {
    "ndcg": "ndcg",
    "mrr": "mrr",
    "recall": "recall",
    "precision": "precision",
    "map": "map",
    "hit": "hit_rate",
}
ALIASES = {"hit_rate": "hit", "success": "hit", "p": "precision", "r": "recall", "rr": "mrr", "ap": "map"}
DEFAULT_KS = (1, 3, 5, 10, 100)
DEFAULT_FAMILIES = ("ndcg", "mrr", "recall", "precision", "map", "hit")
_NAME_RE = re.compile(r"^([a-z_]+)@(\d+)$")
_EMPTY_DOC = "\x00embedgate:no-document"


def parse_metric(name: str) -> tuple[str, int]:
    """'NDCG@10' -> ('ndcg', 10); anything else is a ConfigError listing what is known."""
    m = _NAME_RE.match(str(name).strip().lower())
    if not m:
        raise ConfigError(f"metric {name!r} is not of the form family@k (e.g. ndcg@10)", field="metric")
    family = ALIASES.get(m.group(1), m.group(1))
    k = int(m.group(2))
    if family not in FAMILIES:
        raise ConfigError(f"unknown metric {name!r}; known: {', '.join(f + '@k' for f in FAMILIES)}", field="metric")
    if k < 1:
        raise ConfigError(f"cut-off must be >= 1 in {name!r}", field="metric")
    return family, k


def metric_name(family: str, k: int) -> str:
    return f"{family}@{k}"


def metric_grid(families: Iterable[str] = DEFAULT_FAMILIES, ks: Iterable[int] = DEFAULT_KS) -> list[str]:
    return [metric_name(*parse_metric(f"{f}@{k}")) for f in families for k in ks]


def normalize_metrics(names: Iterable[str]) -> list[str]:
    out: list[str] = []
    for n in names:
        canonical = metric_name(*parse_metric(n))
        if canonical not in out:
            out.append(canonical)
    return out


def _ranx_run(rankings: Mapping[str, Sequence[tuple[str, float]]]) -> dict[str, dict[str, float]]:
    run: dict[str, dict[str, float]] = {}
    for qid, ranking in rankings.items():
        if not ranking:
            run[qid] = {_EMPTY_DOC: 0.0}
            continue
        n = len(ranking)
        run[qid] = {doc_id: float(n - r) for r, (doc_id, _) in enumerate(ranking)}
    return run


def score_queries(qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[tuple[str, float]]],
                  metrics: Iterable[str]) -> dict[str, dict[str, float]]:
    """{metric: {query id: value}} for every query in ``qrels``; a query missing from ``rankings`` scores 0."""
    from ranx import Qrels, Run, evaluate

    names = normalize_metrics(metrics)
    qids = list(qrels)
    if not qids:
        return {m: {} for m in names}
    for qid in qids:
        if not any(r > 0 for r in qrels[qid].values()):
            raise ValueError(f"query {qid!r} has no positive judgment; the loader should have excluded it")
    run = _ranx_run({q: rankings.get(q, []) for q in qids})
    # ranx keeps only positive judgments in Qrels; zero/negative ones do not change any metric here.
    rq = Qrels({q: {d: int(r) for d, r in qrels[q].items() if r > 0} for q in qids})
    rr = Run(run)
    ranx_names = [f"{FAMILIES[f]}@{k}" for f, k in map(parse_metric, names)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba type-safety warnings on first compile
        values = evaluate(rq, rr, ranx_names, return_mean=False, make_comparable=True)
    if len(ranx_names) == 1:
        values = {ranx_names[0]: values}
    ranx_order = list(rq.keys())
    out: dict[str, dict[str, float]] = {}
    for name, rname in zip(names, ranx_names):
        arr = np.asarray(values[rname], dtype=np.float64)
        if not np.isfinite(arr).all():
            raise FloatingPointError(f"{name} is not finite for some query")
        by_q = dict(zip(ranx_order, arr.tolist()))
        out[name] = {q: by_q[q] for q in qids}
    return out


def mean_scores(per_metric: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    out = {}
    for name, by_q in per_metric.items():
        if not by_q:
            raise ValueError(f"no query to average for {name}")
        out[name] = float(np.mean(list(by_q.values())))
    return out


def by_query(per_metric: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """{metric: {qid: v}} -> {qid: {metric: v}}, the layout of the result file."""
    out: dict[str, dict[str, float]] = {}
    for name, by_q in per_metric.items():
        for q, v in by_q.items():
            out.setdefault(q, {})[name] = v
    return out
