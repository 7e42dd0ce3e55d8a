"""The schema: every model round-trips through JSON, the committed JSON Schemas are the generated ones, every result
and fixture validates against them, and config errors name the file, the line and the field."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from embedgate.harness import schema as S
from embedgate.harness.errors import ConfigError
from embedgate.harness.gates import gate_class, gate_kinds
from embedgate.harness.suite import load_suite
from suite_helpers import write_tiny_suite
from test_reports_builder import build_error_result, build_result

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "docs" / "schemas"


def test_committed_json_schemas_are_the_generated_ones():
    """docs/schemas/*.json are written by `python -m embedgate.harness.schema docs/schemas`; a model change that
    is not regenerated fails here."""
    for name, generated in S.json_schemas().items():
        committed = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
        assert committed == json.loads(json.dumps(generated)), f"{name} is stale: regenerate it"


def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / name).read_text(encoding="utf-8")))


def test_fixtures_validate_against_the_committed_schema():
    v = _validator("suite-result.schema.json")
    for result in (build_result(40, seed=2), build_result(30, guard=False, comparisons=False), build_error_result()):
        v.validate(result)
    bad = build_result(20) | {"verdict": "maybe"}
    assert not v.is_valid(bad)


def test_results_the_tests_write_validate(tmp_path, small_beir, tiny_model):
    """A real gate run and a real eval, written to disk, against the committed schemas."""
    from embedgate.harness.evaluate import evaluate
    from embedgate.harness.suite import run_suite

    write_tiny_suite(tmp_path / "s", str(tiny_model), small_beir, """
[[gates]]
kind = "improvement"
metric = "ndcg@10"
[[gates]]
kind = "golden"
queries = [{query = "q1", documents = ["d0"]}]
""", ks=(1, 10), resamples=200)
    result = run_suite(tmp_path / "s", str(tiny_model), cache=False, out_dir=tmp_path / "out")
    on_disk = json.loads(Path(result.files["json"]).read_text())
    _validator("suite-result.schema.json").validate(on_disk)
    assert S.SuiteResult.model_validate(on_disk).to_json_dict() == on_disk  # load(save(x)) == x
    ev = evaluate(small_beir, str(tiny_model), cache=False, ks=[1, 10])
    written = json.loads(ev.write(tmp_path / "eval.json").read_text())
    _validator("eval-result.schema.json").validate(written)
    assert S.EvalResultFile.model_validate(written).model_dump(mode="json", by_alias=True) == written


ROUND_TRIPS = [
    S.ModelSpec(name="intfloat/e5-small-v2", query_prompt="q: ", max_seq_length=128, dtype="bfloat16"),
    S.DataRef(name="main", path=Path("/data/x"), split="dev", role="guard", max_queries=5, corpus_size=9, seed=3),
    S.EvaluationOptions(metrics=["ndcg@10", "mrr@5"], ks=[1, 10], confidence=0.9, resamples=500, seed=1),
    S.TrainTable(suite="suites/legal", min_relevance=2, max_pairs=100),
    S.DevTable(holdout=6, metrics=["ndcg@10"], metric="ndcg@10"),
    S.MiningSettings(num_negatives=5, per_pair=2, relative_margin=None, absolute_margin=0.1),
    S.LossSettings(name="mnrl", scale=30.0, matryoshka_dims=(384, 128), matryoshka_weights=(1.0, 0.5)),
    S.Schedule(epochs=2, learning_rate=5e-5, warmup=10, keep="last"),
    S.ContaminationTable(suites=["a"], data=[S.ContaminationData(path="b", split="test")], threshold=0.8),
    S.Comparison(n=3, base=0.1, candidate=0.2, difference=0.1, ci=(0.0, 0.2), confidence=0.95, p_value=0.04,
                 mde=0.3, sd_difference=0.1, wins=2, ties=1, losses=0, resamples=100, seed=0),
    S.GateResult(name="g", kind="absolute", status="fail", requirement="r", observed="o", decided_by="value"),
]


@pytest.mark.parametrize("model", ROUND_TRIPS, ids=lambda m: type(m).__name__)
def test_every_model_round_trips_through_json(model):
    again = type(model).model_validate_json(model.model_dump_json(by_alias=True))
    assert again == model


@pytest.mark.parametrize("kind", gate_kinds())
def test_every_gate_kind_round_trips_and_writes_valid_toml(kind, tmp_path, datasets_dir):
    import tomllib

    params = gate_class(kind).example  # each kind states a typical gate of its own
    assert params, f"{kind} gives no example"
    gate = gate_class(kind).model_validate({"kind": kind, **params})
    assert type(gate).model_validate_json(gate.model_dump_json()) == gate
    table = tomllib.loads(gate.toml("a comment"))["gates"][0]
    assert gate_class(kind).model_validate(table) == gate
    assert gate.summary and gate.default_name() and gate.requirement(0.95)


def test_shipped_results_of_every_suite_config_round_trip():
    for path in sorted((REPO / "suites").glob("*/suite.toml")):
        suite = load_suite(path)
        again = S.SuiteConfig.model_validate(suite.model_dump(), context={"base_dir": path.parent})
        assert [g.model_dump() for g in again.gates] == [g.model_dump() for g in suite.gates]
        assert again.base == suite.base and again.evaluation == suite.evaluation


def test_unknown_keys_say_did_you_mean(tmp_path):
    path = tmp_path / "suite.toml"
    path.write_text("""name = "x"
[base]
model = "m"
max_seq_lenght = 128
[data.main]
path = "."
[[gates]]
kind = "improvment"
metric = "ndcg@10"
""")
    with pytest.raises(ConfigError) as err:
        load_suite(path)
    assert (err.value.field, err.value.line) == ("base.max_seq_lenght", 4)
    assert "did you mean 'max_seq_length'?" in err.value.message
    path.write_text(path.read_text().replace("max_seq_lenght = 128\n", ""))
    with pytest.raises(ConfigError) as err:
        load_suite(path)
    assert (err.value.field, err.value.line) == ("gates[0].kind", 7)
    assert "did you mean 'improvement'?" in err.value.message
    text = path.read_text().replace("improvment", "improvement")
    path.write_text(text.replace('metric = "ndcg@10"', 'metric = "ndcg@10"\nmin_relativ = 0.1'))
    with pytest.raises(ConfigError) as err:
        load_suite(path)
    assert (err.value.field, err.value.line) == ("gates[0].min_relativ", 9)
    assert "did you mean 'min_relative'?" in err.value.message


def test_the_cli_turns_a_config_error_into_one_line_and_exit_2(tmp_path, capsys):
    from embedgate.harness.shells.cli import main

    (tmp_path / "suite.toml").write_text('name = "x"\n[base]\nmodel = "m"\n[data.main]\npath = "."\n[[gates]]\n'
                                         'kind = "absolute"\nmetric = "ndcg@10"\nmin = 2\n')
    assert main(["gate", str(tmp_path), "--candidate", "m"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "suite.toml:9: field 'gates[0].min': 2 is out of range (must be <= 1)" in err
    assert "Traceback" not in err
