"""Encoding with an on-disk cache that never trusts a damaged entry, in memory bounded by the output matrix.

Layout: ``<root>/<namespace>/`` where the namespace hashes the model fingerprint, the role (query/document), the
prompt, max_seq_length, dtype and normalisation, so the same text embedded as a query with a prompt and as a
document without one are two entries. A shard is three files named by its digest:

- ``<digest>.hashes.npy``: sha256 of each text, ``uint8 (rows, 32)``;
- ``<digest>.vectors.npy``: the embeddings, ``float32 (rows, dim)``: plain ``.npy``, read memory-mapped;
- ``<digest>.shard.json``: the manifest (format, rows, dim, size and sha256 of both files), written last.

The digest is the sha256 of the two files' checksums. A shard exists once its manifest does: the data files are
written to temporary files, fsynced and renamed first, the manifest atomically after them, so a reader never sees
half a shard and two runs sharing a cache can only add shards, not damage each other's. Shards are never modified.
On read, the hashes file is checked against the manifest when the namespace is indexed, the vectors file (its size
at once, its sha256 before its first use in a process); a damaged shard is moved aside (``*.corrupt-<time>``) and
its texts are encoded again. Shards of the first format (``<digest>.npz`` holding ``hashes`` and ``vectors``,
named by the sha256 of both arrays) are still read, whole, and checked the same way. No pickle.

Memory: a call holds the text hashes (32 bytes a text), the output matrix, and one chunk being encoded or one shard
being copied, never a per-row table of vectors. Encoders without their own ``chunk_size`` are called on
``DEFAULT_CHUNK`` texts at a time, and each chunk is one or more shards of at most ``SHARD_BYTES`` of vectors.

Under ``torchrun`` (``RANK``/``WORLD_SIZE``), ``sharded_encoding()`` makes every rank encode only its share of the
missing texts (those whose hash falls in its class) into the shared cache; a gloo barrier then waits for every
rank, and each rank reads the rest from the cache (docs/scale.md).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol, Sequence

import numpy as np

from .io import atomic_write_text, default_cache_dir

log = logging.getLogger(__name__)

ROLES = ("query", "document")
SHARD_FORMAT = "embedgate.cache-shard/2"
DEFAULT_CHUNK = 16_384  # texts per encode call when the encoder sets no chunk_size
SHARD_BYTES = 128 * 2**20  # at most this much of vectors per shard file
_COPY_ROWS = 16_384  # rows gathered from a memory-mapped shard per step
_READ_BLOCK = 2**20


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


# ------------------------------------------------------------------------------------------------ hashes


def hash_texts(texts: Sequence[str], block: int = 8192) -> np.ndarray:
    """sha256 of every text, ``uint8 (n, 32)``; the texts are read once, in order, ``block`` at a time."""
    n = len(texts)
    out = np.empty((n, 32), dtype=np.uint8)
    it = iter(texts)
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        raw = b"".join(hashlib.sha256(t.encode("utf-8")).digest() for t in itertools.islice(it, hi - lo))
        out[lo:hi] = np.frombuffer(raw, dtype=np.uint8).reshape(hi - lo, 32)
    return out


def _prefix(hashes: np.ndarray) -> np.ndarray:
    """The first 8 bytes of each hash as an integer whose order is the bytes' order."""
    return np.ascontiguousarray(hashes[:, :8]).view(">u8").ravel().astype(np.uint64)


