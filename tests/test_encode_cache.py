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


def _damage(path: Path, damage: str) -> None:
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip":  # same size, one byte near the end changed: only the checksum can tell
        data = bytearray(raw)
        data[len(data) - 20] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        path.write_bytes(b"not a shard at all")


@pytest.mark.parametrize("part", ["vectors.npy", "hashes.npy", "shard.json"])
@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_damaged_shard_is_detected_and_recomputed(model, tmp_path, damage, part):
    cache = EmbeddingCache(tmp_path)
    good, _ = encode_texts(model, TEXTS, "document", cache)
    [shard] = list(tmp_path.rglob(f"*.{part}"))
    _damage(shard, damage)
    again, stats = encode_texts(model, TEXTS, "document", EmbeddingCache(tmp_path))
    assert stats.encoded == 3 and stats.cached == 0
    np.testing.assert_allclose(again, good, atol=1e-6)
    assert list(tmp_path.rglob("*.corrupt-*")), "the damaged shard is moved aside, not reused"
    third, stats = encode_texts(model, TEXTS, "document", EmbeddingCache(tmp_path))
    assert stats.encoded == 0  # the re-encoded shard is whole
    np.testing.assert_array_equal(third, again)


def test_damage_found_after_indexing_is_recomputed_in_the_same_process(model, tmp_path):
    """The vectors' checksum is checked at first use: a shard damaged after its namespace was indexed is moved aside
    then, and only its texts are encoded again."""
    cache = EmbeddingCache(tmp_path)
    encode_texts(model, TEXTS[:2], "document", cache)
    good, _ = encode_texts(model, TEXTS, "document", cache)  # a second shard with the third text
    reader = EmbeddingCache(tmp_path)
    ns, _ = EmbeddingCache.namespace(model, "document")
    reader.lookup(ns, np.zeros((1, 32), np.uint8))  # indexes the namespace
    first_shard = min(tmp_path.rglob("*.vectors.npy"), key=lambda p: -p.stat().st_size)
    _damage(first_shard, "flip")
    again, stats = encode_texts(model, TEXTS, "document", reader)
    assert (stats.cached, stats.encoded) == (1, 2)
    np.testing.assert_allclose(again, good, atol=1e-6)


def write_legacy_shard(folder: Path, hashes: np.ndarray, vectors: np.ndarray) -> Path:
    """A shard as embedgate wrote them before the .npy format: one .npz named by sha256(hashes, shape, vectors)."""
    import hashlib

    h = hashlib.sha256()
    h.update(hashes.tobytes())
    h.update(str(vectors.shape).encode())
    h.update(vectors.tobytes())
    path = folder / f"{h.hexdigest()}.npz"
    np.savez(path, hashes=hashes, vectors=vectors)
    return path


def _as_legacy(tmp_path: Path) -> Path:
    """Replace every new-format shard under tmp_path by one .npz holding the same rows."""
    [folder] = {p.parent for p in tmp_path.rglob("*.shard.json")}
    hashes = np.concatenate([np.load(p) for p in sorted(folder.glob("*.hashes.npy"))])
    vectors = np.concatenate([np.load(p) for p in sorted(folder.glob("*.vectors.npy"))])
    for p in list(folder.glob("*.npy")) + list(folder.glob("*.shard.json")):
        p.unlink()
    return write_legacy_shard(folder, hashes, vectors)


def test_shards_of_the_first_format_are_still_read(model, tmp_path):
    good, _ = encode_texts(model, TEXTS, "document", EmbeddingCache(tmp_path))
    _as_legacy(tmp_path)
    again, stats = encode_texts(model, TEXTS, "document", EmbeddingCache(tmp_path))
    assert (stats.encoded, stats.cached) == (0, 3)
    np.testing.assert_array_equal(again, good)


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_a_damaged_shard_of_the_first_format_is_recomputed(model, tmp_path, damage):
    good, _ = encode_texts(model, TEXTS, "document", EmbeddingCache(tmp_path))
    _damage(_as_legacy(tmp_path), damage)
    again, stats = encode_texts(model, TEXTS, "document", EmbeddingCache(tmp_path))
    assert (stats.encoded, stats.cached) == (3, 0)
    np.testing.assert_allclose(again, good, atol=1e-6)
    assert list(tmp_path.rglob("*.corrupt-*"))


