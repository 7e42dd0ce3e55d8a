"""Gates: each turns measured numbers into a verdict with a message a reader grasps at once.

Statuses: ``pass``; ``fail`` (the evidence says no); ``inconclusive`` (the data cannot show the asked-for effect:
the suite is too small for it, so the result is noise either way); ``error`` (the gate could not be computed).
Only ``pass`` lets a candidate through: a gate that is not shown blocks promotion.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .compare import PairedComparison, queries_needed

PASS, FAIL, INCONCLUSIVE, ERROR = "pass", "fail", "inconclusive", "error"


@dataclass
class GateSpec:
    kind: str
    name: str
    data: str = "main"
    metric: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    line: int | None = None  # where it stands in suite.toml, for error messages


@dataclass
class GateResult:
    name: str
    kind: str
    data: str
    metric: str | None
    status: str
    message: str
    base: float | None = None
    candidate: float | None = None
    difference: float | None = None
    relative_difference: float | None = None
    ci: list[float] | None = None
    confidence: float | None = None
    p_value: float | None = None
    test: str | None = None
    threshold: dict[str, Any] = field(default_factory=dict)
    mde: float | None = None
    n_queries: int | None = None
    worst_queries: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"passed": self.passed}


@dataclass
class GateContext:
    """What a gate may look at for its dataset."""

    dataset_label: str  # e.g. "acord test, 57 queries"
    queries: Mapping[str, str]
    base_per_query: Mapping[str, Mapping[str, float]]  # metric -> qid -> value
    candidate_per_query: Mapping[str, Mapping[str, float]]
    base_rankings: Mapping[str, list]
    candidate_rankings: Mapping[str, list]
    compare: Callable[[str], PairedComparison]  # metric -> paired comparison (memoised by the caller)


def _f(x: float | None, digits: int = 4, sign: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:+.1f}%"


def worst_queries(ctx: GateContext, metric: str, n: int = 5, threshold: float = 0.0) -> list[dict[str, Any]]:
    b, c = ctx.base_per_query[metric], ctx.candidate_per_query[metric]
    diffs = sorted(((c[q] - b[q], q) for q in b), key=lambda t: (t[0], t[1]))
    out = []
    for d, q in diffs[:n]:
        if d >= -threshold:
            break
        out.append({"query_id": q, "text": ctx.queries.get(q, ""), "base": b[q], "candidate": c[q], "difference": d})
    return out


def _worst_text(rows: list[dict[str, Any]], limit: int = 3) -> str:
    if not rows:
        return ""
    parts = [f"\"{r['text'][:70]}\" {r['base']:.2f} -> {r['candidate']:.2f}" for r in rows[:limit]]
    return "  worst regressions: " + "; ".join(parts)


def _comparison_fields(cmp: PairedComparison) -> dict[str, Any]:
    return dict(base=cmp.base, candidate=cmp.candidate, difference=cmp.difference,
                relative_difference=cmp.relative_difference, ci=list(cmp.ci), confidence=cmp.confidence,
                p_value=cmp.p_value, test=f"paired randomization, {cmp.resamples} sign flips; BCa bootstrap CI",
                mde=cmp.mde, n_queries=cmp.n)


def _measured_line(cmp: PairedComparison) -> str:
    conf = int(round(cmp.confidence * 100))
    return (f"  base {_f(cmp.base)} -> candidate {_f(cmp.candidate)}: {_f(cmp.difference, sign=True)} "
            f"({_pct(cmp.relative_difference)}), {conf}% CI [{_f(cmp.ci[0], sign=True)}, {_f(cmp.ci[1], sign=True)}],"
            f" p = {cmp.p_value:.3g}, {cmp.wins} queries up / {cmp.losses} down")


def gate_absolute(spec: GateSpec, ctx: GateContext) -> GateResult:
    metric, minimum = spec.metric, float(spec.params["min"])
    cmp = ctx.compare(metric)
    ok = cmp.candidate >= minimum
    head = f"{spec.name}: {'PASS' if ok else 'FAIL'} on {ctx.dataset_label}"
    msg = [head, f"  candidate {metric} = {_f(cmp.candidate)}, required >= {_f(minimum)} (base {_f(cmp.base)})"]
    worst = worst_queries(ctx, metric)
    if not ok:
        msg.append(_worst_text(worst))
    return GateResult(spec.name, spec.kind, spec.data, metric, PASS if ok else FAIL, "\n".join(filter(None, msg)),
                      **_comparison_fields(cmp), threshold={"min": minimum}, worst_queries=worst)


def required_difference(params: Mapping[str, Any], base: float) -> float:
    req = 0.0
    if params.get("min_absolute") is not None:
        req = max(req, float(params["min_absolute"]))
    if params.get("min_relative") is not None:
        req = max(req, float(params["min_relative"]) * base)
    return req


def gate_improvement(spec: GateSpec, ctx: GateContext) -> GateResult:
    """Shown (pass) when the mean gain reaches the required size AND is significant (CI above 0, p below alpha).
    Failed when the data rule the required gain out: the whole CI lies below it. Anything between is 'inconclusive'
    (not shown): the interval still holds the required gain, so calling it a failure would be deciding on noise;
    it blocks promotion all the same, and says how many queries it would take."""
    metric = spec.metric
    cmp = ctx.compare(metric)
    req = required_difference(spec.params, cmp.base)
    significant = cmp.ci[0] > 0 and cmp.p_value < 1 - cmp.confidence
    big_enough = cmp.difference >= req and cmp.difference > 0
    ruled_out = cmp.ci[1] < req or cmp.ci[1] <= 0
    if big_enough and significant:
        status, verdict = PASS, "PASS (improvement shown)"
    elif ruled_out:
        status, verdict = FAIL, ("FAIL (candidate is worse than base; the interval rules out the required gain)"
                                 if cmp.difference < 0 else "FAIL (the interval rules out a gain of the required size)")
    elif big_enough:
        status, verdict = INCONCLUSIVE, "NOT SHOWN (gain of the asked size, but not distinguishable from noise)"
    else:
        status, verdict = INCONCLUSIVE, ("NOT SHOWN (measured gain below the required size, but the interval "
                                         "cannot rule the required gain out)" if cmp.difference > 0 else
                                         "NOT SHOWN (no gain measured, but the interval cannot rule the required "
                                         "gain out)")
    asked = []
    if spec.params.get("min_relative") is not None:
        asked.append(f"{100 * float(spec.params['min_relative']):.1f}% relative")
    if spec.params.get("min_absolute") is not None:
        asked.append(f"{float(spec.params['min_absolute']):+.4f} absolute")
    msg = [f"{spec.name}: {verdict} on {ctx.dataset_label}", _measured_line(cmp),
           f"  required: mean gain >= {_f(req, sign=True)} ({' and '.join(asked) or 'any gain'}) "
           f"and {int(round(cmp.confidence * 100))}% CI above 0"]
    underpowered = cmp.mde > max(req, 1e-12)
    needed = queries_needed(cmp.sd_difference, req, cmp.confidence) if underpowered else None
    if status != PASS and underpowered:
        more = f"about {needed:,} queries with this spread would" if needed else "more queries would"
        msg.append(f"  the suite is too small to show this: minimum detectable effect {_f(cmp.mde)} "
                   f"(80% power, {cmp.n} queries, sd of differences {_f(cmp.sd_difference)}) > required "
                   f"{_f(req)}; {more} detect it, or ask for a larger effect")
    worst = worst_queries(ctx, metric)
    if status != PASS:
        msg.append(_worst_text(worst))
    return GateResult(spec.name, spec.kind, spec.data, metric, status, "\n".join(filter(None, msg)),
                      **_comparison_fields(cmp), worst_queries=worst,
                      threshold={k: spec.params[k] for k in ("min_relative", "min_absolute") if k in spec.params}
                      | {"required_difference": req},
                      details={"underpowered": underpowered, "significant": significant,
                               "queries_needed": needed})


def gate_non_inferiority(spec: GateSpec, ctx: GateContext) -> GateResult:
    """Shown when the CI's lower bound of (candidate - base) lies above -margin."""
    metric, margin = spec.metric, float(spec.params["margin"])
    cmp = ctx.compare(metric)
    lo = cmp.ci[0]
    underpowered = cmp.mde > margin
    if lo > -margin:
        status, verdict = PASS, "PASS (no worse than base within the margin)"
    elif cmp.difference > -margin and underpowered:
        status, verdict = INCONCLUSIVE, "NOT SHOWN (interval too wide to rule out a loss beyond the margin)"
    else:
        status, verdict = FAIL, "FAIL (candidate may be worse than base by more than the margin)"
    what = "forgetting guard" if spec.kind == "forgetting" else "non-inferiority"
    msg = [f"{spec.name}: {verdict} on {ctx.dataset_label}", _measured_line(cmp),
           f"  required ({what}): {int(round(cmp.confidence * 100))}% CI lower bound > {_f(-margin, sign=True)}"]
    if status != PASS and underpowered:
        msg.append(f"  minimum detectable effect {_f(cmp.mde)} with {cmp.n} queries exceeds the margin {_f(margin)}")
    worst = worst_queries(ctx, metric)
    if status != PASS:
        msg.append(_worst_text(worst))
    return GateResult(spec.name, spec.kind, spec.data, metric, status, "\n".join(filter(None, msg)),
                      **_comparison_fields(cmp), threshold={"margin": margin}, worst_queries=worst,
                      details={"underpowered": underpowered})


