"""Retrieval sets in: BEIR folders, jsonl/csv/parquet tables, Hugging Face datasets saved to disk.

Everything is validated before any encoding; a problem is a DataError naming the file, the line (or row) and
the field. Graded relevance is kept as given. Conventions:
- the queries of a split are the query ids that appear in ``qrels/<split>``;
- a judgment with score <= 0 marks a document as judged non-relevant;
- a query of the split without any positive judgment is listed in ``excluded_queries`` and left out of the scores.
"""
from __future__ import annotations

import hashlib
import json
import numbers
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from .io import json_reason
from .errors import DataError

TABLE_SUFFIXES = (".jsonl", ".csv", ".tsv", ".parquet")
_INT_RE = re.compile(r"^[+-]?\d+$")
# Field names accepted for each record kind, first one is the canonical BEIR name.
ID_FIELDS = ("_id", "id")
QRELS_FIELDS = (("query-id", "query_id", "qid"), ("corpus-id", "corpus_id", "doc_id", "docid"), ("score", "relevance"))


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str

    @property
    def full_text(self) -> str:
        """What gets encoded: title and text joined by a space, as BEIR and MTEB do."""
        return f"{self.title} {self.text}".strip() if self.title else self.text


@dataclass
class RetrievalSet:
    """A held-out retrieval set for one split: the corpus, the split's queries and their judgments."""

    name: str
    split: str
    corpus: dict[str, Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    source: str = ""
    format: str = "memory"
    excluded_queries: list[str] = field(default_factory=list)
    sampling: dict[str, Any] | None = None
    _hash: str | None = field(default=None, repr=False, compare=False)

    @property
    def content_hash(self) -> str:
        """sha256 over the corpus, the evaluated queries and their judgments, independent of the file format."""
        if self._hash is None:
            h = hashlib.sha256()
            for doc_id in sorted(self.corpus):
                d = self.corpus[doc_id]
                h.update(f"D\x1f{doc_id}\x1f{d.title}\x1f{d.text}\x1e".encode())
            for qid in sorted(self.queries):
                h.update(f"Q\x1f{qid}\x1f{self.queries[qid]}\x1e".encode())
                for doc_id in sorted(self.qrels.get(qid, {})):
                    h.update(f"R\x1f{qid}\x1f{doc_id}\x1f{self.qrels[qid][doc_id]}\x1e".encode())
            self._hash = h.hexdigest()
        return self._hash

    def describe(self) -> dict[str, Any]:
        positives = sum(1 for rels in self.qrels.values() for r in rels.values() if r > 0)
        info = {
            "name": self.name,
            "source": self.source,
            "format": self.format,
            "split": self.split,
            "content_hash": self.content_hash,
            "n_documents": len(self.corpus),
            "n_queries": len(self.queries),
            "n_judgments": sum(len(r) for r in self.qrels.values()),
            "n_positive_judgments": positives,
            "graded": any(r > 1 for rels in self.qrels.values() for r in rels.values()),
            "excluded_queries": list(self.excluded_queries),
        }
        if self.sampling:
            info["sampling"] = dict(self.sampling)
        return info

    def subset(self, *, max_queries: int | None = None, corpus_size: int | None = None,
               seed: int = 0) -> "RetrievalSet":
        """A smaller, seeded subset: some queries, and a corpus that keeps every judged document of the kept
        queries plus random distractors up to ``corpus_size``. Used for quick guards; recorded in ``sampling``."""
        rng = random.Random(seed)
        qids = sorted(self.queries)
        if max_queries is not None and max_queries < len(qids):
            qids = sorted(rng.sample(qids, max_queries))
        judged = sorted({d for q in qids for d in self.qrels[q]})
        keep = set(judged)
        if corpus_size is not None and corpus_size < len(self.corpus):
            others = sorted(set(self.corpus) - keep)
            n_more = max(0, corpus_size - len(keep))
            keep.update(rng.sample(others, min(n_more, len(others))))
        else:
            keep = set(self.corpus)
        corpus = {d: doc for d, doc in self.corpus.items() if d in keep}
        return RetrievalSet(
            name=self.name, split=self.split, corpus=corpus,
            queries={q: self.queries[q] for q in qids}, qrels={q: dict(self.qrels[q]) for q in qids},
            source=self.source, format=self.format, excluded_queries=list(self.excluded_queries),
            sampling={"max_queries": max_queries, "corpus_size": corpus_size, "seed": seed,
                      "parent_content_hash": self.content_hash},
        )


# --------------------------------------------------------------------------------------------------- records


def _decode_line(raw: bytes, path: Path, line_no: int) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not valid UTF-8 ({exc.reason} at byte {exc.start}); re-save the file as UTF-8",
                        path=path, line=line_no) from None
    if line_no == 1:
        text = text.lstrip("\ufeff")
    return text


