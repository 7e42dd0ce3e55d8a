"""Shared fixtures: a tiny in-process model, small BEIR folders, and one encoding cache for the whole run."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("EMBEDGATE_DATA", REPO.parent / "shared" / "datasets"))
# One cache for every test that uses the real model, kept between local runs (CI starts cold).
TEST_CACHE = Path(os.environ.get("EMBEDGATE_TEST_CACHE", REPO / ".embedgate-cache" / "tests"))
# Under `pytest -n N` each worker's torch gets cpu_count / N threads (set before torch is imported; the worker's
# subprocesses inherit it): N workers of a full thread pool each would oversubscribe the cores.
if os.environ.get("PYTEST_XDIST_WORKER") and "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // int(os.environ.get(
        "PYTEST_XDIST_WORKER_COUNT", "1"))))
    if "torch" in sys.modules:  # imported already (by a plugin): its pool is sized at the first parallel op
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_configure(config: pytest.Config) -> None:
    """`pytest -n 2` (pytest-xdist) hands out whole files: a module's expensive fixtures (a suite run, a real-model
    encoding) are then built once, by one worker, as in a serial run."""
    if getattr(config.option, "numprocesses", None) and getattr(config.option, "dist", "no") == "load":
        config.option.dist = "loadfile"
        # xdist would hand out the files with the most tests first; the order below (slowest first) is kept instead
        config.option.loadscopereorder = False


# The longest files run first: the real MiniLM encoding all of scifact takes one worker about 12 minutes, and handed
# out late (xdist's default order puts a 3-test file near the end) it finishes long after the other worker has run
# out of files.
SLOWEST_FIRST = ("test_real_minilm.py", "test_real_minilm_acord.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


TINY_TEXTS = [
    "the governing law of this agreement is new york",
    "either party may terminate this agreement upon notice",
    "the licensee shall pay royalties quarterly",
    "confidential information shall not be disclosed",
    "audit rights of the licensor during business hours",
    "cats purr and dogs bark in the garden",
    "protein folding in cells depends on chaperones",
    "interest rates and inflation in the economy",
]


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    if not (DATASETS / "scifact").is_dir():
        pytest.fail(f"shared datasets not found at {DATASETS}; set EMBEDGATE_DATA")
    return DATASETS


@pytest.fixture(scope="session")
def test_cache() -> Path:
    TEST_CACHE.mkdir(parents=True, exist_ok=True)
    return TEST_CACHE


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", TINY_TEXTS)


def write_beir(folder: Path, corpus: dict, queries: dict, qrels: dict[str, dict], split: str = "test") -> Path:
    """corpus {id: (title, text)}, queries {id: text}, qrels {qid: {doc: rel}} -> a BEIR folder."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for doc_id, (title, text) in corpus.items():
            fh.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as fh:
        for qid, text in queries.items():
            fh.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    with open(folder / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for qid, rels in qrels.items():
            for doc, rel in rels.items():
                fh.write(f"{qid}\t{doc}\t{rel}\n")
    return folder


SMALL_CORPUS = {f"d{i}": ("", t) for i, t in enumerate(TINY_TEXTS)}
SMALL_QUERIES = {"q1": "which law governs the agreement", "q2": "termination on notice",
                 "q3": "royalty payments", "q4": "protein folding"}
SMALL_QRELS = {"q1": {"d0": 2, "d1": 0}, "q2": {"d1": 1}, "q3": {"d2": 3, "d4": 1}, "q4": {"d6": 1}}


@pytest.fixture
def small_beir(tmp_path) -> Path:
    return write_beir(tmp_path / "small", SMALL_CORPUS, SMALL_QUERIES, SMALL_QRELS)
