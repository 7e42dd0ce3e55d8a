"""BENCHMARKS.md is written by several bench scripts, each owning one section between its markers."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

PATH = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def replace_section(start: str, end: str, section: str, path: Path = PATH) -> Path:
    """Replace the text between ``start`` and ``end`` (markers included in ``section``), or append it; the other
    sections stay as they are. Written atomically: a crash never leaves half a file."""
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    if start in text and end in text:
        text = text[:text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".BENCHMARKS.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path
