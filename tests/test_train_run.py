"""`embedgate train` end to end with the tiny model: a loadable model, its manifest and card, the dev evaluator's
numbers equal to harness.evaluate's, resume after an interruption, and the contamination guard stopping a run."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import write_beir
from embedgate.harness import data
from embedgate.harness.errors import ConfigError
from embedgate.harness.evaluate import evaluate
from embedgate.harness.models import ModelSpec, load_model, weights_fingerprint
from embedgate.trainers.contamination import ContaminationError
from embedgate.trainers.train import CHECKPOINTS, MANIFEST, train

DOCS = [
    "this agreement is governed by the laws of new york", "english law governs this agreement",
    "either party may terminate this agreement upon notice", "termination for convenience on written notice",
    "the licensee shall pay royalties quarterly", "royalty reports are due each quarter",
    "confidential information shall not be disclosed", "the recipient keeps all information secret",
    "audit rights of the licensor during business hours", "the licensor may inspect the books once a year",
    "the warranty period is twelve months", "the seller warrants the goods are free of defects",
    "cats purr and dogs bark in the garden", "protein folding in cells depends on chaperones",
    "interest rates and inflation in the economy", "the court of new york has jurisdiction",
]
QUERIES = {
    "t1": "new york governing law", "t2": "termination on notice", "t3": "royalty payments",
    "t4": "keep information confidential", "t5": "audit of the licensor", "t6": "warranty of goods",
    "t7": "english governing law", "t8": "quarterly royalty report",
    "v1": "inspection of books", "v2": "defects warranty period",
    "h1": "which court has jurisdiction", "h2": "secret information of the recipient",
}
TRAIN = {"t1": {"d0": 3, "d15": 1}, "t2": {"d2": 3, "d3": 2}, "t3": {"d4": 3}, "t4": {"d6": 3, "d7": 1},
         "t5": {"d8": 3}, "t6": {"d11": 2, "d10": 1}, "t7": {"d1": 3}, "t8": {"d5": 3}}
DEV = {"v1": {"d9": 2}, "v2": {"d10": 1, "d11": 1}}
TEST = {"h1": {"d15": 2}, "h2": {"d7": 2}}

RECIPE = """name = "tiny-legal"
suite = "suite"

[base]
model = "{model}"

[train]
suite = "suite"
min_relevance = 2

[hard_negatives]
num_negatives = 3

[schedule]
max_steps = 4
batch_size = 4
learning_rate = 1e-3
eval_steps = 2
save_steps = 2
keep = "last"
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_model) -> Path:
    root = tmp_path_factory.mktemp("train")
    corpus = {f"d{i}": ("", t) for i, t in enumerate(DOCS)}
    for split, qrels in (("train", TRAIN), ("dev", DEV), ("test", TEST)):
        write_beir(root / "data", corpus, QUERIES, qrels, split=split)
    (root / "suite").mkdir()
    (root / "suite" / "suite.toml").write_text(
        f'name = "tiny"\n[base]\nmodel = "{tiny_model}"\n[data.main]\npath = "../data"\nsplit = "test"\n'
        '[[gates]]\nkind = "improvement"\nmetric = "ndcg@10"\n')
    (root / "recipe.toml").write_text(RECIPE.format(model=tiny_model))
    return root


@pytest.fixture(scope="module")
def trained(world) -> Path:
    result = train(world / "recipe.toml", output=world / "out", progress=None, cache=world / "cache")
    assert result.output == world / "out" and result.resumed_from is None
    return result.output


class Interrupt(Exception):
    pass


def test_the_model_folder_has_weights_card_and_manifest(world, trained, tiny_model):
    files = {p.name for p in trained.iterdir()}
    assert {"model.safetensors", "README.md", MANIFEST, "modules.json"} <= files
    assert CHECKPOINTS not in files  # removed after a finished run (keep_checkpoints = false)
    assert all(os.stat(p).st_mode & 0o044 for p in trained.iterdir() if p.is_file())  # shareable modes
    m = json.loads((trained / MANIFEST).read_text())
    base = load_model(str(tiny_model))
    assert m["base_model"]["fingerprint"] == base.fingerprint
    assert m["base_model"]["weights_fingerprint"] == weights_fingerprint(tiny_model)
    assert m["candidate"]["weights_fingerprint"] == weights_fingerprint(trained) != base.weights_fingerprint
    train_set = data.load(world / "data", "train")
    assert m["data"]["train"]["content_hash"] == train_set.content_hash
    assert m["data"]["train"]["n_pairs"] == 9  # judgments with relevance >= 2 in TRAIN, all mined a negative
    assert m["data"]["dev"]["content_hash"] == data.load(world / "data", "dev").content_hash
    assert m["hard_negatives"]["pairs_in"] == 9 and m["hard_negatives"]["pairs_out"] == m["data"]["train"]["n_pairs"]
    assert m["contamination"]["clean"] and m["contamination"]["checked_against"][0]["queries"] == 2
    t = m["training"]
    assert (t["global_step"], t["precision"], t["device"], t["world_size"]) == (4, "fp32", "cpu", 1)
    assert t["loss"]["class"] == "MultipleNegativesRankingLoss" and t["batch_sampler"] == "no_duplicates"
    assert [h["step"] for h in m["dev_metrics"]] == [0, 2, 4]
    assert m["seed"] == 0 and m["wall_time_s"] > 0 and m["environment"]["packages"]["sentence-transformers"]
    card = (trained / "README.md").read_text()
    assert "embedgate gate" in card and "--candidate" in card and m["name"] in card
    assert f"{m['dev_selection']['kept']:.4f}" in card


