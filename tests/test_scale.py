"""Scale: bounded memory in encoding and exact search, several encoding processes, torchrun ranks sharing the
encoding through the cache, and approximate indexes that state their recall against exact search."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from conftest import write_beir
from embedgate.harness import encode as enc
from embedgate.harness.encode import EmbeddingCache, encode_texts
from embedgate.harness.evaluate import evaluate
from embedgate.harness.models import ModelSpec, load_model
from embedgate.harness.retrieve import index_params, index_recall, search
from embedgate.harness.shells.cli import main

REPO = Path(__file__).resolve().parents[1]


class HashEncoder:
    """Deterministic vectors from each text's hash, fast enough for a few hundred thousand texts."""

    name = "hash-encoder"
    chunk_size = None

    def __init__(self, dim: int = 64):
        self.dim = dim
        self.calls: list[int] = []

    def cache_key(self, role: str) -> dict:
        return {"model": "hash", "dim": self.dim, "role": role}

    def embed(self, texts, role, show_progress):
        self.calls.append(len(texts))
        seeds = np.frombuffer(b"".join(hashlib.sha256(t.encode()).digest()[:4] for t in texts), dtype="<u4")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, s in enumerate(seeds):
            out[i] = np.random.default_rng(int(s)).standard_normal(self.dim, dtype=np.float32)
        return out


# ------------------------------------------------------------------------------------------ bounded memory


def test_encoding_memory_is_the_output_matrix_plus_one_chunk(tmp_path, monkeypatch):
    """No per-row table of vectors: numpy's allocations while encoding 60k texts (cold) and reading them back from
    the cache (warm) stay within the output matrix, one chunk and the per-text hashes."""
    monkeypatch.setattr(enc, "DEFAULT_CHUNK", 8192)
    n, dim = 60_000, 64
    texts = [f"document number {i} about clause {i % 977}" for i in range(n)]
    model = HashEncoder(dim)
    matrix = n * dim * 4
    chunk = enc.DEFAULT_CHUNK * dim * 4
    # per text: its hash, first/inverse indices, the cache's index (hash, prefix, shard, row), a lookup result
    per_text = n * (32 + 16 + 52 + 8 + 32)
    for phase in ("cold", "warm"):
        tracemalloc.start()
        out, stats = encode_texts(model, texts, "document", EmbeddingCache(tmp_path))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert stats.encoded == (n if phase == "cold" else 0)
        assert peak < matrix + 3 * chunk + per_text, (phase, peak / matrix)
    assert max(model.calls) == enc.DEFAULT_CHUNK  # encoded chunk by chunk
    np.testing.assert_array_equal(out[:5], model.embed(texts[:5], "document", False))


def test_duplicates_and_a_lazy_sequence_of_texts():
    class Lazy:
        def __init__(self, items):
            self.items, self.reads = items, 0

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            self.reads += 1
            return self.items[i]

        def __iter__(self):
            for i in range(len(self.items)):
                yield self[i]

    texts = ["a", "b", "a", "c", "b", "a"]
    lazy = Lazy(texts)
    out, stats = encode_texts(HashEncoder(8), lazy, "document")
    assert (stats.unique, stats.encoded) == (3, 3)
    np.testing.assert_array_equal(out, HashEncoder(8).embed(texts, "document", False))
    assert lazy.reads == len(texts) + 3  # read once to hash, then once per text to encode


def test_eval_encodes_documents_from_a_view_of_the_corpus(small_beir, tiny_model, monkeypatch):
    seen = []
    real = enc.encode_texts

    def spy(model, texts, role, cache=None, **kw):
        seen.append(type(texts).__name__)
        return real(model, texts, role, cache, **kw)

    import embedgate.harness.evaluate as ev

    monkeypatch.setattr(ev, "encode_texts", spy)
    evaluate(small_beir, str(tiny_model), cache=False)
    assert seen[0] == "DocumentTexts"  # the joined title + text is made per chunk, not held for the corpus