def unique_hashes(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, inverse): ``first[j]`` is the first row holding unique hash j (unique hashes in byte order),
    ``inverse[i]`` the unique hash of row i. Exact: rows are grouped by their 8-byte prefix, and the full 32 bytes
    confirm every group (a prefix shared by different hashes falls back to a full 32-byte sort)."""
    n = len(hashes)
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    prefix = _prefix(hashes)
    order = np.argsort(prefix, kind="stable")
    sp = prefix[order]
    start = np.ones(n, dtype=bool)
    start[1:] = sp[1:] != sp[:-1]
    run = np.cumsum(start) - 1
    first = order[start]
    exact = all((hashes[order[lo:lo + 65_536]] == hashes[first[run[lo:lo + 65_536]]]).all()
                for lo in range(0, n, 65_536))
    if not exact:
        _, first, inverse = np.unique(hashes.view("V32").ravel(), return_index=True, return_inverse=True)
        return first.astype(np.int64), inverse.astype(np.int64).ravel()
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = run
    return first.astype(np.int64), inverse


# ------------------------------------------------------------------------------------------------ shards


class _HashingWriter:
    """A file wrapper that hashes what goes through it (np.lib.format writes a non-file in bounded chunks)."""

    def __init__(self, fh):
        self.fh, self.sha, self.size = fh, hashlib.sha256(), 0

    def write(self, data) -> int:
        view = memoryview(data)
        self.sha.update(view)
        self.size += view.nbytes
        return self.fh.write(view)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_npy(folder: Path, array: np.ndarray) -> tuple[Path, str, int]:
    """(temporary path, sha256, size) of ``array`` written as .npy, fsynced; the caller renames it."""
    fd, tmp = tempfile.mkstemp(prefix=".shard.", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            writer = _HashingWriter(fh)
            np.lib.format.write_array(writer, np.ascontiguousarray(array), allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return Path(tmp), writer.sha.hexdigest(), writer.size


def _file_sha256(path: Path) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    buf = bytearray(_READ_BLOCK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while got := fh.readinto(buf):
            h.update(view[:got])
            size += got
    return h.hexdigest(), size


def _legacy_digest(hashes: np.ndarray, vectors: np.ndarray) -> str:
    """The name of a first-format (.npz) shard: sha256 of its hashes, the vectors' shape and the vectors."""
    h = hashlib.sha256()
    h.update(memoryview(np.ascontiguousarray(hashes)).cast("B"))
    h.update(str(vectors.shape).encode())
    h.update(memoryview(np.ascontiguousarray(vectors)).cast("B"))
    return h.hexdigest()


@dataclass
class _Shard:
    name: str  # the manifest's (or the .npz's) file name
    kind: str  # "npy" or "npz"
    rows: int
    dim: int
    manifest: dict = field(default_factory=dict)


@dataclass
class _Index:
    """Every hash of a namespace, sorted by prefix, with where its vector lives."""

    names: frozenset
    shards: list[_Shard]
    prefix: np.ndarray  # (m,) uint64, sorted
    hashes: np.ndarray  # (m, 32) uint8, same order
    shard: np.ndarray  # (m,) int32: position in shards
    row: np.ndarray  # (m,) int64: row in that shard

    @classmethod
    def empty(cls) -> "_Index":
        return cls(frozenset(), [], np.empty(0, np.uint64), np.empty((0, 32), np.uint8), np.empty(0, np.int32),
                   np.empty(0, np.int64))


class ShardError(ValueError):
    pass