def _iter_text_lines(path: Path) -> Iterator[tuple[int, str]]:
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            yield line_no, _decode_line(raw, path, line_no).rstrip("\r\n")


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    for line_no, line in _iter_text_lines(path):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"malformed JSON at column {exc.colno}: {json_reason(exc)}", path=path,
                            line=line_no) from None
        if not isinstance(rec, dict):
            raise DataError(f"expected a JSON object, got {type(rec).__name__}", path=path, line=line_no)
        yield line_no, rec


def _check_utf8(path: Path) -> None:
    for _ in _iter_text_lines(path):
        pass


def _iter_table(path: Path) -> Iterator[tuple[int, dict]]:
    """Rows of a csv/tsv/parquet table as (line number, record); line numbers count the header as line 1."""
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
            offset = 1  # parquet has no lines: report 1-based row numbers
        else:
            _check_utf8(path)
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False,
                                encoding="utf-8")
            offset = 2
    except DataError:
        raise
    except Exception as exc:  # pandas/pyarrow parse errors carry their own wording
        raise DataError(f"cannot read table: {exc}", path=path) from None
    columns = [str(c) for c in frame.columns]
    for i, row in enumerate(frame.itertuples(index=False, name=None)):
        yield i + offset, dict(zip(columns, row))


def _iter_records(path: Path) -> Iterator[tuple[int, dict]]:
    if path.suffix.lower() == ".jsonl":
        return _iter_jsonl(path)
    return _iter_table(path)


def _get(rec: dict, names: Iterable[str], path: Path, line: int, *, required: bool = True) -> Any:
    names = tuple(names)
    for name in names:
        if name in rec:
            return rec[name]
    if required:
        raise DataError("missing field", path=path, line=line, field=names[0])
    return None


def _as_id(value: Any, path: Path, line: int, fname: str) -> str:
    if isinstance(value, bool) or value is None or not isinstance(value, (str, int)):
        raise DataError(f"id must be a string or an integer, got {value!r}", path=path, line=line, field=fname)
    text = str(value).strip()
    if not text:
        raise DataError("empty id", path=path, line=line, field=fname)
    return text


def _as_text(value: Any, path: Path, line: int, fname: str, *, allow_empty: bool = False) -> str:
    if value is None and allow_empty:
        return ""
    if not isinstance(value, str):
        raise DataError(f"expected a string, got {type(value).__name__}", path=path, line=line, field=fname)
    if not allow_empty and not value.strip():
        raise DataError("empty text", path=path, line=line, field=fname)
    return value


def _as_relevance(value: Any, path: Path, line: int, fname: str) -> int:
    if isinstance(value, bool):
        raise DataError(f"relevance must be an integer, got {value!r}", path=path, line=line, field=fname)
    if isinstance(value, numbers.Integral):  # int, or a numpy integer from parquet
        return int(value)
    if isinstance(value, str) and _INT_RE.match(value.strip()):
        return int(value.strip())
    raise DataError(f"relevance must be an integer, got {value!r}", path=path, line=line, field=fname)


def read_corpus(path: Path, records: Iterable[tuple[int, dict]] | None = None) -> dict[str, Document]:
    corpus: dict[str, Document] = {}
    first_line: dict[str, int] = {}
    for line, rec in records if records is not None else _iter_records(path):
        doc_id = _as_id(_get(rec, ID_FIELDS, path, line), path, line, "_id")
        if doc_id in corpus:
            raise DataError(f"duplicate document id {doc_id!r} (first on line {first_line[doc_id]})",
                            path=path, line=line, field="_id")
        title = _as_text(rec.get("title"), path, line, "title", allow_empty=True)
        text = _as_text(_get(rec, ("text",), path, line), path, line, "text", allow_empty=True)
        if not (title.strip() or text.strip()):
            raise DataError("empty text (and no title)", path=path, line=line, field="text")
        corpus[doc_id] = Document(doc_id, title.strip(), text.strip())
        first_line[doc_id] = line
    if not corpus:
        raise DataError("the corpus has no documents", path=path)
    return corpus