def _normed(rng, n, d):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_exact_search_keeps_only_the_running_top_k_between_chunks():
    rng = np.random.default_rng(0)
    docs, q = _normed(rng, 20_000, 16), _normed(rng, 1000, 16)
    ids = [f"d{i}" for i in range(20_000)]
    one = search(q, docs, ids, 100, chunk_size=50_000)
    tracemalloc.start()
    many = search(q, docs, ids, 100, chunk_size=500)  # 40 chunks
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert many == one
    # 40 chunks of candidate lists (1000 x 40 x (108 scores + 108 indices)) would be ~70 MB
    assert peak < 30 * 2**20, peak / 2**20


# ------------------------------------------------------------------------------------------ processes


def test_processes_do_not_change_the_fingerprint_or_the_cli_spec(tiny_model):
    from embedgate.harness.shells.cli import _model_spec, build_parser

    one = load_model(ModelSpec(name=str(tiny_model)))
    two = load_model(ModelSpec(name=str(tiny_model), processes=2))
    assert one.fingerprint == two.fingerprint  # the same cache entries
    args = build_parser().parse_args(["eval", "x", "--model", str(tiny_model), "--processes", "2"])
    assert _model_spec(args)["processes"] == 2
    assert "processes" not in _model_spec(build_parser().parse_args(["eval", "x", "--model", "m"]))
    with pytest.raises(Exception):
        ModelSpec(name="m", processes=0)


def test_two_processes_give_the_vectors_and_metrics_of_one(small_beir, tiny_model, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    texts = [f"clause {i} on the governing law of agreement {i % 7}" for i in range(120)]
    one = load_model(ModelSpec(name=str(tiny_model)))
    two = load_model(ModelSpec(name=str(tiny_model), processes=2))
    v1, _ = encode_texts(one, texts, "document")
    v2, _ = encode_texts(two, texts, "document")
    pool = two._pool
    assert len(pool["processes"]) == 2 and all(p.is_alive() for p in pool["processes"])
    np.testing.assert_allclose(v2, v1, atol=1e-6, rtol=0)
    r1 = evaluate(small_beir, one, cache=False)
    r2 = evaluate(small_beir, two, cache=False)
    assert r2.metrics == r1.metrics and r2.per_query == r1.per_query
    assert r2.model["fingerprint"] == r1.model["fingerprint"]


# ------------------------------------------------------------------------------------------ torchrun ranks


def test_ranks_encode_their_share_and_read_the_rest(tmp_path, monkeypatch):
    """The sharing logic without torchrun: rank 1 of 2 encodes the texts of its hash class, passes the barrier and
    (alone here) encodes the rest itself; rank 0 then finds everything in the cache."""
    texts = [f"text {i}" for i in range(200)]
    model = HashEncoder(8)
    barriers = []
    monkeypatch.setattr(enc, "_RANKS", enc._Ranks(1, 2))
    monkeypatch.setattr(enc._Ranks, "barrier", lambda self: barriers.append(self.rank))
    out, stats = encode_texts(model, texts, "document", EmbeddingCache(tmp_path))
    assert barriers == [1] and stats.encoded == 200
    assert 60 < model.calls[0] < 140  # its share first, then the rest after the barrier
    monkeypatch.setattr(enc, "_RANKS", enc._Ranks(0, 2))
    out0, stats0 = encode_texts(HashEncoder(8), texts, "document", EmbeddingCache(tmp_path))
    assert (stats0.cached, stats0.encoded) == (200, 0)
    np.testing.assert_array_equal(out0, out)
    with pytest.raises(Exception, match="cache"):
        encode_texts(model, texts, "document", None)


def _tiny_beir(folder: Path) -> Path:
    words = ["law", "court", "royalty", "notice", "audit", "cats", "protein", "rates", "clause", "party"]
    corpus = {f"d{i}": (words[i % 10], " ".join(words[(i * j) % 10] for j in range(1, 7)) + f" item {i}")
              for i in range(40)}
    queries = {f"q{i}": " ".join(words[(i + j) % 10] for j in range(3)) for i in range(10)}
    qrels = {f"q{i}": {f"d{(3 * i) % 40}": 1, f"d{(7 * i + 1) % 40}": 2} for i in range(10)}
    return write_beir(folder, corpus, queries, qrels)


def test_torchrun_two_ranks_give_the_metrics_of_one_process(tiny_model, tmp_path):
    data = _tiny_beir(tmp_path / "data")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "EMBEDGATE_NO_PROGRESS": "1"}
    single = subprocess.run([sys.executable, "-m", "embedgate.harness.shells.cli", "eval", str(data), "--model",
                             str(tiny_model), "--cache-dir", str(tmp_path / "c1"), "--out", str(tmp_path / "one.json")],
                            env=env, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    ranks = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                            "-m", "embedgate.harness.shells.cli", "eval", str(data), "--model", str(tiny_model),
                            "--cache-dir", str(tmp_path / "c2"), "--out", str(tmp_path / "two.json")],
                           env=env, capture_output=True, text=True, timeout=600)
    assert ranks.returncode == 0, ranks.stderr[-3000:]
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert two["metrics"] == one["metrics"] and two["per_query"] == one["per_query"]
    enc0 = two["timings"]["encode"]
    rank0 = enc0["documents"]["encoded"] + enc0["queries"]["encoded"]
    from_rank1 = enc0["documents"]["cached"] + enc0["queries"]["cached"]
    assert rank0 > 0 and from_rank1 > 0 and rank0 + from_rank1 == 50  # 40 documents, 10 queries, split by hash
    assert f"rank 1: encoded {from_rank1} texts into the shared cache" in ranks.stderr
    assert ranks.stdout.count("ndcg") == 1  # rank 0 alone reports


