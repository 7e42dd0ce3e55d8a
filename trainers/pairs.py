"""Training pairs: (query, positive[, negatives...]) rows from a retrieval set's split or a pairs file (a search
log's clicks: ``trainers.logs``).

From a retrieval set (a suite's data or a BEIR folder), every judged document with relevance >= ``min_relevance``
becomes a pair with its query; every judged positive (any grade > 0) is remembered per query so that hard-negative
mining never hands a lower-graded true positive to the loss as a negative. A pairs file (jsonl, csv or tsv) holds one
row per pair: ``query`` (or ``anchor``), ``positive``, optional ``negative`` / ``negative_1..n`` columns, optional
``query_id`` / ``positive_id``. Bad rows are DataErrors naming the file, line and field.
"""
from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from embedgate.harness import data as data_mod
from embedgate.harness.errors import DataError

QUERY_FIELDS = ("query", "anchor")
POSITIVE_FIELDS = ("positive", "document", "passage")
_NEG_RE = re.compile(r"^negative(?:_(\d+))?$")
PAIR_SUFFIXES = (".jsonl", ".csv", ".tsv")


@dataclass(frozen=True)
class TrainingPair:
    query: str
    positive: str
    query_id: str | None = None
    positive_id: str | None = None
    relevance: int | None = None
    negatives: tuple[str, ...] = ()
    clicks: int | None = None  # a click log's pairs: the qualifying clicks behind it

    def row(self) -> dict[str, Any]:
        out: dict[str, Any] = {"query": self.query, "positive": self.positive}
        if self.query_id is not None:
            out["query_id"] = self.query_id
        if self.positive_id is not None:
            out["positive_id"] = self.positive_id
        if self.relevance is not None:
            out["relevance"] = self.relevance
        if self.clicks is not None:
            out["clicks"] = self.clicks
        for i, neg in enumerate(self.negatives, start=1):
            out[f"negative_{i}"] = neg
        return out


JUDGED_POSITIVES = "judged positives"


def kept_out(stats: dict[str, Any]) -> str:
    """What mining kept out of the negatives, in words, as it recorded it (manifests before it did: judged
    positives, the only kind there was)."""
    return stats.get("kept_out") or JUDGED_POSITIVES


@dataclass
class PairSet:
    """Pairs plus what mining and the manifest need: the document pool and the judged positives per query text."""

    pairs: list[TrainingPair]
    source: dict[str, Any]
    corpus: list[str] | None = None  # candidate negatives (a retrieval set's corpus); None: the positives column
    judged: dict[str, set[str]] = field(default_factory=dict)  # query text -> texts of every judged positive
    judged_label: str = JUDGED_POSITIVES  # what ``judged`` holds, in words (a search log: its clicked documents)

    @property
    def n_negatives(self) -> int:
        return len(self.pairs[0].negatives) if self.pairs else 0

    def content_hash(self) -> str:
        """sha256 over the rows as trained on (order included), independent of where they came from."""
        h = hashlib.sha256()
        for p in self.pairs:
            h.update("\x1f".join((p.query, p.positive, *p.negatives)).encode("utf-8") + b"\x1e")
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        return {**self.source, "n_pairs": len(self.pairs), "n_queries": len({p.query for p in self.pairs}),
                "n_negative_columns": self.n_negatives, "pairs_sha256": self.content_hash()}

    def to_dataset(self):
        """A datasets.Dataset with columns anchor, positive[, negative_1..n], the order the losses expect."""
        from datasets import Dataset

        columns: dict[str, list[str]] = {"anchor": [p.query for p in self.pairs],
                                         "positive": [p.positive for p in self.pairs]}
        for i in range(self.n_negatives):
            columns[f"negative_{i + 1}"] = [p.negatives[i] for p in self.pairs]
        return Dataset.from_dict(columns)


def _sample(pairs: list[TrainingPair], max_pairs: int | None, max_per_query: int | None,
            seed: int) -> list[TrainingPair]:
    """Keep at most ``max_per_query`` pairs per query (the best graded first) and ``max_pairs`` overall (a seeded
    random sample), preserving the original order."""
    if max_per_query is not None:
        kept, seen = [], {}
        for p in pairs:  # pairs arrive best grade first within a query
            n = seen.get(p.query, 0)
            if n < max_per_query:
                kept.append(p)
                seen[p.query] = n + 1
        pairs = kept
    if max_pairs is not None and len(pairs) > max_pairs:
        keep = set(random.Random(seed).sample(range(len(pairs)), max_pairs))
        pairs = [p for i, p in enumerate(pairs) if i in keep]
    return pairs


