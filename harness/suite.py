"""Suites: suite.toml -> SuiteConfig; ``run_suite(suite, candidate)`` -> the SuiteResult every shell and report reads.

One function does the work; the pytest plugin and the ``embedgate gate`` command are thin shells over it.
"""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from . import data as data_mod
from .compare import PairedComparison, paired_compare
from .encode import EmbeddingCache
from .environment import environment
from .errors import ConfigError
from .evaluate import score_with_memo, tied_queries
from .gates import ERROR, PASS, GateContext, GateResult, error_result, run_gate
from .io import read_toml, write_json
from .metrics import metric_grid, normalize_metrics, parse_metric
from .models import ModelSpec, load_model
from .schema import (DATA_ROLES, RESERVED_SYSTEMS, SUITE_RESULT_SCHEMA, Comparison, DataRef, DatasetSection,
                     HybridSystem, SeedResult, Strict, SuiteConfig, SuiteInfo, SuiteResult, SystemSpec,
                     SystemSummary,
                     TrainingManifest, load_suite_config, system_kind, system_members, validate_config)
from .systems import SystemRun, check_systems, run_systems

SCHEMA = SUITE_RESULT_SCHEMA
SHOWN_QUERIES = 15  # most improved and most regressed queries kept with rankings, per dataset (the report shows them)
SHOWN_DEPTH = 10
DOC_SNIPPET = 400

Suite = SuiteConfig  # the name the rest of the house has used


class _SystemFile(Strict):
    """A candidate given as a system file (``--candidate hybrid.toml``): one system table."""

    system: SystemSpec
__all__ = ["Suite", "SuiteConfig", "DataRef", "DATA_ROLES", "load_suite", "run_suite", "write_result", "verdict_of",
           "summary_of", "error_run_result"]


def load_suite(path: str | Path) -> SuiteConfig:
    """Read and validate ``suite.toml`` (or a folder holding one): a defect is a ConfigError with file, line and
    field."""
    return load_suite_config(path)


# ----------------------------------------------------------------------------------------------- running


def load_suite_data(suite: Suite) -> dict[str, data_mod.RetrievalSet]:
    """Every data set of the suite, validated, before any model is loaded."""
    out = {}
    for dname, ref in suite.data.items():
        ds = data_mod.load(ref.path, ref.split, name=ref.path.name)
        if ref.max_queries or ref.corpus_size:
            ds = ds.subset(max_queries=ref.max_queries, corpus_size=ref.corpus_size, seed=ref.seed)
        out[dname] = ds
    return out


def _grid(suite: Suite) -> list[str]:
    families = []
    for m in suite.metrics:
        fam = parse_metric(m)[0]
        if fam not in families:
            families.append(fam)
    return normalize_metrics(metric_grid(families, suite.ks) + suite.metrics)


def _shown_queries(metric: str, base_pq, cand_pq, extra: set[str]) -> list[str]:
    """The queries whose rankings the result keeps (and the report expands): the most regressed and the most
    improved by the primary metric, plus those a gate names. Decided here, once. ``*_pq``: query id -> value."""
    diffs = sorted((cand_pq[q] - base_pq[q], q) for q in base_pq)
    regressed = [q for d, q in diffs[:SHOWN_QUERIES] if d < 0]
    improved = [q for d, q in reversed(diffs[-SHOWN_QUERIES:]) if d > 0]
    return list(dict.fromkeys(regressed + improved + sorted(extra & set(base_pq))))


def _ranks(ranking, relevant) -> dict[str, int | None]:
    pos = {d: i + 1 for i, (d, _) in enumerate(ranking)}
    return {d: pos.get(d) for d in relevant}


CONVENTIONS = {
    "tie_break": "score desc, then document id desc (trec_eval's order), for every system",
    "relevance_threshold": 1,
    "empty_ranking": "scores 0 and stays in the mean",
    "no_positive_judgment": "reported in data.excluded_queries and left out",
    "paired": "every system is scored on the same queries; comparisons pair them query by query",
}


