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

# each family and ranx's function for it (in ranx.metrics)
FAMILIES = {
    "ndcg": "ndcg",
    "mrr": "reciprocal_rank",
    "recall": "recall",
    "precision": "precision",
    "map": "average_precision",
    "hit": "hit_rate",
}
ALIASES = {"hit_rate": "hit", "success": "hit", "p": "precision", "r": "recall", "rr": "mrr", "ap": "map"}
DEFAULT_KS = (1, 3, 5, 10, 100)
DEFAULT_FAMILIES = ("ndcg", "mrr", "recall", "precision", "map", "hit")
_NAME_RE = re.compile(r"^([a-z_]+)@(\d+)$")


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


def _padded(rows: list[list[tuple[int, float]]]) -> np.ndarray:
    """Per-query (document number, score) rows as one (queries, longest, 2) float64 array, each query's rows in
    order, padded with document -1 (no document has that number, so padding matches nothing) and score 0."""
    width = max(1, max((len(r) for r in rows), default=0))
    out = np.zeros((len(rows), width, 2), dtype=np.float64)
    out[:, :, 0] = -1.0
    for i, r in enumerate(rows):
        if r:
            out[i, :len(r)] = r
    return out


def score_queries(qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[tuple[str, float]]],
                  metrics: Iterable[str]) -> dict[str, dict[str, float]]:
    """{metric: {query id: value}} for every query in ``qrels``; a query missing from ``rankings`` scores 0.

    ranx's metric functions receive plain arrays: documents numbered, each ranking in the harness's order with
    rank-derived scores (so ranx cannot reorder ties), the judgments sorted by grade. ranx's ``Qrels``/``Run``
    would build numba typed dicts, which compile in every new process (about 10 s); the kernels on arrays compile
    once and are cached on disk. Padding with a document number that nothing has changes no metric: each kernel
    counts judged documents only, divides by k or by the number judged relevant, and cuts the ranking at
    min(k, length), where padded places add nothing."""
    names = normalize_metrics(metrics)
    qids = list(qrels)
    if not qids:
        return {m: {} for m in names}
    number: dict[str, int] = {}
    judged: list[list[tuple[int, float]]] = []
    ranked: list[list[tuple[int, float]]] = []
    for qid in qids:
        # only positive judgments: zero or negative ones change no metric here
        positive = sorted(((number.setdefault(d, len(number)), float(r)) for d, r in qrels[qid].items() if r > 0),
                          key=lambda row: -row[1])
        if not positive:
            raise ValueError(f"query {qid!r} has no positive judgment; the loader should have excluded it")
        judged.append(positive)
        ranking = rankings.get(qid, [])
        n = len(ranking)
        ranked.append([(number.setdefault(d, len(number)), float(n - r)) for r, (d, _) in enumerate(ranking)])
    from ranx import metrics as ranx_metrics

    qrels_arr, run_arr = _padded(judged), _padded(ranked)
    out: dict[str, dict[str, float]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba type-safety warnings on first compile
        for name in names:
            family, k = parse_metric(name)
            arr = np.asarray(getattr(ranx_metrics, FAMILIES[family])(qrels_arr, run_arr, k, 1), dtype=np.float64)
            if arr.shape != (len(qids),) or not np.isfinite(arr).all():
                raise FloatingPointError(f"{name} is not finite for some query")
            out[name] = dict(zip(qids, arr.tolist()))
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
