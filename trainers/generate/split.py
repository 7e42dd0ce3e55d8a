"""Split by document, never by pair: every chunk and every query of a document lands in one split.

A document's split comes from a seeded hash of its id compared with the cumulative fractions, so it depends on
nothing else: adding documents later never moves an old one from train to test (which would put text a model was
trained on into its test set). Only when a split with a non-zero fraction comes out empty on a small corpus are
the documents ranked by the same hash and cut at the fractions instead; the report says so.
"""
from __future__ import annotations

import hashlib
import math

from embedgate.harness.errors import ConfigError

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
    n = len(doc_ids)
    wanted = {"train", "test"} | ({"dev"} if fractions[1] > 0 and n >= 3 else set())
    if n >= 2 and not wanted <= set(out.values()):
        ranked = sorted(doc_ids, key=lambda d: (unit_hash(d, seed), d))
        n_test = max(1, round(fractions[2] * n))
        n_dev = max(1, round(fractions[1] * n)) if "dev" in wanted else 0
        n_train = max(1, n - n_test - n_dev)
        n_dev = n - n_train - n_test
        out = {}
        for i, d in enumerate(ranked):
            out[d] = SPLITS[0] if i < n_train else SPLITS[1] if i < n_train + n_dev else SPLITS[2]
        return out, "ranked"
    return out, "hash"