def _system_summary(run: SystemRun, n_docs: int) -> SystemSummary:
    per_million = round(run.index_bytes * 1_000_000 / n_docs) if run.index_bytes and n_docs else None
    enc = run.timings.get("encode", {}).get("documents", {})
    if enc.get("encoded"):  # only when this run encoded: a cache hit says nothing about speed
        run.info.setdefault("latency", {})["documents_per_s"] = round(enc["encoded"] / max(enc["seconds"], 1e-9), 2)
    return SystemSummary(kind=run.kind, info={k: v for k, v in run.info.items() if k != "latency"},
                         index_bytes=run.index_bytes, index_bytes_per_million=per_million,
                         latency=run.info.get("latency", {}), cost_usd=run.cost_usd, timings=run.timings)


def _dataset_section(suite: Suite, ref: DataRef, ds, runs: dict[str, SystemRun], by_metric, comparisons, versus,
                     primary: str, extra: set[str], kept: list[str]) -> DatasetSection:
    shown = _shown_queries(primary, by_metric["base"][primary], by_metric["candidate"][primary], extra)
    positives = {q: {d: r for d, r in ds.qrels[q].items() if r > 0} for q in shown}
    rankings = {name: {q: [(d, round(s, 6)) for d, s in run.rankings[q][:SHOWN_DEPTH]] for q in shown}
                for name, run in runs.items()}
    docs = {d for side in rankings.values() for ranking in side.values() for d, _ in ranking}
    docs |= {d for rels in positives.values() for d in rels}
    qids = list(ds.qrels)
    return DatasetSection(
        role=ref.role, data=ds.describe(),
        metrics={name: {m: float(np.mean([by_metric[name][m][q] for q in qids])) for m in by_metric[name]}
                 for name in runs},
        comparisons={m: Comparison(**c.as_dict()) for m, c in comparisons.items()},
        queries=dict(ds.queries),
        per_query={name: {q: {m: by_metric[name][m][q] for m in kept} for q in qids} for name in runs},
        shown_queries=shown, rankings=rankings, qrels=positives,
        relevant_ranks={name: {q: _ranks(run.rankings[q], positives[q]) for q in shown} for name, run in runs.items()},
        documents={d: ds.corpus[d].full_text[:DOC_SNIPPET] for d in sorted(docs)},
        conventions={**CONVENTIONS, "depth": max(len(r) for run in runs.values() for r in run.rankings.values())
                     if ds.queries else 0,
                     "systems": {name: run.conventions for name, run in runs.items()}},
        # rankings whose order among equal scores came from the tie rule, per system (they can differ)
        tied_rankings={name: tied_queries(run.rankings) for name, run in runs.items()},
        systems={name: _system_summary(run, len(ds.corpus)) for name, run in runs.items()},
        versus={key: {m: Comparison(**c.as_dict()) for m, c in cmps.items()} for key, cmps in versus.items()},
    )


def _candidate_info(loaded) -> dict[str, Any]:
    info = loaded.describe()
    manifest = Path(loaded.path) / "training_manifest.json"
    if manifest.is_file():
        try:
            info["training_manifest"] = TrainingManifest.model_validate(
                json.loads(manifest.read_text(encoding="utf-8"))).model_dump(mode="json", by_alias=True)
        except (OSError, ValueError) as exc:
            info["training_manifest_error"] = f"unreadable training_manifest.json: {exc}"
    return info


def candidate_systems(candidate, suite: Suite) -> tuple[Any, dict[str, Any]]:
    """(the candidate's spec, extra bi-encoders it reads). A model folder or hub id is a bi-encoder with the base's
    settings; a ``.toml`` file holds one system table (any kind), whose members are the suite's systems or model
    folders."""
    if isinstance(candidate, (str, Path)) and str(candidate).endswith(".toml") and Path(candidate).is_file():
        path = Path(candidate)
        raw, text = read_toml(path)
        spec = validate_config(_SystemFile, {"system": raw}, path=path, text=text).system
        known = {*RESERVED_SYSTEMS, *suite.references}
        extra = {m: suite.base.model_copy(update={"name": m}) for m in system_members(spec) if m not in known}
        if "candidate" in system_members(spec):
            raise ConfigError("the candidate cannot read itself; name a model folder instead of \"candidate\"",
                              path=path, field="systems")
        if isinstance(spec, ModelSpec):
            return spec, {}
        return spec, extra
    if not isinstance(candidate, (str, Path)):
        return ModelSpec.parse(candidate), {}
    return suite.base.model_copy(update={"name": str(candidate)}), {}


