"""The embedding cache: encodes each text once per (model, role, prompt, length, dtype), never trusts damage."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from embedgate.harness.encode import EmbeddingCache, encode_texts
from embedgate.harness.models import ModelSpec, load_model

TEXTS = ["alpha clause on governing law", "beta termination clause", "gamma royalty clause", "alpha clause on governing law"]


@pytest.fixture
def model(tiny_model):
    return load_model(str(tiny_model))


def test_second_run_encodes_nothing_and_gives_identical_vectors(model, tmp_path):
    cache = EmbeddingCache(tmp_path)
    first, s1 = encode_texts(model, TEXTS, "document", cache)
    second, s2 = encode_texts(model, TEXTS, "document", EmbeddingCache(tmp_path))
    assert (s1.unique, s1.encoded, s1.cached) == (3, 3, 0)  # the duplicate text is encoded once
    assert (s2.encoded, s2.cached) == (0, 3)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, model.model.encode(TEXTS, normalize_embeddings=True), atol=1e-6)


def test_editing_one_text_reencodes_only_that_text(model, tmp_path):
    cache = EmbeddingCache(tmp_path)
    encode_texts(model, TEXTS, "document", cache)
    edited = TEXTS[:2] + ["gamma royalty clause, amended"]
    _, stats = encode_texts(model, edited, "document", cache)
    assert (stats.encoded, stats.cached) == (1, 2)


def test_query_and_document_roles_and_prompts_are_separate_entries(tiny_model, tmp_path):
    cache = EmbeddingCache(tmp_path)
    plain = load_model(str(tiny_model))
    prompted = load_model(ModelSpec(name=str(tiny_model), query_prompt="query: "))
    v_doc, _ = encode_texts(plain, TEXTS[:1], "document", cache)
    v_q, s_q = encode_texts(prompted, TEXTS[:1], "query", cache)
    assert s_q.encoded == 1  # not served from the document entry
    assert not np.allclose(v_doc, v_q)
    np.testing.assert_allclose(v_q[0], plain.model.encode(["query: " + TEXTS[0]], normalize_embeddings=True)[0],
                               atol=1e-6)
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_damaged_shard_is_detected_and_recomputed(model, tmp_path, damage):
    cache = EmbeddingCache(tmp_path)
    good, _ = encode_texts(model, TEXTS, "document", cache)
    shard = next(tmp_path.rglob("*.npz"))
    raw = shard.read_bytes()
    if damage == "truncate":
        shard.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip":  # same size, one byte inside the vectors changed: only the checksum can tell
        data = bytearray(raw)
        data[len(data) - 200] ^= 0xFF
        shard.write_bytes(bytes(data))
    else:
        shard.write_bytes(b"not a zip at all")
    again, stats = encode_texts(model, TEXTS, "document", EmbeddingCache(tmp_path))
    assert stats.encoded == 3 and stats.cached == 0
    np.testing.assert_allclose(again, good, atol=1e-6)
    assert list(tmp_path.rglob("*.corrupt-*")), "the damaged shard is moved aside, not reused"


def test_two_processes_sharing_a_cache(tiny_model, tmp_path):
    script = (
        "import sys; from harness.models import load_model; from harness.encode import EmbeddingCache, encode_texts\n"
        f"m = load_model({str(tiny_model)!r}); texts = [f'text number {{i}}' for i in range(300)]\n"
        f"v, s = encode_texts(m, texts, 'document', EmbeddingCache({str(tmp_path)!r}))\n"
        "import numpy as np; np.save(sys.argv[1], v)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / f"out{i}.npy")]) for i in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    a, b = np.load(tmp_path / "out0.npy"), np.load(tmp_path / "out1.npy")
    np.testing.assert_array_equal(a, b)
    model = load_model(str(tiny_model))
    v, stats = encode_texts(model, [f"text number {i}" for i in range(300)], "document", EmbeddingCache(tmp_path))
    assert stats.encoded == 0
    np.testing.assert_allclose(v, a, atol=1e-6)
    assert not list(tmp_path.rglob("*.tmp")), "no temporary file is left behind"


def test_cache_files_load_without_pickle(model, tmp_path):
    encode_texts(model, TEXTS, "document", EmbeddingCache(tmp_path))
    shard = next(tmp_path.rglob("*.npz"))
    with np.load(shard, allow_pickle=False) as f:
        assert set(f.files) == {"hashes", "vectors"}
        assert f["vectors"].dtype == np.float32


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    import os

    from embedgate.harness.io import atomic_write_text

    mask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "x.json", "{}")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644
