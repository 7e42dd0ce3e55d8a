"""Each gate kind decides as documented and explains itself with the numbers."""
from __future__ import annotations

import numpy as np
import pytest

from embedgate.harness.compare import paired_compare
from embedgate.harness.gates import GateContext, gate_class, run_gate


def make_ctx(base: dict, cand: dict, metric="ndcg@10", rankings=None):
    queries = {q: f"query text {q}" for q in base}
    return GateContext(
        dataset_label="unit set", queries=queries, base_per_query={metric: base}, candidate_per_query={metric: cand},
        base_rankings=rankings or {}, candidate_rankings=rankings or {},
        compare=lambda m: paired_compare(base, cand, resamples=4000, seed=0))


def shifted(n, shift, sd, seed=0):
    rng = np.random.default_rng(seed)
    b = rng.uniform(0.2, 0.6, n)
    c = np.clip(b + rng.normal(shift, sd, n), 0, 1)
    return {f"q{i:04d}": float(x) for i, x in enumerate(b)}, {f"q{i:04d}": float(x) for i, x in enumerate(c)}


def gate(kind, **params):
    return gate_class(kind).model_validate({"kind": kind, **params})


def improvement(min_relative=0.05):
    return gate("improvement", name="gain", metric="ndcg@10", min_relative=min_relative)


def test_improvement_shown_on_many_queries():
    r = run_gate(improvement(), make_ctx(*shifted(2000, 0.05, 0.1)))
    assert r.status == "pass" and r.ci[0] > 0 and r.p_value < 0.05
    assert r.difference >= r.threshold["required_difference"]


def test_same_gain_on_few_queries_is_not_shown_and_says_why():
    diffs = [0.35, -0.25] * 10  # mean +0.05 on a base of 0.5: 10% up, but with a large spread
    b = {f"q{i}": 0.5 for i in range(20)}
    r = run_gate(improvement(), make_ctx(b, {q: 0.5 + d for q, d in zip(b, diffs)}))
    assert r.difference == pytest.approx(0.05)
    assert r.difference > r.threshold["required_difference"]  # the point estimate clears the bar...
    assert r.status == "inconclusive"  # ...but noise could give that
    assert "NOT SHOWN" in r.message and "minimum detectable effect" in r.message
    assert r.mde > r.threshold["required_difference"]
    assert r.details["too_small"]  # the report marks the MDE from this, not from a rule of its own


def test_small_gain_on_few_queries_is_not_shown_rather_than_failed():
    """A gain below the asked size on a suite too small to tell: the interval still holds the asked-for gain, so the
    gate may not call it a failure (that would be deciding on noise); it is 'not shown', and says how many queries
    would settle it."""
    rng = np.random.default_rng(3)
    b = {f"q{i}": 0.5 for i in range(40)}
    d = rng.normal(0, 0.1, 40)
    d += 0.02 - d.mean()  # mean gain +0.02 (4%), below the asked 5% (0.025), sd 0.1
    r = run_gate(improvement(), make_ctx(b, {q: 0.5 + x for q, x in zip(b, d)}))
    assert r.difference == pytest.approx(0.02) and r.difference < r.threshold["required_difference"]
    assert r.ci[0] < 0 < r.threshold["required_difference"] < r.ci[1]
    assert r.status == "inconclusive" and "NOT SHOWN (measured gain below the required size" in r.message
    needed = r.details["queries_needed"]
    assert f"about {needed:,} queries with this spread would detect it" in r.message
    from embedgate.harness.compare import minimum_detectable_effect

    sd = float(np.std(d, ddof=1))
    assert minimum_detectable_effect(sd, needed) <= 0.025 < minimum_detectable_effect(sd, needed - 1)


def test_gain_that_the_interval_rules_out_fails():
    """On many queries a real but small gain is measured precisely: the interval lies below the asked size."""
    b, c = shifted(3000, 0.01, 0.05)
    r = run_gate(improvement(0.10), make_ctx(b, c))
    assert r.ci[0] > 0 and r.ci[1] < r.threshold["required_difference"]
    assert r.status == "fail" and "FAIL (the interval rules out a gain of the required size)" in r.message