def pairs_from_retrieval_set(dataset: data_mod.RetrievalSet, *, min_relevance: int = 1,
                             max_pairs: int | None = None, max_per_query: int | None = None,
                             seed: int = 0) -> PairSet:
    """One pair per judged (query, document) with relevance >= min_relevance, queries in id order and documents by
    grade (best first), then id."""
    if min_relevance < 1:
        raise DataError("min_relevance must be >= 1 (0 marks a judged non-relevant document)",
                        path=dataset.source, field="min_relevance")
    pairs: list[TrainingPair] = []
    judged: dict[str, set[str]] = {}
    for qid in sorted(dataset.queries):
        text = dataset.queries[qid]
        rels = dataset.qrels.get(qid, {})
        judged.setdefault(text, set()).update(dataset.corpus[d].full_text for d, r in rels.items() if r > 0)
        for doc_id, rel in sorted(rels.items(), key=lambda kv: (-kv[1], kv[0])):
            if rel >= min_relevance:
                pairs.append(TrainingPair(text, dataset.corpus[doc_id].full_text, qid, doc_id, rel))
    if not pairs:
        grades = sorted({r for rels in dataset.qrels.values() for r in rels.values()})
        raise DataError(f"no judgment reaches min_relevance = {min_relevance} (grades present: {grades})",
                        path=dataset.source, field="min_relevance")
    pairs = _sample(pairs, max_pairs, max_per_query, seed)
    source = {"kind": "retrieval-set", "path": dataset.source, "name": dataset.name, "split": dataset.split,
              "content_hash": dataset.content_hash, "min_relevance": min_relevance, "max_pairs": max_pairs,
              "max_per_query": max_per_query, "seed": seed}
    corpus = sorted({d.full_text for d in dataset.corpus.values()})
    return PairSet(pairs=pairs, source=source, corpus=corpus, judged=judged)


def _negative_columns(columns: Iterable[str], path: Path, line: int) -> list[str]:
    found = []
    for col in columns:
        m = _NEG_RE.match(col)
        if m:
            found.append((int(m.group(1) or 0), col))
    found.sort()
    if [i for i, _ in found if i] != list(range(1, 1 + sum(1 for i, _ in found if i))):
        raise DataError("negative columns must be `negative` or `negative_1`, `negative_2`, ... without gaps",
                        path=path, line=line, field=found[0][1])
    if len(found) > 1 and found[0][0] == 0:
        raise DataError("use either `negative` or `negative_1..n`, not both", path=path, line=line,
                        field="negative")
    return [col for _, col in found]


def _text(rec: dict, names: tuple[str, ...], path: Path, line: int) -> str:
    for name in names:
        if name in rec:
            value = rec[name]
            if not isinstance(value, str) or not value.strip():
                raise DataError("expected a non-empty string", path=path, line=line, field=name)
            return value.strip()
    raise DataError(f"missing field (one of {', '.join(names)})", path=path, line=line, field=names[0])


def read_pairs_file(path: str | Path, *, max_pairs: int | None = None, max_per_query: int | None = None,
                    seed: int = 0) -> PairSet:
    """Pairs or triplets from a jsonl/csv/tsv file; every row must have the same negative columns."""
    path = Path(path)
    if not path.is_file():
        raise DataError("pairs file not found", path=path)
    if path.suffix.lower() not in PAIR_SUFFIXES:
        raise DataError(f"pairs file must be one of {', '.join(PAIR_SUFFIXES)}", path=path)
    pairs: list[TrainingPair] = []
    neg_cols: list[str] | None = None
    for line, rec in data_mod._iter_records(path):
        query = _text(rec, QUERY_FIELDS, path, line)
        positive = _text(rec, POSITIVE_FIELDS, path, line)
        cols = _negative_columns([c for c in rec if rec[c] not in (None, "")], path, line)
        if neg_cols is None:
            neg_cols = cols
        elif cols != neg_cols:
            raise DataError(f"row has negative columns {cols or 'none'}, earlier rows {neg_cols or 'none'}; "
                            "every row needs the same number of negatives", path=path, line=line,
                            field=(cols or neg_cols)[0])
        negatives = tuple(_text(rec, (c,), path, line) for c in cols)
        qid = rec.get("query_id")
        pid = rec.get("positive_id")
        pairs.append(TrainingPair(query, positive, None if qid in (None, "") else str(qid),
                                  None if pid in (None, "") else str(pid), None, negatives))
    if not pairs:
        raise DataError("the pairs file has no rows", path=path)
    pairs = _sample(pairs, max_pairs, max_per_query, seed)
    judged: dict[str, set[str]] = {}
    for p in pairs:
        judged.setdefault(p.query, set()).add(p.positive)
    from embedgate.harness.io import sha256_file

    source = {"kind": "pairs-file", "path": str(path), "file_sha256": sha256_file(path), "max_pairs": max_pairs,
              "max_per_query": max_per_query, "seed": seed}
    return PairSet(pairs=pairs, source=source, corpus=None, judged=judged)


def write_pairs(path: str | Path, pairs: Iterable[TrainingPair]) -> Path:
    """Rows as jsonl, written atomically (the mined training data kept for audit and for resuming)."""
    from embedgate.harness.io import atomic_write_text, dumps_json

    return atomic_write_text(path, "".join(dumps_json(p.row(), indent=None) + "\n" for p in pairs))
