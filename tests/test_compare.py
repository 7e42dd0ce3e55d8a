"""Paired statistics checked against exact enumeration, scipy and simulation."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from embedgate.harness.compare import minimum_detectable_effect, paired_compare


def _pairs(base, cand):
    return ({f"q{i}": float(v) for i, v in enumerate(base)}, {f"q{i}": float(v) for i, v in enumerate(cand)})


def test_randomization_p_value_matches_exact_enumeration():
    rng = np.random.default_rng(0)
    b = rng.random(12)
    c = b + rng.normal(0.08, 0.1, 12)
    d = c - b
    flips = np.array(list(itertools.product([-1, 1], repeat=12)))
    exact = np.mean(np.abs(flips @ d) >= abs(d.sum()) - 1e-12)
    res = paired_compare(*_pairs(b, c), resamples=20_000, seed=1)
    assert res.p_value_randomization == pytest.approx(exact, abs=0.01)
    assert res.difference == pytest.approx(d.mean())
    assert (res.wins, res.losses) == (int((d > 0).sum()), int((d < 0).sum()))


def test_t_test_and_interval_agree_with_scipy_on_normal_data():
    from scipy import stats

    rng = np.random.default_rng(1)
    b = rng.random(400)
    c = b + rng.normal(0.02, 0.1, 400)
    res = paired_compare(*_pairs(b, c), seed=0)
    assert res.p_value_t == pytest.approx(stats.ttest_rel(c, b).pvalue)
    t_ci = stats.ttest_rel(c, b).confidence_interval(0.95)
    assert res.ci[0] == pytest.approx(t_ci.low, abs=0.002)
    assert res.ci[1] == pytest.approx(t_ci.high, abs=0.002)


def test_seeded_and_reproducible():
    rng = np.random.default_rng(2)
    b, c = rng.random(50), rng.random(50)
    assert paired_compare(*_pairs(b, c), seed=7) == paired_compare(*_pairs(b, c), seed=7)


def test_minimum_detectable_effect_has_the_stated_power():
    from scipy import stats

    rng = np.random.default_rng(3)
    n, sd = 60, 0.12
    mde = minimum_detectable_effect(sd, n)
    detected = sum(stats.ttest_rel(rng.normal(mde, sd, n), np.zeros(n)).pvalue < 0.05 for _ in range(3000))
    assert detected / 3000 == pytest.approx(0.80, abs=0.03)


def test_identical_models_and_mismatched_queries():
    b = {"q1": 0.5, "q2": 0.1}
    res = paired_compare(b, dict(b))
    assert (res.difference, res.ci, res.p_value) == (0.0, (0.0, 0.0), 1.0)
    with pytest.raises(ValueError, match="different queries"):
        paired_compare(b, {"q1": 0.5, "q3": 0.2})
    with pytest.raises(FloatingPointError):
        paired_compare(b, {"q1": float("nan"), "q2": 0.1})


def test_p_value_is_the_intervals_own():
    """One decision rule: p < 1 - confidence exactly when the shown interval excludes 0, on skewed, tie-heavy
    differences like real per-query NDCG (most queries unchanged, a few large moves)."""
    rng = np.random.default_rng(7)
    seen = {"excludes": 0, "holds": 0}
    for _ in range(200):
        n = int(rng.integers(15, 300))
        moves = rng.random(n) < 0.35
        d = np.where(moves, rng.exponential(0.15, n) * rng.choice([-1, 1], n, p=[0.42, 0.58]), 0.0)
        b = rng.uniform(0.1, 0.6, n)
        res = paired_compare(*_pairs(b, b + d), resamples=2000, seed=0)
        excludes = res.ci[0] > 0 or res.ci[1] < 0
        assert (res.p_value < 1 - res.confidence) == excludes, (res.ci, res.p_value)
        seen["excludes" if excludes else "holds"] += 1
    assert min(seen.values()) > 20  # both sides of the rule were exercised


def test_interval_is_the_t_tests_own_and_matches_scipy():
    """The deciding interval and p-value, checked against scipy's paired t-test computed independently."""
    from scipy import stats

    rng = np.random.default_rng(11)
    b = rng.uniform(0.1, 0.7, 57)
    c = np.clip(b + np.where(rng.random(57) < 0.4, rng.exponential(0.2, 57) * rng.choice([-1, 1], 57), 0), 0, 1)
    res = paired_compare(*_pairs(b, c), confidence=0.9, resamples=500)
    ref = stats.ttest_rel(c, b)
    lo, hi = ref.confidence_interval(confidence_level=0.9)
    assert res.ci == pytest.approx((lo, hi), abs=1e-12) and res.p_value == pytest.approx(ref.pvalue, abs=1e-12)
    assert res.interval_method == "t"


def test_bootstrap_p_value_matches_the_t_test_on_large_normal_samples():
    """The BCa inversion kept for the calibration bench: on large, symmetric samples BCa's z0 and acceleration vanish
    and its p-value must approach the t-test's."""
    from scipy import stats

    from embedgate.harness.compare import bootstrap_interval

    rng = np.random.default_rng(5)
    for shift in (0.004, 0.006, 0.01):
        d = rng.normal(shift, 0.15, 4000)
        ci, p_boot, method = bootstrap_interval(d, 0.95, 20_000, 1)
        assert method == "bca" and (p_boot < 0.05) == (ci[0] > 0 or ci[1] < 0)
        assert p_boot == pytest.approx(float(stats.ttest_1samp(d, 0).pvalue), rel=0.12, abs=0.004)


def test_every_number_is_a_plain_python_number():
    """Results are serialised as JSON: a numpy scalar leaking into a comparison (or a gate's details, through a
    comparison of two numpy floats) would break writing them."""
    rng = np.random.default_rng(2)
    b = rng.uniform(0.1, 0.6, 30)
    res = paired_compare(*_pairs(b, b + rng.normal(0.05, 0.1, 30)), resamples=200)
    for name, value in res.as_dict().items():
        values = value if isinstance(value, list) else [value]
        assert all(type(v) in (int, float, str, type(None)) for v in values), (name, [type(v) for v in values])