POOLING = ("each query's value is the mean over the candidates (one per seed), paired against the other system on "
           "the same queries with the same t-interval: the improvement gate judges the recipe, not one lucky seed; "
           "every other gate (floors, non-inferiority, forgetting, regression budget, golden) must hold for every "
           "candidate")


def run_suite(suite: "Suite | str | Path", candidate, *, baseline=None, cache: "str | Path | bool | None" = None,
              out_dir: "str | Path | None" = None, progress=None) -> SuiteResult:
    """Run every system of the suite (base, candidate, references) on every data set, run every gate, and return
    the SuiteResult (schema ``embedgate.suite-result/2``). Writes it as JSON under ``out_dir`` when given (path in
    ``result.files['json']``). Bad input raises an EmbedgateError before any encoding or spending.

    ``candidate`` may be a list: candidates of one recipe trained with different seeds. Then the gates decide on
    the recipe (``POOLING``), and each candidate's own gates are in ``result.seeds``."""
    t0 = time.perf_counter()
    if not isinstance(suite, SuiteConfig):
        suite = load_suite(suite)
    candidates = list(candidate) if isinstance(candidate, (list, tuple)) else [candidate]
    if not candidates or any(c is None or (isinstance(c, str) and not c.strip()) for c in candidates):
        raise ConfigError("no candidate model given (pass --candidate PATH or set EMBEDGATE_CANDIDATE)",
                          field="candidate")
    dupes = sorted({str(c) for c in candidates if [str(x) for x in candidates].count(str(c)) > 1})
    if dupes:
        raise ConfigError(f"the same candidate given twice: {', '.join(dupes)}", field="candidate")
    say = progress or (lambda msg: None)
    datasets = load_suite_data(suite)
    base_spec = ModelSpec.parse(baseline) if baseline is not None else suite.base
    per_seed: list[dict[str, Any]] = []
    for cand in candidates:
        cand_spec, extra = candidate_systems(cand, suite)
        specs = {"base": base_spec, "candidate": cand_spec, **extra, **suite.references}
        for vname, (of, change) in (suite.variants.names() if suite.variants else {}).items():
            if not isinstance(specs[of], ModelSpec):
                raise ConfigError(f"variants of {of!r} need a bi-encoder; {of} is a {system_kind(specs[of])}",
                                  path=suite.path, field="variants.of")
            specs[vname] = specs[of].model_copy(update=change)
        try:
            check_systems(specs)
        except ConfigError as exc:  # locate it in suite.toml: which reference, which line
            raise _located(exc, suite) from None
        per_seed.append({"label": str(cand), "specs": specs, "extra": extra})
    specs0 = per_seed[0]["specs"]
    shared = [n for n in specs0 if not _reads_candidate(specs0, n)]  # the same for every candidate
    loaded: dict[str, Any] = {}
    for k, seed in enumerate(per_seed):
        seed["loaded"] = {name: loaded.setdefault((name if name in shared else f"{name}#{k}"), load_model(spec))
                          for name, spec in seed["specs"].items() if isinstance(spec, ModelSpec)}
    tune_sets = {name: _tune_set(suite, spec, datasets) for name, spec in specs0.items()
                 if isinstance(spec, HybridSystem) and spec.tune_split}
    store = None if cache is False else EmbeddingCache(None if cache in (None, True) else cache)
    memo_dir = store.root / "scores" if store else None
    grid = _grid(suite)
    depth = max(max(suite.ks), max(parse_metric(m)[1] for m in grid), *(g.depth() for g in suite.gates))
    sections: dict[str, DatasetSection] = {}
    gate_results: list[GateResult] = []
    seed_gates: list[list[GateResult]] = [[] for _ in per_seed]
    seed_means: list[dict[str, dict[str, float]]] = [{} for _ in per_seed]
    timings: dict[str, Any] = {"datasets": {}}
    timed = next((n for n, r in suite.data.items() if r.role == "domain"), next(iter(suite.data)))
    latency: dict[str, dict] = {}
    for dname in [timed, *(n for n in datasets if n != timed)]:  # the timed set first: latency gates read it
        ds = datasets[dname]
        ref = suite.data[dname]
        gates = [g for g in suite.gates if g.data == dname]
        say(f"{suite.name}/{dname}: {ds.name} {ds.split}, {len(ds.queries)} queries, {len(ds.corpus)} documents, "
            f"{len(specs0)} systems" + (f", {len(per_seed)} candidates" if len(per_seed) > 1 else ""))
        done: dict[str, SystemRun] = {}
        seed_runs, seed_scores = [], []
        for k, seed in enumerate(per_seed):
            if len(per_seed) > 1:
                say(f" candidate {k + 1} of {len(per_seed)}: {seed['label']}")
            runs = run_systems(ds, seed["specs"], depth=depth, cache=store, loaded=seed["loaded"], say=say,
                               tune_sets={n: t[dname] for n, t in tune_sets.items()},
                               # serving cost is a property of the system: timed once, on the first domain set
                               latency_queries=suite.evaluation.latency_queries if k == 0 and dname == timed else 0,
                               seed=suite.seed,
                               done={n: done[n] for n in shared if n in done})
            done.update({n: runs[n] for n in shared})
            # metric -> query id -> value, per system: the layout gates and comparisons read
            seed_scores.append({name: score_with_memo(ds.qrels, run.rankings, grid, memo_dir)
                                for name, run in runs.items()})
            seed_runs.append(runs)
        timings["datasets"][dname] = {name: run.timings for name, run in seed_runs[0].items()}
        if dname == timed:
            latency = {n: r.info.get("latency", {}) for n, r in seed_runs[0].items()}
        full = set(suite.metrics).union(*(g.metrics() for g in gates))
        label = f"{ds.name} {ds.split}, {len(ds.queries)} queries"
        contexts = [_Scored(suite, ds, label, runs, scores, full, latency)
                    for runs, scores in zip(seed_runs, seed_scores)]
        pooled = contexts[0] if len(contexts) == 1 else _Scored(
            suite, ds, label, seed_runs[0], _pool(seed_scores, shared), full, latency)
        for g in gates:
            own = [c.gate(g) for c in contexts]
            for k, r in enumerate(own):
                seed_gates[k].append(r)
            gate_results.append(own[0] if len(contexts) == 1 else _recipe_gate(g, pooled, own, per_seed))
        for k, c in enumerate(contexts):
            seed_means[k][dname] = {m: float(np.mean(list(c.by_metric["candidate"][m].values())))
                                    for m in suite.metrics}
        curve = {m: pooled.compare(m) for m in grid}
        runs0 = seed_runs[0]
        variant_of = {v: of for v, (of, _) in (suite.variants.names() if suite.variants else {}).items()}
        pairs = dict.fromkeys([("candidate", n) for n in runs0 if n != "candidate"] +
                              [(v, of) for v, of in variant_of.items()] + [(v, "base") for v in variant_of] +
                              [g.sides() for g in gates if hasattr(g, "against")])
        versus = {f"{a} vs {b}": {m: pooled.compare(m, a, b) for m in suite.metrics} for a, b in pairs}
        primary = next((g.metric for g in gates if getattr(g, "metric", None)), suite.metrics[0])
        extra_q = set().union(*(g.shown_queries() for g in gates))
        kept = sorted(set(suite.metrics).union(*(g.metrics() for g in gates)), key=grid.index)
        sections[dname] = _dataset_section(suite, ref, ds, runs0, pooled.by_metric, curve, versus, primary, extra_q,
                                           kept)
    sections = {n: sections[n] for n in suite.data}
    order = {g.name: i for i, g in enumerate(suite.gates)}
    gate_results.sort(key=lambda r: order[r.name])
    first = per_seed[0]
    cand_info = _candidate_info(first["loaded"]["candidate"]) if "candidate" in first["loaded"] else \
        {"name": "candidate", **sections[next(iter(sections))].systems["candidate"].info}
    for name in first["extra"]:
        cand_info.setdefault("members", {})[name] = _candidate_info(first["loaded"][name])
    result = assemble_result(suite, gate_results, sections, first["loaded"]["base"].describe(), cand_info)
    if len(per_seed) > 1:
        result.seeds = [SeedResult(candidate=seed["label"], verdict=verdict_of(g), summary=summary_of(g),
                                   gates=sorted(g, key=lambda r: order[r.name]), metrics=means,
                                   model=_candidate_info(seed["loaded"]["candidate"])
                                   if "candidate" in seed["loaded"] else {})
                        for seed, g, means in zip(per_seed, seed_gates, seed_means)]
        result.pooling = {"candidates": len(per_seed), "procedure": POOLING}
        result.summary = f"recipe over {len(per_seed)} candidates: {result.summary}"
    result.timings = {"total_s": round(time.perf_counter() - t0, 3), **timings}
    if out_dir is not None:
        result.files = {"json": str(write_result(result, out_dir))}
    return result


