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
    assert res.p_value == pytest.approx(exact, abs=0.01)
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
