"""Recipe validation: every bad value is a ConfigError naming the recipe file, its line and the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SMALL_CORPUS, SMALL_QRELS, SMALL_QUERIES, write_beir
from embedgate.harness import data
from embedgate.harness.errors import ConfigError
from embedgate.trainers.recipe import apply_overrides, load_recipe

SUITE = """name = "small"
[base]
model = "sentence-transformers/all-MiniLM-L6-v2"
[data.main]
path = "../data"
split = "test"
[[gates]]
kind = "improvement"
metric = "ndcg@10"
"""

GOOD = """name = "small-run"
suite = "suite"

[base]
model = "sentence-transformers/all-MiniLM-L6-v2"
max_seq_length = 128

[train]
suite = "suite"
min_relevance = 2

[schedule]
learning_rate = 5e-5
eval_steps = 5
"""


@pytest.fixture
def world(tmp_path) -> Path:
    write_beir(tmp_path / "data", SMALL_CORPUS, SMALL_QUERIES, SMALL_QRELS, split="test")
    write_beir(tmp_path / "data", SMALL_CORPUS, SMALL_QUERIES, {"q1": {"d0": 2}, "q2": {"d1": 1}}, split="train")
    write_beir(tmp_path / "data", SMALL_CORPUS, SMALL_QUERIES, {"q3": {"d2": 1}}, split="dev")
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "suite.toml").write_text(SUITE)
    return tmp_path


def write(world: Path, text: str) -> Path:
    path = world / "recipe.toml"
    path.write_text(text)
    return path


def error_of(path: Path, overrides=None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_recipe(path, overrides)
    return info.value


def test_a_good_recipe_gets_its_defaults(world):
    r = load_recipe(write(world, GOOD))
    assert r.name == "small-run"
    assert r.suite == (world / "suite" / "suite.toml").resolve()
    assert r.train.source.kind == "suite" and r.train.source.path == (world / "data").resolve()
    assert r.train.source.split == "train" and r.train.min_relevance == 2
    # the dev split is found in the training folder, and the best checkpoint is kept by the first dev metric
    assert r.dev is not None and r.dev.source.split == "dev" and r.dev.metric == "ndcg@10"
    assert r.schedule.keep == "best" and r.schedule.learning_rate == 5e-5 and r.schedule.warmup == 0.1
    assert r.mining is None and r.loss.name == "mnrl" and r.loss.scale == 20.0
    assert r.contamination.suites == (r.suite,)  # the gating suite is what the guard checks against
    assert r.output == Path("runs/small-run")
    assert r.base_spec.max_seq_length == 128


def line_of(text: str, needle: str, nth: int = 1) -> int:
    hits = [i for i, ln in enumerate(text.splitlines(), start=1) if needle in ln]
    return hits[nth - 1]


@pytest.mark.parametrize("text, field, needle, words", [
    (GOOD + "\n[schedule]\n", None, ("[schedule]", 2), "invalid TOML"),
    (GOOD.replace('suite = "suite"\n\n[base]', 'suite = "suite"\nlearnig_rate = 1\n\n[base]'), "learnig_rate",
     "learnig_rate", "unknown key"),
    (GOOD.replace("eval_steps = 5", "eval_steps = 5\nlr = 0.1"), "schedule.lr", "lr =", "unknown key"),
    (GOOD.replace("learning_rate = 5e-5", "learning_rate = -1"), "schedule.learning_rate", "learning_rate",
     "out of range"),
    (GOOD.replace("learning_rate = 5e-5", 'learning_rate = "fast"'), "schedule.learning_rate", "learning_rate",
     "a number"),
    (GOOD.replace("min_relevance = 2", "min_relevance = 0"), "train.min_relevance", "min_relevance", "out of range"),
    (GOOD.replace("eval_steps = 5", "warmup = 1.5"), "schedule.warmup", "warmup", "fraction"),
    (GOOD.replace("eval_steps = 5", "eval_steps = 4\nsave_steps = 6"), "schedule.save_steps", "save_steps",
     "multiple"),
    (GOOD + '\n[loss]\nname = "gist"\n', "loss.guide_model", "[loss]", "guide model"),
    (GOOD + '\n[loss]\nname = "mnrll"\n', "loss.name", "mnrll", "one of"),
    (GOOD + '\n[loss]\nname = "mnrl"\nmargin = 0.1\n', "loss.margin", "margin", "gist"),
    (GOOD + "\n[loss]\nmatryoshka_dims = [384, 0]\n", "loss.matryoshka_dims", "matryoshka", "positive integers"),
    (GOOD + "\n[hard_negatives]\nnum_negatives = 2\nper_pair = 3\n", "hard_negatives.per_pair", "per_pair",
     "out of range"),
    (GOOD + '\n[hard_negatives]\nsampling = "best"\n', "hard_negatives.sampling", "sampling", "one of"),
    (GOOD.replace('[train]\nsuite = "suite"', '[train]\nsuite = "suite"\ndata = "data"'), "train.data", "data =",
     "not suite and data"),
    (GOOD.replace('[train]\nsuite = "suite"', '[train]\ndata = "nowhere"'), "train.data", "nowhere", "not found"),
    (GOOD.replace('[train]\nsuite = "suite"', '[train]\ndata = "data"\nsplit = "validation"'), "train.split",
     "validation", "not in"),
    (GOOD + '\n[dev]\nsplit = "train"\n', "dev.split", 'split = "train"', "training split"),
    (GOOD.replace("eval_steps = 5", 'keep = "best"') + "\n[dev]\nenabled = false\n", "schedule.keep", "keep",
     "needs a dev set"),
    (GOOD + '\n[dev]\nmetric = "ndcg@ten"\n', "dev.metric", "ndcg@ten", "family@k"),
    (GOOD.replace('name = "small-run"\nsuite = "suite"\n', 'name = "small run"\n'), "name", "small run",
     "letters"),
])
def test_bad_recipes_name_file_line_and_key(world, text, field, needle, words):
    path = write(world, text)
    err = error_of(path)
    assert err.path == str(path)
    assert err.field == field
    assert err.line == (line_of(text, *needle) if isinstance(needle, tuple) else line_of(text, needle))
    assert words in err.message
    assert str(path) in str(err) and (field is None or field in str(err))


def test_the_guard_needs_something_to_check_against(world):
    text = GOOD.replace('suite = "suite"\n\n[base]', '\n[base]').replace('[train]\nsuite = "suite"',
                                                                          '[train]\ndata = "data"')
    err = error_of(write(world, text))
    assert err.field == "suite" and "allow_contamination" in err.message
    assert load_recipe(write(world, "allow_contamination = true\n" + text)).contamination.suites == ()


def test_a_pairs_file_takes_no_relevance_threshold(world):
    (world / "pairs.jsonl").write_text('{"query": "a", "positive": "b"}\n')
    text = GOOD.replace('[train]\nsuite = "suite"', '[train]\npairs = "pairs.jsonl"')
    err = error_of(write(world, text))
    assert err.field == "train.min_relevance"
    r = load_recipe(write(world, text.replace("min_relevance = 2\n", "")))
    assert r.train.source.kind == "pairs" and r.dev is None and r.schedule.keep == "last"


def test_overrides_are_validated_like_the_file(world):
    path = write(world, GOOD)
    r = load_recipe(path, ["schedule.learning_rate=1e-4", "schedule.batch_size=8", 'loss.name="cached_mnrl"',
                           "hard_negatives.num_negatives=3"])
    assert r.schedule.learning_rate == 1e-4 and r.schedule.batch_size == 8 and r.loss.name == "cached_mnrl"
    assert r.mining is not None and r.mining.num_negatives == 3
    assert r.sha256 != load_recipe(path).sha256  # a resumed run can tell the settings changed
    assert error_of(path, ["schedule.batch_size=0"]).field == "schedule.batch_size"
    assert error_of(path, ["schedule.learning_rate"]).field == "--set"
    assert apply_overrides({"a": {"b": 1}}, ["a.c=text with spaces"]) == {"a": {"b": 1, "c": "text with spaces"}}


def test_cli_prints_one_line_and_exits_2(world, capsys):
    from embedgate.harness.shells.cli import main

    path = write(world, GOOD.replace("learning_rate = 5e-5", "learning_rate = 0"))
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"{path}:{line_of(path.read_text(), 'learning_rate')}: field 'schedule.learning_rate'" in err


def test_dev_queries_can_be_held_out_of_the_training_split(world):
    from embedgate.trainers.train import build_pairs, split_holdout

    text = GOOD.replace("min_relevance = 2", "min_relevance = 1") + "\n[dev]\nholdout = 1\nseed = 3\n"
    r = load_recipe(write(world, text))
    assert r.dev.holdout == 1 and r.dev.source == r.train.source
    pairs, dev = build_pairs(r)
    assert len(dev.queries) == 1 and {p.query_id for p in pairs.pairs} == {"q1", "q2"} - set(dev.queries)
    full = data.load(world / "data", "train")
    train_part, dev_part = split_holdout(full, 1, 3)
    assert set(train_part.queries) | set(dev_part.queries) == set(full.queries)
    assert not set(train_part.queries) & set(dev_part.queries) and dev_part.queries == dev.queries
    assert error_of(write(world, text.replace("holdout = 1", "holdout = 1\nsplit = \"dev\""))).field == "dev.holdout"
    with pytest.raises(ConfigError, match="leaves no training query"):
        build_pairs(load_recipe(write(world, text.replace("holdout = 1", "holdout = 2"))))


@pytest.mark.parametrize("name", ["regulatory", "legal", "naive"])
def test_shipped_recipes_are_valid(name, datasets_dir):
    recipe = load_recipe(Path(__file__).resolve().parents[1] / "trainers" / "recipes" / f"{name}.toml")
    assert recipe.suite is not None and recipe.suite in recipe.contamination.suites
    assert recipe.train.source.path.name in ("acord", "obliqa")


def test_seeds_option_refuses_duplicates_with_exit_2(tmp_path):
    import subprocess
    import sys

    from embedgate.trainers.cli import parse_seeds

    assert parse_seeds("0,1,2") == [0, 1, 2]
    proc = subprocess.run([sys.executable, "-m", "embedgate.harness.shells.cli", "train",
                           "trainers/recipes/legal.toml", "--seeds", "0,1,1", "--output", str(tmp_path / "r")],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--seeds must list distinct" in proc.stderr and "(1 twice)" in proc.stderr
    assert not (tmp_path / "r-seed0").exists()