def _reads_candidate(specs: dict[str, Any], name: str) -> bool:
    return name == "candidate" or any(_reads_candidate(specs, m) for m in system_members(specs[name]))


def _pool(seed_scores: list[dict], shared: list[str]) -> dict:
    """Per system, metric and query: the mean over the candidates (the shared systems are the same in each)."""
    out = {}
    for name, metrics in seed_scores[0].items():
        if name in shared:
            out[name] = metrics
            continue
        out[name] = {m: {q: float(np.mean([s[name][m][q] for s in seed_scores])) for q in by_q}
                     for m, by_q in metrics.items()}
    return out


class _Scored:
    """One set of per-query values (a candidate's, or pooled over candidates) and the gates and comparisons on it."""

    def __init__(self, suite: Suite, ds, label: str, runs: dict[str, SystemRun], by_metric: dict, full: set[str],
                 latency: dict[str, dict]):
        self.suite, self.ds, self.label, self.runs, self.by_metric, self.full = suite, ds, label, runs, by_metric, full
        self.latency = latency
        self._memo: dict[tuple, PairedComparison] = {}

    def compare(self, metric: str, system: str = "candidate", against: str = "base") -> PairedComparison:
        key = (metric, system, against)
        if key not in self._memo:
            s = self.suite
            self._memo[key] = paired_compare(self.by_metric[against][metric], self.by_metric[system][metric],
                                             confidence=s.confidence, resamples=s.resamples if metric in self.full
                                             else min(s.resamples, 1000), seed=s.seed)
        return self._memo[key]

    def gate(self, g) -> GateResult:
        system, against = g.sides()
        ctx = GateContext(dataset_label=self.label, queries=self.ds.queries, base_per_query=self.by_metric[against],
                          candidate_per_query=self.by_metric[system], base_rankings=self.runs[against].rankings,
                          candidate_rankings=self.runs[system].rankings,
                          compare=lambda m: self.compare(m, system, against), system=system, against=against,
                          latency=self.latency)
        return run_gate(g, ctx)


