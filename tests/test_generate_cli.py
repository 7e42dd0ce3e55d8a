"""`embedgate generate` end to end without an API key: the offline generators through the real CLI, a suite
folder that loads, thresholds from the measured base model, a train split that `embedgate train` takes with its
contamination guard satisfied, and `pytest <folder>` running the gates at once."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from embedgate.harness.shells.cli import main
from test_generate_support import vocabulary_texts, write_docs

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    from tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("gen-cli")
    model = build_tiny_model(root / "model", vocabulary_texts(), max_seq_length=128)
    docs = write_docs(root / "docs", n_docs=12, paragraphs=4)
    out = root / "suite"
    env_key = os.environ.pop("ANTHROPIC_API_KEY", None)
    try:
        rc = main(["generate", str(docs), "--out", str(out), "--base-model", str(model), "--chunk-tokens", "64",
                   "--overlap", "16", "--cache-dir", str(root / "cache"), "--seed", "3"])
    finally:
        if env_key is not None:
            os.environ["ANTHROPIC_API_KEY"] = env_key
    return {"rc": rc, "out": out, "model": model, "docs": docs, "root": root}


def test_offline_generation_writes_a_loadable_suite(generated, capsys):
    out = generated["out"]
    assert generated["rc"] == 0
    from embedgate.harness import data as data_mod
    from embedgate.harness.suite import load_suite

    report = json.loads((out / "generation_report.json").read_text())
    assert report["generation"]["mode"] == "offline"
    counts = report["splits"]
    for split in ("train", "dev", "test"):
        if counts[split]["queries"]:
            ds = data_mod.load(out, split)
            assert len(ds.queries) == counts[split]["queries"]
            assert len(ds.corpus) == report["chunking"]["chunks"]
    assert counts["train"]["queries"] and counts["test"]["queries"]
    assert report["filters"]["kept"] == sum(v["queries"] for v in counts.values())
    suite = load_suite(out)
    assert suite.data["main"].split == "test" and suite.data["main"].path == out.resolve()
    assert [g.kind for g in suite.gates] == ["absolute", "absolute", "improvement"]
    assert "SOURCE.md" in os.listdir(out) and "offline" in (out / "SOURCE.md").read_text().lower()
    # every query of a document sits in its document's split
    chunks = [json.loads(line) for line in (out / "chunks.jsonl").read_text().splitlines()]
    split_of_doc = {c["doc_id"]: c["split"] for c in chunks}
    for row in map(json.loads, (out / "pairs.jsonl").read_text().splitlines()):
        assert row["split"] == split_of_doc[row["doc_id"]]
        assert all(cid.startswith(row["doc_id"] + "#") for cid in row["chunk_ids"])


def test_absolute_gates_come_from_the_measured_base(generated):
    from embedgate.harness.evaluate import evaluate

    out = generated["out"]
    measured = evaluate(out, str(generated["model"]), split="test", metrics=["ndcg@10", "recall@100"], cache=False)
    raw = tomllib.loads((out / "suite.toml").read_text())
    mins = {g["metric"]: g["min"] for g in raw["gates"] if g["kind"] == "absolute"}
    for metric in ("ndcg@10", "recall@100"):
        assert mins[metric] == pytest.approx(math.floor((measured.metrics[metric] - 0.02) * 1000) / 1000, abs=1e-9)
    text = (out / "suite.toml").read_text()
    assert f"base model measured {measured.metrics['ndcg@10']:.4f} on {len(measured.per_query)} test queries" in text


def test_the_train_split_feeds_embedgate_train_and_passes_its_guard(generated, tmp_path):
    out = generated["out"]
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f"""name = "from-generated"
suite = {json.dumps(str(out))}
output = {json.dumps(str(tmp_path / "run"))}
[base]
model = {json.dumps(str(generated["model"]))}
[train]
suite = {json.dumps(str(out))}
[hard_negatives]
enabled = false
[schedule]
max_steps = 2
batch_size = 8
""")
    assert main(["train", str(recipe), "--no-cache"]) == 0  # the guard would exit 2 on a leak
    manifest = json.loads((tmp_path / "run" / "training_manifest.json").read_text())
    train_rows = (out / "qrels" / "train.tsv").read_text().splitlines()[1:]
    assert manifest["data"]["train"]["n_pairs"] == len(train_rows)
    assert manifest["data"]["train"]["split"] == "train"
    assert manifest["data"]["dev"]["split"] == "dev"  # the generated dev split is found by itself
    guard = manifest["contamination"]
    assert guard["clean"] and any(c["split"] == "test" and c["path"] == str(out.resolve())
                                  for c in guard["checked_against"])


def test_pytest_runs_the_generated_suite_at_once(generated):
    out, model = generated["out"], generated["model"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMBEDGATE_CACHE": str(generated["root"] / "cache"),
           "EMBEDGATE_NO_PROGRESS": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", str(out), "--candidate", str(model), "-q", "-p",
                           "no:cacheprovider", "--embedgate-results", str(generated["root"] / "results"),
                           "--rootdir", str(out)],
                          capture_output=True, text=True, env=env, cwd=generated["root"], timeout=300)
    summary = proc.stdout.strip().splitlines()[-1]
    # the candidate is the base itself: it clears the floors and cannot show an improvement
    assert "2 passed" in summary and "1 failed" in summary, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.returncode == 1


def test_rerun_is_refused_over_a_hand_written_suite(generated, tmp_path):
    from embedgate.harness.errors import ConfigError
    from embedgate.trainers.generate.pipeline import GenerateOptions, generate

    (tmp_path / "suite.toml").write_text('name = "mine"\n')
    with pytest.raises(ConfigError, match="did not write"):
        generate(GenerateOptions(docs=generated["docs"], out=tmp_path, base_model=str(generated["model"])),
                 say=lambda m: None, warn=lambda m: None)
    assert (tmp_path / "suite.toml").read_text() == 'name = "mine"\n'


def test_guard_adds_a_forgetting_gate_and_no_measure_leaves_out_the_floors(generated, tmp_path):
    guard = tmp_path / "guard"
    (guard / "qrels").mkdir(parents=True)
    (guard / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"g{i}", "title": "", "text": f"cells {i}"}) + "\n"
                                                for i in range(3)))
    (guard / "queries.jsonl").write_text(json.dumps({"_id": "gq", "text": "cells"}) + "\n")
    (guard / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\ngq\tg1\t1\n")
    out = tmp_path / "suite"
    rc = main(["generate", str(generated["docs"]), "--out", str(out), "--base-model", str(generated["model"]),
               "--chunk-tokens", "64", "--overlap", "16", "--offline", "--no-measure", "--guard", str(guard),
               "--guard-corpus-size", "0"])
    assert rc == 0
    from embedgate.harness.suite import load_suite

    suite = load_suite(out)
    assert suite.data["guard"].path == guard.resolve() and suite.data["guard"].role == "guard"
    assert [g.kind for g in suite.gates] == ["improvement", "forgetting"]
    assert "No absolute floors" in (out / "suite.toml").read_text()
    missing = main(["generate", str(generated["docs"]), "--out", str(tmp_path / "x"), "--base-model",
                    str(generated["model"]), "--offline", "--guard", str(tmp_path / "nowhere")])
    assert missing == 2 and not (tmp_path / "x").exists()  # a bad guard stops it before anything is done