# ------------------------------------------------------------------------------------------ approximate search


def test_ivf_recall_against_exact_search():
    rng = np.random.default_rng(3)
    centers = _normed(rng, 40, 32)
    docs = centers[rng.integers(0, 40, 4000)] + 0.15 * rng.normal(size=(4000, 32)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    q = docs[rng.integers(0, 4000, 200)] + 0.1 * rng.normal(size=(200, 32)).astype(np.float32)
    ids = [f"d{i}" for i in range(4000)]
    params = index_params("ivf", 4000)
    assert params == {"nlist": 63, "nprobe": 4, "train_sample": 4000, "seed": 0}
    approx = search(q, docs, ids, 10, index="ivf")
    rec = index_recall(q, docs, ids, approx, 10, index="ivf", sample=100)
    assert rec["sample_queries"] == 100 and rec["k"] == 10 and rec["params"] == params
    assert 0.5 < rec["recall"] < 1.0
    # every list probed: exact search
    full = search(q, docs, ids, 10, index="ivf", ivf_nprobe=63)
    assert full == search(q, docs, ids, 10)
    assert index_recall(q, docs, ids, full, 10, index="ivf", sample=100, ivf_nprobe=63)["recall"] == 1.0
    # recall of a deliberately poor ranking
    shuffled = [list(reversed(r)) for r in search(q, docs, ids, 20)]
    assert index_recall(q, docs, ids, shuffled, 10, index="ivf")["recall"] == 0.0


def test_ivf_on_a_corpus_smaller_than_its_training_minimum():
    rng = np.random.default_rng(4)
    docs, q = _normed(rng, 20, 8), _normed(rng, 3, 8)
    ids = [str(i) for i in range(20)]
    assert index_params("ivf", 20)["nlist"] == 1
    assert search(q, docs, ids, 5, index="ivf") == search(q, docs, ids, 5)
    with pytest.raises(ValueError, match="unknown index"):
        search(q, docs, ids, 5, index="ivf-pq")


@pytest.mark.parametrize("index", ["ivf", "hnsw"])
def test_an_approximate_eval_records_and_prints_its_recall(small_beir, tiny_model, tmp_path, capsys, index):
    out = tmp_path / "r.json"
    assert main(["eval", str(small_beir), "--model", str(tiny_model), "--no-cache", "--index", index, "--out",
                 str(out)]) == 0
    printed = capsys.readouterr().out
    rec = json.loads(out.read_text())["conventions"]["index_recall"]
    assert rec["index"] == index and rec["k"] == 8 and rec["sample_queries"] == 4 and rec["seed"] == 0
    assert rec["recall"] == 1.0  # 8 documents: every approximate index finds them all
    assert f"APPROXIMATE search ({index}:" in printed and "recall@8 1.0000" in printed
    assert main(["eval", str(small_beir), "--model", str(tiny_model), "--no-cache", "--out", str(out)]) == 0
    assert "APPROXIMATE" not in capsys.readouterr().out
    assert "index_recall" not in json.loads(out.read_text())["conventions"]
