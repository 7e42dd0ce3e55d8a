"""Filters on candidate (query, passage) pairs, each drop counted by reason.

In order, the first that applies:
- ``too_short``: fewer than ``min_words`` words or ``min_chars`` characters;
- ``copies_passage``: the longest run of words the query shares with its passage covers ``max_copy_ratio`` of the
  query (and at least 4 words): a query lifted from the text tests string matching, not retrieval;
- ``ambiguous_passage``: the passage's text occurs more than once in the corpus (boilerplate): the other copy
  would be a false negative, and copies in two splits would leak;
- ``duplicate_across_documents``: the same query (normalised) was made for passages of different documents: its
  one judgment would be incomplete, and the documents may sit in different splits. Every copy is dropped;
- ``duplicate``: the same query again for the same passage; when the copies point at different passages of one
  document, they become one query with several positives (counted as ``merged``).
After the split by document, one more (``near_duplicate_of_test_query``): a train or dev query that is a near
duplicate of a test query, by the contamination guard's own rule (trainers.contamination), so that the generated
train split passes the guard of `embedgate train` as it is.
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher

REASONS = ("too_short", "copies_passage", "ambiguous_passage", "duplicate_across_documents", "duplicate",
           "near_duplicate_of_test_query")
EXAMPLES_PER_REASON = 5
_TOKEN_RE = re.compile(r"\w+")


@dataclass(frozen=True)
class Candidate:
    query: str
    chunk_id: str
    doc_id: str
    generator: str  # "llm" or an offline generator name
    key: str  # stable id of this candidate, e.g. "<chunk_id>:q0"


@dataclass
class Pair:
    """A kept query and its positive passages (one, or several of one document after a merge)."""

    query_id: str
    query: str
    doc_id: str
    chunk_ids: list[str]
    generator: str


@dataclass
class FilterSettings:
    min_words: int = 3
    min_chars: int = 10
    max_copy_ratio: float = 0.75
    min_copy_words: int = 4


@dataclass
class FilterReport:
    candidates: int = 0
    kept: int = 0
    merged: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: dict[str, list[dict]] = field(default_factory=dict)

    def drop(self, reason: str, cand: Candidate, detail: str = "") -> None:
        self.dropped[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < EXAMPLES_PER_REASON:
            shown.append({"query": cand.query, "chunk_id": cand.chunk_id, **({"detail": detail} if detail else {})})

    def as_dict(self) -> dict:
        return {"candidates": self.candidates, "kept": self.kept, "merged_into_multi_positive": self.merged,
                "dropped": {r: self.dropped.get(r, 0) for r in REASONS}, "examples": self.examples}


def normalise(text: str) -> str:
    """Case-folded, accents kept, punctuation dropped, whitespace collapsed: what counts as "the same query"."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_TOKEN_RE.findall(text))


def words_of(text: str) -> list[str]:
    return _TOKEN_RE.findall(unicodedata.normalize("NFKC", text).casefold())


def longest_shared_run(query: str, passage: str) -> int:
    """Length in words of the longest run of consecutive words the query shares with the passage."""
    q, p = words_of(query), words_of(passage)
    if not q or not p:
        return 0
    m = SequenceMatcher(None, q, p, autojunk=False).find_longest_match(0, len(q), 0, len(p))
    return m.size


def copies_passage(query: str, passage: str, settings: FilterSettings) -> tuple[bool, str]:
    n = len(words_of(query))
    run = longest_shared_run(query, passage)
    needed = max(settings.min_copy_words, math.ceil(settings.max_copy_ratio * n))
    return run >= needed, f"{run} of {n} words in a row are in the passage"


def apply_filters(cands: list[Candidate], passages: dict[str, str], settings: FilterSettings
                  ) -> tuple[list[Pair], FilterReport]:
    """``passages``: chunk id -> the text a retriever sees (title and text). Candidates must come in a
    deterministic order (chunk order); the result keeps it, so the same input always gives the same pairs."""
    report = FilterReport(candidates=len(cands))
    text_count = Counter(normalise(t) for t in passages.values())
    survivors: list[Candidate] = []
    for c in cands:
        q = " ".join(c.query.split())
        if len(words_of(q)) < settings.min_words or len(q) < settings.min_chars:
            report.drop("too_short", c)
            continue
        copied, detail = copies_passage(q, passages[c.chunk_id], settings)
        if copied:
            report.drop("copies_passage", c, detail)
            continue
        if text_count[normalise(passages[c.chunk_id])] > 1:
            report.drop("ambiguous_passage", c, f"its text occurs {text_count[normalise(passages[c.chunk_id])]} "
                                                "times in the corpus")
            continue
        survivors.append(c)
    groups: dict[str, list[Candidate]] = {}
    for c in survivors:
        groups.setdefault(normalise(c.query), []).append(c)
    pairs: list[Pair] = []
    for c in survivors:
        group = groups[normalise(c.query)]
        if len({g.doc_id for g in group}) > 1:
            report.drop("duplicate_across_documents", c, f"also made for {len(group) - 1} other passage(s)")
            continue
        if c is not group[0]:
            if c.chunk_id in {g.chunk_id for g in group[: group.index(c)]}:
                report.drop("duplicate", c)
            continue
        chunk_ids = list(dict.fromkeys(g.chunk_id for g in group))
        if len(chunk_ids) > 1:
            report.merged += len(chunk_ids) - 1
        pairs.append(Pair(query_id=c.key, query=" ".join(c.query.split()), doc_id=c.doc_id, chunk_ids=chunk_ids,
                          generator=c.generator))
    report.kept = len(pairs)
    return pairs, report


def drop_near_duplicates_of_test(pairs: list[Pair], split_of_doc: dict[str, str], report: FilterReport
                                 ) -> list[Pair]:
    """Drop train/dev queries the contamination guard would flag against the test queries (test keeps its own)."""
    from embedgate.trainers.contamination import HeldOutQuery, check

    heldout = [HeldOutQuery("test", p.query_id, p.query) for p in pairs if split_of_doc[p.doc_id] == "test"]
    training = [p for p in pairs if split_of_doc[p.doc_id] != "test"]
    found = check((("query", p.query, p.query_id, i) for i, p in enumerate(training)), heldout, [])
    flagged = {}
    for o in found.overlaps:
        flagged.setdefault(o.training_row, o)
    for row, o in sorted(flagged.items()):
        p = training[row]
        report.drop("near_duplicate_of_test_query",
                    Candidate(p.query, p.chunk_ids[0], p.doc_id, p.generator, p.query_id),
                    f"{o.match} match ({o.similarity:.2f}) of test query {o.heldout.query_id}: {o.heldout.text!r}")
    dropped_ids = {training[row].query_id for row in flagged}
    kept = [p for p in pairs if p.query_id not in dropped_ids]
    report.kept = len(kept)
    return kept
