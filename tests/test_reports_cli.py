"""Reading result files (clear errors for bad ones) and `embedgate report`."""
from __future__ import annotations

import copy
import json

import lxml.html
import pytest

from embedgate import reports
from embedgate.harness.shells.cli import main
from embedgate.harness.errors import DataError
from embedgate.harness.io import write_json
from test_reports_builder import build_result


@pytest.fixture(scope="module")
def result():
    return build_result(30, seed=4, hostile=False)


def test_load_result_round_trip(tmp_path, result):
    path = write_json(tmp_path / "r.json", result)
    assert reports.load_result(path) == result


@pytest.mark.parametrize("content, field, words", [
    ("{\n  \"schema\": 1,\n  oops\n}", None, "not valid JSON"),
    ("[1, 2]", None, "top level is a list"),
])
def test_load_result_refuses_files_that_are_not_results(tmp_path, content, field, words):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        reports.load_result(path)
    assert str(path) in str(err.value) and words in str(err.value)
    if "JSON" in words:
        assert err.value.line == 3


def test_load_result_missing_file(tmp_path):
    with pytest.raises(DataError, match="result file not found"):
        reports.load_result(tmp_path / "nope.json")


@pytest.mark.parametrize("mutate, field", [
    (lambda r: r.__setitem__("schema", "embedgate.suite-result/9"), "schema"),
    (lambda r: r.pop("schema"), "schema"),
    (lambda r: r.__setitem__("verdict", "maybe"), "verdict"),
    (lambda r: r["suite"].pop("name"), "suite.name"),
    (lambda r: r["gates"][2].__setitem__("status", "passed"), "gates[2].status"),
    (lambda r: r["gates"][0].__setitem__("p_value", "0.2"), "gates[0].p_value"),
    (lambda r: r["gates"][0].__setitem__("ci", [0.1]), "gates[0].ci"),
    (lambda r: r["datasets"]["main"]["per_query"]["base"].__setitem__("x", {"ndcg@10": "high"}),
     "datasets.main.per_query.base.x"),
    (lambda r: r["datasets"]["main"]["rankings"]["candidate"].__setitem__("q", [["d1"]]),
     "datasets.main.rankings.candidate.q"),
])
def test_validation_names_the_file_and_field(tmp_path, result, mutate, field):
    bad = copy.deepcopy(result)
    mutate(bad)
    path = write_json(tmp_path / "bad.json", bad)
    with pytest.raises(DataError) as err:
        reports.load_result(path)
    assert err.value.field.startswith(field) and err.value.path == str(path)  # as precise as the defect
    with pytest.raises(DataError):  # the same check guards rendering from memory
        reports.render_html(bad)


def test_unknown_schema_message_is_clear(tmp_path, result):
    path = write_json(tmp_path / "future.json", {**result, "schema": "embedgate.suite-result/9"})
    with pytest.raises(DataError) as err:
        reports.load_result(path)
    assert "unknown result schema 'embedgate.suite-result/9'" in str(err.value)
    assert "embedgate.suite-result/2" in str(err.value)


def test_optional_parts_may_be_absent(result):
    lean = copy.deepcopy(result)
    for key in ("environment", "timings", "options", "models"):
        lean.pop(key)
    for sec in lean["datasets"].values():
        for key in ("comparisons", "rankings", "relevant_ranks", "documents", "qrels", "conventions"):
            sec.pop(key)
    page = lxml.html.fromstring(reports.render_html(lean))
    assert page.xpath("//section[@id='data-main']")
    # queries still listed by their numbers, with a note that the rankings were not kept
    assert "keeps no rankings" in page.xpath("//details[contains(@class,'query')]")[0].text_content()


def test_cli_renders_again_and_compares(tmp_path, result, capsys):
    first = write_json(tmp_path / "legal-1.json", result)
    second = write_json(tmp_path / "legal-2.json", build_result(30, seed=5, hostile=False,
                                                               created_at="2026-11-23T10:00:00+00:00"))
    assert main(["report", str(first)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == f"report: {tmp_path / 'legal-1.html'}"
    assert (tmp_path / "legal-1.html").is_file()

    md = tmp_path / "summary.md"
    target = tmp_path / "both.html"
    assert main(["report", str(first), str(second), "--out", str(target), "--markdown", str(md)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"report: {target}", f"markdown: {md}"]
    page = lxml.html.fromstring(target.read_text(encoding="utf-8"))
    assert "Comparing 2 runs" in page.xpath("//section[@id='compare']")[0].text_content()
    assert md.read_text(encoding="utf-8").count("embedgate `legal`") == 2

    # the default name of a comparison sits beside the first result
    assert main(["report", str(first), str(second)]) == 0
    assert (tmp_path / "legal-1.compare-2.html").is_file()


def test_cli_errors_exit_2_in_one_line(tmp_path, result, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**result, "schema": "nope"}))
    assert main(["report", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err and "schema" in err
    good = write_json(tmp_path / "good.json", result)
    assert main(["report", str(good), "--out", str(good)]) == 2
    assert "overwrite" in capsys.readouterr().err
    assert main(["report", str(good), "--out", str(tmp_path / "x.txt")]) == 2
    assert json.loads(good.read_text()) == result  # nothing already written was touched


def test_renders_with_any_optional_key_missing(result):
    """Readers must tolerate every key the schema does not require being absent (older or partial writers). What is
    required is read from the JSON Schema the models generate."""
    from embedgate.harness.schema import SuiteResult

    schema = SuiteResult.model_json_schema(by_alias=True)
    required_top = set(schema["required"])
    required_gate = set(schema["$defs"]["GateResult"]["required"])
    assert {"schema", "suite", "verdict", "gates"} <= required_top and {"name", "status"} <= required_gate
    paths = [(k,) for k in result if k not in required_top]
    paths += [("gates", i, k) for i, g in enumerate(result["gates"]) for k in g if k not in required_gate]
    paths += [("datasets", d, k) for d, sec in result["datasets"].items() for k in sec]
    paths += [("datasets", "main", "data", k) for k in result["datasets"]["main"]["data"]]
    paths += [("models", side, k) for side in ("base", "candidate") for k in result["models"][side]]
    for path in paths:
        lean = copy.deepcopy(result)
        holder = lean
        for key in path[:-1]:
            holder = holder[key]
        del holder[path[-1]]
        html = reports.render_html(lean)
        assert "verdict-word" in html, path
        reports.render_markdown(lean)


def test_a_result_of_the_previous_schema_fails_with_a_clear_message(tmp_path, result):
    old = copy.deepcopy(result) | {"schema": "embedgate.suite-result/1"}
    path = write_json(tmp_path / "old.json", old)
    with pytest.raises(DataError) as err:
        reports.load_result(path)
    assert err.value.field == "schema" and err.value.path == str(path)
    assert "earlier embedgate (schema embedgate.suite-result/1)" in err.value.message
    assert "Run the gate again" in err.value.message
