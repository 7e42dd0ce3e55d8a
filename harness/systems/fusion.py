"""Hybrid systems: the rankings of two or more systems fused with ranx.fuse.

Rank-based methods (rrf, isr, log_isr) read ranks only; they are handed each member's ranking as the scores
``depth - rank`` so that the order ranx sees is exactly the member's order, ties included (ranx would otherwise
re-sort tied scores in its own, arbitrary order). Score-based methods (wsum, comb*) read the members' scores after
the stated normalisation. Weights are given, or chosen on a dev split with ranx.optimize_fusion (never on the split
being gated: the schema and the suite loader refuse that). The fused run is ranked with the harness's tie rule."""
from __future__ import annotations

import time
import warnings
from typing import Any

from ..schema import HybridSystem
from . import SystemRun

RANK_BASED = ("rrf", "isr", "log_isr")


def _ranx_run(rankings: dict[str, list], method: str, name: str):
    from ranx import Run

    if method in RANK_BASED:
        scored = {q: {d: float(len(r) - i) for i, (d, _) in enumerate(r)} for q, r in rankings.items()}
    else:
        scored = {q: {d: float(s) for d, s in r} for q, r in rankings.items()}
    # ranx drops queries with an empty ranking; a placeholder keeps every query (and it scores nothing)
    scored = {q: (v or {"\x00empty": 0.0}) for q, v in scored.items()}
    return Run(scored, name=name)


def fuse_rankings(spec: HybridSystem, members: list[dict[str, list]], depth: int,
                  weights: list[float] | None = None) -> dict[str, list]:
    from ranx import fuse

    runs = [_ranx_run(m, spec.method, f"m{i}") for i, m in enumerate(members)]
    params: dict[str, Any] = {}
    if spec.method == "rrf":
        params["k"] = spec.rrf_k
    if weights is not None:
        params["weights"] = list(weights)
    elif spec.method == "wsum":
        params["weights"] = [1.0] * len(members)
    with warnings.catch_warnings():
        # numba's cast warning inside ranx's rrf (uint64 ranks to int64): harmless for ranks below 2**63
        warnings.filterwarnings("ignore", message="unsafe cast from uint64 to int64")
        fused = fuse(runs, norm=spec.norm, method=spec.method, params=params).to_dict()
    out = {}
    for q in members[0]:
        scores = {d: s for d, s in fused.get(q, {}).items() if d != "\x00empty"}
        # score desc, then document id desc (the harness's tie rule)
        ranked = sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:depth]
        out[q] = [(d, float(s)) for d, s in ranked]
    return out


def tune_weights(spec: HybridSystem, qrels: dict, members: list[dict[str, list]]) -> list[float]:
    from ranx import Qrels, optimize_fusion

    from ..metrics import parse_metric

    judged = {q: r for q, r in qrels.items() if any(v > 0 for v in r.values())}
    runs = [_ranx_run({q: m.get(q, []) for q in judged}, spec.method, f"m{i}") for i, m in enumerate(members)]
    family, k = parse_metric(spec.tune_metric)
    best = optimize_fusion(Qrels(judged), runs, norm=spec.norm, method=spec.method, metric=f"{family}@{k}")
    return [float(w) for w in best["weights"]]


def run_hybrid(name: str, spec: HybridSystem, members: list[SystemRun], *, depth: int,
               tune: tuple | None = None) -> SystemRun:
    t0 = time.perf_counter()
    weights = spec.weights
    tuned = None
    if tune is not None:
        dev, dev_rankings = tune
        weights = tune_weights(spec, dev.qrels, [dev_rankings[n] for n in spec.systems])
        tuned = {"split": dev.split, "queries": len(dev.queries), "metric": spec.tune_metric,
                 "by": "ranx.optimize_fusion", "weights": weights}
    rankings = fuse_rankings(spec, [m.rankings for m in members], depth, weights)
    info = {"kind": "hybrid", "systems": list(spec.systems), "method": spec.method, "norm": spec.norm,
            "weights": weights, **({"rrf_k": spec.rrf_k} if spec.method == "rrf" else {}),
            "tuned": tuned, "library": "ranx.fuse"}
    sizes = [m.index_bytes for m in members]

    def search_one(text: str):
        return fuse_rankings(spec, [{"q": m.search_one(text)} for m in members], depth, weights)["q"]

    return SystemRun(name=name, kind="hybrid", rankings=rankings, info=info,
                     index_bytes=sum(sizes) if all(s is not None for s in sizes) else None,
                     timings={"fuse_s": round(time.perf_counter() - t0, 3)},
                     conventions={"tie_break": "fused score desc, then document id desc"},
                     search_one=search_one if all(m.search_one for m in members) else None,
                     cost_usd=sum(m.cost_usd for m in members if m.cost_usd) or None)