def test_dev_numbers_are_the_harness_numbers_of_the_saved_model(world, trained):
    """The evaluator ran the harness on the in-training model; evaluating the saved folder gives the same values."""
    m = json.loads((trained / MANIFEST).read_text())
    final = m["dev_metrics"][-1]
    assert final["step"] == m["dev_selection"]["kept_step"] == 4
    result = evaluate(world / "data", str(trained), split="dev", metrics=["ndcg@10", "mrr@10", "recall@100"],
                      cache=False)
    for name, value in result.metrics.items():
        assert final["metrics"][name] == pytest.approx(value, abs=1e-6)
    base = evaluate(world / "data", m["base_model"]["path"], split="dev", metrics=["ndcg@10"], cache=False)
    assert m["dev_metrics"][0]["metrics"]["ndcg@10"] == pytest.approx(base.metrics["ndcg@10"], abs=1e-6)
    # the trained model loads through the harness and embeds unit vectors
    loaded = load_model(ModelSpec(str(trained)))
    vec = loaded.model.encode(["governing law"], normalize_embeddings=True)
    assert vec.shape == (1, loaded.dimension)


def test_an_interrupted_run_resumes_from_its_last_checkpoint(world, trained):
    from transformers import TrainerCallback

    class StopAfterStep3(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise Interrupt

    out = world / "resumed"
    with pytest.raises(Interrupt):
        train(world / "recipe.toml", output=out, progress=None, callbacks=[StopAfterStep3()], cache=world / "cache")
    assert not (out / MANIFEST).exists()
    assert (out / CHECKPOINTS / "checkpoint-2").is_dir() and not (out / CHECKPOINTS / "checkpoint-3").exists()
    with pytest.raises(ConfigError, match="--resume"):
        train(world / "recipe.toml", output=out, progress=None, resume=False)
    result = train(world / "recipe.toml", output=out, progress=None, cache=world / "cache")
    assert result.resumed_from and result.resumed_from.endswith("checkpoint-2")
    m = result.manifest
    assert m["training"]["global_step"] == 4 and m["training"]["resumed_from"].endswith("checkpoint-2")
    assert [h["step"] for h in m["dev_metrics"]] == [0, 2, 4]  # the history survives the interruption
    # same seed, same data order, restored RNG states: the resumed model is the uninterrupted one
    from safetensors.numpy import load_file

    a, b = load_file(trained / "model.safetensors"), load_file(out / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert abs(a[k] - b[k]).max() < 1e-5, k


def test_finished_models_and_foreign_folders_are_not_overwritten(world, trained):
    with pytest.raises(ConfigError, match="already holds a trained model"):
        train(world / "recipe.toml", output=trained, progress=None)
    foreign = world / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="only replaces folders written by"):
        train(world / "recipe.toml", output=foreign, progress=None, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "mine"
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(world / "recipe.toml", output=world / "empty", progress=None, resume=True)


def test_contamination_stops_the_run_unless_allowed(world, tiny_model):
    leaky = world / "leaky.toml"
    # training on the suite's test split: its queries are the held-out queries
    leaky.write_text(RECIPE.format(model=tiny_model).replace('min_relevance = 2', 'split = "test"')
                     .replace("[hard_negatives]\nnum_negatives = 3\n", "")
                     + '\n[loss]\nname = "cached_mnrl"\nmini_batch_size = 2\nmatryoshka_dims = [32, 16]\n')
    with pytest.raises(ContaminationError) as info:
        train(leaky, output=world / "leaky", progress=None)
    message = str(info.value)
    assert "h1" in message and "h2" in message and "which court has jurisdiction" in message
    assert info.value.field == "allow_contamination" and not (world / "leaky").exists()
    result = train(leaky, output=world / "leaky", progress=None, allow_contamination=True,
                   overrides=None)
    m = result.manifest
    assert m["contamination"]["allowed"] and m["contamination"]["n_overlaps"] == 2
    assert {o["heldout_query_id"] for o in m["contamination"]["overlaps"]} == {"h1", "h2"}
    assert m["training"]["loss"]["class"] == "CachedMultipleNegativesRankingLoss"
    assert m["training"]["loss"]["matryoshka"]["dims"] == [32, 16]
    assert "Contamination allowed" in (result.output / "README.md").read_text()


def test_torchrun_runs_the_same_command_as_a_ddp_job(world):
    """Scale-out goes through the Hugging Face Trainer's DDP: the same command under torchrun, here two CPU processes
    (gloo), trains one model; rank 0 alone writes it, and the manifest records the world size."""
    import subprocess
    import sys

    out = world / "out-ddp"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMBEDGATE_CACHE": str(world / "cache"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "embedgate.harness.shells.cli",
                           "train", "recipe.toml", "--output", str(out)], cwd=world, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["training"]["world_size"] == 2 and manifest["training"]["device"] == "cpu"
    assert not (out / CHECKPOINTS).exists()
    assert [m["step"] for m in manifest["dev_metrics"]][-1] == 4
    model = load_model(str(out))
    assert model.weights_fingerprint != load_model(manifest["base_model"]["path"]).weights_fingerprint
