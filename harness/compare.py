"""Paired comparison of two models over the same queries: is the difference real or noise?

For per-query scores b_i (base) and c_i (candidate) on the same queries, d_i = c_i - b_i. We report:
- the mean difference and a bootstrap confidence interval (BCa, scipy; percentile when the data are degenerate);
- a two-sided paired randomization (sign-flip) test p-value, seeded, with the exact add-one correction;
- the paired t-test p-value for reference;
- the minimum detectable effect (MDE): the smallest true mean difference that a two-sided paired t-test at this
  confidence would detect with 80% power, given the spread of d and the number of queries. When a gate asks for an
  effect smaller than the MDE, the suite is too small to show it, and the gate says so.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping

import numpy as np

DEFAULT_RESAMPLES = 10_000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_POWER = 0.8


@dataclass(frozen=True)
class PairedComparison:
    n: int
    base: float
    candidate: float
    difference: float
    relative_difference: float | None
    ci: tuple[float, float]
    confidence: float
    p_value: float
    p_value_t: float
    mde: float
    sd_difference: float
    wins: int
    ties: int
    losses: int
    resamples: int
    seed: int

    def as_dict(self) -> dict:
        out = asdict(self)
        out["ci"] = list(self.ci)
        return out


def aligned_differences(base: Mapping[str, float], candidate: Mapping[str, float]) -> tuple[list[str], np.ndarray,
                                                                                             np.ndarray]:
    """Query ids (sorted) and the two score vectors. Both sides must cover the same queries."""
    if set(base) != set(candidate):
        only_b = sorted(set(base) - set(candidate))[:5]
        only_c = sorted(set(candidate) - set(base))[:5]
        raise ValueError(f"base and candidate were scored on different queries (only base: {only_b}, "
                         f"only candidate: {only_c})")
    qids = sorted(base)
    b = np.array([base[q] for q in qids], dtype=np.float64)
    c = np.array([candidate[q] for q in qids], dtype=np.float64)
    if not (np.isfinite(b).all() and np.isfinite(c).all()):
        raise FloatingPointError("a per-query score is NaN or infinite")
    return qids, b, c


def sign_flip_p_value(d: np.ndarray, resamples: int, rng: np.random.Generator, block: int = 2_000) -> float:
    """Two-sided paired randomization test of mean(d) == 0 by random sign flips (add-one corrected)."""
    n = len(d)
    observed = abs(d.mean())
    if n == 0 or not np.any(d):
        return 1.0
    extreme = 0
    done = 0
    tol = 1e-12 * max(1.0, observed)
    while done < resamples:
        m = min(block, resamples - done)
        signs = rng.integers(0, 2, size=(m, n), dtype=np.int8) * 2 - 1
        means = np.abs(signs @ d) / n
        extreme += int(np.count_nonzero(means >= observed - tol))
        done += m
    return (extreme + 1) / (resamples + 1)


def bootstrap_ci(d: np.ndarray, confidence: float, resamples: int, seed: int) -> tuple[float, float]:
    if len(d) < 2 or np.all(d == d[0]):
        return float(d.mean()), float(d.mean())
    from scipy import stats

    res = stats.bootstrap((d,), np.mean, confidence_level=confidence, n_resamples=resamples, method="BCa",
                          rng=np.random.default_rng(seed), vectorized=True, axis=-1)
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (np.isfinite(lo) and np.isfinite(hi)):  # BCa can fail on heavily tied data: fall back to percentile
        res = stats.bootstrap((d,), np.mean, confidence_level=confidence, n_resamples=resamples,
                              method="percentile", rng=np.random.default_rng(seed), vectorized=True, axis=-1)
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return lo, hi


def minimum_detectable_effect(sd: float, n: int, confidence: float = DEFAULT_CONFIDENCE,
                              power: float = DEFAULT_POWER) -> float:
    """Smallest |mean difference| a two-sided paired t-test detects with the given power (normal approximation
    with t quantiles)."""
    if n < 2:
        return float("inf")
    from scipy import stats

    alpha = 1 - confidence
    t_alpha = stats.t.ppf(1 - alpha / 2, df=n - 1)
    t_power = stats.t.ppf(power, df=n - 1)
    return float((t_alpha + t_power) * sd / np.sqrt(n))


def queries_needed(sd: float, effect: float, confidence: float = DEFAULT_CONFIDENCE,
                   power: float = DEFAULT_POWER) -> int | None:
    """About how many paired queries (with this spread of differences) a two-sided paired t-test needs to detect a
    mean difference of ``effect`` with the given power: the smallest n whose minimum detectable effect is <=
    ``effect``. None when there is nothing to detect (effect <= 0) or no spread to go on."""
    if effect <= 0 or not sd > 0:
        return None
    from scipy import stats

    alpha = 1 - confidence
    n = max(2, int(np.ceil(((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * sd / effect) ** 2)))
    while minimum_detectable_effect(sd, n, confidence, power) > effect:  # t quantiles: a little more than normal
        n += 1
    return n


def paired_compare(base: Mapping[str, float], candidate: Mapping[str, float], *,
                   confidence: float = DEFAULT_CONFIDENCE, resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                   power: float = DEFAULT_POWER) -> PairedComparison:
    if not 0.5 < confidence < 1:
        raise ValueError("confidence must lie between 0.5 and 1")
    _, b, c = aligned_differences(base, candidate)
    n = len(b)
    if n == 0:
        raise ValueError("no query to compare")
    d = c - b
    mean_b, mean_c, mean_d = float(b.mean()), float(c.mean()), float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    if n > 1 and sd > 0:
        from scipy import stats

        p_t = float(stats.ttest_rel(c, b).pvalue)
    else:
        p_t = 1.0 if mean_d == 0 else 0.0
    rng = np.random.default_rng(seed)
    return PairedComparison(
        n=n, base=mean_b, candidate=mean_c, difference=mean_d,
        relative_difference=(mean_d / mean_b) if mean_b != 0 else None,
        ci=bootstrap_ci(d, confidence, resamples, seed), confidence=confidence,
        p_value=sign_flip_p_value(d, resamples, rng), p_value_t=p_t,
        mde=minimum_detectable_effect(sd, n, confidence, power), sd_difference=sd,
        wins=int(np.count_nonzero(d > 0)), ties=int(np.count_nonzero(d == 0)), losses=int(np.count_nonzero(d < 0)),
        resamples=resamples, seed=seed,
    )