def _recipe_gate(g, pooled: _Scored, own: list[GateResult], per_seed: list[dict]) -> GateResult:
    """The recipe's verdict on one gate: the improvement gate on the pooled values, every other gate on each
    candidate (all must pass)."""
    seeds = [{"candidate": s["label"], "status": r.status, "difference": r.difference,
              "ci": list(r.ci) if r.ci else None, "observed": r.observed} for s, r in zip(per_seed, own)]
    if g.kind == "improvement":
        r = pooled.gate(g)
        lines = r.message.split("\n")
        lines[0] += f" (pooled over {len(own)} candidates)"
        spread = ", ".join(f"{d['difference']:+.4f}" for d in seeds if d["difference"] is not None)
        lines.append(f"  each candidate: {spread}; pooled: the per-query mean over candidates")
        return r.model_copy(update={"message": "\n".join(lines), "details": {**r.details, "seeds": seeds,
                                                                             "pooled": True}})
    held = sum(r.status == PASS for r in own)
    worst = next((r for r in own if r.status == ERROR), None) or next((r for r in own if r.status == "fail"), None) \
        or next((r for r in own if r.status != PASS), None) or own[0]
    lines = worst.message.split("\n")
    lines[0] += f" (held for {held} of {len(own)} candidates; every one must)"
    lines += [f"  {d['candidate']}: {d['status']}" for d in seeds]
    return worst.model_copy(update={"message": "\n".join(lines), "details": {**worst.details, "seeds": seeds,
                                                                            "pooled": False}})


