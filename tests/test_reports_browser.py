"""The report as a person sees it: headless Chromium opens it from file://, and we look.

Needs Debian's `chromium` and `chromium-driver` and the `selenium` package. Skips with the reason when they are
missing (a developer's machine), unless EMBEDGATE_REQUIRE_BROWSER=1 (CI), where a missing browser fails. Screenshots
are kept in the test's tmp dir and, when EMBEDGATE_SCREENSHOT_DIR is set, there too.
"""
from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

from embedgate import reports
from embedgate.harness.io import write_json
from test_reports_builder import build_result

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1400,1000", "--force-device-scale-factor=1")


def _missing(reason: str):
    if os.environ.get("EMBEDGATE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"EMBEDGATE_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary = next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        _missing("no chromium/chromedriver binary (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("the selenium package is not installed (pip install selenium)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    # an explicit driver path: Selenium Manager would otherwise try to download one
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _save(png: bytes, name: str, tmp_path: Path) -> Path:
    path = tmp_path / name
    path.write_bytes(png)
    extra = os.environ.get("EMBEDGATE_SCREENSHOT_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / name)
    return path


def _full_page(driver) -> bytes:
    """The whole page, not just the viewport (Chrome DevTools' beyond-viewport capture)."""
    driver.execute_script("window.scrollTo(0, 0)")  # else the sticky bar is drawn where the viewport was
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    return base64.b64decode(shot["data"])


def test_report_in_chromium(browser, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    result = build_result(120, seed=0)
    main = result["datasets"]["main"]
    long_q = next(q for q in main["shown_queries"][1:] if q in main["queries"])
    main["queries"][long_q] = "What must the licensee report " + "and disclose to the licensor " * 20 + "each quarter?"
    history_dir = tmp_path / "results"
    for i, day in enumerate(("19", "20", "21")):
        earlier = build_result(40, seed=10 + i, shift=0.01 * i, created_at=f"2026-11-{day}T10:00:00+00:00",
                               hostile=False)
        write_json(history_dir / f"legal-{day}.json", earlier)
    json_path = write_json(history_dir / "legal-22.json", result)
    html_path = reports.write_report(result, json_path)
    browser.get(html_path.resolve().as_uri())

    # nothing hostile ran: no alert, and the page fetched nothing (self-contained)
    with pytest.raises(NoAlertPresentException):
        _ = browser.switch_to.alert.text
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0

    # the first screen answers "may this ship, and why"
    verdict = browser.find_element(By.CSS_SELECTOR, ".banner .verdict-word")
    assert verdict.is_displayed() and verdict.text == "FAIL"
    banner = browser.find_element(By.CSS_SELECTOR, ".banner")
    assert "Do not promote" in banner.text
    gates_top = browser.find_element(By.CSS_SELECTOR, "table.gates").rect["y"]
    assert banner.rect["y"] + banner.rect["height"] < 1000 and gates_top < 1000
    _save(browser.get_screenshot_as_png(), "report-first-screen.png", tmp_path)
    # long query texts are clipped in their row, never widening the page beyond the window
    widths = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths

    # the systems table fits its card (it would scroll inside it, not widen the page), a row per system
    systems = browser.execute_script("""
        var box = document.querySelector('#data-main .systems .wide');
        return {rows: box.querySelectorAll('tbody tr').length, scroll: box.scrollWidth, width: box.clientWidth,
                latency: box.querySelector('thead').textContent};""")
    assert systems["rows"] == len(main["systems"]) and systems["scroll"] <= systems["width"], systems
    assert "batch 1, this machine" in systems["latency"]

    # charts are drawn: visible SVGs with non-empty paths (the candidate's curves, then the histograms)
    drawn = browser.execute_script("""
        return Array.from(document.querySelectorAll(
            '#data-main figure[data-chart=curve] svg.chart, #data-main figure[data-chart=histogram] svg.chart'
        )).map(function (svg) {
          var r = svg.getBoundingClientRect();
          var lengths = Array.from(svg.querySelectorAll('path')).map(function (p) { return p.getTotalLength(); });
          var bars = Array.from(svg.querySelectorAll('rect')).map(function (b) { return b.getBBox().height; });
          return {w: r.width, h: r.height, paths: lengths.filter(function (l) { return l > 0; }).length,
                  bars: bars.filter(function (h) { return h > 0; }).length};
        });""")
    assert len(drawn) == 6  # three metric@k curves, three histograms
    assert all(c["w"] > 300 and c["h"] > 100 for c in drawn)
    assert all(c["paths"] >= 3 for c in drawn[:3])  # base line, candidate line, band (+ the difference panel)
    assert all(c["bars"] >= 2 for c in drawn[3:])
    lines = browser.execute_script("""
        return Array.from(document.querySelectorAll('#data-main figure[data-chart=systems] svg')).map(function (svg) {
          return Array.from(svg.querySelectorAll('path')).filter(function (p) { return p.getTotalLength() > 0; })
            .length;
        });""")
    assert lines == [len(main["systems"])] * 3  # every system's line on ndcg, recall and mrr

    # a gate row opens its reasoning
    passing = browser.find_elements(By.CSS_SELECTOR, "tr.gate.g-pass")[0]
    msg = browser.find_element(By.ID, passing.get_attribute("data-msg"))
    assert not msg.is_displayed()
    passing.click()
    assert msg.is_displayed()

    # the most regressed query expands to both rankings, with relevance marks and moves
    query = browser.find_element(By.CSS_SELECTOR, "#data-main .q-down details.query")
    rankings = query.find_element(By.CSS_SELECTOR, ".rankings")
    assert not rankings.is_displayed()
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", query)
    query.find_element(By.TAG_NAME, "summary").click()
    assert query.get_attribute("open") is not None and rankings.is_displayed()
    assert rankings.size["height"] > 100
    lists = query.find_elements(By.CSS_SELECTOR, ".ranking")
    assert [lst.find_element(By.TAG_NAME, "h4").text.lower() for lst in lists] == ["base top 10", "candidate top 10"]
    assert all(len(lst.find_elements(By.CSS_SELECTOR, "li.hit")) == 10 for lst in lists)
    hostile = query.find_elements(By.XPATH, ".//div[contains(@class,'txt')][contains(., '<script>alert(1)</script>')]")
    assert hostile and hostile[0].is_displayed()  # shown as text, never run
    _save(browser.get_screenshot_as_png(), "report-query-expanded.png", tmp_path)

    # the table of every query filters
    table = browser.find_element(By.ID, "data-main-all")
    table.find_element(By.TAG_NAME, "summary").click()
    visible = [r for r in table.find_elements(By.CSS_SELECTOR, "tbody tr") if r.is_displayed()]
    assert len(visible) == 100  # first page of 120
    qid = result["datasets"]["main"]["shown_queries"][-1]
    box = table.find_element(By.CSS_SELECTOR, "input[type=search]")
    box.send_keys(qid)
    visible = [r for r in table.find_elements(By.CSS_SELECTOR, "tbody tr") if r.is_displayed()]
    assert len(visible) == 1 and qid in visible[0].text

    # the trend of the three earlier runs
    trend = browser.find_element(By.ID, "trend")
    assert len(trend.find_elements(By.CSS_SELECTOR, "tbody tr")) == 4
    path = _save(_full_page(browser), "report-full.png", tmp_path)
    assert path.stat().st_size > 50_000


def test_large_report_opens_quickly(browser, tmp_path):
    result = build_result(3000, seed=2)
    html_path = reports.write_report(result, write_json(tmp_path / "legal-big.json", result), history=[])
    assert html_path.stat().st_size < 3_000_000
    browser.get(html_path.resolve().as_uri())
    load_ms = browser.execute_script("return performance.getEntriesByType('navigation')[0].loadEventEnd")
    assert 0 < load_ms < 5000, f"{load_ms:.0f} ms to load"  # measured ~0.4 s here; generous for a busy CI
    # long lists are collapsed: the first screen is the verdict, and the table of 3,000 queries is closed
    assert browser.find_element("css selector", ".banner .verdict-word").is_displayed()
    rows = browser.find_elements("css selector", "#data-main-all tbody tr")
    assert len(rows) == 3000 and not rows[0].is_displayed()


def test_recipe_and_variants_in_chromium(browser, tmp_path):
    """A recipe over three seeds with variants: the recipe card and the gates are near the top, nothing widens the
    page or its cards, the strips' axes, the variants chart and the grouped fingerprints are drawn and readable."""
    result = build_result(60, seed=0, seeds=3, variants=True)
    html_path = reports.write_report(result, write_json(tmp_path / "legal-recipe.json", result), history=[])
    browser.get(html_path.resolve().as_uri())
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    top = browser.execute_script("""
        function y(sel) { return document.querySelector(sel).getBoundingClientRect().top; }
        return {recipe: y('#recipe'), gates: y('#gates'), trained: y('.banner .trained')};""")
    assert top["trained"] < top["recipe"] < top["gates"] < 1600, top
    assert top["recipe"] < 1000, top  # the recipe is on the first screen
    fits = browser.execute_script("""
        var out = {page: [document.documentElement.scrollWidth, window.innerWidth]};
        document.querySelectorAll('section.card').forEach(function (c) { out[c.id] = [c.scrollWidth, c.clientWidth]; });
        return out;""")
    for name, (scroll, width) in fits.items():
        assert scroll <= width, (name, fits)
    # each strip's tick labels and the gate's bar label render inside the strip
    strips = browser.execute_script("""
        return Array.from(document.querySelectorAll('table.gates svg.strip')).map(function (svg) {
          var box = svg.getBoundingClientRect();
          return Array.from(svg.querySelectorAll('text')).map(function (t) {
            var r = t.getBoundingClientRect();
            return {w: r.width, inside: r.left >= box.left - 0.5 && r.right <= box.right + 0.5, text: t.textContent};
          });
        });""")
    assert len(strips) >= 3
    for labels in strips:
        assert any(lab["text"] == "0" for lab in labels)
        assert all(lab["w"] > 0 and lab["inside"] for lab in labels), labels
    # the seed pills show in the gate rows
    pills = browser.find_elements("css selector", "tr.gate .seedpill")
    assert len(pills) == 3 * len(result["gates"]) and all(p.is_displayed() for p in pills)
    # the variants chart: one visible line per precision and system, an error bar per variant
    chart = browser.execute_script("""
        var svg = document.querySelector('#data-main-variants figure[data-chart=variants] svg');
        svg.scrollIntoView();
        var r = svg.getBoundingClientRect();
        var paths = Array.from(svg.querySelectorAll('path'));
        return {w: r.width, h: r.height,
                lines: paths.filter(function (p) { return p.getAttribute('class') !== 'errbar' &&
                                                          p.getTotalLength() > 0; }).length,
                bars: paths.filter(function (p) { return p.getAttribute('class') === 'errbar' &&
                                                         p.getBBox().height > 0; }).length};""")
    assert chart["w"] >= 400 and chart["h"] > 200 and chart["lines"] == 6 and chart["bars"] == 16, chart
    variants = browser.find_element("id", "data-main-variants")
    _save(variants.screenshot_as_png, "report-variants.png", tmp_path)
    # the fingerprints: five groups, values wrapping inside their column, a digest's whole value on hover
    fp = browser.execute_script("""
        var groups = Array.from(document.querySelectorAll('#fingerprints .fp-group'));
        var dds = Array.from(document.querySelectorAll('#fingerprints dl.fp dd'));
        return {groups: groups.map(function (g) { return g.getAttribute('data-group'); }),
                overflow: dds.filter(function (d) { return d.scrollWidth > d.clientWidth + 1; }).length,
                dds: dds.length,
                hashes: Array.from(document.querySelectorAll('#fingerprints [title].hash')).length};""")
    assert fp["groups"] == ["data", "models", "training", "environment", "timings"]
    assert fp["dds"] > 40 and fp["overflow"] == 0 and fp["hashes"] >= 8, fp
    fingerprints = browser.find_element("id", "fingerprints")
    browser.execute_script("arguments[0].scrollIntoView()", fingerprints)
    _save(fingerprints.screenshot_as_png, "report-fingerprints.png", tmp_path)
    _save(_full_page(browser), "report-recipe-full.png", tmp_path)
