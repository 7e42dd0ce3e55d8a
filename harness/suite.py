"""Suites: suite.toml -> Suite; ``run_suite(suite, candidate)`` -> the result dict every shell and report reads.

One function does the work; the pytest plugin and the ``embedgate gate`` command are thin shells over it.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import data as data_mod
from .compare import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, PairedComparison, paired_compare
from .encode import EmbeddingCache
from .environment import environment
from .errors import ConfigError, EmbedgateError
from .evaluate import evaluate
from .gates import ERROR, FAIL, GATE_PARAMS, GATES, PASS, GateContext, GateResult, GateSpec, error_result, \
    run_gate
from .io import read_toml, write_json
from .metrics import metric_grid, normalize_metrics, parse_metric
from .models import ModelSpec, load_model

SCHEMA = "embedgate.suite-result/1"
DATA_ROLES = ("domain", "guard")
SHOWN_QUERIES = 25  # most improved and most regressed queries kept with rankings, per dataset
SHOWN_DEPTH = 10
DOC_SNIPPET = 400
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class DataRef:
    name: str
    path: Path
    split: str = "test"
    role: str = "domain"
    max_queries: int | None = None
    corpus_size: int | None = None
    seed: int = 0


@dataclass
class Suite:
    name: str
    path: Path
    description: str
    base: dict[str, Any]
    data: dict[str, DataRef]
    gates: list[GateSpec]
    metrics: list[str]
    ks: list[int]
    confidence: float = DEFAULT_CONFIDENCE
    resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    sha256: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- loading


def expand_env(text: str) -> str:
    def sub(m: re.Match) -> str:
        value = os.environ.get(m.group(1))
        if value is None:
            if m.group(2) is None:
                raise KeyError(m.group(1))
            return m.group(2)
        return value

    return _ENV_RE.sub(sub, text)


class _Locator:
    """Finds the line of a key in a TOML file, for error messages (tomllib gives no positions)."""

    def __init__(self, text: str):
        self.lines = text.splitlines()

    def table(self, header: str, index: int = 0) -> int | None:
        seen = -1
        for i, line in enumerate(self.lines, start=1):
            if line.strip().startswith(header):
                seen += 1
                if seen == index:
                    return i
        return None

    def key(self, key: str, start: int | None = None) -> int | None:
        begin = (start or 1) - 1
        for i in range(begin, len(self.lines)):
            line = self.lines[i].strip()
            if i > begin and line.startswith("["):
                break
            if re.match(rf"^{re.escape(key)}\s*=", line):
                return i + 1
        return start


def _number(value: Any, where: str, path: Path, line: int | None, *, lo: float | None = None,
            hi: float | None = None, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise ConfigError(f"expected {'an integer' if integer else 'a number'}, got {value!r}", path=path, line=line,
                          field=where)
    if not math.isfinite(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
        rng = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
        raise ConfigError(f"{value!r} is out of range {rng}", path=path, line=line, field=where)
    return value


def _check_keys(table: dict, allowed: set[str], where: str, path: Path, line: int | None,
                loc: "_Locator | None" = None) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        if loc is not None:
            line = loc.key(unknown[0], line)
        raise ConfigError(f"unknown key {unknown[0]!r}; known: {', '.join(sorted(allowed))}", path=path, line=line,
                          field=f"{where}.{unknown[0]}" if where else unknown[0])


def _default_gate_name(kind: str, params: dict[str, Any], data: str) -> str:
    metric = params.get("metric", "")
    on = "" if data == "main" else f" on {data}"
    if kind == "absolute":
        return f"{metric} >= {params['min']}{on}"
    if kind == "improvement":
        parts = []
        if "min_relative" in params:
            parts.append(f"{100 * params['min_relative']:g}%")
        if "min_absolute" in params:
            parts.append(f"+{params['min_absolute']:g}")
        return f"{metric} improves by {' and '.join(parts) or 'a significant margin'}{on}"
    if kind in ("non_inferiority", "forgetting"):
        label = "no forgetting" if kind == "forgetting" else "non-inferior"
        return f"{label}: {metric} within {params['margin']:g} of base{on}"
    if kind == "regression_budget":
        return f"at most {100 * params['max_fraction']:g}% of queries lose > {params['max_drop']:g} {metric}{on}"
    if kind == "golden":
        return f"golden queries within top {params.get('k', 10)}{on}"
    return kind


def load_suite(path: str | Path) -> Suite:
    """Read and validate ``suite.toml`` (or a folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "suite.toml"
    if not path.is_file():
        raise ConfigError("suite file not found (expected suite.toml)", path=path)
    raw, text = read_toml(path)
    loc = _Locator(text)
    _check_keys(raw, {"name", "description", "base", "data", "evaluation", "gates"}, "", path, None)

    name = raw.get("name") or path.parent.name
    if not isinstance(name, str):
        raise ConfigError("expected a string", path=path, line=loc.key("name"), field="name")
    base = raw.get("base")
    if not isinstance(base, dict) or "model" not in base:
        raise ConfigError("a [base] table with `model = ...` is required", path=path, line=loc.table("[base]"),
                          field="base.model")
    try:
        ModelSpec.parse(base)
    except EmbedgateError as exc:
        raise ConfigError(exc.message, path=path, line=loc.key(exc.field or "model", loc.table("[base]")),
                          field=f"base.{exc.field or 'model'}") from None

    data_tables = raw.get("data")
    if not isinstance(data_tables, dict) or not data_tables:
        raise ConfigError("at least one [data.<name>] table is required (the domain set is [data.main])", path=path,
                          field="data")
    data: dict[str, DataRef] = {}
    for dname, table in data_tables.items():
        line = loc.table(f"[data.{dname}]")
        if not isinstance(table, dict):
            raise ConfigError("expected a table", path=path, line=line, field=f"data.{dname}")
        _check_keys(table, {"path", "split", "role", "max_queries", "corpus_size", "seed"}, f"data.{dname}", path,
                    line, loc)
        if "path" not in table:
            raise ConfigError("missing key", path=path, line=line, field=f"data.{dname}.path")
        try:
            expanded = expand_env(str(table["path"]))
        except KeyError as exc:
            raise ConfigError(f"environment variable {exc.args[0]} is not set and has no default", path=path,
                              line=loc.key("path", line), field=f"data.{dname}.path") from None
        dpath = Path(expanded).expanduser()
        if not dpath.is_absolute():
            dpath = (path.parent / dpath).resolve()
        role = table.get("role", "domain")
        if role not in DATA_ROLES:
            raise ConfigError(f"role must be one of {DATA_ROLES}, got {role!r}", path=path,
                              line=loc.key("role", line), field=f"data.{dname}.role")
        for key in ("max_queries", "corpus_size", "seed"):
            if key in table:
                _number(table[key], f"data.{dname}.{key}", path, loc.key(key, line), lo=0 if key == "seed" else 1,
                        integer=True)
        data[dname] = DataRef(dname, dpath, str(table.get("split", "test")), role, table.get("max_queries"),
                              table.get("corpus_size"), int(table.get("seed", 0)))

    ev = raw.get("evaluation", {})
    ev_line = loc.table("[evaluation]")
    _check_keys(ev, {"metrics", "ks", "confidence", "resamples", "seed"}, "evaluation", path, ev_line, loc)
    try:
        metrics = normalize_metrics(ev.get("metrics", ["ndcg@10", "recall@100", "mrr@10"]))
    except ConfigError as exc:
        raise ConfigError(exc.message, path=path, line=loc.key("metrics", ev_line), field="evaluation.metrics") \
            from None
    ks = ev.get("ks", [1, 3, 5, 10, 20, 100])
    if not isinstance(ks, list) or not ks:
        raise ConfigError("expected a list of cut-offs", path=path, line=loc.key("ks", ev_line), field="evaluation.ks")
    for k in ks:
        _number(k, "evaluation.ks", path, loc.key("ks", ev_line), lo=1, integer=True)
    confidence = _number(ev.get("confidence", DEFAULT_CONFIDENCE), "evaluation.confidence", path,
                         loc.key("confidence", ev_line), lo=0.5, hi=0.999)
    resamples = int(_number(ev.get("resamples", DEFAULT_RESAMPLES), "evaluation.resamples", path,
                            loc.key("resamples", ev_line), lo=100, hi=1_000_000, integer=True))
    seed = int(_number(ev.get("seed", 0), "evaluation.seed", path, loc.key("seed", ev_line), lo=0, integer=True))

    gates_raw = raw.get("gates")
    if not isinstance(gates_raw, list) or not gates_raw:
        raise ConfigError("at least one [[gates]] entry is required: a suite without gates would always pass",
                          path=path, field="gates")
    gates: list[GateSpec] = []
    names: set[str] = set()
    for i, g in enumerate(gates_raw):
        line = loc.table("[[gates]]", i)
        where = f"gates[{i}]"
        kind = g.get("kind")
        if kind not in GATES:
            raise ConfigError(f"unknown gate kind {kind!r}; known: {', '.join(GATES)}", path=path,
                              line=loc.key("kind", line), field=f"{where}.kind")
        required, optional = GATE_PARAMS[kind]
        _check_keys(g, {"kind", "name", "data", *required, *optional}, where, path, line, loc)
        for key in required:
            if key not in g:
                raise ConfigError(f"a {kind} gate needs `{key}`", path=path, line=line, field=f"{where}.{key}")
        params = {k: g[k] for k in (*required, *optional) if k in g}
        if "metric" in params:
            try:
                params["metric"] = normalize_metrics([params["metric"]])[0]
            except ConfigError as exc:
                raise ConfigError(exc.message, path=path, line=loc.key("metric", line), field=f"{where}.metric") \
                    from None
        for key, lo, hi in (("min", 0, 1), ("margin", 0, 1), ("min_relative", 0, 10), ("min_absolute", 0, 1),
                            ("max_drop", 0, 1), ("max_fraction", 0, 1)):
            if key in params:
                params[key] = _number(params[key], f"{where}.{key}", path, loc.key(key, line), lo=lo, hi=hi)
        if kind == "improvement" and not ({"min_relative", "min_absolute"} & set(params)):
            params["min_absolute"] = 0.0
        if kind == "golden":
            params["k"] = int(_number(params.get("k", 10), f"{where}.k", path, loc.key("k", line), lo=1,
                                      integer=True))
            qs = params["queries"]
            if not isinstance(qs, list) or not qs or not all(
                    isinstance(q, dict) and isinstance(q.get("query"), str) and isinstance(q.get("documents"), list)
                    and q["documents"] and all(isinstance(d, str) for d in q["documents"]) for q in qs):
                raise ConfigError("expected a list of {query = \"id\", documents = [\"id\", ...]}", path=path,
                                  line=loc.key("queries", line), field=f"{where}.queries")
        dname = g.get("data", "main")
        if dname not in data:
            raise ConfigError(f"unknown data set {dname!r}; defined: {', '.join(data)}", path=path,
                              line=loc.key("data", line), field=f"{where}.data")
        gname = g.get("name") or _default_gate_name(kind, params, dname)
        if gname in names:
            raise ConfigError(f"duplicate gate name {gname!r}", path=path, line=line, field=f"{where}.name")
        names.add(gname)
        gates.append(GateSpec(kind=kind, name=gname, data=dname, metric=params.get("metric"), params=params,
                              line=line))
    return Suite(name=name, path=path, description=str(raw.get("description", "")), base=dict(base), data=data,
                 gates=gates, metrics=metrics, ks=sorted(set(ks)), confidence=float(confidence),
                 resamples=resamples, seed=seed, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(), raw=raw)


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


def _shown_queries(suite: Suite, spec_metric: str, base_pq, cand_pq, golden: set[str]) -> list[str]:
    diffs = sorted((cand_pq[q][spec_metric] - base_pq[q][spec_metric], q) for q in base_pq)
    regressed = [q for d, q in diffs[:SHOWN_QUERIES] if d < 0]
    improved = [q for d, q in reversed(diffs[-SHOWN_QUERIES:]) if d > 0]
    return list(dict.fromkeys(regressed + improved + sorted(golden & set(base_pq))))


def _ranks(ranking, relevant) -> dict[str, int | None]:
    pos = {d: i + 1 for i, (d, _) in enumerate(ranking)}
    return {d: pos.get(d) for d in relevant}


def _dataset_section(suite, ref: DataRef, ds, base_res, cand_res, comparisons, primary: str, golden: set[str]):
    shown = _shown_queries(suite, primary, base_res.per_query, cand_res.per_query, golden)
    positives = {q: {d: r for d, r in ds.qrels[q].items() if r > 0} for q in shown}
    rankings = {side: {q: [[d, round(s, 6)] for d, s in res.rankings[q][:SHOWN_DEPTH]] for q in shown}
                for side, res in (("base", base_res), ("candidate", cand_res))}
    docs = {d for side in rankings.values() for ranking in side.values() for d, _ in ranking}
    docs |= {d for rels in positives.values() for d in rels}
    return {
        "role": ref.role,
        "data": ds.describe(),
        "metrics": {"base": base_res.metrics, "candidate": cand_res.metrics},
        "comparisons": {m: c.as_dict() for m, c in comparisons.items()},
        "queries": dict(ds.queries),
        "per_query": {"base": {q: {m: v[m] for m in suite.metrics} for q, v in base_res.per_query.items()},
                      "candidate": {q: {m: v[m] for m in suite.metrics} for q, v in cand_res.per_query.items()}},
        "shown_queries": shown,
        "rankings": rankings,
        "qrels": positives,
        "relevant_ranks": {side: {q: _ranks(res.rankings[q], positives[q]) for q in shown}
                           for side, res in (("base", base_res), ("candidate", cand_res))},
        "documents": {d: ds.corpus[d].full_text[:DOC_SNIPPET] for d in sorted(docs)},
        "conventions": base_res.conventions,
        # rankings whose order among equal scores came from the tie rule, per model (they can differ)
        "tied_rankings": {side: res.conventions.get("queries_with_tied_scores")
                          for side, res in (("base", base_res), ("candidate", cand_res))},
    }


def _candidate_info(loaded) -> dict[str, Any]:
    info = loaded.describe()
    manifest = Path(loaded.path) / "training_manifest.json"
    if manifest.is_file():
        import json

        try:
            info["training_manifest"] = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            info["training_manifest_error"] = f"unreadable training_manifest.json: {exc}"
    return info


def run_suite(suite: "Suite | str | Path", candidate, *, baseline=None, cache: "str | Path | bool | None" = None,
              out_dir: "str | Path | None" = None, progress=None) -> dict[str, Any]:
    """Evaluate base and candidate on every data set of the suite, run every gate, and return the result dict
    (schema ``embedgate.suite-result/1``). Writes it as JSON under ``out_dir`` when given (path in
    ``result['files']['json']``). Bad input raises an EmbedgateError before any encoding."""
    t0 = time.perf_counter()
    if not isinstance(suite, Suite):
        suite = load_suite(suite)
    if candidate is None or (isinstance(candidate, str) and not candidate.strip()):
        raise ConfigError("no candidate model given (pass --candidate PATH or set EMBEDGATE_CANDIDATE)",
                          field="candidate")
    say = progress or (lambda msg: None)
    datasets = load_suite_data(suite)
    base_spec = ModelSpec.parse(baseline) if baseline is not None else ModelSpec.parse(suite.base)
    cand_spec = ModelSpec.parse(candidate) if not isinstance(candidate, (str, Path)) else \
        ModelSpec.parse({**{k: v for k, v in suite.base.items() if k != "model"}, "name": str(candidate)})
    base_model = load_model(base_spec)
    cand_model = load_model(cand_spec)
    store = None if cache is False else EmbeddingCache(None if cache in (None, True) else cache)
    grid = _grid(suite)
    depth = max(max(suite.ks), max(parse_metric(m)[1] for m in grid))
    for g in suite.gates:
        if g.kind == "golden":
            depth = max(depth, g.params["k"])
    sections: dict[str, Any] = {}
    gate_results: list[GateResult] = []
    timings: dict[str, Any] = {"datasets": {}}
    golden_by_data: dict[str, set[str]] = {}
    for g in suite.gates:
        if g.kind == "golden":
            golden_by_data.setdefault(g.data, set()).update(q["query"] for q in g.params["queries"])
    for dname, ds in datasets.items():
        ref = suite.data[dname]
        say(f"{suite.name}/{dname}: {ds.name} {ds.split}, {len(ds.queries)} queries, {len(ds.corpus)} documents")
        res = {}
        for side, model in (("base", base_model), ("candidate", cand_model)):
            say(f"  encoding with the {side} model ({model.spec.name})")
            res[side] = evaluate(ds, model, metrics=grid, ks=suite.ks, cache=store if store else False, depth=depth)
        timings["datasets"][dname] = {side: r.timings for side, r in res.items()}
        memo: dict[str, PairedComparison] = {}
        gate_metrics = {g.metric for g in suite.gates if g.data == dname and g.metric}

        def compare(metric: str, _res=res, _memo=memo) -> PairedComparison:
            if metric not in _memo:
                b = {q: v[metric] for q, v in _res["base"].per_query.items()}
                c = {q: v[metric] for q, v in _res["candidate"].per_query.items()}
                full = metric in gate_metrics or metric in suite.metrics
                _memo[metric] = paired_compare(b, c, confidence=suite.confidence,
                                               resamples=suite.resamples if full else min(suite.resamples, 1000),
                                               seed=suite.seed)
            return _memo[metric]

        ctx = GateContext(
            dataset_label=f"{ds.name} {ds.split}, {len(ds.queries)} queries",
            queries=ds.queries,
            base_per_query={m: {q: v[m] for q, v in res["base"].per_query.items()} for m in grid},
            candidate_per_query={m: {q: v[m] for q, v in res["candidate"].per_query.items()} for m in grid},
            base_rankings=res["base"].rankings, candidate_rankings=res["candidate"].rankings, compare=compare)
        for g in suite.gates:
            if g.data == dname:
                gate_results.append(run_gate(g, ctx))
        curve = {m: compare(m) for m in grid}
        primary = next((g.metric for g in suite.gates if g.data == dname and g.metric), suite.metrics[0])
        sections[dname] = _dataset_section(suite, ref, ds, res["base"], res["candidate"], curve, primary,
                                           golden_by_data.get(dname, set()))
    order = {g.name: i for i, g in enumerate(suite.gates)}
    gate_results.sort(key=lambda r: order[r.name])
    result = assemble_result(suite, gate_results, sections, base_model.describe(), _candidate_info(cand_model))
    result["timings"] = {"total_s": round(time.perf_counter() - t0, 3), **timings}
    if out_dir is not None:
        result["files"] = {"json": str(write_result(result, out_dir))}
    return result


def verdict_of(gates: list[GateResult]) -> str:
    if any(g.status == ERROR for g in gates):
        return "error"
    return "pass" if gates and all(g.status == PASS for g in gates) else "fail"


def summary_of(gates: list[GateResult]) -> str:
    bad = [g for g in gates if g.status != PASS]
    if not bad:
        return f"all {len(gates)} gates passed"
    labels = {FAIL: "failed", ERROR: "error", "inconclusive": "not shown"}
    return f"{len(bad)} of {len(gates)} gates did not pass: " + "; ".join(
        f"{g.name} ({labels.get(g.status, g.status)})" for g in bad)


def assemble_result(suite: Suite, gates: list[GateResult], sections: dict[str, Any], base_info: dict,
                    cand_info: dict) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "suite": {"name": suite.name, "path": str(suite.path), "description": suite.description,
                  "sha256": suite.sha256},
        "verdict": verdict_of(gates),
        "summary": summary_of(gates),
        "models": {"base": base_info, "candidate": cand_info},
        "gates": [g.as_dict() for g in gates],
        "datasets": sections,
        "options": {"confidence": suite.confidence, "resamples": suite.resamples, "seed": suite.seed,
                    "ks": suite.ks, "metrics": suite.metrics},
        "environment": environment(),
    }


def error_run_result(suite: Suite, reason: str) -> dict[str, Any]:
    """The result of a run that could not evaluate (bad data, missing candidate): every gate is an error."""
    gates = [error_result(g, reason) for g in suite.gates]
    return assemble_result(suite, gates, {}, {}, {}) | {"error": reason}


def write_result(result: dict[str, Any], out_dir: str | Path) -> Path:
    stamp = result["created_at"].replace(":", "").replace("-", "").replace("+0000", "Z")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", result["suite"]["name"])
    path = Path(out_dir) / f"{name}-{stamp}.json"
    n = 1
    while path.exists():
        path = Path(out_dir) / f"{name}-{stamp}-{n}.json"
        n += 1
    return write_json(path, result)