def _located(exc: ConfigError, suite: Suite) -> ConfigError:
    from .schema import toml_line

    if exc.path is not None or not (exc.field or "").startswith("references."):
        return exc
    parts = exc.field.split(".")
    try:
        text = Path(suite.path).read_text(encoding="utf-8")
    except OSError:
        text = ""
    return ConfigError(exc.message, path=suite.path, line=toml_line(text, parts[:2]), field=exc.field)


def _tune_set(suite: Suite, spec: HybridSystem, datasets) -> dict[str, data_mod.RetrievalSet]:
    """Per data set, the queries of the tuning split over the same corpus the gate searches (queries whose judged
    documents all fall outside it are left out)."""
    out = {}
    for dname, ds in datasets.items():
        ref = suite.data[dname]
        dev = data_mod.load(ref.path, spec.tune_split, name=ref.path.name)
        keep = {q: r for q, r in dev.qrels.items() if any(v > 0 and d in ds.corpus for d, v in r.items())}
        if not keep:
            raise ConfigError(f"split {spec.tune_split!r} of {ref.path} has no query with a judged document in the "
                              "gated corpus: nothing to tune on", field="tune_split")
        out[dname] = data_mod.RetrievalSet(name=dev.name, split=dev.split, corpus=ds.corpus,
                                           queries={q: dev.queries[q] for q in keep},
                                           qrels={q: {d: v for d, v in r.items() if d in ds.corpus}
                                                  for q, r in keep.items()})
    return out


def verdict_of(gates: list[GateResult]) -> str:
    if any(g.status == ERROR for g in gates):
        return "error"
    return "pass" if gates and all(g.status == PASS for g in gates) else "fail"


def summary_of(gates: list[GateResult]) -> str:
    bad = [g for g in gates if g.status != PASS]
    if not bad:
        return f"all {len(gates)} gates passed"
    labels = {"fail": "failed", "error": "error", "inconclusive": "not shown"}
    return f"{len(bad)} of {len(gates)} gates did not pass: " + "; ".join(
        f"{g.name} ({labels.get(g.status, g.status)})" for g in bad)


def assemble_result(suite: Suite, gates: list[GateResult], sections: dict[str, DatasetSection], base_info: dict,
                    cand_info: dict, error: str | None = None) -> SuiteResult:
    return SuiteResult(
        schema=SUITE_RESULT_SCHEMA, created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        suite=SuiteInfo(name=suite.name, path=str(suite.path), description=suite.description, sha256=suite.sha256),
        verdict=verdict_of(gates), summary=summary_of(gates), models={"base": base_info, "candidate": cand_info},
        gates=gates, datasets=sections,
        options={"confidence": suite.confidence, "resamples": suite.resamples, "seed": suite.seed, "ks": suite.ks,
                 "metrics": suite.metrics},
        environment=environment(), error=error)


def error_run_result(suite: Suite, reason: str) -> SuiteResult:
    """The result of a run that could not evaluate (bad data, missing candidate): every gate is an error."""
    gates = [error_result(g, reason, suite.confidence) for g in suite.gates]
    return assemble_result(suite, gates, {}, {}, {}, error=reason)


def write_result(result: SuiteResult, out_dir: str | Path) -> Path:
    stamp = result.created_at.replace(":", "").replace("-", "").replace("+0000", "Z")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", result.suite.name)
    path = Path(out_dir) / f"{name}-{stamp}.json"
    n = 1
    while path.exists():
        path = Path(out_dir) / f"{name}-{stamp}-{n}.json"
        n += 1
    return write_json(path, result.to_json_dict())