def gate_regression_budget(spec: GateSpec, ctx: GateContext) -> GateResult:
    metric = spec.metric
    max_drop, max_fraction = float(spec.params["max_drop"]), float(spec.params["max_fraction"])
    cmp = ctx.compare(metric)
    b, c = ctx.base_per_query[metric], ctx.candidate_per_query[metric]
    regressed = sorted((q for q in b if b[q] - c[q] > max_drop), key=lambda q: (c[q] - b[q], q))
    fraction = len(regressed) / len(b)
    ok = fraction <= max_fraction
    worst = worst_queries(ctx, metric, n=10, threshold=max_drop)
    msg = [f"{spec.name}: {'PASS' if ok else 'FAIL'} on {ctx.dataset_label}",
           f"  {len(regressed)} of {len(b)} queries ({100 * fraction:.1f}%) lose more than {max_drop:g} {metric}; "
           f"budget {100 * max_fraction:.1f}%"]
    if not ok:
        msg.append(_worst_text(worst))
    return GateResult(spec.name, spec.kind, spec.data, metric, PASS if ok else FAIL, "\n".join(filter(None, msg)),
                      **_comparison_fields(cmp), threshold={"max_drop": max_drop, "max_fraction": max_fraction},
                      worst_queries=worst, details={"regressed": len(regressed), "fraction": fraction,
                                                    "regressed_queries": regressed[:50]})