def test_a_shard_without_its_manifest_is_not_used(model, tmp_path):
    """A run killed between the data files and the manifest leaves files no reader trusts."""
    encode_texts(model, TEXTS, "document", EmbeddingCache(tmp_path))
    [manifest] = list(tmp_path.rglob("*.shard.json"))
    manifest.unlink()
    _, stats = encode_texts(model, TEXTS, "document", EmbeddingCache(tmp_path))
    assert (stats.encoded, stats.cached) == (3, 0)


def test_cached_vectors_are_read_memory_mapped_in_bounded_shards(model, tmp_path, monkeypatch):
    import embedgate.harness.encode as enc

    monkeypatch.setattr(enc, "DEFAULT_CHUNK", 5)  # five texts per encode call
    monkeypatch.setattr(enc, "SHARD_BYTES", 2 * model.dimension * 4)  # two rows per shard file
    texts = [f"clause number {i}" for i in range(12)] + ["clause number 3"]
    first, s1 = encode_texts(model, texts, "document", EmbeddingCache(tmp_path))
    assert (s1.unique, s1.encoded) == (12, 12)
    assert len(list(tmp_path.rglob("*.shard.json"))) == 6 + 1  # chunks of 5, 5, 2 -> shards of 2, 2, 1, 2, 2, 1, 2
    np.testing.assert_allclose(first, model.model.encode(texts, normalize_embeddings=True), atol=1e-6)
    opened = []
    real = np.load

    def spy(*args, **kwargs):
        opened.append(kwargs.get("mmap_mode"))
        return real(*args, **kwargs)

    monkeypatch.setattr(enc.np, "load", spy)
    second, s2 = encode_texts(model, texts[::-1], "document", EmbeddingCache(tmp_path))
    assert (s2.cached, s2.encoded) == (12, 0)
    np.testing.assert_array_equal(second, first[::-1])
    assert opened.count("r") == 7  # every vectors file memory-mapped, never read whole


def test_hash_prefix_collisions_stay_exact():
    from embedgate.harness.encode import unique_hashes

    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 256, (6, 32), dtype=np.uint8)
    hashes[1, :8] = hashes[0, :8]  # same 8-byte prefix, different hash
    hashes[3] = hashes[0]  # a true duplicate
    hashes[4, :8] = hashes[0, :8]
    first, inverse = unique_hashes(hashes)
    assert len(first) == 5
    assert inverse[3] == inverse[0] and len({inverse[0], inverse[1], inverse[4]}) == 3
    np.testing.assert_array_equal(hashes[first[inverse]], hashes)
    assert list(first) == sorted(first, key=lambda i: hashes[i].tobytes())


def test_a_cache_lookup_with_a_shared_prefix_finds_the_right_vector(tmp_path):
    rng = np.random.default_rng(1)
    hashes = rng.integers(0, 256, (4, 32), dtype=np.uint8)
    hashes[1:, :8] = hashes[0, :8]
    vectors = rng.standard_normal((4, 3)).astype(np.float32)
    cache = EmbeddingCache(tmp_path)
    cache.put("ns", hashes[:2], vectors[:2])
    cache.put("ns", hashes[2:], vectors[2:])
    ask = hashes[[3, 1, 2, 0]]
    found, dim = cache.lookup("ns", ask)
    assert dim == 3 and (found >= 0).all()
    out = np.zeros((4, 3), np.float32)
    assert cache.fill("ns", found, out, np.arange(4)).all()
    np.testing.assert_array_equal(out, vectors[[3, 1, 2, 0]])
    other = hashes[:1].copy()
    other[0, 31] ^= 1
    assert cache.lookup("ns", other)[0][0] == -1


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
    import json

    [manifest] = list(tmp_path.rglob("*.shard.json"))
    info = json.loads(manifest.read_text())
    assert info["format"] == "embedgate.cache-shard/2" and (info["rows"], info["dim"]) == (3, model.dimension)
    stem = manifest.name.split(".")[0]
    hashes = np.load(manifest.parent / f"{stem}.hashes.npy", allow_pickle=False)
    vectors = np.load(manifest.parent / f"{stem}.vectors.npy", allow_pickle=False, mmap_mode="r")
    assert hashes.dtype == np.uint8 and hashes.shape == (3, 32)
    assert vectors.dtype == np.float32 and vectors.shape == (3, model.dimension)


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    import os

    from embedgate.harness.io import atomic_write_text

    mask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "x.json", "{}")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644