def read_queries(path: Path, records: Iterable[tuple[int, dict]] | None = None) -> dict[str, str]:
    queries: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for line, rec in records if records is not None else _iter_records(path):
        qid = _as_id(_get(rec, ID_FIELDS, path, line), path, line, "_id")
        if qid in queries:
            raise DataError(f"duplicate query id {qid!r} (first on line {first_line[qid]})",
                            path=path, line=line, field="_id")
        queries[qid] = _as_text(_get(rec, ("text",), path, line), path, line, "text").strip()
        first_line[qid] = line
    return queries


def _iter_qrels_tsv(path: Path) -> Iterator[tuple[int, dict]]:
    """BEIR qrels (``query-id corpus-id score`` with a header) or TREC qrels (``qid 0 docid rel``)."""
    for line_no, line in _iter_text_lines(path):
        if not line.strip():
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if line_no == 1 and len(parts) >= 3 and not _INT_RE.match(parts[-1].strip()):
            continue  # header row
        if len(parts) == 3:
            yield line_no, {"query-id": parts[0], "corpus-id": parts[1], "score": parts[2]}
        elif len(parts) == 4:
            yield line_no, {"query-id": parts[0], "corpus-id": parts[2], "score": parts[3]}
        else:
            raise DataError(f"expected 3 columns (query-id, corpus-id, score) or 4 (TREC), got {len(parts)}",
                            path=path, line=line_no)


def read_qrels(path: Path, corpus: dict[str, Document], queries: dict[str, str],
               records: Iterable[tuple[int, dict]] | None = None) -> dict[str, dict[str, int]]:
    if records is None:
        records = _iter_qrels_tsv(path) if path.suffix.lower() in (".tsv", ".txt", "") else _iter_records(path)
    qrels: dict[str, dict[str, int]] = {}
    qf, df, sf = QRELS_FIELDS
    for line, rec in records:
        qid = _as_id(_get(rec, qf, path, line), path, line, qf[0])
        doc_id = _as_id(_get(rec, df, path, line), path, line, df[0])
        score = _as_relevance(_get(rec, sf, path, line), path, line, sf[0])
        if qid not in queries:
            raise DataError(f"unknown query id {qid!r} (not in the queries file)", path=path, line=line, field=qf[0])
        if doc_id not in corpus:
            raise DataError(f"unknown document id {doc_id!r} (not in the corpus)", path=path, line=line,
                            field=df[0])
        judged = qrels.setdefault(qid, {})
        if doc_id in judged:
            raise DataError(f"duplicate judgment for ({qid!r}, {doc_id!r})", path=path, line=line, field=df[0])
        judged[doc_id] = score
    if not qrels:
        raise DataError("no judgments in this split", path=path)
    return qrels


def _assemble(name: str, split: str, corpus, all_queries, qrels, source: str, fmt: str) -> RetrievalSet:
    excluded = sorted(q for q, rels in qrels.items() if not any(r > 0 for r in rels.values()))
    kept = {q: rels for q, rels in qrels.items() if q not in set(excluded)}
    if not kept:
        raise DataError(f"split {split!r} has no query with a positive judgment", path=source)
    queries = {q: all_queries[q] for q in sorted(kept)}
    return RetrievalSet(name=name, split=split, corpus=corpus, queries=queries,
                        qrels={q: kept[q] for q in queries}, source=source, format=fmt, excluded_queries=excluded)


# --------------------------------------------------------------------------------------------------- loaders


def _find(folder: Path, stem: str) -> Path | None:
    for suffix in TABLE_SUFFIXES:
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def available_splits(folder: str | Path) -> list[str]:
    qdir = Path(folder) / "qrels"
    if not qdir.is_dir():
        return []
    return sorted({p.stem for p in qdir.iterdir() if p.suffix.lower() in TABLE_SUFFIXES + (".txt",)} |
                  {p.name for p in qdir.iterdir() if p.is_dir()})


def load_beir(folder: str | Path, split: str = "test", *, name: str | None = None) -> RetrievalSet:
    """A BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv (csv/parquet/jsonl tables also accepted)."""
    folder = Path(folder)
    corpus_path = _find(folder, "corpus")
    queries_path = _find(folder, "queries")
    if corpus_path is None:
        raise DataError("no corpus file (corpus.jsonl, .csv, .tsv or .parquet)", path=folder)
    if queries_path is None:
        raise DataError("no queries file (queries.jsonl, .csv, .tsv or .parquet)", path=folder)
    qrels_path = _find(folder / "qrels", split)
    if qrels_path is None:
        splits = available_splits(folder)
        raise DataError(f"split {split!r} not found; available: {', '.join(splits) or 'none'}",
                        path=folder / "qrels" / f"{split}.tsv")
    corpus = read_corpus(corpus_path)
    queries = read_queries(queries_path)
    qrels = read_qrels(qrels_path, corpus, queries)
    fmt = "beir" if corpus_path.suffix == ".jsonl" else f"tables ({corpus_path.suffix[1:]})"
    return _assemble(name or folder.resolve().name, split, corpus, queries, qrels, str(folder), fmt)


