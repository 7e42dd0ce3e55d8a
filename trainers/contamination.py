"""Contamination guard: training data must not contain the held-out queries the gate will score.

What counts as a leak (the query side is what must not leak):
- a training *query* that is a held-out query, exactly or nearly (after normalisation);
- a training *positive* (or negative) whose text is a held-out query: the held-out query's text reached training.
What does not: a training positive that is also a held-out query's positive. BEIR-style suites share one corpus
across splits, so documents are expected on both sides; the count is reported, not blocked.

Normalisation: Unicode NFKC, casefold, punctuation and symbols removed, whitespace collapsed. Near duplicates: Jaccard similarity
of character n-gram sets (default 5-grams, threshold 0.9), computed exactly for every pair sharing a rare n-gram,
so no random hashing and no missed pair above the threshold (texts sharing >= 90% of their n-grams always share
their rarest ones).
"""
from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from embedgate.harness.errors import EmbedgateError

SNIPPET = 120


class ContaminationError(EmbedgateError):
    """Training data overlaps a held-out set; the CLI prints it and exits 2."""


_NON_WORD = re.compile(r"[\W_]+")


def normalize(text: str) -> str:
    """NFKC, casefold, every run of punctuation, symbols and whitespace -> one space, trimmed."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def shingles(norm: str, n: int) -> frozenset[str]:
    if len(norm) <= n:
        return frozenset([norm]) if norm else frozenset()
    return frozenset(norm[i:i + n] for i in range(len(norm) - n + 1))


@dataclass(frozen=True)
class HeldOutQuery:
    set_name: str  # "<data name> <split>", e.g. "acord test"
    query_id: str
    text: str


@dataclass
class Overlap:
    kind: str  # "query" (a training query) | "positive" | "negative"
    match: str  # "exact" | "near"
    similarity: float
    training_row: int
    training_id: str | None
    training_text: str
    heldout: HeldOutQuery

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "match": self.match, "similarity": round(self.similarity, 4),
                "training_row": self.training_row, "training_id": self.training_id,
                "training_text": self.training_text[:SNIPPET], "heldout_set": self.heldout.set_name,
                "heldout_query_id": self.heldout.query_id, "heldout_text": self.heldout.text[:SNIPPET]}

    def line(self) -> str:
        sim = "identical after normalisation" if self.match == "exact" else f"near duplicate, {self.similarity:.2f}"
        tid = f" {self.training_id}" if self.training_id else ""
        return (f"training {self.kind} (row {self.training_row + 1}{tid}) {_quote(self.training_text)} ~ held-out "
                f"query {self.heldout.query_id} of {self.heldout.set_name} {_quote(self.heldout.text)} ({sim})")


def _quote(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= width else text[:width - 1] + "…")


@dataclass
class ContaminationReport:
    checked_against: list[dict[str, Any]]
    threshold: float
    ngram: int
    overlaps: list[Overlap] = field(default_factory=list)
    shared_documents: int = 0  # training positives that are also held-out positives (expected, not a leak)
    training_texts: dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.overlaps

    def as_dict(self, limit: int = 50) -> dict[str, Any]:
        return {"clean": self.clean, "checked_against": self.checked_against, "threshold": self.threshold,
                "ngram": self.ngram, "training_texts": self.training_texts, "n_overlaps": len(self.overlaps),
                "overlaps": [o.as_dict() for o in self.overlaps[:limit]],
                "shared_documents": self.shared_documents,
                "policy": "a held-out query's text in the training queries, positives or negatives is a leak; "
                          "documents shared with held-out positives are expected (shared corpus) and only counted"}

    def message(self, limit: int = 10) -> str:
        n = len(self.overlaps)
        sets = ", ".join(s["name"] for s in self.checked_against)
        head = f"{n} training text{'s' if n != 1 else ''} overlap held-out queries ({sets}):"
        lines = [head] + ["  " + o.line() for o in self.overlaps[:limit]]
        if n > limit:
            lines.append(f"  ... and {n - limit} more (all are listed in the manifest when allowed)")
        lines.append("Remove them from the training data, or set allow_contamination = true (or pass "
                     "--allow-contamination) to train anyway; the overlap is then recorded in the manifest.")
        return "\n".join(lines)


class _Index:
    """Held-out queries by normalised text and by n-gram, for exact and near-duplicate look-ups."""

    def __init__(self, queries: list[HeldOutQuery], n: int):
        self.n = n
        self.queries = queries
        self.exact: dict[str, list[int]] = defaultdict(list)
        self.grams: list[frozenset[str]] = []
        self.postings: dict[str, list[int]] = defaultdict(list)
        for i, q in enumerate(queries):
            norm = normalize(q.text)
            self.exact[norm].append(i)
            g = shingles(norm, n)
            self.grams.append(g)
            for s in g:
                self.postings[s].append(i)

    def near(self, grams: frozenset[str], threshold: float) -> list[tuple[int, float]]:
        """Held-out queries with Jaccard >= threshold. Jaccard >= t needs |A & B| >= t*|A|, so B must contain one of
        A's (1 - t)*|A| + 1 rarest n-grams: only those postings are scanned."""
        if not grams:
            return []
        ranked = sorted(grams, key=lambda s: (len(self.postings.get(s, ())), s))
        probe = ranked[:int((1 - threshold) * len(grams) + 1e-9) + 1]
        candidates = {i for s in probe for i in self.postings.get(s, ())}
        out = []
        for i in sorted(candidates):
            other = self.grams[i]
            inter = len(grams & other)
            jac = inter / (len(grams) + len(other) - inter)
            if jac >= threshold:
                out.append((i, jac))
        return out


def check(rows: Iterable[tuple[str, str, str | None, str]], heldout: list[HeldOutQuery],
          checked_against: list[dict[str, Any]], *, threshold: float = 0.9, ngram: int = 5,
          heldout_positive_texts: set[str] | None = None) -> ContaminationReport:
    """``rows``: (kind, text, id, ...) per training text, kind in query/positive/negative, with the training row
    index as the fourth item. Each distinct (kind, normalised text) is checked once."""
    index = _Index(heldout, ngram)
    report = ContaminationReport(checked_against=checked_against, threshold=threshold, ngram=ngram)
    seen: set[tuple[str, str]] = set()
    seen_raw: set[tuple[str, str]] = set()
    counts: dict[str, int] = defaultdict(int)
    heldout_docs = {normalize(t) for t in heldout_positive_texts or ()}
    shared: set[str] = set()
    for kind, text, tid, row in rows:
        if (kind, text) in seen_raw:  # the same document repeats across pairs: normalise it once
            continue
        seen_raw.add((kind, text))
        norm = normalize(text)
        if (kind, norm) in seen:
            continue
        seen.add((kind, norm))
        counts[kind] += 1
        if kind == "positive" and norm in heldout_docs:
            shared.add(norm)
        hits = {i: 1.0 for i in index.exact.get(norm, ())}
        if threshold < 1.0:
            for i, jac in index.near(shingles(norm, ngram), threshold):
                hits.setdefault(i, jac)
        for i, sim in sorted(hits.items()):
            match = "exact" if normalize(heldout[i].text) == norm else "near"
            report.overlaps.append(Overlap(kind, match, sim, int(row), tid, text, heldout[i]))
    report.shared_documents = len(shared)
    report.training_texts = dict(counts)
    report.overlaps.sort(key=lambda o: (o.training_row, o.kind, o.heldout.set_name, o.heldout.query_id))
    return report
