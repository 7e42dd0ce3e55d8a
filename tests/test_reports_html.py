"""The HTML report, read as a reader reads it: parsed, then checked for the numbers and texts a decision needs."""
from __future__ import annotations

import json
import re
import time

import lxml.html
import pytest

from embedgate import reports
from embedgate.reports import charts
from embedgate.reports.view import SHOWN_QUERIES
from test_reports_builder import XSS_IMG, XSS_QUERY, XSS_SCRIPT, build_error_result, build_result

MINUS = "\u2212"


def f4(x: float) -> str:
    return f"{x:.4f}".replace("-", MINUS)


def s4(x: float) -> str:
    return ("0.0000" if round(x, 4) == 0 else f"{x:+.4f}").replace("-", MINUS)


def cls(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


def text(el) -> str:
    return " ".join(el.text_content().split())


@pytest.fixture(scope="module")
def result():
    return build_result(60, seed=0)


@pytest.fixture(scope="module")
def page(result):
    return lxml.html.fromstring(reports.render_html(result))


def test_verdict_banner_says_whether_it_may_ship_and_why(result, page):
    banner = page.xpath(f"//section[{cls('banner')}]")[0]
    assert text(banner.xpath(f".//*[{cls('verdict-word')}]")[0]) == result["verdict"].upper() == "FAIL"
    assert "Do not promote" in text(banner)
    assert result["summary"] in text(banner)
    blocking = [g for g in result["gates"] if g["status"] != "pass"]
    items = banner.xpath(f".//ul[{cls('blocking')}]/li")
    assert [text(li.xpath(".//b")[0]) for li in items] == [g["name"] for g in blocking]
    # the measured line of each blocking gate's message is in the banner, so the "why" needs no click
    for li, g in zip(items, blocking):
        assert g["message"].splitlines()[1].strip() in text(li)
    # headline numbers: the main metric of each set, base -> candidate and the interval
    main = result["datasets"]["main"]["comparisons"]["ndcg@10"]
    headline = text(banner.xpath(f".//a[{cls('headline')}]")[0])
    assert f"{f4(main['base'])} \u2192 {f4(main['candidate'])}" in headline
    assert f"[{s4(main['ci'][0])}, {s4(main['ci'][1])}]" in headline


def test_gates_table_shows_each_gates_numbers(result, page):
    rows = page.xpath(f"//table[{cls('gates')}]/tbody/tr[{cls('gate')}]")
    assert len(rows) == len(result["gates"])
    for row, g in zip(rows, result["gates"]):
        cells = row.xpath("./td")
        assert text(cells[1]).startswith(g["name"])
        assert text(cells[0]) == {"pass": "PASS", "fail": "FAIL", "inconclusive": "NOT SHOWN"}[g["status"]]
        if g["base"] is None:
            assert text(cells[3]) == text(cells[4]) == "n/a"
            continue
        # a gate on other systems than candidate against base names them under its two numbers
        sides = ("", "") if (g["system"], g["against"]) == ("candidate", "base") else \
            (f" {g['against']}", f" {g['system']}")
        assert text(cells[3]) == f4(g["base"]) + sides[0]
        assert text(cells[4]) == f4(g["candidate"]) + sides[1]
        assert f"{g['system']} vs {g['against']}" in text(cells[1])
        assert text(cells[5]).startswith(s4(g["difference"]))
        assert text(cells[11]) == str(g["n_queries"])
        if g["decided_by"] != "interval":  # a floor or a count: what it tested, and no interval beside it
            assert text(cells[7]).startswith("n/a") and text(cells[8]) == "n/a" and g["observed"] in text(cells[1])
            continue
        assert f"[{s4(g['ci'][0])}, {s4(g['ci'][1])}]" in text(cells[7])
        p = g["p_value"]
        if p is None:  # non-inferiority tests the margin, not a zero difference
            assert text(cells[8]) == "n/a"
        else:
            assert text(cells[8]) == ("< 1e-4" if p <= 1e-4 else f"{p:.3f}" if p >= 0.001 else
                                      f"{p:.1e}".replace("-", MINUS))
        assert text(cells[10]) == f4(g["mde"])
    # the requirement column states each threshold
    req = {g["kind"]: text(r.xpath("./td")[9]) for g, r in zip(result["gates"], rows) if g["system"] == "candidate"}
    improvement = next(g for g in result["gates"] if g["kind"] == "improvement")
    assert s4(improvement["threshold"]["required_difference"]) in req["improvement"]
    assert "> -0.0100" in req["non_inferiority"]
    for g, r in zip(result["gates"], rows):  # the gate class's own words, as the result carries them
        assert text(r.xpath("./td")[9]) == g["requirement"]
    assert "10% of queries lose > 0.1" in req["regression_budget"]


def test_failed_gate_message_is_shown_in_full(result, page):
    failed = [g for g in result["gates"] if g["status"] == "fail"]
    assert failed, "the fixture must have a failing gate"
    messages = [m.text_content() for m in page.xpath(f"//pre[{cls('message')}]")]
    for g in failed:
        assert g["message"] in messages
    golden = next(g for g in result["gates"] if g["kind"] == "golden")
    table = page.xpath(f"//table[{cls('mini')}][.//th[starts-with(., 'within top')]]")[0]
    for pair, tr in zip(golden["details"]["pairs"], table.xpath("./tbody/tr")):
        assert pair["document"] in text(tr)
        assert ("yes" if pair["hit"] else "no") == text(tr.xpath("./td")[-1])


def _expected_extremes(section, metric, n):
    pq = section["per_query"]
    diffs = sorted((pq["candidate"][q][metric] - pq["base"][q][metric], q) for q in pq["base"])
    down = [q for d, q in diffs if d < 0][:n]
    up = [q for d, q in reversed(diffs) if d > 0][:n]
    return down, up


def test_most_regressed_and_improved_queries_in_order(result, page):
    section = result["datasets"]["main"]
    down, up = _expected_extremes(section, "ndcg@10", SHOWN_QUERIES)
    assert down and up
    ds = page.xpath("//section[@id='data-main']")[0]
    shown_down = [d.get("data-qid") for d in ds.xpath(f".//div[{cls('q-down')}]//details[{cls('query')}]")]
    shown_up = [d.get("data-qid") for d in ds.xpath(f".//div[{cls('q-up')}]//details[{cls('query')}]")]
    assert shown_down == down
    assert shown_up == up
    first = ds.xpath(f".//div[{cls('q-down')}]//details[{cls('query')}]")[0]
    q = down[0]
    summary = text(first.xpath("./summary")[0])
    assert section["queries"][q] in summary
    b, c = section["per_query"]["base"][q]["ndcg@10"], section["per_query"]["candidate"][q]["ndcg@10"]
    assert f"{b:.3f} \u2192 {c:.3f}" in summary
    assert f"{c - b:+.3f}".replace("-", MINUS) in summary


def test_expanded_query_lists_both_rankings_with_relevance_and_moves(result, page):
    section = result["datasets"]["main"]
    q = _expected_extremes(section, "ndcg@10", 1)[0][0]
    det = page.xpath(f"//details[@data-qid='{q}']")[0]
    for side in ("base", "candidate"):
        hits = det.xpath(f".//div[{cls('r-' + side)}]//li")
        kept = section["rankings"][side][q]
        assert [text(h.xpath(f"./span[{cls('id')}]")[0]) for h in hits] == [d for d, _ in kept]
        for h, (doc, _) in zip(hits, kept):
            is_rel = section["qrels"][q].get(doc, 0) > 0
            assert ("rel" in h.get("class").split()) == is_rel
            if is_rel:
                assert text(h.xpath(f"./span[{cls('grade')}]")[0]) == str(section["qrels"][q][doc])
    # every relevant document, with its rank in both models and how far it moved
    rows = det.xpath(f".//table[{cls('relevant')}]/tbody/tr")
    assert len(rows) == len(section["qrels"][q])
    for tr in rows:
        doc = text(tr.xpath(f".//span[{cls('id')}]")[0])
        b = section["relevant_ranks"]["base"][q][doc]
        c = section["relevant_ranks"]["candidate"][q][doc]
        cells = [text(td) for td in tr.xpath("./td")]
        assert cells[2] == (f"#{b}" if b else ">100") and cells[3] == (f"#{c}" if c else ">100")
        if b and c:
            assert cells[4] == ("=" if b == c else f"\u2191{b - c}" if c < b else f"\u2193{c - b}")


def _dl(el) -> dict[str, tuple[str, str | None]]:
    """A definition list as {term: (shown text, title)}."""
    return {text(dt): (text(dd), dd.get("title")) for dt, dd in zip(el.xpath("./dt"), el.xpath("./dd"))}


def test_fingerprints_are_grouped_with_hashes_shortened(result, page):
    fp = page.xpath("//section[@id='fingerprints']")[0]
    groups = fp.xpath(f".//section[{cls('fp-group')}]")
    assert [g.get("data-group") for g in groups] == ["data", "models", "training", "environment", "timings"]
    data, models, training, env, timings = groups
    # data: per set its content hash, shortened, the whole of it in the title; the suite file and its options
    for (dname, section), h4 in zip(result["datasets"].items(), data.xpath("./h4")[:2]):
        assert text(h4).startswith(dname)
        rows = _dl(h4.xpath("following-sibling::dl[1]")[0])
        full = section["data"]["content_hash"]
        assert rows["content"] == (full[:12] + "\u2026", full)
        assert rows["size"][0] == (f"{section['data']['n_documents']} documents, {section['data']['n_queries']} "
                                   f"queries, {section['data']['n_positive_judgments']} positives")
    suite = _dl(data.xpath("./h4[normalize-space()='suite file']/following-sibling::dl[1]")[0])
    assert suite["sha256"] == (result["suite"]["sha256"][:12] + "\u2026", result["suite"]["sha256"])
    options = _dl(data.xpath("./h4[normalize-space()='options']/following-sibling::dl[1]")[0])
    assert options["resamples"][0] == "400" and options["metrics"][0] == "ndcg@10, recall@100, mrr@10"
    # models side by side, differences highlighted, digests shortened with the full value in the title
    rows = {text(tr.xpath("./th")[0]): tr for tr in models.xpath(".//table[contains(@class,'models-fp')]//tr[th]")}
    for key in ("fingerprint", "weights_fingerprint"):
        spans = rows[key].xpath("./td/span")
        assert [s_.get("title") for s_ in spans] == [result["models"][side][key] for side in ("base", "candidate")]
        assert [text(s_) for s_ in spans] == [result["models"][side][key][:12] + "\u2026"
                                               for side in ("base", "candidate")]
    differs = {k for k, tr in rows.items() if "differs" in (tr.get("class") or "")}
    assert {"name", "fingerprint", "weights_fingerprint", "path", "source"} <= differs and "dtype" not in differs
    # training: the candidate's manifest in sections, as the manifest holds it
    manifest = result["models"]["candidate"]["training_manifest"]
    subs = {text(d.xpath("./h4")[0]): _dl(d.xpath("./dl")[0]) for d in training.xpath(f".//div[{cls('fp-sub')}]")}
    assert list(subs)[:3] == ["recipe", "base model", "training data"]
    assert subs["recipe"]["name"][0] == manifest["name"]
    assert subs["recipe"]["sha256"][1] == manifest["recipe"]["sha256"]
    assert subs["training data"]["n_pairs"][0] == str(manifest["data"]["train"]["n_pairs"])
    assert subs["training"]["loss \u203a class"][0] == manifest["training"]["loss"]["class"]
    assert subs["training"]["global_step"][0] == str(manifest["training"]["global_step"])
    assert subs["hard negatives"]["pairs_out"][0] == str(manifest["hard_negatives"]["pairs_out"])
    assert subs["contamination"]["clean"][0] == "yes"
    # environment: the commit shortened, every package with its version
    rows = _dl(env.xpath("./dl")[0])
    commit = result["environment"]["git"]["commit"]
    assert rows["git commit"] == (commit[:12] + "\u2026", commit)
    assert rows["fingerprint"][0] == result["environment"]["fingerprint"]
    packages = _dl(env.xpath("./h4[normalize-space()='packages']/following-sibling::dl[1]")[0])
    assert {k: v for k, (v, _) in packages.items()} == result["environment"]["packages"]
    # timings: seconds per system and set, the parts in the title
    assert f"{result['timings']['total_s']} s in all" in text(timings.xpath("./h3")[0])
    head = [text(th) for th in timings.xpath(".//thead//th")]
    assert head == ["system", *result["timings"]["datasets"]]
    row = timings.xpath(".//tbody/tr[th[normalize-space()='bm25']]")[0]
    bm25 = result["timings"]["datasets"]["main"]["bm25"]
    assert text(row.xpath("./td")[0]) == str(bm25["total_s"])
    assert row.xpath("./td")[0].get("title") == f"index_s {bm25['index_s']:g}; retrieve_s {bm25['retrieve_s']:g}"
    cand = timings.xpath(".//tbody/tr[th[normalize-space()='candidate']]/td")[0].get("title")
    docs = result["timings"]["datasets"]["main"]["candidate"]["encode"]["documents"]
    assert f"documents: {docs['cached']} of {docs['requested']} cached" in cand
    # no flattened dotted keys anywhere (the old layout)
    assert "recipe.sha256" not in text(fp) and "loss.name" not in text(fp)


def test_training_line_near_the_top_states_the_manifest(result, page):
    manifest = result["models"]["candidate"]["training_manifest"]
    line = page.xpath(f"//section[{cls('banner')}]//p[{cls('trained')}]")[0]
    values = {b.get("data-k"): text(b) for b in line.xpath(".//b[@data-k]")}
    minutes, secs = divmod(round(manifest["wall_time_s"]), 60)
    assert values == {"recipe": manifest["name"], "base_model": manifest["base_model"]["name"],
                      "pairs": f"{manifest['data']['train']['n_pairs']:,}",
                      "steps": str(manifest["training"]["global_step"]),
                      "loss": f"{manifest['training']['loss']['class']} (scale "
                              f"{manifest['training']['loss']['scale']:g})",
                      "seed": str(manifest["seed"]), "wall": f"{minutes} min {secs} s", "contamination": "clean"}
    assert "with hard negatives" in text(line) and "acord train" in text(line)
    assert line.xpath(".//b[@data-k='recipe']/@title") == [manifest["recipe"]["path"]]
    untrained = build_result(30, seed=0, manifest=False, hostile=False)
    doc = lxml.html.fromstring(reports.render_html(untrained))
    assert not doc.xpath(f"//p[{cls('trained')}]")
    assert "carries no training manifest" in text(doc.xpath("//section[@data-group='training']")[0])


def test_p_values_at_or_below_the_floor_read_below_1e4(result):
    """A p of 1e-4 (the resolution of 10,000 resamples) or of 1e-49 (a t-test on thousands of queries) claims no
    more than p < 1e-4: the page says so, never '1.0e-04'."""
    import copy

    from embedgate.reports.format import p_value

    assert [p_value(x) for x in (1e-4, 1.0102e-49, 9.99e-5, 4.2e-4, 0.0371, 0.9996, None)] == \
        ["< 1e-4", "< 1e-4", "< 1e-4", f"4.2e{MINUS}04", "0.037", "1.000", "n/a"]
    floor = copy.deepcopy(result)
    imp = next(g for g in floor["gates"] if g["kind"] == "improvement")
    imp["p_value"] = 1e-4
    main = floor["datasets"]["main"]
    main["comparisons"]["ndcg@10"]["p_value"] = 1.0102365557128722e-49
    main["versus"]["candidate vs bm25"]["ndcg@10"]["p_value"] = 4.2e-4
    html = reports.render_html(floor)
    doc = lxml.html.fromstring(html)
    row = doc.xpath(f"//tr[{cls('gate')}][td[2][starts-with(normalize-space(), '{imp['name']}')]]")[0]
    assert text(row.xpath("./td")[8]) == "< 1e-4"
    assert "p < 1e-4" in text(doc.xpath(f"//a[{cls('headline')}]")[0])
    curve = doc.xpath("//section[@id='data-main']//table[@class='curve-table']/tbody/tr[td[1]='ndcg@10']")[0]
    assert text(curve.xpath("./td")[6]) == "< 1e-4"
    bm25 = doc.xpath("//section[@id='data-main']//tr[@data-system='bm25']/td")
    assert text(bm25[7]) == f"4.2e{MINUS}04"
    assert "1.0e" not in html and "e-49" not in html and "e\u221249" not in html
    md = reports.render_markdown(floor)
    line = next(ln for ln in md.splitlines() if ln.startswith("|") and imp["name"] in ln)
    assert "| < 1e-4 |" in line


def test_the_mde_is_explained_where_it_first_appears(result, page):
    gates = page.xpath("//section[@id='gates']")[0]
    note = gates.xpath(f".//p[{cls('mde-note')}]")[0]
    assert note.xpath("preceding-sibling::table[1]")[0] is gates.xpath(f".//table[{cls('gates')}]")[0]
    said = text(note)
    assert said.startswith("MDE, the minimum detectable effect: the smallest true gain this suite would detect 80% "
                           "of the time at 95% confidence, from the spread of the per-query differences")
    first = next(g for g in result["gates"] if g["mde"] is not None)
    assert f"\u201c{first['name']}\u201d: {f4(first['mde'])} over {first['n_queries']} queries" in said
    # nothing earlier on the page speaks of an MDE it has not explained
    before = page.xpath("//section[@id='gates']/preceding::*[contains(text(), 'MDE')]")
    assert not before


def test_interval_strips_have_an_axis_with_zero_and_the_gates_bar(result, page):
    from embedgate.reports.view import strip_domain

    domain = strip_domain(result["gates"])
    step, ticks = charts.strip_ticks(domain)
    assert 0.0 in ticks and len(ticks) >= 3
    rows = page.xpath(f"//table[{cls('gates')}]//tr[{cls('gate')}]")
    drawn = 0
    for row, g in zip(rows, result["gates"]):
        svg = row.xpath(".//svg[contains(@class, 'strip')]")
        if not g.get("ci"):
            assert not svg
            continue
        drawn += 1
        svg = svg[0]
        labels = [(float(t.get("x")), text(t)) for t in svg.xpath(".//*[local-name()='text'][@class='tick']")]
        assert "0" in [lab for _, lab in labels]
        shown = [charts._signed_tick(t, step) for t in ticks]
        assert [lab for _, lab in labels if lab in shown] and all(lab in shown for _, lab in labels)
        assert len(svg.xpath(".//*[local-name()='line'][@class='axis']")) == 1 + len(ticks)  # the axis, its ticks
        zero = svg.xpath(".//*[local-name()='line'][@class='zero']")[0]
        zero_label = next(x for x, lab in labels if lab == "0")
        assert float(zero.get("x1")) == pytest.approx(zero_label, abs=0.11)
        ref = g.get("reference")
        marks = svg.xpath(".//*[local-name()='text'][@class='ref-label']")
        if ref:
            assert [text(m) for m in marks] == [f"{ref['label']} {ref['value']:+.3f}".replace("-", MINUS)]
            line = svg.xpath(".//*[local-name()='line'][@class='threshold']")[0]
            lo, hi = domain
            expected = 11 + (ref["value"] - lo) / (hi - lo) * (charts.STRIP_WIDTH - 22)
            assert float(line.get("x1")) == pytest.approx(expected, abs=0.06)
        else:
            assert not marks
    assert drawn >= 3
    note = page.xpath(f"//p[{cls('strip-note')}]")[0]
    assert "dotted line is 0" in text(note) and "required gain, or the margin" in text(note)


def test_hostile_texts_render_as_inert_text(result):
    html = reports.render_html(result)
    doc = lxml.html.fromstring(html)
    scripts = doc.xpath("//script")
    assert len(scripts) == 1 and "alert" not in scripts[0].text_content()  # only the report's own script
    assert not doc.xpath("//img") and not doc.xpath("//b[contains(., 'bold')]")
    assert not doc.xpath("//*[@onerror or @onload or @onclick]")
    texts = [t.text_content() for t in doc.xpath(f"//div[{cls('txt')}]")]
    assert XSS_SCRIPT in texts and XSS_IMG in texts  # shown, as text
    assert XSS_QUERY in [t.text_content() for t in doc.xpath(f"//span[{cls('qtext')}]")]
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_charts_are_drawn_from_the_result(result, page):
    ds = page.xpath("//section[@id='data-main']")[0]
    curves = ds.xpath(".//figure[@data-chart='curve']/svg")
    assert len(curves) == 3  # ndcg, recall, mrr
    for svg in curves:
        lines = [p.get("d") for p in svg.xpath(".//path") if p.get("fill") == "none"]
        assert len(lines) >= 3 and all(d.count("L") >= 5 for d in lines)  # 6 cut-offs -> 5 segments
        assert svg.xpath(f".//path[{cls('band')}]")  # the interval band
    # hover titles carry the exact means of the result
    titles = {t.text_content() for t in ds.xpath(".//figure[@data-chart='curve']//title")}
    cand = result["datasets"]["main"]["metrics"]["candidate"]["ndcg@10"]
    assert f"candidate ndcg@10 = {cand:.4f}" in titles
    hist = ds.xpath(".//figure[@data-chart='histogram']/svg")
    assert len(hist) == 3
    counts = [int(re.search(r": (\d+) quer", t.text_content()).group(1)) for t in hist[0].xpath(".//rect/title")]
    assert sum(counts) == 60
    pq = result["datasets"]["main"]["per_query"]
    ties = sum(1 for q in pq["base"] if pq["base"][q]["ndcg@10"] == pq["candidate"][q]["ndcg@10"])
    assert f"{ties} tied" in text(hist[0])


def test_histogram_bins_are_symmetric_with_ties_apart():
    h = charts.bin_differences([-0.3, -0.05, 0.0, 0.0, 0.1, 0.25, 0.25])
    assert h.ties == 2 and sum(h.negative) == 2 and sum(h.positive) == 3
    width = h.edges[1]
    assert width == pytest.approx(0.05)  # a round step giving about 10 bins over the largest |difference|
    assert h.negative[round(0.3 / width) - 1] == 1 and h.negative[0] == 1  # -0.05 falls in (-0.05, 0]
    assert h.positive[round(0.25 / width) - 1] == 2
    assert charts.bin_differences([0.0, 0.0]).ties == 2


def test_every_query_table_and_no_comparisons_block():
    result = build_result(40, seed=5, comparisons=False, guard=False, hostile=False)
    page = lxml.html.fromstring(reports.render_html(result))
    rows = page.xpath("//details[@id='data-main-all']//tbody/tr")
    assert len(rows) == 40
    pq = result["datasets"]["main"]["per_query"]
    first = min(pq["base"], key=lambda q: (pq["candidate"][q]["ndcg@10"] - pq["base"][q]["ndcg@10"], q))
    assert text(rows[0].xpath("./td")[1]) == first
    # without paired comparisons the curves still draw the means, with no band, and the banner shows the means
    svg = page.xpath("//figure[@data-chart='curve']/svg")[0]
    assert not svg.xpath(f".//path[{cls('band')}]") and svg.xpath(".//circle")
    assert "science" not in text(page.xpath("//header")[0])


def test_error_run_renders_what_is_known():
    result = build_error_result()
    page = lxml.html.fromstring(reports.render_html(result))
    banner = page.xpath(f"//section[{cls('banner')}]")[0]
    assert text(banner.xpath(f".//*[{cls('verdict-word')}]")[0]) == "ERROR"
    assert result["error"] in text(banner)
    assert "Not evaluated" in text(banner)
    rows = page.xpath(f"//tr[{cls('gate')}]")
    assert len(rows) == 2 and all(text(r.xpath("./td")[3]) == "n/a" for r in rows)
    assert not page.xpath(f"//section[{cls('dataset')}]")
    assert "No data set was evaluated" in text(page)


def test_large_suite_stays_small_and_fast():
    result = build_result(3000, seed=2, guard=True)
    t0 = time.perf_counter()
    html = reports.render_html(result)
    seconds = time.perf_counter() - t0
    size = len(html.encode("utf-8"))
    assert size < 3_000_000, f"{size / 1e6:.2f} MB"
    assert seconds < 10, f"{seconds:.1f} s"
    page = lxml.html.fromstring(html)
    main = page.xpath("//section[@id='data-main']")[0]
    assert len(main.xpath(f".//details[{cls('query')}]")) <= 2 * SHOWN_QUERIES
    assert len(main.xpath(".//details[@id='data-main-all']//tbody/tr")) == 3000
    assert main.xpath(".//details[@id='data-main-all']")[0].get("open") is None  # collapsed


def test_comparison_of_several_runs(result):
    other = build_result(60, seed=0, shift=0.08, created_at="2026-11-23T09:00:00+00:00", candidate="models/v4")
    other["models"]["base"]["fingerprint"] = "f" * 64
    page = lxml.html.fromstring(reports.render_html([result, other]))
    cmp = page.xpath("//section[@id='compare']")[0]
    assert "Comparing 2 runs" in text(cmp)
    assert "base model differs" in text(cmp)
    head = [text(th) for th in cmp.xpath(".//table[1]/thead//th")]
    assert head[1:] == ["run 1", "run 2"]
    row = cmp.xpath(".//tr[th[normalize-space()='main \u00b7 ndcg@10']]")[0]
    cells = [text(td) for td in row.xpath("./td")]
    for cell, r in zip(cells, (result, other)):
        assert cell.startswith(f4(r["datasets"]["main"]["comparisons"]["ndcg@10"]["candidate"]))
    assert len(cmp.xpath(".//figure[@data-chart='runs']")) == 3
    runs = page.xpath(f"//details[{cls('run')}]")
    assert len(runs) == 2
    ids = page.xpath("//@id")
    assert len(ids) == len(set(ids)), "element ids must be unique across runs"


def test_write_report_next_to_json_with_trend(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    earlier = []
    for i, (day, shift) in enumerate([("20", -0.02), ("21", 0.0), ("22", 0.05)]):
        r = build_result(30, seed=i, shift=shift, created_at=f"2026-11-{day}T10:00:00+00:00", hostile=False)
        (folder / f"legal-2026-11-{day}.json").write_text(json.dumps(r))
        earlier.append(r)
    (folder / "other-suite.json").write_text(json.dumps(build_result(20, suite="medical", hostile=False)))
    (folder / "broken.json").write_text("{not json")
    (folder / "notes.json").write_text(json.dumps({"hello": 1}))
    current = build_result(30, seed=9, created_at="2026-11-23T10:00:00+00:00", hostile=False)
    json_path = folder / "legal-2026-11-23.json"
    json_path.write_text(json.dumps(current))
    out = reports.write_report(current, json_path)
    assert out == folder / "legal-2026-11-23.html" and out.is_file()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary file left behind
    page = lxml.html.fromstring(out.read_text(encoding="utf-8"))
    trend = page.xpath("//section[@id='trend']")[0]
    rows = trend.xpath(".//table/tbody/tr")
    assert len(rows) == 4  # three earlier runs of 'legal' and this one; the other suite and junk left out
    assert "this run" in text(rows[0])
    for tr, r in zip(rows[1:], reversed(earlier)):
        assert text(tr.xpath("./td")[4]) == f4(r["datasets"]["main"]["metrics"]["candidate"]["ndcg@10"])
        assert text(tr.xpath("./td")[1]) == r["verdict"].upper()
    assert trend.xpath(".//svg//circle")
    # an explicit empty history leaves the trend out
    out = reports.write_report(current, json_path, history=[])
    assert not lxml.html.fromstring(out.read_text(encoding="utf-8")).xpath("//section[@id='trend']")


def test_trend_is_bounded(tmp_path):
    for i in range(25):
        r = build_result(20, seed=i, created_at=f"2026-10-{i + 1:02d}T10:00:00+00:00", hostile=False,
                         guard=False)
        (tmp_path / f"legal-{i:02d}.json").write_text(json.dumps(r))
    current = build_result(20, seed=99, created_at="2026-11-30T10:00:00+00:00", hostile=False, guard=False)
    history = reports.history.find_history(tmp_path / "legal-now.json", current)
    assert len(history) == 19
    assert history[0]["created_at"] == "2026-10-07T10:00:00+00:00"  # the newest 19 earlier runs, oldest first
    assert history[-1]["created_at"] == "2026-10-25T10:00:00+00:00"


def test_report_of_a_real_gate_run(tiny_model, small_beir, tmp_path):
    """End to end with the gate as it is: run_suite's result renders, and its gates read back exactly."""
    from embedgate.harness.suite import run_suite

    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "suite.toml").write_text(f"""
name = "tiny"
[base]
model = "{tiny_model}"
[data.main]
path = "{small_beir}"
[evaluation]
metrics = ["ndcg@10", "recall@5"]
ks = [1, 3, 5, 10]
resamples = 200
[[gates]]
kind = "improvement"
metric = "ndcg@10"
min_relative = 0.05
[[gates]]
kind = "golden"
queries = [{{query = "q1", documents = ["d0"]}}]
""")
    result = run_suite(suite, str(tiny_model), cache=False, out_dir=tmp_path / "out")
    json_path = result.files["json"]
    loaded = reports.load_result(json_path)
    out = reports.write_report(loaded, json_path)
    page = lxml.html.fromstring(out.read_text(encoding="utf-8"))
    rows = page.xpath(f"//tr[{cls('gate')}]")
    assert [text(r.xpath("./td")[1]).startswith(g["name"]) for r, g in zip(rows, loaded["gates"])] == [True, True]
    imp = loaded["gates"][0]
    assert text(rows[0].xpath("./td")[3]) == f4(imp["base"])
    # the same model as base and candidate: no query moves, and the report says so
    assert "No query lost" in text(page.xpath("//section[@id='data-main']")[0])
    assert text(page.xpath(f"//*[{cls('verdict-word')}]")[0]) == loaded["verdict"].upper()


def test_hostile_names_in_every_field_stay_inert(result):
    """Not only texts: suite, gate, data set and model names land in attributes, ids and SVG titles too."""
    import copy

    evil = copy.deepcopy(result)
    evil["suite"]["name"] = '"><script>alert(3)</script>'
    evil["gates"][0]["name"] = "<img src=x onerror=alert(4)>"
    evil["models"]["candidate"]["name"] = '" onmouseover="alert(5)'
    evil["datasets"]['"><svg onload=alert(6)>'] = copy.deepcopy(evil["datasets"]["science"])
    evil["summary"] = "</pre><script>alert(7)</script>"
    main = evil["datasets"]["main"]  # a system's name is a key of the suite file: it lands in rows, ids and charts
    for block in ("systems", "metrics", "per_query", "rankings", "relevant_ranks"):
        main[block]["<img src=x onerror=alert(8)>"] = main[block].pop("bm25")
    for html in (reports.render_html(evil), reports.render_html([evil, result])):
        doc = lxml.html.fromstring(html)
        assert len(doc.xpath("//script")) == 1 and "alert" not in doc.xpath("//script")[0].text_content()
        assert not doc.xpath("//img") and not doc.xpath("//*[local-name()='svg'][@onload]")
        assert not doc.xpath("//*[@onerror or @onload or @onmouseover]")
        assert any(evil["suite"]["name"] in text(h) for h in doc.xpath("//h1"))  # shown, as text


def test_tied_rankings_are_stated_per_data_set(result):
    """A reader must learn that the order of equal scores came from the tie rule, and on which side."""
    import copy

    tied = copy.deepcopy(result)
    tied["datasets"]["main"]["tied_rankings"] = {"base": 50, "candidate": 48}
    for other in list(tied["datasets"])[1:]:
        tied["datasets"][other]["tied_rankings"] = {"base": 0, "candidate": 0}
    page = lxml.html.fromstring(reports.render_html(tied))
    notes = page.xpath(f"//p[{cls('ties')}]")
    assert len(notes) == 1
    assert "Tied scores in 50 base and 48 candidate rankings" in text(notes[0])
    assert "trec_eval" in text(notes[0])
    assert notes[0].xpath("ancestor::section[1]/@id")[0].endswith("data-main")


def test_the_result_decides_which_queries_are_expanded(result):
    """The gate run keeps rankings for the queries it chose; the report expands those and no others."""
    import copy

    lean = copy.deepcopy(result)
    section = lean["datasets"]["main"]
    down, up = _expected_extremes(section, "ndcg@10", 3)
    section["shown_queries"] = down[:2] + up[:1]
    page = lxml.html.fromstring(reports.render_html(lean))
    ds = page.xpath("//section[@id='data-main']")[0]
    expanded = [d.get("data-qid") for d in ds.xpath(f".//details[{cls('query')}]")]
    assert expanded == down[:2] + up[:1]


# ------------------------------------------------------------------------------------------------ systems


def _systems_rows(page, dname="main"):
    return page.xpath(f"//section[@id='data-{dname}']//table[{cls('systems-table')}]/tbody/tr")


def test_systems_table_has_a_row_per_system_with_the_results_numbers(result, page):
    section = result["datasets"]["main"]
    rows = _systems_rows(page)
    assert [r.get("data-system") for r in rows] == list(section["systems"]) == \
        ["base", "candidate", "bm25", "bm25-candidate", "openai-small"]
    table = rows[0].xpath("ancestor::table[1]")[0]
    head = [text(th) for th in table.xpath("./thead//th")]
    assert head[2:5] == ["ndcg@10", "recall@100", "mrr@10"]  # the suite's metrics, in its order
    assert "latency p50 / p95 ms batch 1, this machine" in head and "API cost" in head
    versus = section["versus"]
    for row in rows:
        name, cells = row.get("data-system"), row.xpath("./td")
        assert text(cells[0]) == f"{name} {section['systems'][name]['kind']}"
        assert [text(c) for c in cells[2:5]] == [f4(section["metrics"][name][m]) for m in
                                                 ("ndcg@10", "recall@100", "mrr@10")]
        if name == "candidate":
            assert text(cells[5]) == "the judged side"
            continue
        cmp = versus[f"candidate vs {name}"]["ndcg@10"]  # the candidate minus this system, on the primary metric
        assert text(cells[5]).startswith(s4(cmp["difference"]))
        assert text(cells[6]) == f"[{s4(cmp['ci'][0])}, {s4(cmp['ci'][1])}]"
        assert text(cells[7]) == f"{cmp['p_value']:.3f}"
    by_name = {r.get("data-system"): [text(c) for c in r.xpath("./td")] for r in rows}
    # what each system is, what it takes to serve and what it cost (300 documents)
    assert by_name["bm25"][1] == "lucene k1=1.2 b=0.75 \u00b7 stemmer PyStemmer english \u00b7 stopwords en"
    assert by_name["bm25-candidate"][1] == "rrf of bm25 + candidate (k=60)"
    assert by_name["openai-small"][1] == "openai text-embedding-3-small, 512 dimensions \u00b7 41,250 tokens"
    assert by_name["base"][1].startswith("sentence-transformers/all-MiniLM-L6-v2 \u00b7 float32 \u00b7 max 256")
    assert by_name["base"][8:] == ["21.4 / 27.9", "461 kB 1.54 GB", "\u2014"]
    assert by_name["bm25"][8:] == ["0.58 / 0.68", "75 kB 250 MB", "\u2014"]
    assert by_name["openai-small"][8] == "not measured for this kind (each API request costs money)"
    assert by_name["openai-small"][10] == "$0.000825"


def test_systems_table_tolerates_a_partial_block(result):
    """A system without a paired comparison, a latency or sizes says so instead of showing a number it lacks."""
    import copy

    lean = copy.deepcopy(result)
    section = lean["datasets"]["main"]
    del section["versus"]["candidate vs bm25"]
    section["systems"]["bm25"] = {"kind": "bm25"}
    for summary in section["systems"].values():
        summary["cost_usd"] = None
    rows = _systems_rows(lxml.html.fromstring(reports.render_html(lean)))
    bm25 = next(r for r in rows if r.get("data-system") == "bm25")
    cells = [text(c) for c in bm25.xpath("./td")]
    assert cells[5] == "not compared" and cells[6] == "not measured" and cells[7] == "n/a n/a"
    assert "API cost" not in text(rows[0].xpath("ancestor::table[1]/thead")[0])  # no API cost, no column


def test_gate_rows_name_the_systems_they_judged(result, page):
    pair = next(g for g in result["gates"] if g["system"] != "candidate")
    assert (pair["system"], pair["against"]) == ("bm25-candidate", "bm25")
    table = page.xpath(f"//table[{cls('gates')}]")[0]
    assert [text(th) for th in table.xpath("./thead//th")][3:5] == ["against", "judged"]
    row = table.xpath(f".//tr[{cls('gate')}][td[2][starts-with(normalize-space(), '{pair['name']}')]]")[0]
    assert "bm25-candidate vs bm25" in text(row.xpath(f".//span[{cls('pair')}]")[0])
    # the interval strip says what was subtracted from what
    title = text(row.xpath(".//svg//circle/title")[0])
    assert title.startswith(f"\u0394 bm25-candidate \u2212 bm25 {s4(pair['difference'])}")
    default = table.xpath(f".//tr[{cls('gate')}]")[0]
    assert text(default.xpath(".//svg//circle/title")[0]).startswith("\u0394 candidate \u2212 base ")


def test_curves_of_every_system_at_every_cut_off(result, page):
    section = result["datasets"]["main"]
    ds = page.xpath("//section[@id='data-main']")[0]
    charts_ = ds.xpath(".//figure[@data-chart='systems']/svg")
    assert len(charts_) == 3  # ndcg, recall, mrr
    for svg in charts_:
        lines = [p for p in svg.xpath(".//path") if p.get("fill") == "none"]
        assert len(lines) == len(section["systems"])  # a line per system
    titles = {t.text_content() for t in ds.xpath(".//figure[@data-chart='systems']//title")}
    for name in section["systems"]:  # a cut-off the suite does not gate: read from the full grid of means
        assert f"{name}: ndcg@20 = {f4(section['metrics'][name]['ndcg@20'])}" in titles
    table = ds.xpath(f".//table[{cls('systems-curve-table')}]")[0]
    assert [text(th) for th in table.xpath("./thead//th")][1:] == list(section["systems"])
    row = table.xpath("./tbody/tr[td[1][normalize-space()='recall@3']]")[0]
    assert [text(td) for td in row.xpath("./td")][1:] == [f4(section["metrics"][n]["recall@3"])
                                                          for n in section["systems"]]


def test_paired_comparisons_of_every_pair(result, page):
    versus = result["datasets"]["main"]["versus"]
    table = page.xpath(f"//section[@id='data-main']//table[{cls('pairs-table')}]")[0]
    rows = [[text(td) for td in tr.xpath("./td")] for tr in table.xpath("./tbody/tr")]
    assert [(r[0], r[1]) for r in rows] == [(k, m) for k, by in versus.items() for m in by]
    cmp = versus["bm25-candidate vs bm25"]["ndcg@10"]
    row = next(r for r in rows if r[:2] == ["bm25-candidate vs bm25", "ndcg@10"])
    assert row[2:5] == [f4(cmp["base"]), f4(cmp["candidate"]), s4(cmp["difference"])]
    assert row[6] == f"[{s4(cmp['ci'][0])}, {s4(cmp['ci'][1])}]"
    assert row[8] == f"{cmp['wins']} / {cmp['ties']} / {cmp['losses']}"


def test_a_result_written_before_systems_still_renders():
    """No systems, no versus, gates that name neither side: the report is the base-against-candidate one."""
    old = build_result(60, seed=0, references=False)
    assert "systems" not in old["datasets"]["main"] and "system" not in old["gates"][0]
    page = lxml.html.fromstring(reports.render_html(old))
    assert not page.xpath(f"//table[{cls('systems-table')}]") and not page.xpath("//figure[@data-chart='systems']")
    table = page.xpath(f"//table[{cls('gates')}]")[0]
    assert [text(th) for th in table.xpath("./thead//th")][3:5] == ["base", "candidate"]
    rows = table.xpath(f".//tr[{cls('gate')}]")
    assert len(rows) == len(old["gates"])
    assert all(text(r.xpath(f".//span[{cls('pair')}]")[0]) == "candidate vs base" for r in rows)
    assert len(page.xpath("//section[@id='data-main']//figure[@data-chart='curve']")) == 3
    md = reports.render_markdown(old)
    assert "| | gate | base | candidate |" in md and "**Systems**" not in md


def test_settings_line_says_what_each_kind_of_system_is():
    from embedgate.reports.systems import settings_line

    assert settings_line("bm25", {"method": "bm25l", "k1": 0.9, "b": 0.4, "delta": 0.5, "stemmer": None,
                                  "stopwords": "en"}) == \
        "bm25l k1=0.9 b=0.4 \u03b4=0.5 \u00b7 stemmer none \u00b7 stopwords en"
    assert settings_line("hybrid", {"systems": ["bm25", "base"], "method": "wsum", "norm": "min-max",
                                    "weights": [0.3, 0.7], "tuned": {"split": "dev", "metric": "ndcg@10"}}) == \
        "wsum of bm25 + base, min-max normalised, weights 0.3 / 0.7, tuned on dev for ndcg@10"
    assert settings_line("rerank", {"model": "cross-encoder/ms-marco-MiniLM-L6-v2", "k": 50, "first_stage": "bm25"}) \
        == "cross-encoder/ms-marco-MiniLM-L6-v2 reranks the top 50 of bm25"
    assert settings_line("bi-encoder", {"name": "/runs/legal-v3", "dtype": "float16", "query_prompt": "query: "}) == \
        "legal-v3 \u00b7 float16 \u00b7 query prompt \u201cquery: \u201d"
    assert settings_line("colbert", {"kind": "colbert", "nbits": 2, "model": "x"}) == "nbits=2, model=x"
    assert len(settings_line("hybrid", {"systems": ["s" * 60] * 4})) == 140  # clipped, not wrapped forever


def test_mde_is_marked_where_the_gate_says_more_queries_could_change_it():
    """The gate decides whether the suite is too small (its detail ``too_small``); the report marks that MDE cell
    and no other, whatever the status: a non-inferiority FAIL whose interval still reaches past the margin is
    marked, a NOT SHOWN whose gate says otherwise is not. Results written before the detail existed keep the rule of
    their time (an underpowered NOT SHOWN)."""
    from embedgate.reports.view import gate_view

    base = {"name": "g", "kind": "non_inferiority", "metric": "ndcg@10", "mde": 0.03, "ci": [-0.05, 0.01],
            "difference": -0.02, "n_queries": 57}
    assert gate_view({**base, "status": "fail", "details": {"underpowered": True, "too_small": True}})["too_small"]
    assert not gate_view({**base, "status": "inconclusive",
                          "details": {"underpowered": True, "too_small": False}})["too_small"]
    assert gate_view({**base, "status": "inconclusive", "details": {"underpowered": True}})["too_small"]
    assert not gate_view({**base, "status": "fail", "details": {"underpowered": True}})["too_small"]
