"""Systems: what ranks a suite's documents for a query. The base, the candidate and every reference of a suite is
one: a bi-encoder (``dense``), BM25 (``bm25``), a fusion of others (``fusion``), a cross-encoder reranking another
(``rerank``) or an embedding API (``api``, through the dense path). ``run_systems`` runs them on one data set in
dependency order and returns each one's rankings and what it costs to serve (query latency at batch 1 on this
machine, index bytes, dollars); scoring and comparing stay in ``metrics`` and ``compare``.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import ConfigError
from ..retrieve import Ranking
from ..schema import ModelSpec, system_kind, system_members

__all__ = ["SystemRun", "run_systems", "system_order", "check_systems", "latency_summary"]


@dataclass
class SystemRun:
    """One system's output on one data set."""

    name: str
    kind: str
    rankings: dict[str, Ranking]
    info: dict[str, Any]  # settings and provenance, for the result's "systems" table
    index_bytes: int | None = None
    timings: dict[str, Any] = field(default_factory=dict)
    conventions: dict[str, Any] = field(default_factory=dict)
    # ranks one query from its text, as served (no cache): the latency probe calls it
    search_one: Callable[[str], Ranking] | None = None
    cost_usd: float | None = None


def system_order(specs: Mapping[str, Any]) -> list[str]:
    """Names in an order where every composite comes after the systems it reads; a cycle or a missing member is a
    ConfigError naming the system."""
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ConfigError(f"systems read each other in a cycle: {' -> '.join(chain + (name,))}",
                              field=f"references.{name}")
        state[name] = 1
        for member in system_members(specs[name]):
            if member not in specs:
                raise ConfigError(f"system {name!r} reads {member!r}, which is not a system of the suite "
                                  f"(defined: {', '.join(specs)})", field=f"references.{name}")
            visit(member, chain + (name,))
        state[name] = 2
        order.append(name)

    for name in specs:
        visit(name, ())
    return order


def check_systems(specs: Mapping[str, Any]) -> None:
    """Everything that can be known before encoding or spending: members exist, no cycles, API keys and SDKs are
    there, BM25 stemmers exist."""
    system_order(specs)
    for name, spec in specs.items():
        kind = system_kind(spec)
        try:
            if kind == "api":
                from .api import check_api_system

                check_api_system(spec)
            elif kind == "bm25":
                from .bm25 import check_bm25

                check_bm25(spec)
        except ConfigError as exc:
            where = name if name in ("base", "candidate") else f"references.{name}"
            raise ConfigError(exc.message, path=exc.path, line=exc.line,
                              field=f"{where}.{exc.field}" if exc.field else where) from None