def load_tables(corpus: str | Path, queries: str | Path, qrels: str | Path, *, split: str = "test",
                name: str | None = None) -> RetrievalSet:
    """Three tables (jsonl/csv/tsv/parquet) given one by one."""
    corpus_path, queries_path, qrels_path = Path(corpus), Path(queries), Path(qrels)
    for p in (corpus_path, queries_path, qrels_path):
        if not p.is_file():
            raise DataError("file not found", path=p)
    c = read_corpus(corpus_path)
    q = read_queries(queries_path)
    r = read_qrels(qrels_path, c, q)
    return _assemble(name or corpus_path.parent.resolve().name, split, c, q, r, str(corpus_path.parent), "tables")


def _hf_rows(ds) -> Iterator[tuple[int, dict]]:
    for i, row in enumerate(ds):
        yield i + 1, row


def _hf_single(obj, path: Path, prefer: str):
    from datasets import DatasetDict

    if isinstance(obj, DatasetDict):
        if prefer in obj:
            return obj[prefer]
        if len(obj) == 1:
            return next(iter(obj.values()))
        raise DataError(f"dataset dict has splits {sorted(obj)}; expected one or {prefer!r}", path=path)
    return obj


def load_hf_disk(folder: str | Path, split: str = "test", *, name: str | None = None) -> RetrievalSet:
    """A folder with ``corpus/``, ``queries/`` and ``qrels/`` each written by ``Dataset(Dict).save_to_disk``;
    qrels is a DatasetDict keyed by split, or ``qrels/<split>/`` a Dataset. Line numbers are 1-based rows."""
    from datasets import DatasetDict, load_from_disk

    folder = Path(folder)

    def load(p: Path):
        try:
            return load_from_disk(str(p))
        except Exception as exc:
            raise DataError(f"cannot load dataset: {exc}", path=p) from None

    corpus_ds = _hf_single(load(folder / "corpus"), folder / "corpus", "corpus")
    queries_ds = _hf_single(load(folder / "queries"), folder / "queries", "queries")
    qrels_root = folder / "qrels"
    if (qrels_root / split).is_dir():
        qrels_path = qrels_root / split
        qrels_ds = _hf_single(load(qrels_path), qrels_path, split)
    else:
        qrels_obj = load(qrels_root)
        qrels_path = qrels_root
        if isinstance(qrels_obj, DatasetDict):
            if split not in qrels_obj:
                raise DataError(f"split {split!r} not found; available: {', '.join(sorted(qrels_obj))}",
                                path=qrels_root)
            qrels_ds = qrels_obj[split]
        else:
            raise DataError(f"qrels is a single Dataset; save a DatasetDict keyed by split or qrels/{split}/",
                            path=qrels_root)
    corpus = read_corpus(folder / "corpus", _hf_rows(corpus_ds))
    queries = read_queries(folder / "queries", _hf_rows(queries_ds))
    qrels = read_qrels(qrels_path, corpus, queries, _hf_rows(qrels_ds))
    return _assemble(name or folder.resolve().name, split, corpus, queries, qrels, str(folder), "hf-datasets")


def is_hf_disk(folder: Path) -> bool:
    corpus = folder / "corpus"
    return corpus.is_dir() and any((corpus / f).exists() for f in ("dataset_info.json", "dataset_dict.json",
                                                                    "state.json"))


def load(source: str | Path | RetrievalSet, split: str = "test", *, name: str | None = None) -> RetrievalSet:
    """Load a retrieval set from whatever ``source`` is: a RetrievalSet, a BEIR/table folder or an HF folder."""
    if isinstance(source, RetrievalSet):
        return source
    folder = Path(source)
    if not folder.exists():
        raise DataError("data folder not found", path=folder)
    if not folder.is_dir():
        raise DataError("expected a folder (BEIR layout: corpus.jsonl, queries.jsonl, qrels/<split>.tsv)",
                        path=folder)
    if is_hf_disk(folder):
        return load_hf_disk(folder, split, name=name)
    return load_beir(folder, split, name=name)