def gate_golden(spec: GateSpec, ctx: GateContext) -> GateResult:
    k = int(spec.params.get("k", 10))
    rows, missing = [], []
    for entry in spec.params["queries"]:
        qid = entry["query"]
        if qid not in ctx.candidate_rankings:
            raise KeyError(f"golden query {qid!r} is not a query of this split")
        cand = [d for d, _ in ctx.candidate_rankings[qid]]
        base = [d for d, _ in ctx.base_rankings[qid]]
        for doc in entry["documents"]:
            c_rank = cand.index(doc) + 1 if doc in cand else None
            b_rank = base.index(doc) + 1 if doc in base else None
            hit = c_rank is not None and c_rank <= k
            rows.append({"query_id": qid, "text": ctx.queries.get(qid, ""), "document": doc,
                         "candidate_rank": c_rank, "base_rank": b_rank, "hit": hit})
            if not hit:
                missing.append(rows[-1])
    ok = not missing
    msg = [f"{spec.name}: {'PASS' if ok else 'FAIL'} on {ctx.dataset_label}",
           f"  {len(rows) - len(missing)} of {len(rows)} golden (query, document) pairs within the top {k}"]
    for r in missing[:5]:
        msg.append(f"  missing: \"{r['text'][:70]}\" -> {r['document']} at candidate rank "
                   f"{r['candidate_rank'] or '>depth'} (base rank {r['base_rank'] or '>depth'})")
    return GateResult(spec.name, spec.kind, spec.data, None, PASS if ok else FAIL, "\n".join(msg),
                      threshold={"k": k}, n_queries=len({r["query_id"] for r in rows}),
                      details={"pairs": rows, "missing": len(missing)})


GATES: dict[str, Callable[[GateSpec, GateContext], GateResult]] = {
    "absolute": gate_absolute,
    "improvement": gate_improvement,
    "non_inferiority": gate_non_inferiority,
    "forgetting": gate_non_inferiority,
    "regression_budget": gate_regression_budget,
    "golden": gate_golden,
}

# kind -> (required params, optional params); validated by the suite loader
GATE_PARAMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "absolute": (("metric", "min"), ()),
    "improvement": (("metric",), ("min_relative", "min_absolute")),
    "non_inferiority": (("metric", "margin"), ()),
    "forgetting": (("metric", "margin"), ()),
    "regression_budget": (("metric", "max_drop", "max_fraction"), ()),
    "golden": (("queries",), ("k",)),
}


def run_gate(spec: GateSpec, ctx: GateContext) -> GateResult:
    try:
        return GATES[spec.kind](spec, ctx)
    except (KeyError, ValueError, FloatingPointError) as exc:
        return GateResult(spec.name, spec.kind, spec.data, spec.metric, ERROR,
                          f"{spec.name}: ERROR, the gate could not be computed: {exc}")


def error_result(spec: GateSpec, reason: str) -> GateResult:
    return GateResult(spec.name, spec.kind, spec.data, spec.metric, ERROR, f"{spec.name}: ERROR: {reason}")