def test_regression_fails_and_lists_worst_queries():
    b, c = shifted(300, -0.05, 0.05)
    r = run_gate(improvement(), make_ctx(b, c))
    assert r.status == "fail" and "candidate is worse" in r.message
    worst = r.worst_queries[0]
    assert worst.difference == min(c[q] - b[q] for q in b)
    assert f"query text {worst.query_id}" in r.message
    for text in (f"{r.base:.4f}", f"{r.candidate:.4f}", f"p = {r.p_value:.3g}"):
        assert text in r.message


def test_a_loss_the_interval_shows_is_not_blamed_on_the_suite_size():
    """A candidate measurably worse than what it is compared with (min_absolute = 0, interval below 0): more queries
    would not change that, so no "too small to show this" advice (seen on the Matryoshka suite, 2026-12-01)."""
    b, c = shifted(300, -0.05, 0.05)
    r = run_gate(gate("improvement", name="gain", metric="ndcg@10", min_absolute=0.0), make_ctx(b, c))
    assert r.status == "fail" and r.ci[1] < 0 and r.mde > 0
    assert "too small" not in r.message and "minimum detectable effect" not in r.message
    assert r.details["underpowered"] and not r.details["too_small"]
    spec = gate("non_inferiority", name="ni", metric="ndcg@10", margin=0.001)
    bad = run_gate(spec, make_ctx(*shifted(40, -0.05, 0.02)))
    assert bad.status == "fail" and bad.ci[1] < -0.001 and bad.mde > 0.001
    assert "minimum detectable effect" not in bad.message and not bad.details["too_small"]


def test_non_inferiority_and_forgetting():
    spec = gate("forgetting", name="guard", metric="ndcg@10", margin=0.01)
    assert run_gate(spec, make_ctx(*shifted(2000, 0.0, 0.05))).status == "pass"
    bad = run_gate(spec, make_ctx(*shifted(2000, -0.03, 0.05)))
    assert bad.status == "fail" and bad.ci[1] < -0.01
    small = run_gate(spec, make_ctx(*shifted(8, 0.0, 0.2, seed=1)))
    assert small.status in ("inconclusive", "fail") and "minimum detectable effect" in small.message
    assert small.details["too_small"]


def test_absolute_and_regression_budget():
    b = {"a": 0.5, "b": 0.5, "c": 0.5, "d": 0.5}
    c = {"a": 0.2, "b": 0.55, "c": 0.6, "d": 0.5}
    spec = gate("absolute", name="abs", metric="ndcg@10", min=0.46)
    r = run_gate(spec, make_ctx(b, c))
    assert r.status == "pass"  # mean 0.4625
    # a floor tests a value, not an interval: it shows what it tests and no interval of another metric
    assert r.decided_by == "value" and r.ci is None and r.p_value is None and r.observed == "candidate 0.4625"
    assert run_gate(spec.model_copy(update={"min": 0.47}), make_ctx(b, c)).status == "fail"
    budget = gate("regression_budget", name="budget", metric="ndcg@10", max_drop=0.1, max_fraction=0.25)
    r = run_gate(budget, make_ctx(b, c))
    assert r.status == "pass" and r.details["regressed"] == 1 and r.details["fraction"] == 0.25
    assert r.ci is None and r.observed == "25.0% regressed (1 of 4)"
    r = run_gate(budget.model_copy(update={"max_fraction": 0.2}), make_ctx(b, c))
    assert r.status == "fail" and r.details["regressed_queries"] == ["a"] and "1 of 4 queries" in r.message


def test_golden_queries():
    rankings = {"q1": [("d1", 0.9), ("d2", 0.8), ("d3", 0.7)]}
    ctx = make_ctx({"q1": 0.5}, {"q1": 0.5}, rankings=rankings)
    spec = gate("golden", name="golden", k=2, queries=[{"query": "q1", "documents": ["d2"]}])
    assert run_gate(spec, ctx).status == "pass"
    r = run_gate(gate("golden", name="golden", k=2, queries=[{"query": "q1", "documents": ["d3"]}]), ctx)
    assert r.status == "fail" and "at candidate rank 3" in r.message
    assert run_gate(gate("golden", k=2, queries=[{"query": "nope", "documents": ["d3"]}]), ctx).status == "error"
