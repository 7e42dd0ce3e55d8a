"""Build suite folders for tests."""
from __future__ import annotations

from pathlib import Path

GOOD_GATES = """
[[gates]]
kind = "absolute"
metric = "ndcg@10"
min = 0.3

[[gates]]
kind = "improvement"
metric = "ndcg@10"
min_relative = 0.05

[[gates]]
kind = "regression_budget"
metric = "ndcg@10"
max_drop = 0.3
max_fraction = 0.5

[[gates]]
kind = "forgetting"
data = "guard"
metric = "ndcg@10"
margin = 0.05
"""


def write_suite(folder: Path, base: str, datasets: Path, gates: str = GOOD_GATES, *, main="scifact",
                guard="acord", main_size=(60, 400), guard_size=(20, 300), extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "suite.toml").write_text(f"""
name = "{folder.name}"
description = "a small suite for tests"

[base]
model = "{base}"
max_seq_length = 128

[data.main]
path = "{datasets / main}"
split = "test"
max_queries = {main_size[0]}
corpus_size = {main_size[1]}

[data.guard]
path = "{datasets / guard}"
split = "test"
role = "guard"
max_queries = {guard_size[0]}
corpus_size = {guard_size[1]}

[evaluation]
metrics = ["ndcg@10", "recall@100"]
ks = [1, 5, 10, 100]
resamples = 2000
{extra}
{gates}
""")
    return folder


def write_tiny_suite(folder: Path, model: str, data: Path, gates: str, *, ks=(1, 5, 10), resamples: int = 500) -> Path:
    """A one-set suite on a small BEIR folder, with the given [[gates]] tables."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "suite.toml").write_text(f"""name = "{folder.name}"
[base]
model = "{model}"
[data.main]
path = "{data}"
[evaluation]
metrics = ["ndcg@10"]
ks = {list(ks)}
resamples = {resamples}
{gates}""")
    return folder
