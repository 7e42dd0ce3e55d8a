"""What both shells (the pytest plugin and `embedgate gate`) do around run_suite: write the result, the HTML
report and the CI step summary. Shells may import reports; the harness core never does."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..io import atomic_write_text

DEFAULT_OUT_DIR = "embedgate-results"


def out_dir(option: str | None) -> Path:
    return Path(option or os.environ.get("EMBEDGATE_RESULTS") or DEFAULT_OUT_DIR)


def candidate_option(option: str | None) -> str | None:
    return option or os.environ.get("EMBEDGATE_CANDIDATE") or None


def publish(result: dict[str, Any], json_path: Path) -> dict[str, str]:
    """Write the HTML report next to the JSON and append the markdown summary to $GITHUB_STEP_SUMMARY."""
    files = {"json": str(json_path)}
    from embedgate import reports
    files["html"] = str(reports.write_report(result, json_path))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(reports.render_markdown(result) + "\n")
        files["step_summary"] = summary
    return files


def gate_table(result: dict[str, Any]) -> str:
    marks = {"pass": "PASS", "fail": "FAIL", "inconclusive": "NOT SHOWN", "error": "ERROR"}
    rows = []
    for g in result["gates"]:
        nums = ""
        if g.get("base") is not None and g.get("candidate") is not None:
            nums = f"{g['base']:.4f} -> {g['candidate']:.4f}"
            if g.get("ci"):
                nums += f"  CI [{g['ci'][0]:+.4f}, {g['ci'][1]:+.4f}]  p={g['p_value']:.3g}"
        rows.append(f"  {marks.get(g['status'], g['status']):<9} {g['name']:<58} {nums}")
    return "\n".join(rows)
