"""Number and text formatting shared by the HTML and markdown renderers, so both say the same thing the same way."""
from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any

from embedgate.harness.schema import STATUS_LABELS

VERDICT_LABELS = {k: v for k, v in STATUS_LABELS.items() if k != "inconclusive"}
MINUS = "\u2212"  # a real minus sign: easier to tell from a hyphen in dense tables
_METRIC_RE = re.compile(r"^(.+)@(\d+)$")


def parse_metric(name: str) -> tuple[str, int] | None:
    """'ndcg@10' -> ('ndcg', 10); a name without a cut-off -> None."""
    m = _METRIC_RE.match(name)
    return (m.group(1), int(m.group(2))) if m else None


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def num(x: Any, digits: int = 4) -> str:
    if not is_number(x):
        return "n/a"
    return f"{x:.{digits}f}".replace("-", MINUS)


def signed(x: Any, digits: int = 4) -> str:
    if not is_number(x):
        return "n/a"
    if round(x, digits) == 0:
        return f"{0:.{digits}f}"
    return f"{x:+.{digits}f}".replace("-", MINUS)


def pct(x: Any, digits: int = 1) -> str:
    """A relative difference (0.05 -> +5.0%)."""
    if not is_number(x):
        return "n/a"
    if round(100 * x, digits) == 0:
        return f"{0:.{digits}f}%"
    return f"{100 * x:+.{digits}f}%".replace("-", MINUS)


P_FLOOR = 1e-4  # below this a p-value says nothing more (10,000 resamples resolve no finer): "< 1e-4"


def p_value(x: Any) -> str:
    """0.0371 -> '0.037', 0.00042 -> '4.2e−04', and anything at or below 1e-4 (the floor of the resampling, or
    the 1e-49 of a t-test on thousands of queries) -> '< 1e-4': a finer p-value claims a precision no run has."""
    if not is_number(x):
        return "n/a"
    if x <= P_FLOOR * (1 + 1e-9):
        return "< 1e-4"
    if x < 0.001:
        return f"{x:.1e}".replace("-", MINUS)
    return f"{x:.3f}"


def duration(seconds: Any) -> str:
    """400.7 -> '6 min 41 s', 52.3 -> '52 s', 3725 -> '1 h 2 min' (a wall time, read in passing)."""
    if not is_number(seconds) or seconds < 0:
        return "n/a"
    s = int(round(seconds))
    if s < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {(s % 3600) // 60} min"


def interval(ci: Any, digits: int = 4) -> str:
    if not (isinstance(ci, (list, tuple)) and len(ci) == 2 and all(is_number(v) for v in ci)):
        return "n/a"
    return f"[{signed(ci[0], digits)}, {signed(ci[1], digits)}]"


def human_bytes(n: Any) -> str:
    """9216000 -> '9.22 MB' (decimal units, three significant digits: an index size, not an exact count)."""
    if not is_number(n) or n < 0:
        return "n/a"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            break
        n /= 1000
    return f"{int(n)} B" if unit == "B" else f"{n:.3g} {unit}" if n < 100 else f"{n:.0f} {unit}"


def ms(x: Any) -> str:
    """A latency in milliseconds, to about three significant digits (0.584 -> '0.58', 521.873 -> '522')."""
    if not is_number(x):
        return "n/a"
    return f"{x:.2f}" if round(x, 2) < 10 else f"{x:.1f}" if round(x, 1) < 100 else f"{x:.0f}"


def usd(x: Any) -> str:
    """A cost in US dollars: cents above a dollar, four significant digits below (API runs often cost fractions)."""
    if not is_number(x):
        return "n/a"
    return f"${x:,.2f}" if x >= 1 else f"${x:.4g}" if x > 0 else "$0"


def confidence_label(conf: Any) -> str:
    return f"{100 * conf:g}% CI" if is_number(conf) else "CI"


def when(iso: Any) -> str:
    """'2026-11-22T15:04:05+00:00' -> '2026-11-22 15:04 UTC' (unparseable text is shown as it is)."""
    if not isinstance(iso, str):
        return "unknown time"
    try:
        t = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if t.tzinfo is not None:
        t = t.astimezone(timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M UTC")


def short_hash(h: Any, n: int = 12) -> str:
    return h[:n] if isinstance(h, str) and h else "n/a"


_HASH_RE = re.compile(r"^[0-9a-fA-F]{20,}$")


def is_hash(value: Any) -> bool:
    """A hex digest long enough that a reader compares its start, not all of it."""
    return isinstance(value, str) and bool(_HASH_RE.match(value))


def short_model(name: Any) -> str:
    """The last path component of a model name or folder; the full name stays in the fingerprints."""
    if not isinstance(name, str) or not name:
        return "unknown model"
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    if len(parts) >= 2 and not name.startswith(("/", ".")) and len(parts) == 2:
        return name  # a hub id such as sentence-transformers/all-MiniLM-L6-v2 reads better whole
    return parts[-1] if parts else name


def requirement(gate: dict[str, Any]) -> str:
    """What a gate asked for, in one short line: the gate class wrote it into the result."""
    return gate.get("requirement") or "n/a"


def observed(gate: dict[str, Any]) -> str:
    """What was measured against that requirement, where the interval is not the test (the gate class wrote it)."""
    return gate.get("observed") or "" if gate.get("decided_by") != "interval" else ""


def message_head(message: Any) -> str:
    """The first line of a gate message, less the gate name it repeats."""
    if not isinstance(message, str) or not message.strip():
        return ""
    return message.strip().splitlines()[0]


def message_reason(gate: dict[str, Any]) -> str:
    """Why a gate did not pass, in a line or two: its verdict phrase and what was measured (the gate message's
    first two lines, less the gate name the head repeats). The full message stays in the gates table."""
    msg = gate.get("message")
    if not isinstance(msg, str) or not msg.strip():
        return ""
    lines = [ln.strip() for ln in msg.strip().splitlines() if ln.strip()]
    head = lines[0]
    name = gate.get("name")
    if isinstance(name, str) and head.startswith(name + ":"):
        head = head[len(name) + 1:].strip()
    return head + (f" \u2014 {lines[1]}" if len(lines) > 1 else "")


def rank_move(base_rank: Any, cand_rank: Any, depth: Any = None) -> tuple[str, str]:
    """How far a relevant document moved, as (text, css class). Ranks are 1-based; None is beyond the depth."""
    beyond = f">{depth}" if is_number(depth) else "not retrieved"
    if base_rank is None and cand_rank is None:
        return f"{beyond} in both", "flat"
    if base_rank is None:
        return f"new at #{cand_rank}", "up"
    if cand_rank is None:
        return f"lost (was #{base_rank})", "down"
    delta = base_rank - cand_rank
    if delta > 0:
        return f"\u2191{delta}", "up"
    if delta < 0:
        return f"\u2193{-delta}", "down"
    return "=", "flat"
