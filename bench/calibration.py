"""Is the improvement gate's decision rule calibrated on real per-query data?

Takes one suite result written by `embedgate gate` and treats its full-suite mean difference D (candidate - base,
all queries) as the truth. Random subsets of n queries (drawn without replacement) then play the part of smaller
suites drawn from the same population of questions:

- coverage: how often the deciding interval of `paired_compare` (the paired t-test's) holds D (stated: 95%);
- centred null: with D subtracted from every candidate value (true mean difference 0), how often the improvement
  gate's PASS condition with min_absolute = 0 (difference > 0 and interval above 0) holds anyway (allowed: 2.5%,
  the upper tail of a 95% two-sided interval), and whether p < 0.05 agrees with "interval excludes 0" every time;
- for reference, on the same subsets: the paired BCa bootstrap interval's coverage and null rejection (the
  interval an earlier version showed) and the sign-flip p-value's null rejection (the p it decided on);
- power on the real (uncentred) data: how often the gate with min_relative = 0.05 passes.

Each rate comes with a Wilson 95% interval for the finite number of subsets.

    python bench/calibration.py RESULT.json [--metric ndcg@10] [--sizes 57,200] [--suites 1000]
                                [--resamples 2000] [--seed 0] [--out docs/calibration.md]
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from scipy import stats

from embedgate.harness.compare import bootstrap_interval, paired_compare

REPO = Path(__file__).resolve().parents[1]

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
MIN_RELATIVE = 0.05  # the power check's gate: improvement with min_relative = 0.05
Z95 = float(stats.norm.ppf(0.975))


def load_per_query(path: Path, metric: str) -> tuple[dict, list[str], np.ndarray, np.ndarray]:
    result = json.loads(path.read_text())
    pq = result["datasets"]["main"]["per_query"]
    base, cand = pq["base"], pq["candidate"]
    if set(base) != set(cand):
        raise SystemExit(f"{path}: base and candidate cover different queries")
    qids = sorted(base)
    b = np.array([float(base[q][metric]) for q in qids])
    c = np.array([float(cand[q][metric]) for q in qids])
    if not (np.isfinite(b).all() and np.isfinite(c).all()):
        raise SystemExit(f"{path}: a per-query {metric} is not finite")
    return result, qids, b, c


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k / n."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, float(centre - half)), min(1.0, float(centre + half)))


@dataclass
class Rate:
    k: int = 0
    n: int = 0

    def add(self, hit: bool) -> None:
        self.k += int(bool(hit))
        self.n += 1

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else float("nan")

    @property
    def ci(self) -> tuple[float, float]:
        return wilson(self.k, self.n)

    def text(self, with_ci: bool = True) -> str:
        s = f"{100 * self.value:.1f}%"
        if with_ci:
            lo, hi = self.ci
            s += f" [{100 * lo:.1f}, {100 * hi:.1f}]"
        return s


@dataclass
class SizeResult:
    n: int
    coverage: Rate = field(default_factory=Rate)  # the deciding (t) interval holds D
    miss_below: int = 0  # D below the interval (the interval claims too much gain)
    miss_above: int = 0
    bca_coverage: Rate = field(default_factory=Rate)  # reference: the BCa bootstrap interval holds D
    power: Rate = field(default_factory=Rate)  # real data, min_relative = 0.05 gate passes
    null_false_pass: Rate = field(default_factory=Rate)  # centred: difference > 0 and ci[0] > 0
    null_reject: Rate = field(default_factory=Rate)  # centred: the deciding interval excludes 0 (two-sided)
    null_bca: Rate = field(default_factory=Rate)  # centred: the BCa interval excludes 0 (two-sided)
    null_signflip: Rate = field(default_factory=Rate)  # centred: sign-flip p < 0.05 (two-sided)
    p_agrees: Rate = field(default_factory=Rate)  # centred: (p < 0.05) == (interval excludes 0)
    methods: dict = field(default_factory=dict)  # interval_method -> count, both experiments
    mean_width: float = 0.0
    seconds: float = 0.0

    @property
    def coverage_ok(self) -> bool:
        return self.coverage.ci[1] >= CONFIDENCE

    @property
    def null_ok(self) -> bool:
        return self.null_false_pass.ci[0] <= ALPHA / 2


def subsets(total: int, n: int, count: int, seed: int, stream: int):
    """`count` random n-subsets of range(total), without replacement within a subset; one seeded Generator per
    (seed, size, experiment), so a size's subsets do not depend on which other sizes are run."""
    rng = np.random.default_rng([seed, n, stream])
    for _ in range(count):
        yield np.sort(rng.choice(total, size=n, replace=False))


