"""The CI step summary: the same verdict and numbers as the HTML, short, and safe to render on GitHub."""
from __future__ import annotations

import re

from embedgate import reports
from embedgate.reports.markdown import cell, code_block
from test_reports_builder import XSS_QUERY, build_error_result, build_result

MINUS = "\u2212"


def _table_rows(md: str, header_start: str) -> list[list[str]]:
    lines = md.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(header_start))
    rows = []
    for ln in lines[start:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]])
    return rows[:1] + rows[2:]  # the header, then the rows (less the alignment line)


def _gate_rows(md: str) -> list[list[str]]:
    return _table_rows(md, "| | gate |")[1:]


def _signed(x: float) -> str:
    return ("0.0000" if round(x, 4) == 0 else f"{x:+.4f}").replace("-", MINUS)


def test_summary_has_verdict_gates_and_worst_queries():
    result = build_result(60, seed=0)
    md = reports.render_markdown(result)
    first = md.splitlines()[0]
    passed = sum(g["status"] == "pass" for g in result["gates"])
    assert first == f"### \u274c embedgate `legal`: FAIL ({passed} of {len(result['gates'])} gates passed)"
    rows = _gate_rows(md)
    assert len(rows) == len(result["gates"])
    for row, g in zip(rows, result["gates"]):
        # a gate that judged other systems than candidate against base names them
        pair = "" if g["system"] == "candidate" else f" ({cell(g['system'] + ' vs ' + g['against'])})"
        assert row[1] == cell(g["name"]) + pair
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


def test_summary_has_a_systems_table_per_data_set():
    result = build_result(60, seed=0)
    md = reports.render_markdown(result)
    assert md.count("**Systems** on") == 2  # main and the guard set
    for dname in ("main", "science"):
        section = result["datasets"][dname]
        table = _table_rows(md.split(f"**Systems** on {dname}")[1], "| system |")
        assert table[0] == ["system", "kind", "ndcg@10", "\u0394 candidate \u2212 system (95% CI)",
                            "p50 ms (batch 1, this machine)"]
        assert [r[0] for r in table[1:]] == [cell(n) for n in section["systems"]]
        for row, (name, summary) in zip(table[1:], section["systems"].items()):
            assert row[1] == summary["kind"] and row[2] == f"{section['metrics'][name]['ndcg@10']:.4f}"
            if name == "candidate":
                assert row[3] == "judged"
            else:
                cmp = section["versus"][f"candidate vs {name}"]["ndcg@10"]
                assert row[3] == f"{_signed(cmp['difference'])} [{_signed(cmp['ci'][0])}, {_signed(cmp['ci'][1])}]"
    rows = {r[0]: r for r in _table_rows(md.split("**Systems** on main")[1], "| system |")[1:]}
    assert rows["bm25"][4] == "0.58" and rows["base"][4] == "21.4" and rows[cell("openai-small")][4] == "not measured"


def test_terminal_summary_names_the_sides_and_lists_the_systems():
    """What `pytest suites/<name>` and `embedgate gate` print after the run: the gate table and the systems."""
    from embedgate.harness.schema import parse_suite_result
    from embedgate.harness.shells.publish import gate_table, systems_table

    result = build_result(60, seed=0)
    typed = parse_suite_result(result)
    gates = gate_table(typed).splitlines()
    pair = next(g for g in result["gates"] if g["system"] == "bm25-candidate")
    line = next(ln for ln in gates if pair["name"] in ln)
    assert f"bm25 {pair['base']:.4f} -> bm25-candidate {pair['candidate']:.4f}" in line
    default = next(ln for ln in gates if "ndcg@10 improves by 5%" in ln)
    g = result["gates"][0]
    assert f"  {g['base']:.4f} -> {g['candidate']:.4f}  95% CI" in default
    lines = systems_table(typed).splitlines()
    assert lines[0] == ("  systems on main (ndcg@10; d = candidate - system, paired, 95% CI; latency at batch 1, "
                        "this machine):")
    section = result["datasets"]["main"]
    cmp = section["versus"]["candidate vs bm25"]["ndcg@10"]
    bm25 = next(ln for ln in lines if ln.split()[0] == "bm25")
    assert bm25.split()[1:3] == ["bm25", f"{section['metrics']['bm25']['ndcg@10']:.4f}"]
    assert f"d {cmp['difference']:+.4f} [{cmp['ci'][0]:+.4f}, {cmp['ci'][1]:+.4f}]" in bm25
    assert bm25.endswith("p50 0.58 ms")
    assert next(ln for ln in lines if ln.split()[0] == "candidate").split()[3] == "(judged)"
    assert next(ln for ln in lines if ln.split()[0] == "openai-small").endswith("latency not measured")
    assert len([ln for ln in lines if ln.startswith("  systems on")]) == 2
    assert systems_table(parse_suite_result(build_result(30, references=False))) == ""  # nothing to add
