"""Small file helpers: atomic writes (so a crash never leaves half a file) and hashing."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the mode open() would
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any):
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps_json(obj: Any, indent: int | None = 1) -> str:
    return json.dumps(obj, indent=indent, default=_json_default, allow_nan=False, ensure_ascii=False)


def write_json(path: str | Path, obj: Any, indent: int | None = 1) -> Path:
    return atomic_write_text(path, dumps_json(obj, indent=indent) + "\n")


def read_toml(path: str | Path) -> tuple[dict, str]:
    """(parsed table, text) of a UTF-8 TOML file; a defect is a ConfigError naming the file and line."""
    import re
    import tomllib

    from .errors import ConfigError

    try:
        text = Path(path).read_bytes().decode("utf-8")
        return tomllib.loads(text), text
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not valid UTF-8 ({exc.reason})", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(f"invalid TOML: {exc}", path=path, line=int(m.group(1)) if m else None) from None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def default_cache_dir() -> Path:
    """``$EMBEDGATE_CACHE``, else ``$XDG_CACHE_HOME/embedgate`` (``~/.cache/embedgate``)."""
    env = os.environ.get("EMBEDGATE_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "embedgate"


def sha256_file_remembered(path: str | Path, memo_dir: Path | None = None, min_bytes: int = 1 << 20,
                           settle_s: float = 2.0) -> str:
    """sha256 of a file, remembered across processes under the file's identity (real path, device, inode, size,
    modification and change times in ns): hashing a multi-GB weights file again costs seconds on every warm run.
    Every write to a file sets its change time, which only the clock sets; the clock ticks coarsely, so (as git
    does for its index) a digest is remembered only for a file unchanged for ``settle_s`` before it was hashed and
    while it was. Files under ``min_bytes`` are hashed each time; a memo that is missing, damaged or cannot be
    written is recomputed (or not kept)."""
    real = os.path.realpath(path)
    st = os.stat(real)
    if st.st_size < min_bytes:
        return sha256_file(real)
    identity = {"path": real, "dev": st.st_dev, "ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                "ctime_ns": st.st_ctime_ns}
    memo = (memo_dir or default_cache_dir() / "digests") / f"{sha256_text(real)[:32]}.json"
    try:
        stored = json.loads(memo.read_text(encoding="utf-8"))
        digest = stored.get("sha256")
        if {k: stored.get(k) for k in identity} == identity and isinstance(digest, str) and len(digest) == 64:
            return digest
    except (OSError, ValueError, AttributeError):
        pass
    started_ns = time.time_ns()
    digest = sha256_file(real)
    after = os.stat(real)
    settled = started_ns - max(st.st_mtime_ns, st.st_ctime_ns) > settle_s * 1e9
    if settled and (after.st_mtime_ns, after.st_ctime_ns, after.st_size) == (st.st_mtime_ns, st.st_ctime_ns,
                                                                             st.st_size):
        try:
            atomic_write_text(memo, json.dumps({**identity, "sha256": digest}) + "\n")
        except OSError:
            pass
    return digest


def json_reason(exc) -> str:
    """json's message without its dangling "at" ("Unterminated string starting at"): the caller says where."""
    msg = exc.msg
    return msg[:-3] if msg.endswith(" at") else msg