def run_size(qids: list[str], b: np.ndarray, c: np.ndarray, D: float, n: int, suites: int, resamples: int,
             seed: int, progress: bool = True) -> SizeResult:
    out = SizeResult(n=n)
    t0 = time.perf_counter()
    c_null = c - D
    q = np.array(qids, dtype=object)
    widths = []

    def compare(idx, cand, i):
        keys = q[idx]
        cmp = paired_compare(dict(zip(keys, b[idx])), dict(zip(keys, cand[idx])), confidence=CONFIDENCE,
                             resamples=resamples, seed=i)
        out.methods[cmp.interval_method] = out.methods.get(cmp.interval_method, 0) + 1
        return cmp

    # coverage (and power) on the real data
    for i, idx in enumerate(subsets(len(b), n, suites, seed, 0)):
        cmp = compare(idx, c, i)
        lo, hi = cmp.ci
        out.coverage.add(lo <= D <= hi)
        out.miss_below += int(D < lo)
        out.miss_above += int(D > hi)
        widths.append(hi - lo)
        blo, bhi = bootstrap_interval(c[idx] - b[idx], CONFIDENCE, resamples, i)[0]
        out.bca_coverage.add(blo <= D <= bhi)
        req = MIN_RELATIVE * cmp.base
        out.power.add(cmp.difference >= req and cmp.difference > 0 and lo > 0)
        if progress and (i + 1) % 100 == 0:
            print(f"  n={n} coverage {i + 1}/{suites} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    # centred null: true mean difference 0
    for i, idx in enumerate(subsets(len(b), n, suites, seed, 1)):
        cmp = compare(idx, c_null, i)
        lo, hi = cmp.ci
        excludes = lo > 0 or hi < 0
        out.null_false_pass.add(cmp.difference > 0 and lo > 0)
        out.null_reject.add(excludes)
        out.null_signflip.add(cmp.p_value_randomization < ALPHA)
        blo, bhi = bootstrap_interval(c_null[idx] - b[idx], CONFIDENCE, resamples, i)[0]
        out.null_bca.add(blo > 0 or bhi < 0)
        out.p_agrees.add((cmp.p_value < ALPHA) == excludes)
        if progress and (i + 1) % 100 == 0:
            print(f"  n={n} null {i + 1}/{suites} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    out.mean_width = float(np.mean(widths))
    out.seconds = time.perf_counter() - t0
    return out


HEADER = ("| n | coverage of D, t (deciding) | coverage, BCa bootstrap (reference) | null false-pass (gate) | "
          "null rejection, t two-sided | null rejection, BCa | null rejection, sign-flip | power (gain >= 5%) |")
RULE = "|---:|---|---|---|---|---|---|---|"


def row(r: SizeResult) -> str:
    return (f"| {r.n} | {r.coverage.text()} | {r.bca_coverage.text()} | {r.null_false_pass.text()} | "
            f"{r.null_reject.text()} | {r.null_bca.text()} | {r.null_signflip.text()} | {r.power.text(False)} |")


def verdict(results: list[SizeResult]) -> str:
    sizes = " and ".join(f"n = {r.n}" for r in results)

    def each(get) -> str:
        return " and ".join(f"{get(r).text(False)} (n = {r.n})" for r in results)

    cov = each(lambda r: r.coverage)
    fp = each(lambda r: r.null_false_pass)
    if all(r.coverage_ok and r.null_ok for r in results):
        first = (f"At {sizes} the decision rule is calibrated within sampling error: the paired t-interval holds the "
                 f"full-suite difference in {cov} of subsets (Wilson upper bound >= 95%) and the gate passes a "
                 f"zero-effect candidate in {fp} (Wilson lower bound <= 2.5%).")
    else:
        bad = [f"n = {r.n} ({'coverage ' + r.coverage.text() if not r.coverage_ok else ''}"
               f"{'; ' if not r.coverage_ok and not r.null_ok else ''}"
               f"{'false-pass ' + r.null_false_pass.text() if not r.null_ok else ''})"
               for r in results if not (r.coverage_ok and r.null_ok)]
        first = (f"The decision rule is NOT calibrated within sampling error at {', '.join(bad)}; across {sizes} "
                 f"coverage is {cov} (stated 95%) and the zero-effect false-pass rate is {fp} (allowed 2.5%).")
    agree = all(r.p_agrees.k == r.p_agrees.n for r in results)
    bcov = each(lambda r: r.bca_coverage)
    sf = each(lambda r: r.null_signflip)
    bca = each(lambda r: r.null_bca)
    second = (f"For comparison, the BCa bootstrap interval (shown by an earlier version) covers {bcov} and rejects a "
              f"true null in {bca}, the sign-flip test (the p-value that version decided on) in {sf} (two-sided, "
              f"nominal 5%); the "
              f"shown p-value {'agreed' if agree else 'did NOT always agree'} with the interval in every "
              f"null subset{'' if agree else ' (see the table)'}.")
    return first + " " + second


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the doc the mode a plain open() would
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def render(args, command: str, result: dict, b: np.ndarray, c: np.ndarray, D: float, results: list[SizeResult],
           wall: float) -> str:
    d = c - b
    schema = result.get("schema", "?")
    methods = {}
    for r in results:
        for k, v in r.methods.items():
            methods[k] = methods.get(k, 0) + v
    lines = [
        "# Calibration of the improvement gate",
        "",
        "Does the paired interval that decides the improvement gate (the inversion of the paired t-test) hold its "
        "stated 95%, and does the gate "
        "pass a candidate with no true gain at most 2.5% of the time? Measured on real per-query scores with "
        "`bench/calibration.py`.",
        "",
        "## What was measured",
        "",
        f"- Command: `{command}`",
        f"- Input: `{args.result}` ({schema}), dataset `main`, metric `{args.metric}`, {len(b):,} queries: the "
        f"per-query scores of the shipped regulatory candidate, the result JSON that the README's first command "
        f"writes under `embedgate-results/` (any result of `suites/regulatory` will do).",
        f"- Truth: the full-suite mean difference D = {D:+.5f} (base {b.mean():.5f}, candidate {c.mean():.5f}; "
        f"sd of per-query differences {d.std(ddof=1):.4f}; {int(np.count_nonzero(d == 0)):,} of {len(d):,} "
        f"differences are exactly 0).",
        f"- For each size n: {args.suites:,} random n-query subsets (without replacement) of the real data for "
        f"coverage (t and BCa) and power, and {args.suites:,} further subsets with D subtracted from every "
        f"candidate value (true mean difference 0) for the null columns. Each subset i runs `paired_compare` "
        f"with {args.resamples:,} resamples and seed=i; subsets are drawn with numpy's Generator seeded from "
        f"(seed={args.seed}, n, experiment).",
        f"- Null false-pass: the gate's PASS condition with min_absolute = 0 (difference > 0 and interval lower "
        f"end > 0); allowed alpha/2 = 2.5%. Power: PASS with min_relative = 0.05 (gain >= 5% of the subset's "
        f"base mean and interval above 0) on the real data. Null rejection columns are two-sided at 0.05 "
        f"(nominal 5%).",
        f"- Intervals: {', '.join(f'{k} {v:,}' for k, v in sorted(methods.items()))} of "
        f"{sum(methods.values()):,} comparisons. Wall time {wall:.0f} s "
        f"({', '.join(f'n={r.n}: {r.seconds:.0f} s' for r in results)}).",
        "",
        "## Results",
        "",
        "Rates over the subsets, Wilson 95% intervals for the finite number of subsets in brackets.",
        "",
        HEADER,
        RULE,
        *[row(r) for r in results],
        "",
        "| n | coverage: Wilson upper >= 95%? | false-pass: Wilson lower <= 2.5%? | "
        "misses: interval above D / below D | mean interval width | null: p < 0.05 agrees with interval |",
        "|---:|---|---|---|---|---|",
        *[f"| {r.n} | {'yes' if r.coverage_ok else 'NO'} ({100 * r.coverage.ci[1]:.2f}%) | "
          f"{'yes' if r.null_ok else 'NO'} ({100 * r.null_false_pass.ci[0]:.2f}%) | "
          f"{r.miss_below} / {r.miss_above} | {r.mean_width:.4f} | "
          f"{r.p_agrees.k:,} of {r.p_agrees.n:,} |" for r in results],
        "",
        "## Verdict",
        "",
        verdict(results),
        "",
        f"<sub>Generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.</sub>",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("result", type=Path, help="suite result JSON written by `embedgate gate`")
    p.add_argument("--metric", default="ndcg@10")
    p.add_argument("--sizes", default="57,200", help="comma-separated subset sizes")
    p.add_argument("--suites", type=int, default=1000, help="random subsets per size and experiment")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples per paired_compare")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=REPO / "docs" / "calibration.md")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    command = shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
    t0 = time.perf_counter()
    result, qids, b, c = load_per_query(args.result, args.metric)
    if any(not 2 <= n <= len(b) for n in sizes):
        raise SystemExit(f"sizes must lie between 2 and the {len(b)} queries in the file")
    D = float((c - b).mean())
    print(f"{args.result}: {len(b)} queries, base {b.mean():.5f}, candidate {c.mean():.5f}, D = {D:+.5f}")
    results = []
    for n in sizes:
        results.append(run_size(qids, b, c, D, n, args.suites, args.resamples, args.seed))
    wall = time.perf_counter() - t0

    print()
    print(HEADER)
    print(RULE)
    for r in results:
        print(row(r))
    print()
    for r in results:
        print(f"n={r.n}: coverage {'OK' if r.coverage_ok else 'LOW'} (Wilson upper {100 * r.coverage.ci[1]:.2f}% "
              f"vs 95%), false-pass {'OK' if r.null_ok else 'HIGH'} (Wilson lower "
              f"{100 * r.null_false_pass.ci[0]:.2f}% vs 2.5%), misses interval above/below D "
              f"{r.miss_below}/{r.miss_above}, "
              f"p agrees {r.p_agrees.k}/{r.p_agrees.n}, methods {r.methods}, {r.seconds:.0f} s")
    print(f"wall time {wall:.0f} s")
    write_atomic(args.out, render(args, command, result, b, c, D, results, wall))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
