"""What both shells (the pytest plugin and `embedgate gate`) do around run_suite: write the result, the HTML
report and the CI step summary, and print the gate table. Shells may import reports; the harness core never does."""
from __future__ import annotations

import os
from pathlib import Path

from ..schema import STATUS_LABELS, SuiteResult

DEFAULT_OUT_DIR = "embedgate-results"


def out_dir(option: str | None) -> Path:
    return Path(option or os.environ.get("EMBEDGATE_RESULTS") or DEFAULT_OUT_DIR)


def candidate_option(option: "str | list[str] | None") -> "str | list[str] | None":
    """The candidate(s) from the command line (repeatable: one per seed of a recipe), else $EMBEDGATE_CANDIDATE."""
    if isinstance(option, list):
        option = [o for o in option if o] or None
        if option and len(option) == 1:
            option = option[0]
    return option or os.environ.get("EMBEDGATE_CANDIDATE") or None


def publish(result: SuiteResult, json_path: Path) -> dict[str, str]:
    """Write the HTML report next to the JSON and append the markdown summary to $GITHUB_STEP_SUMMARY."""
    from embedgate import reports

    files = {"json": str(json_path)}
    files["html"] = str(reports.write_report(result, json_path))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(reports.render_markdown(result) + "\n")
        files["step_summary"] = summary
    return files


def gate_table(result: SuiteResult) -> str:
    """One line a gate: its status, name, what it tested and what was measured against that."""
    rows = []
    for g in result.gates:
        if g.decided_by == "interval" and g.ci is not None:
            # a gate that judged other systems than candidate against base names the two sides of its numbers
            sides = ("", "") if (g.system, g.against) == ("candidate", "base") else (f"{g.against} ", f"{g.system} ")
            nums = (f"{sides[0]}{g.base:.4f} -> {sides[1]}{g.candidate:.4f}  "
                    f"{100 * g.confidence:g}% CI [{g.ci[0]:+.4f}, {g.ci[1]:+.4f}]")
            if g.p_value is not None:
                nums += f"  p={g.p_value:.3g}"
        else:
            nums = g.observed
        req = f"  (requires {g.requirement})" if g.requirement else ""
        rows.append(f"  {STATUS_LABELS.get(g.status, g.status):<9} {g.name:<58} {nums}{req}")
    return "\n".join(rows)


def systems_table(result: SuiteResult) -> str:
    """Each data set's systems, a line each (kind, primary metric, the candidate's paired difference, p50 latency);
    empty for a suite of base and candidate only."""
    from embedgate.reports.text import systems_lines

    return "\n".join(systems_lines(result))


def seed_lines(result: SuiteResult) -> str:
    """For a recipe gated over seeds: each candidate's own verdict and its primary difference on each set."""
    if not result.seeds:
        return ""
    primary = result.options.get("metrics", ["ndcg@10"])[0]
    lines = [f"each candidate on its own ({result.pooling['candidates']} seeds; the gates above judge the recipe):"]
    for seed in result.seeds:
        means = ", ".join(f"{d} {primary} {m[primary]:.4f}" for d, m in seed.metrics.items() if primary in m)
        lines.append(f"  {seed.verdict.upper():<5} {seed.candidate}: {means}; {seed.summary}")
    return "\n".join(lines)