def run_systems(dataset, specs: Mapping[str, Any], *, depth: int, cache, loaded: Mapping[str, Any],
                say: Callable[[str], None] = lambda m: None, tune_sets: Mapping[str, Any] | None = None,
                latency_queries: int = 0, seed: int = 0,
                done: Mapping[str, SystemRun] | None = None) -> dict[str, SystemRun]:
    """Every system of ``specs`` on ``dataset``. ``loaded`` holds the already resolved bi-encoders by name (they
    are fingerprinted before any data set is run, so a bad folder fails first)."""
    from . import bm25, dense, fusion, rerank

    runs: dict[str, SystemRun] = {}
    for name in system_order(specs):
        if done and name in done:  # already run for an earlier candidate (it does not read the candidate)
            runs[name] = done[name]
            continue
        spec = specs[name]
        kind = system_kind(spec)
        t0 = time.perf_counter()
        if kind == "bi-encoder":
            run = dense.run_dense(name, loaded[name], dataset, depth=depth, cache=cache)
        elif kind == "api":
            from .api import ApiEncoder

            run = dense.run_dense(name, ApiEncoder(spec), dataset, depth=depth, cache=cache, kind="api")
        elif kind == "bm25":
            run = bm25.run_bm25(name, spec, dataset, depth=depth, cache=cache)
        elif kind == "hybrid":
            tune = None
            if spec.tune_split is not None:
                dev = (tune_sets or {}).get(name)
                if dev is None:
                    raise ConfigError(f"system {name!r} asks to tune on split {spec.tune_split!r}, which was not "
                                      "loaded", field=f"references.{name}.tune_split")
                say(f"  {name}: tuning fusion weights on {dev.split} ({len(dev.queries)} queries)")
                members = {n: specs[n] for n in _closure(specs, spec.systems)}
                dev_runs = run_systems(dev, members, depth=depth, cache=cache, loaded=loaded)
                tune = (dev, {n: dev_runs[n].rankings for n in spec.systems})
            run = fusion.run_hybrid(name, spec, [runs[n] for n in spec.systems], depth=depth, tune=tune)
        elif kind == "rerank":
            run = rerank.run_rerank(name, spec, dataset, runs[spec.first_stage], depth=depth)
        else:  # the schema admits no other kind
            raise ConfigError(f"unknown system kind {kind!r}", field=f"references.{name}")
        run.timings.setdefault("total_s", round(time.perf_counter() - t0, 3))
        runs[name] = run
        say(f"  {name} ({kind}{', ' + spec.name if isinstance(spec, ModelSpec) else ''}): {stage_line(run)}")
    if latency_queries > 0:
        sample = sorted(random.Random(seed).sample(sorted(dataset.queries), min(latency_queries,
                                                                               len(dataset.queries))))
        for run in runs.values():
            run.info["latency"] = latency_summary(run, [dataset.queries[q] for q in sample])
    return runs


def stage_line(run: SystemRun) -> str:
    """What a system did on a data set, with counts: readable in a CI log."""
    t = run.timings
    n = len(run.rankings)
    if "encode" in t:
        d, q = t["encode"]["documents"], t["encode"]["queries"]
        return (f"{d['requested']:,} documents ({d['cached']:,} cached, {d['encoded']:,} encoded), {q['requested']:,} "
                f"queries ({q['cached']:,} cached, {q['encoded']:,} encoded), {t['total_s']:.1f} s")
    if "index_s" in t:
        return (f"index {'read from the cache' if t['index_cached'] else 'built'} in {t['index_s']:.1f} s, {n:,} "
                f"queries ranked in {t['retrieve_s']:.1f} s")
    if "fuse_s" in t:
        return f"{n:,} rankings fused in {t['fuse_s']:.1f} s"
    if "rerank_s" in t:
        return f"{t['pairs']:,} query-document pairs rescored in {t['rerank_s']:.1f} s"
    return f"{n:,} queries in {t.get('total_s', 0):.1f} s"


def _closure(specs: Mapping[str, Any], names: list[str]) -> list[str]:
    out: list[str] = []
    todo = list(names)
    while todo:
        n = todo.pop()
        if n not in out:
            out.append(n)
            todo += system_members(specs[n])
    return out


def latency_summary(run: SystemRun, texts: list[str]) -> dict[str, Any]:
    """p50/p95 of ranking one query at a time (encode the query if the system must, search, fuse, rerank), on
    this machine. One warm-up query first: the first call pays for lazy loading."""
    if run.search_one is None or not texts:
        return {"measured": False, "why": "not measured for this kind (each API request costs money)"
                if run.kind == "api" else "no queries"}
    run.search_one(texts[0])
    times = []
    for text in texts:
        t0 = time.perf_counter()
        run.search_one(text)
        times.append(1000 * (time.perf_counter() - t0))
    arr = np.asarray(times)
    import os

    # a busy machine slows torch's threads far more than the work: the reader needs to see how busy it was
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"measured": True, "queries": len(texts), "batch": 1, "p50_ms": round(float(np.percentile(arr, 50)), 3),
            "p95_ms": round(float(np.percentile(arr, 95)), 3), "where": "this machine, one query at a time",
            "load_average": round(load, 2) if load is not None else None, "cpus": os.cpu_count()}
