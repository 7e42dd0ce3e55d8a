"""A recipe gated over seeds, and the variants of a bi-encoder (its deployment forms), as the report shows them:
the page parsed, then checked for the numbers of the result a reader decides from."""
from __future__ import annotations

import statistics

import lxml.html
import pytest

from embedgate import reports
from embedgate.reports.format import human_bytes, ms
from embedgate.reports.markdown import cell
from test_reports_builder import POOLING, build_result, variant_names

MINUS = "\u2212"


def f4(x: float) -> str:
    return f"{x:.4f}".replace("-", MINUS)


def s4(x: float) -> str:
    return ("0.0000" if round(x, 4) == 0 else f"{x:+.4f}").replace("-", MINUS)


def iv(ci) -> str:
    return f"[{s4(ci[0])}, {s4(ci[1])}]"


def cls(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


def text(el) -> str:
    return " ".join(el.text_content().split())


@pytest.fixture(scope="module")
def recipe():
    return build_result(60, seed=0, seeds=3)


@pytest.fixture(scope="module")
def recipe_page(recipe):
    return lxml.html.fromstring(reports.render_html(recipe))


@pytest.fixture(scope="module")
def variants():
    return build_result(60, seed=0, variants=True)


@pytest.fixture(scope="module")
def variants_page(variants):
    return lxml.html.fromstring(reports.render_html(variants))


# ------------------------------------------------------------------------------------------------ seeds


def _seed_gate(seed: dict, dname: str, kinds: tuple[str, ...]) -> dict:
    return next(g for g in seed["gates"] if g["data"] == dname and g["kind"] in kinds and g["metric"] == "ndcg@10")


def test_the_recipe_result_is_shaped_as_the_gate_run_writes_it(recipe):
    assert [s["candidate"] for s in recipe["seeds"]] == [f"models/legal-mnrl-v3-s{k}" for k in range(3)]
    assert recipe["pooling"] == {"candidates": 3, "procedure": POOLING}
    main = recipe["datasets"]["main"]
    # the set's candidate is the per-query mean over the seeds, so its mean is the mean of theirs
    pooled = main["metrics"]["candidate"]["ndcg@10"]
    assert pooled == pytest.approx(statistics.mean(s["metrics"]["main"]["ndcg@10"] for s in recipe["seeds"]))
    for i, g in enumerate(recipe["gates"]):
        seeds = g["details"]["seeds"]
        assert [d["status"] for d in seeds] == [s["gates"][i]["status"] for s in recipe["seeds"]]
        assert g["details"]["pooled"] == (g["kind"] == "improvement")
        if g["kind"] != "improvement":  # a guard holds for the recipe only when it holds for every seed
            assert (g["status"] == "pass") == all(d["status"] == "pass" for d in seeds)
    statuses = {d["status"] for g in recipe["gates"] for d in g["details"]["seeds"]}
    assert {"pass", "fail"} <= statuses  # the fixture must show seeds that disagree


def test_recipe_over_seeds_is_near_the_top(recipe, recipe_page):
    sections = recipe_page.xpath("//main/section")
    assert [s.get("id") for s in sections[:3]] == ["verdict", "recipe", "gates"]
    card = sections[1]
    assert text(card.xpath("./h2")[0]).startswith("Recipe over 3 seeds 0 of 3 seeds pass every gate on their own")
    assert text(card.xpath(f".//p[{cls('pooling')}]")[0]) == f"How the seeds are pooled: {POOLING}."


def test_seeds_table_has_each_seeds_verdict_means_and_intervals(recipe, recipe_page):
    table = recipe_page.xpath(f"//section[@id='recipe']//table[{cls('seeds-table')}]")[0]
    head = [text(th) for th in table.xpath("./thead//th")]
    assert head == ["candidate", "seed", "verdict on its own", "main · ndcg@10", "Δ vs base 95% CI",
                    "science · ndcg@10", "Δ vs base 95% CI"]
    rows = table.xpath(f"./tbody/tr[{cls('seed-row')}]")
    assert [r.get("data-candidate") for r in rows] == [s["candidate"] for s in recipe["seeds"]]
    for k, (row, seed) in enumerate(zip(rows, recipe["seeds"])):
        cells = [text(td) for td in row.xpath("./td")]
        assert cells[0].startswith(f"s{k} {seed['candidate']}")
        assert cells[1] == str(seed["model"]["training_manifest"]["seed"]) == str(k)
        passed = sum(g["status"] == "pass" for g in seed["gates"])
        assert cells[2] == f"{seed['verdict'].upper()} {passed} of {len(seed['gates'])} gates"
        # main: the difference and interval of the seed's own improvement gate
        imp = _seed_gate(seed, "main", ("improvement",))
        assert cells[3] == f4(seed["metrics"]["main"]["ndcg@10"])
        assert cells[4] == f"{s4(imp['difference'])} {iv(imp['ci'])}"
        # science has no improvement gate: the seed's forgetting gate judged it on the same paired interval
        guard = _seed_gate(seed, "science", ("forgetting",))
        assert cells[5] == f4(seed["metrics"]["science"]["ndcg@10"])
        assert cells[6] == f"{s4(guard['difference'])} {iv(guard['ci'])}"
    pooled = [text(td) for td in table.xpath(f"./tbody/tr[{cls('pooled-row')}]/td")]
    for i, dname in ((3, "main"), (5, "science")):
        cmp = recipe["datasets"][dname]["comparisons"]["ndcg@10"]
        assert pooled[i] == f4(cmp["candidate"]) and pooled[i + 1] == f"{s4(cmp['difference'])} {iv(cmp['ci'])}"
    base = [text(td) for td in table.xpath(f"./tbody/tr[{cls('base-row')}]/td")]
    assert base[3] == f4(recipe["datasets"]["main"]["metrics"]["base"]["ndcg@10"])
    # the spread of the seeds' differences on each set
    spread = {td.get("data-set"): text(td) for td in table.xpath(".//tfoot//td[@data-set]")}
    for dname, kinds in (("main", ("improvement",)), ("science", ("forgetting",))):
        diffs = [_seed_gate(s, dname, kinds)["difference"] for s in recipe["seeds"]]
        assert spread[dname] == (f"min {s4(min(diffs))} · max {s4(max(diffs))} sd {f4(statistics.stdev(diffs))} "
                                 f"over 3")


def test_each_recipe_gate_lists_its_seeds(recipe, recipe_page):
    rows = recipe_page.xpath(f"//table[{cls('gates')}]//tr[{cls('gate')}]")
    assert len(rows) == len(recipe["gates"])
    for row, g in zip(rows, recipe["gates"]):
        line = row.xpath(f".//div[{cls('seeds-line')}]")[0]
        pills = line.xpath(f"./span[{cls('seedpill')}]")
        seeds = g["details"]["seeds"]
        assert [p.get("data-candidate") for p in pills] == [d["candidate"] for d in seeds]
        labels = {"pass": "PASS", "fail": "FAIL", "inconclusive": "NOT SHOWN"}
        for k, (pill, d) in enumerate(zip(pills, seeds)):
            assert f"s-{d['status']}" in pill.get("class")
            expected = f"s{k} {labels[d['status']]}"
            if g["details"]["pooled"]:  # the recipe decides on the pooled interval; each seed's own difference
                expected += f" {s4(d['difference'])}"
                assert pill.get("title").endswith(f"{iv(d['ci'])}")
            assert text(pill) == expected
        assert text(line).startswith("pooled over 3 seeds; each seed:" if g["details"]["pooled"]
                                     else "must hold for every seed:")


def test_training_line_of_a_recipe_names_every_seed(recipe, recipe_page):
    line = recipe_page.xpath(f"//p[{cls('trained')}]")[0]
    values = {b.get("data-k"): text(b) for b in line.xpath(".//b[@data-k]")}
    manifests = [s["model"]["training_manifest"] for s in recipe["seeds"]]
    assert values["seed"] == "0, 1, 2"
    assert values["wall"] == " / ".join(f"{m} min {s} s" for m, s in (divmod(round(x["wall_time_s"]), 60)
                                                                      for x in manifests))
    assert values["recipe"] == manifests[0]["name"]


def test_step_summary_of_a_recipe(recipe):
    md = reports.render_markdown(recipe)
    assert "**Recipe over 3 seeds** (0 of 3 pass every gate on their own)" in md
    lines = md.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| seed | verdict |"))
    rows = lines[start + 2:start + 6]
    for k, (row, seed) in enumerate(zip(rows, recipe["seeds"])):
        imp = _seed_gate(seed, "main", ("improvement",))
        assert row.startswith(f"| s{k} ({cell(seed['candidate'])}) | \u274c FAIL | {s4(imp['difference'])} "
                              f"{iv(imp['ci'])} |")
    cmp = recipe["datasets"]["main"]["comparisons"]["ndcg@10"]
    assert rows[3].startswith(f"| pooled | judged by the gates | {s4(cmp['difference'])} {iv(cmp['ci'])} |")
    icons = {"pass": "\u2705", "fail": "\u274c", "inconclusive": "\u26a0\ufe0f"}
    imp = next(g for g in recipe["gates"] if g["kind"] == "improvement")
    gate_row = next(ln for ln in lines if ln.startswith("|") and cell(imp["name"]) in ln)
    assert " \u00b7 pooled; seeds " + " ".join(icons[d["status"]] for d in imp["details"]["seeds"]) in gate_row
    assert "Spread of the seeds' \u0394: main min" in md
    assert "seeds 0, 1, 2" in md


# ------------------------------------------------------------------------------------------------ variants


def test_the_builder_names_variants_as_the_suite_does():
    from embedgate.harness.schema import Variants

    expected = Variants(of=["candidate", "base"], truncate_dim=[128, 64], precision=["int8", "binary"],
                        rescore=50).names()
    assert list(variant_names()) == list(expected)
    assert all(expected[n][0] == of for n, (of, _, _) in variant_names().items())


def _variant_rows(page, dname="main"):
    return page.xpath(f"//div[@id='data-{dname}-variants']//table[{cls('variants-table')}]/tbody/tr")


def test_variants_table_states_each_variants_cost_and_quality(variants, variants_page):
    section = variants["datasets"]["main"]
    rows = _variant_rows(variants_page)
    names = [r.get("data-system") for r in rows]
    assert set(names) == set(variant_names()) | {"candidate", "base"}
    assert names[0] == "candidate" and names.index("base") == 1 + sum(of == "candidate" for of, _, _ in
                                                                      variant_names().values())
    for row in rows:
        name, cells = row.get("data-system"), [text(td) for td in row.xpath("./td")]
        summary = section["systems"][name]
        serving = summary["info"].get("serving") or {}
        if name in ("candidate", "base"):  # the systems themselves, at their full dimension
            assert cells[1] == "384" and cells[2] == "float32" and cells[4] == "\u2014"
        else:
            of = variant_names()[name][0]
            assert cells[1].split()[0] == str(serving["dimensions"])
            assert ("truncated" in cells[1]) == (serving["truncate_dim"] is not None)
            assert cells[2].startswith(serving["precision"])
            assert ("top 50 re-scored" in cells[2]) == (serving["precision"] != "float32")
            vs = section["versus"][f"{name} vs {of}"]["ndcg@10"]
            assert cells[4] == f"{s4(vs['difference'])} {iv(vs['ci'])}"
        assert cells[3] == f4(section["metrics"][name]["ndcg@10"])
        if name != "base":
            vs = section["versus"][f"{name} vs base"]["ndcg@10"] if name != "candidate" else \
                section["comparisons"]["ndcg@10"]
            assert cells[5] == f"{s4(vs['difference'])} {iv(vs['ci'])}"
        assert cells[6] == human_bytes(summary["index_bytes_per_million"])
        assert cells[7] == ms(summary["latency"]["p95_ms"])
    binary = next(r for r in rows if r.get("data-system") == "candidate-64d-binary")
    assert text(binary.xpath("./td")[6]) == "8 MB"  # 64 bits a document, a million documents


def test_quality_against_dimension_and_precision_chart(variants, variants_page):
    section = variants["datasets"]["main"]
    svg = variants_page.xpath("//div[@id='data-main-variants']//figure[@data-chart='variants']/svg")[0]
    lines = [p for p in svg.xpath(".//path") if p.get("fill") == "none" and "errbar" not in (p.get("class") or "")]
    assert len(lines) == 6  # candidate and base, each float32, int8 and binary
    dashed = [p for p in lines if p.get("stroke-dasharray")]
    assert len(dashed) == 3  # the base's lines
    assert len(svg.xpath(".//path[@class='errbar']")) == len(variant_names())  # every variant's interval
    ticks = [text(t) for t in svg.xpath(".//*[local-name()='text'][@class='tick']")]
    assert ticks == ["64", "128", "384"]
    titles = {text(t) for t in svg.xpath(".//circle/title")}
    for name, (of, _, _) in variant_names().items():
        serving = section["systems"][name]["info"]["serving"]
        vs = section["versus"][f"{name} vs {of}"]["ndcg@10"]
        expected = (f"{name}: ndcg@10 = {section['metrics'][name]['ndcg@10']:.4f} at {serving['dimensions']} "
                    f"dimensions, {serving['precision']}; \u0394 vs {of} {s4(vs['difference'])}, 95% CI "
                    f"{iv(vs['ci'])}")
        assert any(t.startswith(expected) for t in titles), expected
    assert f"base ndcg@10 = {f4(section['metrics']['base']['ndcg@10'])}" in \
        {text(t) for t in svg.xpath(".//*[local-name()='line']/title")}
    legend = [text(t) for t in svg.xpath("./*[local-name()='text']")][-6:]
    assert legend == ["candidate float32", "candidate int8 re-scored top 50", "candidate binary re-scored top 50",
                      "base float32", "base int8 re-scored top 50", "base binary re-scored top 50"]


def test_error_bars_sit_where_the_variant_lies_against_its_system(variants, variants_page):
    """Each bar spans the system's mean plus the interval of the variant's paired difference, as the curves draw
    the candidate's band around base: checked against the chart's own y-axis."""
    section = variants["datasets"]["main"]
    svg = variants_page.xpath("//div[@id='data-main-variants']//figure[@data-chart='variants']/svg")[0]
    grid = [(float(t.get("y")), float(text(t))) for t in svg.xpath(".//*[local-name()='text'][@text-anchor='end']"
                                                                    "[@dominant-baseline='middle']")]
    (y0, v0), (y1, v1) = grid[0], grid[-1]

    def y_of(v: float) -> float:
        return y0 + (v - v0) / (v1 - v0) * (y1 - y0)

    bars = svg.xpath(".//path[@class='errbar']")
    spans = sorted((float(p.get("d").split()[0][1:].split(",")[1]), float(p.get("d").split()[1][1:].split(",")[1]))
                   for p in bars)
    expected = []
    for name, (of, _, _) in variant_names().items():
        ci = section["versus"][f"{name} vs {of}"]["ndcg@10"]["ci"]
        mean = section["metrics"][of]["ndcg@10"]
        expected.append((y_of(mean + ci[0]), y_of(mean + ci[1])))
    flat = [y for span in sorted(expected) for y in span]
    assert [y for span in spans for y in span] == pytest.approx(flat, abs=0.11)


def test_full_dimension_comes_from_the_variants_the_model_or_the_index(variants):
    import copy

    from embedgate.reports.systems import full_dimension, variant_parents

    section = copy.deepcopy(variants["datasets"]["main"])
    parents = variant_parents(section)
    assert parents == {n: of for n, (of, _, _) in variant_names().items()}
    assert full_dimension(section, "candidate", parents, variants["models"]) == 384  # candidate-binary states it
    for name in [n for n, (of, dim, _) in variant_names().items() if dim is None]:
        del section["systems"][name]
    parents = variant_parents(section)
    assert full_dimension(section, "candidate", parents, variants["models"]) == 384  # the model's dimension
    assert full_dimension(section, "candidate", parents, {}) == 384  # 1536 bytes of float32 a document


def test_systems_table_and_curves_keep_the_systems_and_count_the_variants(variants, variants_page):
    section = variants["datasets"]["main"]
    plain = [n for n in section["systems"] if n not in variant_names()]
    rows = variants_page.xpath(f"//section[@id='data-main']//table[{cls('systems-table')}]/tbody/tr")
    assert [r.get("data-system") for r in rows] == plain
    note = variants_page.xpath(f"//section[@id='data-main']//p[{cls('variants-note')}]")[0]
    assert text(note) == (f"And {len(variant_names())} variants of candidate and base (truncated or quantized): see "
                          f"quality against dimension and precision.")
    for svg in variants_page.xpath("//section[@id='data-main']//figure[@data-chart='systems']/svg"):
        assert len([p for p in svg.xpath(".//path") if p.get("fill") == "none"]) == len(plain)
    # every pair the result holds is still listed, the variants' too
    pairs = variants_page.xpath(f"//section[@id='data-main']//table[{cls('pairs-table')}]/tbody/tr/td[1]")
    assert {text(td) for td in pairs} == set(section["versus"])
    # the variant's settings line says how it is served
    from embedgate.reports.systems import settings_line

    info = section["systems"]["candidate-128d-int8"]["info"]
    assert settings_line("bi-encoder", info).endswith("\u00b7 128 dims, stored int8, top 50 re-scored")


def test_step_summary_and_terminal_of_variants(variants):
    from embedgate.reports.text import systems_lines

    md = reports.render_markdown(variants)
    section = variants["datasets"]["main"]
    block = md.split("**Variants** on main")[1]
    assert block.startswith(", by ndcg@10 (paired \u0394 with its 95% CI); 8 variants of base in the HTML report")
    rows = [ln for ln in block.split("**")[0].splitlines() if ln.startswith("| candidate-")]
    assert [r.split(" | ")[0][2:] for r in rows] == [cell(n) for n in
                                                     ["candidate-128d", "candidate-64d", "candidate-int8",
                                                      "candidate-128d-int8", "candidate-64d-int8",
                                                      "candidate-binary", "candidate-128d-binary",
                                                      "candidate-64d-binary"]]
    row = next(r for r in rows if r.startswith(f"| {cell('candidate-64d-int8')} |"))
    vs = section["versus"]["candidate-64d-int8 vs candidate"]["ndcg@10"]
    vb = section["versus"]["candidate-64d-int8 vs base"]["ndcg@10"]
    assert row == (f"| {cell('candidate-64d-int8')} | 64 | int8, top 50 re-scored | "
                   f"{f4(section['metrics']['candidate-64d-int8']['ndcg@10'])} | {s4(vs['difference'])} "
                   f"{iv(vs['ci'])} | {s4(vb['difference'])} {iv(vb['ci'])} | 64 MB |")
    systems = md.split("**Systems** on main")[1].split("**Variants**")[0]
    assert "candidate-64d" not in systems  # the systems table keeps the systems
    lines = systems_lines(variants)
    assert "    and 16 variants of candidate and base (truncated or quantized): in the HTML report" in lines
