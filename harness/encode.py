"""Encoding with an on-disk cache that never trusts a damaged entry.

Layout: ``<root>/<namespace>/<digest>.npz`` where the namespace hashes the model fingerprint, the role
(query/document), the prompt, max_seq_length, dtype and normalisation, so the same text embedded as a query with a
prompt and as a document without one are two entries. Each shard holds ``hashes`` (sha256 of each text) and
``vectors``; its name is the sha256 of both, checked on read. Shards are written to a temporary file and renamed,
and never modified afterwards, so two runs sharing a cache can only add shards, not damage each other's. No pickle.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from .io import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

ROLES = ("query", "document")


def default_cache_dir() -> Path:
    env = os.environ.get("EMBEDGATE_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "embedgate"


def text_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


@dataclass
class EncodeStats:
    requested: int = 0
    unique: int = 0
    cached: int = 0
    encoded: int = 0
    seconds: float = 0.0

    def add(self, other: "EncodeStats") -> None:
        for name in ("requested", "unique", "cached", "encoded", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict:
        return {"requested": self.requested, "unique": self.unique, "cached": self.cached, "encoded": self.encoded,
                "seconds": round(self.seconds, 3)}


def _shard_digest(hashes: np.ndarray, vectors: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(hashes).tobytes())
    h.update(str(vectors.shape).encode())
    h.update(np.ascontiguousarray(vectors).tobytes())
    return h.hexdigest()


class EmbeddingCache:
    """Content-addressed, append-only store of embeddings."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()
        self._memo: dict[str, tuple[frozenset, dict[bytes, np.ndarray]]] = {}

    @staticmethod
    def namespace(encoder: "Encoder", role: str) -> tuple[str, dict]:
        """(folder name, the settings it hashes): whatever the encoder says changes its vectors."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        key = encoder.cache_key(role)
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:40], key

    def _load_namespace(self, ns: str) -> dict[bytes, np.ndarray]:
        folder = self.root / ns
        if not folder.is_dir():
            return {}
        names = frozenset(p.name for p in folder.glob("*.npz"))
        memo = self._memo.get(ns)
        if memo is not None and memo[0] == names:
            return memo[1]
        table: dict[bytes, np.ndarray] = dict(memo[1]) if memo else {}
        seen = memo[0] if memo else frozenset()
        for name in sorted(names - seen):
            path = folder / name
            try:
                with np.load(path, allow_pickle=False) as shard:
                    hashes, vectors = shard["hashes"], shard["vectors"]
                if hashes.ndim != 2 or hashes.shape[1] != 32 or vectors.ndim != 2 or len(hashes) != len(vectors):
                    raise ValueError("bad shapes")
                if _shard_digest(hashes, vectors) != path.stem:
                    raise ValueError("checksum mismatch")
            except Exception as exc:  # truncated zip, bad header, checksum: never use it
                log.warning("ignoring damaged cache shard %s (%s); its texts will be re-encoded", path, exc)
                self._quarantine(path)
                names = names - {name}
                continue
            for hbytes, vec in zip(hashes, vectors):
                table[hbytes.tobytes()] = vec
        self._memo[ns] = (names, table)
        return table

    @staticmethod
    def _quarantine(path: Path) -> None:
        try:
            os.replace(path, path.with_suffix(f".corrupt-{int(time.time())}"))
        except OSError:
            pass

    def get(self, ns: str, hashes: Sequence[bytes]) -> dict[int, np.ndarray]:
        table = self._load_namespace(ns)
        return {i: table[h] for i, h in enumerate(hashes) if h in table}

    def put(self, ns: str, hashes: Sequence[bytes], vectors: np.ndarray, meta: dict | None = None) -> Path | None:
        if len(hashes) == 0:
            return None
        folder = self.root / ns
        folder.mkdir(parents=True, exist_ok=True)
        if meta is not None and not (folder / "meta.json").exists():
            atomic_write_text(folder / "meta.json", json.dumps(meta, indent=1, sort_keys=True))
        harr = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(len(hashes), 32)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        digest = _shard_digest(harr, vectors)
        import io

        buf = io.BytesIO()
        np.savez(buf, hashes=harr, vectors=vectors)
        return atomic_write_bytes(folder / f"{digest}.npz", buf.getvalue())


def is_terminal() -> bool:
    import sys

    return bool(getattr(sys.stderr, "isatty", None) and sys.stderr.isatty())


class Encoder(Protocol):
    """What the cache needs from anything that turns texts into vectors: a local model (models.LoadedModel) or an
    API embedder (systems.api). ``chunk_size`` texts are embedded and stored per step (None: all at once), so an
    interrupted run keeps every chunk it finished (and, for an API, paid for)."""

    name: str
    chunk_size: int | None

    def cache_key(self, role: str) -> dict: ...

    def embed(self, texts: list[str], role: str, show_progress: bool) -> np.ndarray: ...


def encode_texts(model: Encoder, texts: Sequence[str], role: str, cache: EmbeddingCache | None = None,
                 *, show_progress: bool | None = None) -> tuple[np.ndarray, EncodeStats]:
    """Embeddings (float32, one row per text, in order) and what it cost. Duplicate texts are encoded once."""
    started = time.perf_counter()
    stats = EncodeStats(requested=len(texts))
    hashes = [text_hash(t) for t in texts]
    unique: dict[bytes, int] = {}
    for i, h in enumerate(hashes):
        unique.setdefault(h, i)
    stats.unique = len(unique)
    uniq_hashes = list(unique)
    found: dict[int, np.ndarray] = {}
    ns = meta = None
    if cache is not None:
        ns, meta = EmbeddingCache.namespace(model, role)
        meta = {**meta, "model_name": model.name}
        found = cache.get(ns, uniq_hashes)
    stats.cached = len(found)
    missing = [j for j in range(len(uniq_hashes)) if j not in found]
    vectors_by_hash: dict[bytes, np.ndarray] = {uniq_hashes[j]: v for j, v in found.items()}
    if show_progress is None:
        # a bar redrawn with carriage returns is noise in a CI log: only on a terminal
        show_progress = len(missing) >= 256 and not os.environ.get("EMBEDGATE_NO_PROGRESS") and is_terminal()
    step = model.chunk_size or max(len(missing), 1)
    for lo in range(0, len(missing), step):
        part = missing[lo:lo + step]
        new = np.asarray(model.embed([texts[unique[uniq_hashes[j]]] for j in part], role, show_progress),
                         dtype=np.float32)
        if new.shape[0] != len(part) or not np.isfinite(new).all():
            raise FloatingPointError(f"{model.name} returned {new.shape[0]} vectors for {len(part)} texts, or "
                                     "non-finite values")
        stats.encoded += len(part)
        for j, vec in zip(part, new):
            vectors_by_hash[uniq_hashes[j]] = vec
        if cache is not None:
            cache.put(ns, [uniq_hashes[j] for j in part], new, meta)
    dim = next(iter(vectors_by_hash.values())).shape[0] if vectors_by_hash else 0
    out = np.empty((len(texts), dim), dtype=np.float32)
    for i, h in enumerate(hashes):
        out[i] = vectors_by_hash[h]
    stats.seconds = time.perf_counter() - started
    return out, stats
