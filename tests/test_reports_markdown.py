"""The CI step summary: the same verdict and numbers as the HTML, short, and safe to render on GitHub."""
from __future__ import annotations

import re

from embedgate import reports
from embedgate.reports.markdown import cell, code_block
from test_reports_builder import XSS_QUERY, build_error_result, build_result

MINUS = "\u2212"


def _gate_rows(md: str) -> list[list[str]]:
    lines = md.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| | gate |"))
    rows = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]])
    return rows


def test_summary_has_verdict_gates_and_worst_queries():
    result = build_result(60, seed=0)
    md = reports.render_markdown(result)
    first = md.splitlines()[0]
    passed = sum(g["status"] == "pass" for g in result["gates"])
    assert first == f"### \u274c embedgate `legal`: FAIL ({passed} of {len(result['gates'])} gates passed)"
    rows = _gate_rows(md)
    assert len(rows) == len(result["gates"])
    for row, g in zip(rows, result["gates"]):
        assert row[1] == cell(g["name"])
        if g["base"] is not None:
            assert row[2] == f"{g['base']:.4f}" and row[3] == f"{g['candidate']:.4f}"
            # a gate shows the interval only when the interval is what it tests
            assert row[5] == (f"[{g['ci'][0]:+.4f}, {g['ci'][1]:+.4f}]".replace("-", MINUS) if g["ci"] else "n/a")
        assert cell(g["requirement"]) in row[7]
    # each gate that did not pass, with its reasoning
    for g in result["gates"]:
        if g["status"] != "pass":
            assert g["message"].splitlines()[0] in md
    # worst queries by text, in order of their loss
    pq = result["datasets"]["main"]["per_query"]
    worst = sorted((pq["candidate"][q]["ndcg@10"] - pq["base"][q]["ndcg@10"], q) for q in pq["base"])[:5]
    table = md.split("**Most regressed queries** on main")[1]
    ids = [m for m in re.findall(r"\| (aco\\_q\d+) \|", table)][:5]
    assert ids == [cell(q) for d, q in worst if d < 0]


def test_summary_escapes_html_and_markdown():
    result = build_result(60, seed=0)
    md = reports.render_markdown(result)
    assert "<b>" not in md and "<i>" not in md and "<script" not in md
    assert cell(XSS_QUERY) in md
    assert cell("a | b") == "a \\| b"
    assert cell("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"
    assert cell("**bold** _x_ [link](http://x)") == "\\*\\*bold\\*\\* \\_x\\_ \\[link\\](http://x)"
    # a message holding a fence cannot close the code block early
    block = code_block("before\n```\nafter")
    assert block.startswith("````text") and block.endswith("````")


def test_summary_stays_short_for_a_large_suite():
    md = reports.render_markdown(build_result(3000, seed=1))
    assert len(md) < 8000
    assert md.count("**Most regressed queries**") == 2  # main and the guard set, five rows each


def test_summary_of_an_error_run():
    result = build_error_result()
    md = reports.render_markdown(result)
    assert md.splitlines()[0].endswith("ERROR (0 of 2 gates passed)")
    assert "**error:**" in md and "qrels/test.tsv line 17" in md
    assert "Most regressed" not in md
