"""The append-only log of LLM results: one JSON line per chunk, written and flushed as each answer arrives.

A restarted run reads it and skips every chunk whose result is already there (same chunk text, model, number of
queries and prompt). A crash can tear the last line: that line is moved to ``<log>.torn`` and its chunk is done
again. Damage anywhere else is an error naming the line, never silently skipped. One run at a time holds the
folder's lock, so two runs cannot both pay for the same chunk.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedgate.harness.errors import ConfigError, DataError

LOG_NAME = "generation_log.jsonl"
LOG_SCHEMA = "embedgate.generation-log/1"


def result_key(chunk_id: str, chunk_sha: str, model: str, n: int, prompt_sha: str) -> tuple:
    """What decides an answer: a logged result is reused only when all of these match."""
    return (chunk_id, chunk_sha, model, int(n), prompt_sha)


def entry_key(entry: dict[str, Any]) -> tuple:
    return result_key(entry["chunk_id"], entry["chunk_sha256"], entry["model"], entry["queries_per_chunk"],
                      entry["prompt_sha256"])


@dataclass
class LogContents:
    entries: list[dict[str, Any]] = field(default_factory=list)
    torn_bytes: int = 0

    def by_key(self) -> dict[tuple, dict[str, Any]]:
        out: dict[tuple, dict[str, Any]] = {}
        for e in self.entries:
            out.setdefault(entry_key(e), e)  # the first result for a key is the one that counts
        return out

    def usage(self) -> dict[str, float]:
        tin = sum(e.get("usage", {}).get("input_tokens", 0) for e in self.entries)
        tout = sum(e.get("usage", {}).get("output_tokens", 0) for e in self.entries)
        usd = sum(e.get("cost_usd") or 0.0 for e in self.entries)
        return {"input_tokens": tin, "output_tokens": tout, "usd": round(usd, 6)}


_REQUIRED = ("chunk_id", "chunk_sha256", "model", "queries_per_chunk", "prompt_sha256", "status")


def read_log(path: Path, *, repair: bool) -> LogContents:
    """Every complete entry of the log. A torn last line is ignored; with ``repair`` it is also cut from the log
    (kept in ``<log>.torn``) so that the next append starts on a fresh line."""
    out = LogContents()
    if not path.exists():
        return out
    data = path.read_bytes()
    complete_end = data.rfind(b"\n") + 1  # bytes after the last newline are a line the crash did not finish
    lines = data[:complete_end].split(b"\n")[:-1]
    tail = data[complete_end:]
    for line_no, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            # each entry is written with its newline in one call, so a line that has its newline and does not
            # parse was damaged after the fact: not something to skip quietly
            raise DataError(f"damaged log line ({exc}); fix or delete this line to go on", path=path,
                            line=line_no) from None
        if not isinstance(entry, dict) or any(k not in entry for k in _REQUIRED):
            raise DataError(f"log entry lacks one of {', '.join(_REQUIRED)}", path=path, line=line_no)
        out.entries.append(entry)
    out.torn_bytes = len(tail)
    if tail and repair:
        with open(path.with_name(path.name + ".torn"), "ab") as fh:
            fh.write(tail + (b"" if tail.endswith(b"\n") else b"\n"))
        with open(path, "r+b") as fh:
            fh.truncate(complete_end)
            fh.flush()
            os.fsync(fh.fileno())
    return out


class Journal:
    """Appends entries from many threads; each line is flushed and fsync'ed before the call returns."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._fh = None

    def __enter__(self) -> "Journal":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "ab")
        return self

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def append(self, entry: dict[str, Any]) -> None:
        line = json.dumps({"schema": LOG_SCHEMA, **entry}, ensure_ascii=False, allow_nan=False) + "\n"
        with self._lock:
            self._fh.write(line.encode("utf-8"))
            self._fh.flush()
            os.fsync(self._fh.fileno())


class FolderLock:
    """An exclusive lock on the output folder for the length of a run (POSIX flock; a no-op elsewhere)."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / ".generate.lock"
        self._fh = None

    def __enter__(self) -> "FolderLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a")
        try:
            import fcntl
        except ImportError:
            return self
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.close()
            raise ConfigError("another `embedgate generate` is writing to this folder; wait for it to finish",
                              path=self.path.parent) from None
        return self

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
