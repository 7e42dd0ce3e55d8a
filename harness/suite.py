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

from . import data as data_mod
from .compare import PairedComparison, paired_compare
from .encode import EmbeddingCache
from .environment import environment
from .errors import ConfigError
from .evaluate import evaluate
from .gates import ERROR, PASS, GateContext, GateResult, error_result, run_gate
from .io import write_json
from .metrics import metric_grid, normalize_metrics, parse_metric
from .models import ModelSpec, load_model
from .schema import (DATA_ROLES, SUITE_RESULT_SCHEMA, Comparison, DataRef, DatasetSection,
                     SuiteConfig, SuiteInfo, SuiteResult, TrainingManifest, load_suite_config)

SCHEMA = SUITE_RESULT_SCHEMA
SHOWN_QUERIES = 15  # most improved and most regressed queries kept with rankings, per dataset (the report shows them)
SHOWN_DEPTH = 10
DOC_SNIPPET = 400

Suite = SuiteConfig  # the name the rest of the house has used
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
    improved by the primary metric, plus those a gate names. Decided here, once."""
    diffs = sorted((cand_pq[q][metric] - base_pq[q][metric], q) for q in base_pq)
    regressed = [q for d, q in diffs[:SHOWN_QUERIES] if d < 0]
    improved = [q for d, q in reversed(diffs[-SHOWN_QUERIES:]) if d > 0]
    return list(dict.fromkeys(regressed + improved + sorted(extra & set(base_pq))))


def _ranks(ranking, relevant) -> dict[str, int | None]:
    pos = {d: i + 1 for i, (d, _) in enumerate(ranking)}
    return {d: pos.get(d) for d in relevant}


def _dataset_section(suite: Suite, ref: DataRef, ds, base_res, cand_res, comparisons, primary: str,
                     extra: set[str]) -> DatasetSection:
    shown = _shown_queries(primary, base_res.per_query, cand_res.per_query, extra)
    positives = {q: {d: r for d, r in ds.qrels[q].items() if r > 0} for q in shown}
    sides = (("base", base_res), ("candidate", cand_res))
    rankings = {side: {q: [(d, round(s, 6)) for d, s in res.rankings[q][:SHOWN_DEPTH]] for q in shown}
                for side, res in sides}
    docs = {d for side in rankings.values() for ranking in side.values() for d, _ in ranking}
    docs |= {d for rels in positives.values() for d in rels}
    return DatasetSection(
        role=ref.role, data=ds.describe(),
        metrics={"base": base_res.metrics, "candidate": cand_res.metrics},
        comparisons={m: Comparison(**c.as_dict()) for m, c in comparisons.items()},
        queries=dict(ds.queries),
        per_query={side: {q: {m: v[m] for m in suite.metrics} for q, v in res.per_query.items()}
                   for side, res in sides},
        shown_queries=shown, rankings=rankings, qrels=positives,
        relevant_ranks={side: {q: _ranks(res.rankings[q], positives[q]) for q in shown} for side, res in sides},
        documents={d: ds.corpus[d].full_text[:DOC_SNIPPET] for d in sorted(docs)},
        conventions=base_res.conventions,
        # rankings whose order among equal scores came from the tie rule, per model (they can differ)
        tied_rankings={side: res.conventions.get("queries_with_tied_scores") for side, res in sides},
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


def run_suite(suite: "Suite | str | Path", candidate, *, baseline=None, cache: "str | Path | bool | None" = None,
              out_dir: "str | Path | None" = None, progress=None) -> SuiteResult:
    """Evaluate base and candidate on every data set of the suite, run every gate, and return the SuiteResult
    (schema ``embedgate.suite-result/2``). Writes it as JSON under ``out_dir`` when given (path in
    ``result.files['json']``). Bad input raises an EmbedgateError before any encoding."""
    t0 = time.perf_counter()
    if not isinstance(suite, SuiteConfig):
        suite = load_suite(suite)
    if candidate is None or (isinstance(candidate, str) and not candidate.strip()):
        raise ConfigError("no candidate model given (pass --candidate PATH or set EMBEDGATE_CANDIDATE)",
                          field="candidate")
    say = progress or (lambda msg: None)
    datasets = load_suite_data(suite)
    base_spec = ModelSpec.parse(baseline) if baseline is not None else suite.base
    cand_spec = ModelSpec.parse(candidate) if not isinstance(candidate, (str, Path)) else \
        suite.base.model_copy(update={"name": str(candidate)})
    base_model = load_model(base_spec)
    cand_model = load_model(cand_spec)
    store = None if cache is False else EmbeddingCache(None if cache in (None, True) else cache)
    grid = _grid(suite)
    depth = max(max(suite.ks), max(parse_metric(m)[1] for m in grid), *(g.depth() for g in suite.gates))
    sections: dict[str, DatasetSection] = {}
    gate_results: list[GateResult] = []
    timings: dict[str, Any] = {"datasets": {}}
    for dname, ds in datasets.items():
        ref = suite.data[dname]
        gates = [g for g in suite.gates if g.data == dname]
        say(f"{suite.name}/{dname}: {ds.name} {ds.split}, {len(ds.queries)} queries, {len(ds.corpus)} documents")
        res = {}
        for side, model in (("base", base_model), ("candidate", cand_model)):
            say(f"  encoding with the {side} model ({model.spec.name})")
            res[side] = evaluate(ds, model, metrics=grid, ks=suite.ks, cache=store if store else False, depth=depth)
        timings["datasets"][dname] = {side: r.timings for side, r in res.items()}
        memo: dict[str, PairedComparison] = {}
        full = set(suite.metrics).union(*(g.metrics() for g in gates))
        # metric -> query id -> value: the layout gates and comparisons read
        by_metric = {side: {m: {q: v[m] for q, v in r.per_query.items()} for m in grid} for side, r in res.items()}

        def compare(metric: str, _memo=memo, _pq=by_metric) -> PairedComparison:
            if metric not in _memo:
                _memo[metric] = paired_compare(_pq["base"][metric], _pq["candidate"][metric],
                                               confidence=suite.confidence,
                                               resamples=suite.resamples if metric in full else
                                               min(suite.resamples, 1000), seed=suite.seed)
            return _memo[metric]

        ctx = GateContext(
            dataset_label=f"{ds.name} {ds.split}, {len(ds.queries)} queries", queries=ds.queries,
            base_per_query=by_metric["base"], candidate_per_query=by_metric["candidate"],
            base_rankings=res["base"].rankings, candidate_rankings=res["candidate"].rankings, compare=compare)
        gate_results += [run_gate(g, ctx) for g in gates]
        curve = {m: compare(m) for m in grid}
        primary = next((g.metric for g in gates if getattr(g, "metric", None)), suite.metrics[0])
        extra = set().union(*(g.shown_queries() for g in gates))
        sections[dname] = _dataset_section(suite, ref, ds, res["base"], res["candidate"], curve, primary, extra)
    order = {g.name: i for i, g in enumerate(suite.gates)}
    gate_results.sort(key=lambda r: order[r.name])
    result = assemble_result(suite, gate_results, sections, base_model.describe(), _candidate_info(cand_model))
    result.timings = {"total_s": round(time.perf_counter() - t0, 3), **timings}
    if out_dir is not None:
        result.files = {"json": str(write_result(result, out_dir))}
    return result


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
