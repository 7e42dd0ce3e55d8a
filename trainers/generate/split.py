"""Split by document, never by pair: every chunk and every query of a document lands in one split.

A document's split comes from a seeded hash of its id compared with the cumulative fractions, so it depends on
nothing else: adding documents later never moves an old one from train to test (which would put text a model was
trained on into its test set). Only when a split with a non-zero fraction comes out empty on a small corpus are
the documents ranked by the same hash and cut at the fractions instead; the report says so.
"""
from __future__ import annotations

import hashlib
import math

from harness.errors import ConfigError

SPLITS = ("train", "dev", "test")
DEFAULT_FRACTIONS = (0.7, 0.1, 0.2)


def parse_fractions(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"expected three numbers train,dev,test (e.g. 0.7,0.1,0.2), got {text!r}",
                          field="split") from None
    check_fractions(values)
    return values  # type: ignore[return-value]


def check_fractions(values) -> None:
    if len(values) != 3 or any(not math.isfinite(v) or v < 0 for v in values) or abs(sum(values) - 1) > 1e-6:
        raise ConfigError(f"split fractions must be three non-negative numbers summing to 1, got {values}",
                          field="split")
    if values[0] <= 0 or values[2] <= 0:
        raise ConfigError("the train and test fractions must both be above 0", field="split")


def unit_hash(doc_id: str, seed: int) -> float:
    digest = hashlib.sha256(f"embedgate-split\x1f{seed}\x1f{doc_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def assign(doc_ids: list[str], fractions=DEFAULT_FRACTIONS, seed: int = 0) -> tuple[dict[str, str], str]:
    """doc id -> split, and the method used ("hash" or "ranked")."""
    check_fractions(tuple(fractions))
    bounds = [fractions[0], fractions[0] + fractions[1]]
    out = {}
    for d in doc_ids:
        u = unit_hash(d, seed)
        out[d] = SPLITS[0] if u < bounds[0] else SPLITS[1] if u < bounds[1] else SPLITS[2]
    wanted = [s for s, f in zip(SPLITS, fractions) if f > 0]
    if len(doc_ids) >= len(wanted) and any(s not in out.values() for s in wanted):
        ranked = sorted(doc_ids, key=lambda d: (unit_hash(d, seed), d))
        n = len(ranked)
        counts = [max(1, round(f * n)) if f > 0 else 0 for f in fractions]
        counts[0] = n - counts[1] - counts[2]
        if counts[0] < 1:  # fewer documents than splits want: train keeps one, dev gives way first
            counts = [1, max(0, n - 2) if fractions[1] > 0 else 0, 0]
            counts[2] = n - counts[0] - counts[1]
        out, i = {}, 0
        for split, count in zip(SPLITS, counts):
            for d in ranked[i:i + count]:
                out[d] = split
            i += count
        return out, "ranked"
    return out, "hash"
