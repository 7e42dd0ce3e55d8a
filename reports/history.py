"""Earlier runs of the same suite, read from the folder the results are written to, for the report's trend."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .load import KNOWN_SCHEMAS
from .view import TREND_RUNS, run_summary

log = logging.getLogger(__name__)
MAX_FILES_READ = 200  # newest files looked at; a folder of thousands of results must not slow every gate run


def find_history(json_path: str | Path, result: dict[str, Any], limit: int = TREND_RUNS - 1) -> list[dict[str, Any]]:
    """Summaries of up to ``limit`` earlier results of the same suite (same ``suite.name``) beside ``json_path``,
    oldest first. Files that are not readable results are skipped: history is context, never a reason to fail."""
    json_path = Path(json_path)
    folder = json_path.parent
    name = (result.get("suite") or {}).get("name")
    created = result.get("created_at") or ""
    if not folder.is_dir() or not name:
        return []
    try:
        me = json_path.resolve()
        files = [p for p in folder.glob("*.json") if p.is_file() and p.resolve() != me]
        files.sort(key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
    except OSError as exc:
        log.warning("cannot list earlier results in %s: %s", folder, exc)
        return []
    found = []
    for path in files[:MAX_FILES_READ]:
        try:
            other = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(other, dict) or other.get("schema") not in KNOWN_SCHEMAS:
            continue
        if (other.get("suite") or {}).get("name") != name or not isinstance(other.get("created_at"), str):
            continue
        if created and other["created_at"] > created:
            continue  # re-rendering an old report shows the runs before it
        try:
            summary = run_summary(other)
        except (AttributeError, TypeError):
            continue  # a hand-edited or truncated file: leave it out of the trend
        summary["file"] = path.name
        found.append(summary)
    found.sort(key=lambda s: (s["created_at"], s["file"]))
    return found[-limit:] if limit > 0 else []
