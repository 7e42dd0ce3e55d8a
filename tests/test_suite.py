"""suite.toml validation and the result of run_suite."""
from __future__ import annotations

import json

import pytest

from embedgate.harness.errors import ConfigError, DataError
from embedgate.harness.suite import load_suite, run_suite
from suite_helpers import write_suite

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def test_shipped_suites_are_valid():
    from pathlib import Path

    suites = sorted(Path(__file__).resolve().parents[1].glob("suites/*/suite.toml"))
    assert suites, "no suite shipped"
    for path in suites:
        suite = load_suite(path)
        assert suite.gates and "main" in suite.data
        assert any(g.kind == "forgetting" for g in suite.gates), f"{path} has no forgetting guard"
        assert all(ref.path.is_dir() for ref in suite.data.values()), f"{path} points at missing data"


@pytest.mark.parametrize("old,new,field,fragment", [
    ('metric = "ndcg@10"\nmin = 0.3', 'metric = "ndgc@10"\nmin = 0.3', "gates[0].metric", "unknown metric"),
    ("min = 0.3", "min = 1.5", "gates[0].min", "out of range"),
    ("min = 0.3", 'min = "high"', "gates[0].min", "expected a number"),
    ('kind = "absolute"', 'kind = "vibes"', "gates[0].kind", "unknown gate kind"),
    ('data = "guard"', 'data = "nowhere"', "gates[3].data", "unknown data set"),
    ("max_drop = 0.3", "max_drop = 0.3\nthreshold = 2", "gates[2].threshold", "unknown key"),
    ('split = "test"\nmax_queries = 60', 'split = "test"\nmax_queries = -1', "data.main.max_queries",
     "out of range"),
])
def test_suite_errors_name_line_and_field(tmp_path, datasets_dir, old, new, field, fragment):
    folder = write_suite(tmp_path / "s", MINILM, datasets_dir)
    path = folder / "suite.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    changed = text.replace(old, new, 1).splitlines()
    with pytest.raises(ConfigError) as err:
        load_suite(folder)
    assert (err.value.path, err.value.field) == (str(path), field)
    assert fragment in err.value.message
    reported = changed[err.value.line - 1]
    assert reported.startswith(field.rsplit(".", 1)[-1]) and reported in new.split("\n"), reported


def test_suite_without_gates_is_refused(tmp_path, datasets_dir):
    folder = write_suite(tmp_path / "s", MINILM, datasets_dir, gates="")
    with pytest.raises(ConfigError, match="would always pass"):
        load_suite(folder)


def test_missing_data_is_an_error_before_any_encoding(tmp_path, datasets_dir, tiny_model):
    folder = write_suite(tmp_path / "s", str(tiny_model), tmp_path / "nowhere")
    with pytest.raises(DataError, match="data folder not found"):
        run_suite(folder, str(tiny_model), cache=False)


def test_missing_candidate_is_an_error(tmp_path, datasets_dir, tiny_model):
    with pytest.raises(ConfigError, match="no candidate"):
        run_suite(write_suite(tmp_path / "s", str(tiny_model), datasets_dir), None)


@pytest.fixture(scope="module")
def better_candidate_result(tmp_path_factory, datasets_dir, tiny_model, test_cache):
    """A random tiny BERT as base, the real MiniLM as candidate: a large, real improvement."""
    folder = write_suite(tmp_path_factory.mktemp("suite") / "small", str(tiny_model), datasets_dir)
    out = tmp_path_factory.mktemp("results")
    return run_suite(folder, MINILM, cache=test_cache, out_dir=out).to_json_dict()


def test_result_records_gates_numbers_and_fingerprints(better_candidate_result):
    r = better_candidate_result
    assert r["schema"] == "embedgate.suite-result/2"
    assert r["verdict"] == "pass", r["summary"]
    assert [g["status"] for g in r["gates"]] == ["pass"] * 4
    gain = r["gates"][1]
    main = r["datasets"]["main"]
    per_q = main["per_query"]
    diffs = [per_q["candidate"][q]["ndcg@10"] - per_q["base"][q]["ndcg@10"] for q in per_q["base"]]
    assert gain["difference"] == pytest.approx(sum(diffs) / len(diffs))
    assert gain["candidate"] == pytest.approx(main["metrics"]["candidate"]["ndcg@10"])
    assert gain["ci"][0] > 0 and gain["p_value"] < 0.001 and gain["n_queries"] == 60
    assert main["data"]["n_queries"] == 60 and main["data"]["sampling"]["corpus_size"] == 400
    assert r["models"]["candidate"]["source"] == "offline-copy"
    assert r["models"]["base"]["fingerprint"] != r["models"]["candidate"]["fingerprint"]
    assert r["environment"]["fingerprint"]
    assert set(main["comparisons"]) >= {"ndcg@1", "ndcg@5", "ndcg@100", "recall@10"}


def test_result_keeps_rankings_of_shown_queries(better_candidate_result):
    main = better_candidate_result["datasets"]["main"]
    shown = main["shown_queries"]
    assert shown and len(shown) <= 50
    for q in shown:
        assert len(main["rankings"]["candidate"][q]) == 10
        for doc in main["qrels"][q]:
            assert doc in main["documents"]
            rank = main["relevant_ranks"]["candidate"][q][doc]
            top = [d for d, _ in main["rankings"]["candidate"][q]]
            assert (rank is not None and rank <= 10) == (doc in top)


def test_result_json_is_written_and_round_trips(better_candidate_result):
    from pathlib import Path

    path = Path(better_candidate_result["files"]["json"])
    on_disk = json.loads(path.read_text())
    assert on_disk["gates"] == better_candidate_result["gates"]