class EmbeddingCache:
    """Content-addressed, append-only store of embeddings."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()
        self._index: dict[str, _Index] = {}
        self._verified: set[tuple[str, int, int]] = set()

    @staticmethod
    def namespace(encoder: "Encoder", role: str) -> tuple[str, dict]:
        """(folder name, the settings it hashes): whatever the encoder says changes its vectors."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        key = encoder.cache_key(role)
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:40], key

    # --- reading

    @staticmethod
    def _stem(name: str) -> str:
        return name.split(".", 1)[0]

    def _read_shard_hashes(self, folder: Path, name: str) -> tuple[_Shard, np.ndarray]:
        """A shard's description and its hashes, checked; anything wrong is a ShardError."""
        if name.endswith(".npz"):
            with np.load(folder / name, allow_pickle=False) as z:
                hashes = z["hashes"]
                vectors_shape = _npz_member_shape(z, "vectors")  # its data is read (and checked) when used
            if hashes.ndim != 2 or hashes.shape[1] != 32 or len(vectors_shape) != 2 or \
                    vectors_shape[0] != len(hashes):
                raise ShardError("bad shapes")
            return _Shard(name, "npz", len(hashes), int(vectors_shape[1])), hashes
        try:
            manifest = json.loads((folder / name).read_text(encoding="utf-8"))
            rows, dim = int(manifest["rows"]), int(manifest["dim"])
            hfile, vfile = manifest["hashes"], manifest["vectors"]
            if manifest.get("format") != SHARD_FORMAT or manifest.get("dtype") != "float32":
                raise ShardError(f"unknown shard format {manifest.get('format')!r}")
        except ShardError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise ShardError(f"bad manifest ({exc})") from None
        stem = self._stem(name)
        if hashlib.sha256(f"{hfile['sha256']}{vfile['sha256']}".encode()).hexdigest() != stem:
            raise ShardError("manifest does not match its name")
        vpath = folder / f"{stem}.vectors.npy"
        if vpath.stat().st_size != int(vfile["bytes"]):
            raise ShardError(f"vectors file is {vpath.stat().st_size} bytes, the manifest says {vfile['bytes']}")
        raw = (folder / f"{stem}.hashes.npy").read_bytes()
        if len(raw) != int(hfile["bytes"]) or hashlib.sha256(raw).hexdigest() != hfile["sha256"]:
            raise ShardError("hashes file checksum mismatch")
        hashes = np.load(io.BytesIO(raw), allow_pickle=False)
        if hashes.dtype != np.uint8 or hashes.shape != (rows, 32):
            raise ShardError("bad hashes shape")
        return _Shard(name, "npy", rows, dim, manifest), hashes

    def _quarantine(self, folder: Path, name: str) -> None:
        stamp = int(time.time())
        stem = self._stem(name)
        paths = [folder / name] if name.endswith(".npz") else [
            folder / name, folder / f"{stem}.hashes.npy", folder / f"{stem}.vectors.npy"]
        for path in paths:  # the manifest first: no reader picks the shard up again
            with contextlib.suppress(OSError):
                os.replace(path, path.with_suffix(f".corrupt-{stamp}"))

    def _load_index(self, ns: str) -> _Index:
        folder = self.root / ns
        if not folder.is_dir():
            return _Index.empty()
        names = frozenset(p.name for p in folder.iterdir()
                          if p.name.endswith(".shard.json") or (p.suffix == ".npz" and not p.name.startswith(".")))
        current = self._index.get(ns)
        if current is not None and current.names == names:
            return current
        keep = [s for s in current.shards if s.name in names] if current else []
        known = {s.name for s in keep}
        new_shards, new_hashes = [], []
        for name in sorted(names - known):
            try:
                shard, hashes = self._read_shard_hashes(folder, name)
            except FileNotFoundError:
                if (folder / name).exists():  # a manifest whose data files are gone: damage
                    log.warning("ignoring cache shard %s: its data files are missing", folder / name)
                    self._quarantine(folder, name)
                continue  # else moved aside by another run meanwhile
            except Exception as exc:  # truncated file, bad header, checksum: never use it
                log.warning("ignoring damaged cache shard %s (%s); its texts will be re-encoded", folder / name, exc)
                self._quarantine(folder, name)
                continue
            new_shards.append(shard)
            new_hashes.append(hashes)
        if current is not None and len(keep) == len(current.shards):
            shards = current.shards + new_shards
            parts_h = [current.hashes] + new_hashes
            parts_s = [current.shard] + [np.full(len(h), len(current.shards) + i, np.int32)
                                         for i, h in enumerate(new_hashes)]
            parts_r = [current.row] + [np.arange(len(h), dtype=np.int64) for h in new_hashes]
        else:  # a shard went away (quarantined): rebuild from what is left
            shards, parts_h, parts_s, parts_r = [], [], [], []
            old = {s.name: i for i, s in enumerate(current.shards)} if current else {}
            for s in keep:
                sel = current.shard == old[s.name]
                parts_h.append(current.hashes[sel])
                parts_r.append(current.row[sel])
                parts_s.append(np.full(int(sel.sum()), len(shards), np.int32))
                shards.append(s)
            for s, h in zip(new_shards, new_hashes):
                parts_h.append(h)
                parts_r.append(np.arange(len(h), dtype=np.int64))
                parts_s.append(np.full(len(h), len(shards), np.int32))
                shards.append(s)
        hashes = np.concatenate(parts_h) if parts_h else np.empty((0, 32), np.uint8)
        prefix = _prefix(hashes)
        order = np.argsort(prefix, kind="stable")
        index = _Index(frozenset(s.name for s in shards), shards, prefix[order], hashes[order],
                       (np.concatenate(parts_s) if parts_s else np.empty(0, np.int32))[order],
                       (np.concatenate(parts_r) if parts_r else np.empty(0, np.int64))[order])
        index.names = names  # a damaged one was moved aside (or, in a read-only cache, is skipped until it changes)
        self._index[ns] = index
        return index

    def lookup(self, ns: str, hashes: np.ndarray) -> tuple[np.ndarray, int | None]:
        """(position in the namespace's index or -1 for each hash, the vectors' dimension if any is found)."""
        index = self._load_index(ns)
        hashes = np.asarray(hashes, dtype=np.uint8).reshape(-1, 32)
        found = np.full(len(hashes), -1, dtype=np.int64)
        m = len(index.prefix)
        if m == 0 or len(hashes) == 0:
            return found, None
        q = _prefix(hashes)
        pos = np.minimum(np.searchsorted(index.prefix, q, side="left"), m - 1)
        same_prefix = np.nonzero(index.prefix[pos] == q)[0]
        exact = np.concatenate([(index.hashes[pos[b]] == hashes[b]).all(axis=1)
                                for b in np.split(same_prefix, range(65_536, len(same_prefix), 65_536))])
        found[same_prefix[exact]] = pos[same_prefix[exact]]
        for j in same_prefix[~exact]:  # another text shares the 8-byte prefix: look further along the run
            p = int(pos[j]) + 1
            while p < m and index.prefix[p] == q[j]:
                if (index.hashes[p] == hashes[j]).all():
                    found[j] = p
                    break
                p += 1
        hit = found[found >= 0]
        return found, (index.shards[int(index.shard[hit[0]])].dim if len(hit) else None)

    def _open_vectors(self, folder: Path, shard: _Shard) -> np.ndarray:
        """The shard's vectors, checked (memory-mapped for the .npy format); a ShardError when damaged."""
        if shard.kind == "npz":
            path = folder / shard.name
            with np.load(path, allow_pickle=False) as z:
                hashes, vectors = z["hashes"], z["vectors"]
            if vectors.ndim != 2 or vectors.shape != (shard.rows, shard.dim) or \
                    _legacy_digest(hashes, vectors) != self._stem(shard.name):
                raise ShardError("checksum mismatch")
            return vectors.astype(np.float32, copy=False)
        path = folder / f"{self._stem(shard.name)}.vectors.npy"
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in self._verified:
            digest, size = _file_sha256(path)
            if digest != shard.manifest["vectors"]["sha256"] or size != int(shard.manifest["vectors"]["bytes"]):
                raise ShardError("vectors file checksum mismatch")
            self._verified.add(key)
        vectors = np.load(path, mmap_mode="r", allow_pickle=False)
        if vectors.dtype != np.float32 or vectors.shape != (shard.rows, shard.dim):
            raise ShardError("bad vectors shape")
        return vectors

    def fill(self, ns: str, positions: np.ndarray, out: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Copy the vectors at index ``positions`` into ``out[rows]``, shard by shard; which were copied (a shard
        found damaged now is moved aside and its rows left for the caller to encode)."""
        index = self._load_index(ns)
        folder = self.root / ns
        done = np.zeros(len(positions), dtype=bool)
        if len(positions) == 0:
            return done
        shard_of, row_of = index.shard[positions], index.row[positions]
        order = np.lexsort((row_of, shard_of))
        bounds = np.nonzero(np.diff(shard_of[order]))[0] + 1
        damaged = False
        for sel in np.split(order, bounds):
            shard = index.shards[int(shard_of[sel[0]])]
            try:
                if shard.dim != out.shape[1]:
                    raise ShardError(f"dimension {shard.dim}, expected {out.shape[1]}")
                vectors = self._open_vectors(folder, shard)
                for lo in range(0, len(sel), _COPY_ROWS):
                    part = sel[lo:lo + _COPY_ROWS]
                    out[rows[part]] = vectors[row_of[part]]
                del vectors  # unmapped: its pages leave this process
            except FileNotFoundError:
                damaged = True  # moved aside by another run: encode again
                continue
            except Exception as exc:
                log.warning("ignoring damaged cache shard %s (%s); its texts will be re-encoded", folder / shard.name,
                            exc)
                self._quarantine(folder, shard.name)
                damaged = True
                continue
            done[sel] = True
        if damaged:
            self._index.pop(ns, None)
        return done

    def get(self, ns: str, hashes: Sequence[bytes]) -> dict[int, np.ndarray]:
        """{position: vector} for the hashes found (a small-scale convenience; encode_texts fills in place)."""
        arr = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(len(hashes), 32) if len(hashes) else \
            np.empty((0, 32), np.uint8)
        found, dim = self.lookup(ns, arr)
        hit = np.nonzero(found >= 0)[0]
        if dim is None:
            return {}
        vecs = np.empty((len(hit), dim), dtype=np.float32)
        done = self.fill(ns, found[hit], vecs, np.arange(len(hit)))
        return {int(i): vecs[j] for j, i in enumerate(hit) if done[j]}

    # --- writing

    def put(self, ns: str, hashes: "Sequence[bytes] | np.ndarray", vectors: np.ndarray,
            meta: dict | None = None) -> Path | None:
        """Store vectors (one shard per ``SHARD_BYTES``); the path of the last manifest written."""
        if len(hashes) == 0:
            return None
        folder = self.root / ns
        folder.mkdir(parents=True, exist_ok=True)
        if meta is not None and not (folder / "meta.json").exists():
            atomic_write_text(folder / "meta.json", json.dumps(meta, indent=1, sort_keys=True))
        if not isinstance(hashes, np.ndarray):
            hashes = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(len(hashes), 32)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(hashes):
            raise ValueError(f"{len(hashes)} hashes for vectors of shape {vectors.shape}")
        step = max(1, SHARD_BYTES // max(1, vectors.shape[1] * 4))
        last = None
        for lo in range(0, len(hashes), step):
            last = self._put_one(folder, hashes[lo:lo + step], vectors[lo:lo + step])
        return last

    def _put_one(self, folder: Path, hashes: np.ndarray, vectors: np.ndarray) -> Path:
        htmp, hsha, hsize = _write_npy(folder, np.ascontiguousarray(hashes, dtype=np.uint8))
        try:
            vtmp, vsha, vsize = _write_npy(folder, vectors)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(htmp)
            raise
        digest = hashlib.sha256(f"{hsha}{vsha}".encode()).hexdigest()
        os.replace(htmp, folder / f"{digest}.hashes.npy")
        os.replace(vtmp, folder / f"{digest}.vectors.npy")
        manifest = {"format": SHARD_FORMAT, "rows": int(len(hashes)), "dim": int(vectors.shape[1]),
                    "dtype": "float32", "hashes": {"bytes": hsize, "sha256": hsha},
                    "vectors": {"bytes": vsize, "sha256": vsha}}
        return atomic_write_text(folder / f"{digest}.shard.json", json.dumps(manifest, indent=1, sort_keys=True))


def _npz_member_shape(z, name: str) -> tuple[int, ...]:
    """The shape of an .npz member from its header, without reading its data."""
    with z.zip.open(f"{name}.npy") as fh:
        major, _ = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, _, _ = read(fh)
    return tuple(shape)


# ------------------------------------------------------------------------------------------- sharded ranks


@dataclass
class _Ranks:
    rank: int
    world: int
    owns_group: bool = False

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()


_RANKS: _Ranks | None = None


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) as torchrun sets them (RANK, WORLD_SIZE); (0, 1) outside it."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


@contextlib.contextmanager
def sharded_encoding(timeout_s: float | None = None) -> Iterator[int]:
    """Inside, under torchrun, ``encode_texts`` shares the encoding between ranks through the cache and yields the
    rank; outside torchrun it changes nothing (yields 0). Opt-in, so that code that encodes on one rank only (a
    trainer's rank 0) never waits at a barrier the others do not reach. The barrier is torch.distributed's gloo
    (its timeout: ``timeout_s``, else ``$EMBEDGATE_DIST_TIMEOUT_S``, else 6 hours, for a big corpus on one rank)."""
    global _RANKS
    rank, world = distributed_rank()
    if world <= 1:
        yield rank
        return
    import datetime

    import torch.distributed as dist

    owns = not dist.is_initialized()
    if owns:
        timeout = timeout_s or float(os.environ.get("EMBEDGATE_DIST_TIMEOUT_S", 6 * 3600))
        dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=timeout))
    previous, _RANKS = _RANKS, _Ranks(rank, world, owns)
    try:
        yield rank
    finally:
        _RANKS = previous
        if owns:
            dist.destroy_process_group()


class DocumentTexts(Sequence[str]):
    """What is encoded for each document (``Document.full_text``), made when read: a corpus of a million
    documents with titles is not held a second time as a list of joined strings."""

    def __init__(self, corpus, ids: Sequence[str]):
        self.corpus, self.ids = corpus, ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.corpus[d].full_text for d in self.ids[i]]
        return self.corpus[self.ids[i]].full_text

    def __iter__(self):
        return (self.corpus[d].full_text for d in self.ids)


def encode_share(data, model, split: str = "test", cache=None) -> dict[str, EncodeStats]:
    """What a rank other than 0 runs for ``embedgate eval`` under torchrun, inside ``sharded_encoding()``: load the
    set and the model, and encode this rank's share of the documents and then the queries into the shared cache
    (the same two barriers rank 0's ``evaluate`` passes). Stats by role."""
    from . import data as data_mod
    from .evaluate import _resolve_cache, encode_set
    from .models import load_model

    *_, stats = encode_set(data_mod.load(data, split), load_model(model), _resolve_cache(cache))
    return stats


# ------------------------------------------------------------------------------------------------ encoding


def is_terminal() -> bool:
    import sys

    return bool(getattr(sys.stderr, "isatty", None) and sys.stderr.isatty())


class Encoder(Protocol):
    """What the cache needs from anything that turns texts into vectors: a local model (models.LoadedModel) or an
    API embedder (systems.api). ``chunk_size`` texts are embedded and stored per step (None: ``DEFAULT_CHUNK``), so
    an interrupted run keeps every chunk it finished (and, for an API, paid for)."""

    name: str
    chunk_size: int | None

    def cache_key(self, role: str) -> dict: ...

    def embed(self, texts: list[str], role: str, show_progress: bool) -> np.ndarray: ...


class _Output:
    """The output matrix, allocated once the dimension is known (from the cache or the first encoded chunk)."""

    def __init__(self, n: int):
        self.n, self.matrix = n, None

    def ensure(self, dim: int) -> np.ndarray:
        if self.matrix is None:
            self.matrix = np.empty((self.n, dim), dtype=np.float32)
        elif self.matrix.shape[1] != dim:
            raise ValueError(f"vectors of dimension {dim} beside vectors of dimension {self.matrix.shape[1]}")
        return self.matrix


def encode_texts(model: Encoder, texts: Sequence[str], role: str, cache: EmbeddingCache | None = None,
                 *, show_progress: bool | None = None) -> tuple[np.ndarray, EncodeStats]:
    """Embeddings (float32, one row per text, in order) and what it cost. Duplicate texts are encoded once.

    ``texts`` is any sequence (a lazy view works: each text is read to hash it, and again only if it must be
    encoded). Cached vectors are copied into the output from memory-mapped shards, new ones chunk by chunk."""
    started = time.perf_counter()
    n = len(texts)
    stats = EncodeStats(requested=n)
    hashes = hash_texts(texts)
    first, inverse = unique_hashes(hashes)
    stats.unique = len(first)
    out = _Output(n)
    done = np.zeros(len(first), dtype=bool)
    ns = meta = None
    ranks = _RANKS
    if ranks is not None and cache is None:
        from .errors import ConfigError

        raise ConfigError("encoding shared between torchrun ranks goes through the embedding cache: drop --no-cache")
    if cache is not None:
        ns, meta = EmbeddingCache.namespace(model, role)
        meta = {**meta, "model_name": model.name}
        done |= _from_cache(cache, ns, hashes, first, out)
    stats.cached = int(done.sum())
    missing = np.nonzero(~done)[0]
    missing = missing[np.argsort(first[missing], kind="stable")]  # encoded in the order the texts come
    if ranks is not None:
        mine = missing[(_prefix(hashes[first[missing]]) % np.uint64(ranks.world)) == ranks.rank]
        log.info("rank %d of %d: encoding %d of the %d missing %s texts", ranks.rank, ranks.world, len(mine),
                 len(missing), role)
        _encode_missing(model, texts, role, cache, ns, meta, hashes, first, mine, out, stats, show_progress)
        ranks.barrier()  # every rank's shards are in the cache now
        rest = missing[~np.isin(missing, mine)]
        got = _from_cache(cache, ns, hashes, first[rest], out)
        stats.cached += int(got.sum())
        missing = rest[~got]
        if len(missing):
            log.warning("rank %d: %d texts were not in the cache after the barrier; encoding them here",
                        ranks.rank, len(missing))
    _encode_missing(model, texts, role, cache, ns, meta, hashes, first, missing, out, stats, show_progress)
    matrix = out.matrix if out.matrix is not None else np.empty((n, 0), dtype=np.float32)
    dup = np.nonzero(first[inverse] != np.arange(n))[0]
    if len(dup):
        matrix[dup] = matrix[first[inverse[dup]]]
    stats.seconds = time.perf_counter() - started
    return matrix, stats


def _from_cache(cache: EmbeddingCache, ns: str, hashes: np.ndarray, rows: np.ndarray, out: _Output) -> np.ndarray:
    """Fill ``out`` at ``rows`` with the cached vectors of the texts there (``hashes`` of every text); which were
    found."""
    got = np.zeros(len(rows), dtype=bool)
    found, dim = cache.lookup(ns, hashes[rows])
    hit = np.nonzero(found >= 0)[0]
    if len(hit):
        got[hit] = cache.fill(ns, found[hit], out.ensure(dim), rows[hit])
    return got


def _encode_missing(model, texts, role, cache, ns, meta, hashes, first, missing, out, stats, show_progress) -> None:
    if len(missing) == 0:
        return
    if show_progress is None:
        # a bar redrawn with carriage returns is noise in a CI log: only on a terminal
        show_progress = len(missing) >= 256 and not os.environ.get("EMBEDGATE_NO_PROGRESS") and is_terminal()
    own_chunks = not model.chunk_size
    step = model.chunk_size or DEFAULT_CHUNK
    bar = None
    if show_progress and own_chunks and len(missing) > step:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(missing), desc=f"Encoding {role}s", unit="text")
    try:
        for lo in range(0, len(missing), step):
            rows = first[missing[lo:lo + step]]
            new = np.asarray(model.embed([texts[int(i)] for i in rows], role, show_progress and bar is None),
                             dtype=np.float32)
            if new.ndim != 2 or new.shape[0] != len(rows) or not np.isfinite(new).all():
                raise FloatingPointError(f"{model.name} returned {new.shape[0] if new.ndim else 0} vectors for "
                                         f"{len(rows)} texts, or non-finite values")
            out.ensure(new.shape[1])[rows] = new
            stats.encoded += len(rows)
            if cache is not None:
                cache.put(ns, hashes[rows], new, meta)
            del new
            if bar is not None:
                bar.update(len(rows))
    finally:
        if bar is not None:
            bar.close()
