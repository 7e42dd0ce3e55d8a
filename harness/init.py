"""`embedgate init DATA --out suites/<name>`: a team's own judged data -> a suite that `pytest suites/<name>
--candidate M` runs as it is.

1. Read. A BEIR folder (``data.load``), a table (csv / tsv / jsonl / parquet) or a saved Hugging Face dataset
   (``datasets.load_from_disk``) where one row is one (query, document) judgment, mapped by ``Columns``. Without id
   columns, ids are a stable hash of the text (``q`` / ``d`` + 16 hex digits of sha256), so the same text is the
   same query or document in every row and in every run; without a relevance column every row is grade 1.
2. Validate: mapped columns exist (else the ones that do are listed), texts are not empty, an id keeps one text, a
   (query, document) pair keeps one grade, a document keeps one group; each error names the file, the line (or row)
   and the column. BEIR folders get ``data.py``'s checks.
3. Split. A held-out split the data already has is used as it is (a BEIR folder's ``qrels/<split>``, a DatasetDict's
   ``<split>``), and a BEIR suite points at the original folder. Otherwise a seeded split is made by query, or by
   document group: a query goes with the group of its judged documents (any grade); groups that share a query are
   one unit, so no group's queries straddle train and test. A unit goes to test when its seeded hash, read as a
   number in [0, 1), is below the test fraction (so adding data later never moves an old query across); if that
   leaves a side without a judged query, the units with the smallest hashes go to test instead. The data is
   written as a BEIR folder inside the suite (``<out>/data``).
4. Measure the base model (``evaluate``, with the shared embedding cache) and BM25 on the held-out queries, and
   estimate what the suite can detect (``estimate_detectable``, below).
5. Propose gates the suite can decide and write ``suite.toml`` (gates through their classes' ``toml()``) and
   ``README.md``. Every file is written atomically, data first and suite.toml last; an existing suite is never
   overwritten without ``force``.

What the suite can detect, before any candidate exists. compare.py's minimum detectable effect is
(t(1 - alpha/2, n - 1) + t(power, n - 1)) sd(d) / sqrt(n), d the per-query differences candidate - base. Without a
candidate sd(d) is unknown. If base and candidate spread alike (sd sigma) and their per-query values correlate
with rho, sd(d) = sigma sqrt(2 (1 - rho)). We take sigma = the base's per-query sd and rho = 0.8 (sd(d) = 0.632
sigma). The fine-tunes measured in this repository (2026-12-01 results) had sd(d) / sd(base) of 0.60 on NDCG@10
(regulatory, 2,786 queries: sd(d) 0.2357, sd(base) 0.394) and 0.45 (legal, 57 queries: 0.0605 / 0.1355), 0.40 on
Recall@100 (legal): rho = 0.8 errs on the wide side, so the proposed thresholds are ones the suite can show rather
than too small to show. The gate itself always uses the real sd(d) once a candidate exists.
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from . import data as data_mod
from .data import Document, RetrievalSet
from .errors import ConfigError, DataError
from .io import atomic_write_text

DEFAULT_BASE = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_TEST_FRACTION = 0.3
DEFAULT_SEED = 0
DEFAULT_CORRELATION = 0.8
TRAIN = "train"
SUITE_METRICS = ["ndcg@10", "recall@100", "mrr@10"]
SUITE_KS = [1, 3, 5, 10, 20, 100]
MEASURED = ["ndcg@10", "recall@10", "recall@100", "mrr@10"]
LABELS = {"ndcg@10": "NDCG@10", "recall@10": "Recall@10", "recall@100": "Recall@100", "mrr@10": "MRR@10"}
CONFIDENCE = 0.95
POWER = 0.8
FLOOR_MARGIN = 0.01  # the absolute floor: the base minus this, rounded down to 3 decimals
REFERENCE_GAIN = 0.05  # "a 5% improvement gate would need about N queries"
BUDGET_DROP, BUDGET_FRACTION = 0.1, 0.10
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")
HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
MARK = "# Made by `embedgate init`"
SPLIT_SALT = "embedgate-init-split"


# ------------------------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Columns:
    """Which column holds what, for tables and Hugging Face datasets (None: not given)."""

    query: str | None = None
    document: str | None = None
    doc_id: str | None = None
    query_id: str | None = None
    relevance: str | None = None
    title: str | None = None
    group: str | None = None

    DEFAULTS = {"query": "query", "document": "document"}
    OPTIONS = {"query": "--query-col", "document": "--doc-col", "doc_id": "--doc-id-col",
               "query_id": "--query-id-col", "relevance": "--relevance-col", "title": "--title-col",
               "group": "--group-col"}

    def resolved(self) -> "Columns":
        return replace(self, query=self.query or self.DEFAULTS["query"],
                       document=self.document or self.DEFAULTS["document"])

    def mapped(self) -> list[tuple[str, str]]:
        """(option, column) of every column in use."""
        return [(self.OPTIONS[k], getattr(self, k)) for k in self.OPTIONS if getattr(self, k)]

    def table_only(self) -> list[str]:
        """The options given that only a table or a dataset has (all but --group-col)."""
        return [self.OPTIONS[k] for k in self.OPTIONS if k != "group" and getattr(self, k)]


@dataclass
class InitOptions:
    data: Path
    out: Path
    name: str | None = None
    base: str = DEFAULT_BASE
    max_seq_length: int | None = None
    split: str = "test"
    test_fraction: float | None = None  # None: DEFAULT_TEST_FRACTION (and "not given", for the notes)
    seed: int | None = None
    columns: Columns = field(default_factory=Columns)
    max_queries: int | None = None
    corpus_size: int | None = None
    correlation: float = DEFAULT_CORRELATION
    cache: Any = None  # None: the shared cache ($EMBEDGATE_CACHE); False: none; a folder
    force: bool = False

    @property
    def fraction(self) -> float:
        return DEFAULT_TEST_FRACTION if self.test_fraction is None else self.test_fraction

    @property
    def split_seed(self) -> int:
        return DEFAULT_SEED if self.seed is None else self.seed


def check_options(opts: InitOptions) -> None:
    if not 0 < opts.fraction < 1:
        raise ConfigError(f"must lie strictly between 0 and 1, got {opts.fraction:g}", field="test-fraction")
    if opts.split_seed < 0:
        raise ConfigError(f"must be >= 0, got {opts.split_seed}", field="seed")
    if not 0 <= opts.correlation < 1:
        raise ConfigError(f"must lie in [0, 1), got {opts.correlation:g}", field="assumed-correlation")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", opts.split):
        raise ConfigError(f"a split name is a file name (letters, digits, '-', '_', '.'), got {opts.split!r}",
                          field="split")
    for key in ("max_queries", "corpus_size", "max_seq_length"):
        value = getattr(opts, key)
        if value is not None and value < 1:
            raise ConfigError(f"must be >= 1, got {value}", field=key.replace("_", "-"))


# --------------------------------------------------------------------------------------------- reading rows


@dataclass
class Pooled:
    """Every judgment read, before any split."""

    corpus: dict[str, Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # all judgments
    groups: dict[str, str] | None = None  # document id -> group (with --group-col)
    given: dict[str, dict[str, dict[str, int]]] | None = None  # the input's own splits (a DatasetDict)
    source: str = ""
    format: str = ""
    rows: int = 0
    merged: int = 0  # rows that repeated a judgment with the same grade


def stable_id(prefix: str, *parts: str) -> str:
    """A deterministic id from the text: the same text gets the same id in every row, file and run."""
    return prefix + hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _clip(text: str, n: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


class _Rows:
    """Turns rows into a Pooled, checking every row and the rows against each other."""

    def __init__(self, cols: Columns, source: str, fmt: str):
        self.cols = cols
        self.p = Pooled(corpus={}, queries={}, qrels={}, groups={} if cols.group else None, source=source,
                        format=fmt)
        self.doc_at: dict[str, str] = {}
        self.query_at: dict[str, str] = {}
        self.group_at: dict[str, str] = {}
        self.pair_at: dict[tuple[str, str], tuple[str, int]] = {}

    def check_columns(self, columns: Sequence[str], path: Path) -> None:
        missing = [(opt, col) for opt, col in self.cols.mapped() if col not in columns]
        if missing:
            what = ", ".join(f"{col!r} ({opt})" for opt, col in missing)
            raise DataError(f"no column {what}; the columns are: {', '.join(map(str, columns)) or 'none'}",
                            path=path)

    def _text(self, rec: Mapping, col: str, path: Path, line: int, where: str, *, allow_empty: bool = False) -> str:
        value = rec.get(col)
        if _missing(value):
            value = ""
        if not isinstance(value, str):
            raise DataError(f"{where}: expected text, got {type(value).__name__} {value!r}", path=path, line=line,
                            field=col)
        value = value.strip()
        if not value and not allow_empty:
            raise DataError(f"{where}: empty text", path=path, line=line, field=col)
        return value

    def _id(self, rec: Mapping, col: str, path: Path, line: int, where: str) -> str:
        value = rec.get(col)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, (str, numbers.Integral)):
            got = "nothing" if _missing(value) else repr(value)
            raise DataError(f"{where}: an id is text or an integer, got {got}", path=path, line=line, field=col)
        text = str(int(value)) if isinstance(value, numbers.Integral) else value.strip()
        if not text:
            raise DataError(f"{where}: empty id", path=path, line=line, field=col)
        if any(c in text for c in "\t\r\n"):
            raise DataError(f"{where}: id {text!r} holds a tab or a line break", path=path, line=line, field=col)
        return text

    def _grade(self, rec: Mapping, col: str, path: Path, line: int, where: str) -> int:
        value = rec.get(col)
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+(\.0*)?\s*", value):
            return int(float(value))
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise DataError(f"{where}: relevance is an integer grade (e.g. 0, 1, 2), got "
                        f"{'nothing' if _missing(value) or value == '' else repr(value)}", path=path, line=line,
                        field=col)

    def add(self, rec: Mapping, path: Path, line: int, unit: str, split: str | None = None) -> None:
        c, p = self.cols, self.p
        where = f"{unit} {line}" + (f" of split {split!r}" if split else "")
        query = self._text(rec, c.query, path, line, where)
        title = self._text(rec, c.title, path, line, where, allow_empty=True) if c.title else ""
        text = self._text(rec, c.document, path, line, where, allow_empty=bool(title))
        doc_id = self._id(rec, c.doc_id, path, line, where) if c.doc_id else stable_id("d", title, text)
        qid = self._id(rec, c.query_id, path, line, where) if c.query_id else stable_id("q", query)
        grade = self._grade(rec, c.relevance, path, line, where) if c.relevance else 1
        doc = Document(doc_id, title, text)
        if doc_id not in p.corpus:
            p.corpus[doc_id] = doc
            self.doc_at[doc_id] = where
        elif p.corpus[doc_id] != doc:
            old = p.corpus[doc_id]
            raise DataError(f"{self.doc_at[doc_id]} and {where} give document {doc_id!r} two different texts: "
                            f"{_clip(old.full_text)!r} and {_clip(doc.full_text)!r}", path=path, line=line,
                            field=c.doc_id or c.document)
        if qid not in p.queries:
            p.queries[qid] = query
            self.query_at[qid] = where
        elif p.queries[qid] != query:
            raise DataError(f"{self.query_at[qid]} and {where} give query {qid!r} two different texts: "
                            f"{_clip(p.queries[qid])!r} and {_clip(query)!r}", path=path, line=line,
                            field=c.query_id or c.query)
        if c.group:
            value = rec.get(c.group)
            group = "" if _missing(value) else str(int(value) if isinstance(value, float) and value.is_integer()
                                                      else value).strip()
            if not group:
                raise DataError(f"{where}: empty group", path=path, line=line, field=c.group)
            if doc_id not in p.groups:
                p.groups[doc_id] = group
                self.group_at[doc_id] = where
            elif p.groups[doc_id] != group:
                raise DataError(f"{self.group_at[doc_id]} and {where} put document {doc_id!r} in two groups, "
                                f"{p.groups[doc_id]!r} and {group!r}; a document belongs to one group", path=path,
                                line=line, field=c.group)
        key = (qid, doc_id)
        if key in self.pair_at:
            first, old = self.pair_at[key]
            if old != grade:
                raise DataError(f"{first} and {where} judge the same (query, document) pair with different grades, "
                                f"{old} and {grade}: query {_clip(query)!r}, document {doc_id!r}", path=path,
                                line=line, field=c.relevance)
            p.merged += 1
        else:
            self.pair_at[key] = (where, grade)
        p.qrels.setdefault(qid, {})[doc_id] = grade
        if split is not None:
            p.given = p.given if p.given is not None else {}
            p.given.setdefault(split, {}).setdefault(qid, {})[doc_id] = grade
        p.rows += 1

    def done(self, path: Path) -> Pooled:
        if not self.p.rows:
            raise DataError("no rows: nothing to build a suite from", path=path)
        return self.p


def table_records(path: Path) -> tuple[list[str], list[tuple[int, dict]], str]:
    """(columns, (line or row number, record), "line" or "row") of a csv / tsv / jsonl / parquet table. Lines count
    the header as line 1; parquet has no lines, so its rows are numbered from 1."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        records = list(data_mod._iter_jsonl(path))  # exact line numbers, blank lines skipped
        return list(dict.fromkeys(k for _, rec in records for k in rec)), records, "line"
    import pandas as pd

    try:
        if suffix == ".parquet":
            frame, offset, unit = pd.read_parquet(path), 1, "row"
        else:
            data_mod._check_utf8(path)
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False,
                                encoding="utf-8")
            offset, unit = 2, "line"
    except DataError:
        raise
    except Exception as exc:  # pandas / pyarrow word their own parse errors
        raise DataError(f"cannot read the table: {exc}", path=path) from None
    columns = [str(c) for c in frame.columns]
    rows = [(i + offset, dict(zip(columns, row))) for i, row in enumerate(frame.itertuples(index=False, name=None))]
    return columns, rows, unit


def read_table(path: Path, cols: Columns) -> Pooled:
    reader = _Rows(cols.resolved(), str(path), f"{path.suffix.lower()[1:]} table")
    columns, records, unit = table_records(path)
    reader.check_columns(columns, path)
    for line, rec in records:
        reader.add(rec, path, line, unit)
    return reader.done(path)


def is_hf_table(folder: Path) -> bool:
    """A folder written by Dataset(Dict).save_to_disk whose rows are judgments (not the corpus/queries/qrels layout
    of ``data.load_hf_disk``)."""
    return folder.is_dir() and any((folder / m).is_file() for m in HF_MARKERS) and not data_mod.is_hf_disk(folder)


def read_hf_table(folder: Path, cols: Columns, split: str) -> Pooled:
    """A saved Dataset: its rows, unsplit. A DatasetDict: every split's rows, kept by split (``Pooled.given``) when
    it has ``split``, pooled otherwise. Rows are numbered from 1 within their split."""
    from datasets import DatasetDict, load_from_disk

    try:
        obj = load_from_disk(str(folder))
    except Exception as exc:
        raise DataError(f"cannot load the dataset: {exc}", path=folder) from None
    reader = _Rows(cols.resolved(), str(folder), "hf-dataset")
    parts = list(obj.items()) if isinstance(obj, DatasetDict) else [(None, obj)]
    keep = isinstance(obj, DatasetDict) and split in obj
    for name, ds in parts:
        path = folder / name if name is not None else folder
        reader.check_columns(ds.column_names, path)
        for i, rec in enumerate(ds, start=1):
            reader.add(rec, path, i, "row", split=name if keep else None)
    pooled = reader.done(folder)
    if isinstance(obj, DatasetDict):
        pooled.format = f"hf-dataset (DatasetDict: {', '.join(obj)})"
    return pooled


def _field(rec: Mapping, dotted: str) -> Any:
    value: Any = rec
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def pool_beir(folder: Path, group: str | None = None) -> Pooled:
    """A BEIR folder without the asked-for split: the judgments of every qrels file it has, pooled (a pair judged
    differently in two files is an error), and with ``group`` each judged document's group from that corpus field
    (``metadata.source`` reaches into a nested record)."""
    corpus_path, queries_path = data_mod._find(folder, "corpus"), data_mod._find(folder, "queries")
    if corpus_path is None:
        raise DataError("no corpus file (corpus.jsonl, .csv, .tsv or .parquet)", path=folder)
    if queries_path is None:
        raise DataError("no queries file (queries.jsonl, .csv, .tsv or .parquet)", path=folder)
    corpus = data_mod.read_corpus(corpus_path)
    queries = data_mod.read_queries(queries_path)
    qrels: dict[str, dict[str, int]] = {}
    judged_in: dict[tuple[str, str], str] = {}
    files = [p for s in data_mod.available_splits(folder) if (p := data_mod._find(folder / "qrels", s)) is not None]
    if not files:
        raise DataError("no judgments: expected qrels/<split>.tsv", path=folder / "qrels")
    for path in files:
        for qid, rels in data_mod.read_qrels(path, corpus, queries).items():
            for doc_id, grade in rels.items():
                old = qrels.get(qid, {}).get(doc_id)
                if old is not None and old != grade:
                    raise DataError(f"({qid!r}, {doc_id!r}) is judged {old} in {judged_in[(qid, doc_id)]} and {grade} "
                                    "here; pooling the splits needs one grade per pair", path=path, field="score")
                qrels.setdefault(qid, {})[doc_id] = grade
                judged_in.setdefault((qid, doc_id), path.name)
    groups = None
    if group:
        judged = {d for rels in qrels.values() for d in rels}
        groups = {}
        for line, rec in data_mod._iter_records(corpus_path):
            doc_id = str(_field(rec, "_id") if "_id" in rec else _field(rec, "id")).strip()
            if doc_id not in judged:
                continue
            value = _field(rec, group)
            if _missing(value) or not str(value).strip():
                raise DataError(f"judged document {doc_id!r} has no group (corpus field {group!r})", path=corpus_path,
                                line=line, field=group)
            groups[doc_id] = str(value).strip()
    return Pooled(corpus=corpus, queries=queries, qrels=qrels, groups=groups, source=str(folder),
                  format="beir (splits pooled: " + ", ".join(p.stem for p in files) + ")",
                  rows=sum(len(r) for r in qrels.values()))


# --------------------------------------------------------------------------------------------------- split


@dataclass
class Split:
    qrels: dict[str, dict[str, dict[str, int]]]  # side ("train" / the held-out split) -> qid -> doc -> grade
    method: str  # "given", "hash" or "ranked"
    rule: str  # how, in words (README)
    units: dict[str, str] = field(default_factory=dict)  # query -> unit (its query id, or its group unit)
    side_of_unit: dict[str, str] = field(default_factory=dict)
    unit_groups: dict[str, list[str]] = field(default_factory=dict)  # unit -> the groups in it (by group)


def unit_hash(unit: str, seed: int) -> float:
    digest = hashlib.sha256(f"{SPLIT_SALT}\x1f{seed}\x1f{unit}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def split_units(qrels: Mapping[str, Mapping[str, int]], groups: Mapping[str, str] | None
                ) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(query -> unit, unit -> its groups). Without groups every query is its own unit. With groups a query goes
    with the groups of its judged documents, and groups that share a query are joined into one unit (named by its
    smallest group), so no group's queries can straddle the split."""
    if groups is None:
        return {q: q for q in qrels}, {}
    parent: dict[str, str] = {}

    def find(g: str) -> str:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    for rels in qrels.values():
        gs = sorted({groups[d] for d in rels})
        for g in gs:
            parent.setdefault(g, g)
        for g in gs[1:]:
            a, b = find(gs[0]), find(g)
            if a != b:
                parent[max(a, b)] = min(a, b)
    members: dict[str, list[str]] = {}
    for g in sorted(parent):
        members.setdefault(find(g), []).append(g)
    name = {root: gs[0] for root, gs in members.items()}
    units = {q: name[find(groups[next(iter(rels))])] for q, rels in qrels.items()}
    return units, {name[root]: gs for root, gs in members.items()}


def make_split(pooled: Pooled, held: str, fraction: float, seed: int) -> Split:
    """The seeded split of ``pooled`` into train and ``held`` (see the module docstring for the rule)."""
    if held == TRAIN:
        raise ConfigError("the held-out split cannot be called 'train' (that name is the training side)",
                          field="split")
    units, unit_groups = split_units(pooled.qrels, pooled.groups)
    positive = {q for q, rels in pooled.qrels.items() if any(r > 0 for r in rels.values())}
    all_units = sorted(set(units.values()))
    side = {u: held if unit_hash(u, seed) < fraction else TRAIN for u in all_units}
    what = "document-group units" if pooled.groups is not None else "queries"

    def counts() -> dict[str, int]:
        out = {TRAIN: 0, held: 0}
        for q in positive:
            out[side[units[q]]] += 1
        return out

    method = "hash"
    positive_units = sorted({units[q] for q in positive}, key=lambda u: (unit_hash(u, seed), u))
    if len(positive_units) < 2:
        if pooled.groups is not None:
            gs = unit_groups.get(positive_units[0], []) if positive_units else []
            raise DataError(f"cannot split: the {len(positive)} judged queries all fall in one unit of linked "
                            f"document groups ({', '.join(map(repr, gs[:8]))}{', ...' if len(gs) > 8 else ''}), so "
                            "train or test would be empty; use finer groups (--group-col) or none",
                            path=pooled.source)
        raise DataError(f"cannot split {len(positive)} judged quer{'y' if len(positive) == 1 else 'ies'} into train "
                        "and test: one side would be empty", path=pooled.source)
    c = counts()
    if c[TRAIN] == 0 or c[held] < 2:
        n_test = min(len(positive_units) - 1, max(1, round(fraction * len(positive_units))))
        for i, u in enumerate(positive_units):
            side[u] = held if i < n_test else TRAIN
        method = "ranked"
        c = counts()
    if c[TRAIN] == 0 or c[held] < 2:
        raise DataError(f"the split would leave {c[held]} judged quer{'y' if c[held] == 1 else 'ies'} in {held} and "
                        f"{c[TRAIN]} in train ({len(positive_units)} {what}, test fraction {fraction:g}); {held} needs "
                        "at least 2 and train at least 1: raise --test-fraction, try another --seed, or add queries",
                        path=pooled.source)
    qrels: dict[str, dict[str, dict[str, int]]] = {TRAIN: {}, held: {}}
    for q in sorted(pooled.qrels):
        qrels[side[units[q]]][q] = dict(pooled.qrels[q])
    if pooled.groups is not None:
        rule = (f"by document group: a query goes with the group of its judged documents (any grade); groups that "
                f"share a query form one unit, so no group has queries on both sides. A unit goes to {held} when "
                f"sha256(\"{SPLIT_SALT}\", seed {seed}, the unit's first group name), read as a number in [0, 1), "
                f"is below the test fraction {fraction:g}")
    else:
        rule = (f"by query: a query goes to {held} when sha256(\"{SPLIT_SALT}\", seed {seed}, its query id), read "
                f"as a number in [0, 1), is below the test fraction {fraction:g}")
    if method == "ranked":
        rule += (f"; on so few {what} that threshold left a side without a judged query, so the "
                 f"{sum(1 for u in positive_units if side[u] == held)} with the smallest hashes went to {held} "
                 "instead")
    return Split(qrels=qrels, method=method, rule=rule + ".", units=units, side_of_unit=side,
                 unit_groups=unit_groups)


def given_split(pooled: Pooled, held: str) -> Split:
    """A DatasetDict with the held-out split: that split's rows are the held-out judgments, all the others train."""
    assert pooled.given is not None
    train: dict[str, dict[str, int]] = {}
    for name, qrels in pooled.given.items():
        if name != held:
            for q, rels in qrels.items():
                train.setdefault(q, {}).update(rels)
    others = [n for n in pooled.given if n != held]
    rule = (f"the dataset's own split: its {held!r} rows are the held-out judgments"
            + (f", its {', '.join(map(repr, others))} rows the training ones." if others else "; it has no other "
               "split, so qrels/train.tsv is not written."))
    return Split(qrels={TRAIN: train, held: dict(pooled.given[held])}, method="given", rule=rule)


# ----------------------------------------------------------------------------------------------- BEIR files


def _jsonl(rows: Iterable[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _qrels_tsv(qrels: Mapping[str, Mapping[str, int]]) -> str:
    lines = ["query-id\tcorpus-id\tscore"]
    lines += [f"{q}\t{d}\t{r}" for q in sorted(qrels) for d, r in sorted(qrels[q].items())]
    return "\n".join(lines) + "\n"


def beir_files(pooled: Pooled, split: Split) -> dict[str, str]:
    """Relative path (under ``data/``) -> text: corpus.jsonl (every document; its group in ``metadata.group``),
    queries.jsonl (the queries of both sides) and qrels/<side>.tsv."""
    groups = pooled.groups or {}

    def doc(d: Document) -> dict:
        rec = {"_id": d.id, "title": d.title, "text": d.text}
        if d.id in groups:
            rec["metadata"] = {"group": groups[d.id]}
        return rec

    used = {q for side in split.qrels.values() for q in side}
    files = {"corpus.jsonl": _jsonl(doc(pooled.corpus[d]) for d in sorted(pooled.corpus)),
             "queries.jsonl": _jsonl({"_id": q, "text": pooled.queries[q]} for q in sorted(used))}
    for side, qrels in split.qrels.items():
        if qrels:
            files[f"qrels/{side}.tsv"] = _qrels_tsv(qrels)
    return files


# ------------------------------------------------------------------------------------------------- measure


@dataclass(frozen=True)
class Detectable:
    """What a suite of ``n`` queries can detect on one metric, with sd(d) estimated from the base alone."""

    metric: str
    n: int
    base: float
    sd_base: float
    correlation: float
    sd_difference: float
    mde: float
    confidence: float = CONFIDENCE
    power: float = POWER

    @property
    def relative(self) -> float | None:
        return self.mde / self.base if self.base > 0 else None

    def queries_for(self, effect: float) -> int | None:
        from .compare import queries_needed

        return queries_needed(self.sd_difference, effect, self.confidence, self.power)


def estimate_detectable(values: Sequence[float], metric: str = "ndcg@10", *,
                        correlation: float = DEFAULT_CORRELATION, confidence: float = CONFIDENCE,
                        power: float = POWER) -> Detectable:
    """The minimum detectable effect of compare.py (paired t-test, 80% power), with sd(d) = sd(base per-query
    values) * sqrt(2 (1 - correlation)): base and candidate assumed to spread alike and to correlate at
    ``correlation`` (module docstring)."""
    import numpy as np

    from .compare import minimum_detectable_effect

    v = np.asarray(list(values), dtype=np.float64)
    n = len(v)
    sd = float(v.std(ddof=1)) if n > 1 else 0.0
    sd_d = sd * math.sqrt(2 * (1 - correlation))
    return Detectable(metric=metric, n=n, base=float(v.mean()) if n else 0.0, sd_base=sd, correlation=correlation,
                      sd_difference=sd_d, mde=minimum_detectable_effect(sd_d, n, confidence, power),
                      confidence=confidence, power=power)


def mde_sentence(det: Detectable, reference_gain: float = REFERENCE_GAIN) -> str:
    """"with 57 queries this suite can detect about +0.023 NDCG@10 (19%); a 5% improvement gate would need about
    1,475 queries"."""
    label = LABELS.get(det.metric, det.metric)
    if not det.sd_difference > 0:
        return (f"with {det.n:,} queries the base's {label} is {det.base:.4f} on every one of them, so the spread of "
                "a candidate's differences cannot be estimated before a candidate exists")
    rel = f" ({100 * det.relative:.0f}%)" if det.relative is not None else ""
    out = f"with {det.n:,} queries this suite can detect about {det.mde:+.3f} {label}{rel}"
    needed = det.queries_for(reference_gain * det.base)
    gain = f"{100 * reference_gain:g}%"
    if needed is None:
        return out + f"; a {gain} improvement of a base scoring 0 is no gain to size a suite on"
    if needed <= det.n:
        return out + f"; a {gain} improvement gate needs about {needed:,} queries, so this suite can decide it"
    return out + f"; a {gain} improvement gate would need about {needed:,} queries"


@dataclass
class Measured:
    dataset: RetrievalSet
    model: dict[str, Any]
    base: dict[str, float]
    base_per_query: dict[str, dict[str, float]]  # metric -> qid -> value
    bm25: dict[str, float]
    bm25_per_query: dict[str, dict[str, float]]
    versus_bm25: Any  # PairedComparison of base minus BM25 on ndcg@10
    ndcg: Detectable
    recall: Detectable
    queries_with_tied_scores: int = 0


def measure(ds: RetrievalSet, base: Mapping[str, Any], *, cache: Any = None,
            correlation: float = DEFAULT_CORRELATION) -> Measured:
    """The base model (``evaluate``, the shared cache) and BM25 (as the suite's ``[references.bm25]`` will run it)
    on the held-out set, and what the suite can detect."""
    from .compare import paired_compare
    from .encode import EmbeddingCache
    from .evaluate import evaluate, score_with_memo
    from .schema import BM25System
    from .systems.bm25 import run_bm25

    store = None if cache is False else cache if isinstance(cache, EmbeddingCache) else EmbeddingCache(cache)
    result = evaluate(ds, dict(base), ks=SUITE_KS, metrics=MEASURED, cache=store if store is not None else False)
    base_pq = {m: {q: result.per_query[q][m] for q in result.per_query} for m in MEASURED}
    run = run_bm25("bm25", BM25System(kind="bm25"), ds, depth=max(SUITE_KS), cache=store)
    bm25_pq = score_with_memo(ds.qrels, run.rankings, MEASURED, store.root / "scores" if store else None)
    bm25_mean = {m: float(sum(v.values()) / len(v)) for m, v in bm25_pq.items()}
    versus = paired_compare(bm25_pq["ndcg@10"], base_pq["ndcg@10"], confidence=CONFIDENCE, resamples=1000)
    q = sorted(base_pq["ndcg@10"])
    return Measured(
        dataset=ds, model=result.model, base=dict(result.metrics), base_per_query=base_pq, bm25=bm25_mean,
        bm25_per_query=bm25_pq, versus_bm25=versus,
        ndcg=estimate_detectable([base_pq["ndcg@10"][x] for x in q], "ndcg@10", correlation=correlation),
        recall=estimate_detectable([base_pq["recall@100"][x] for x in q], "recall@100", correlation=correlation),
        queries_with_tied_scores=result.conventions.get("queries_with_tied_scores", 0))


# --------------------------------------------------------------------------------------------------- gates


def _gate(kind: str, **params):
    from .gates import gate_class

    return gate_class(kind).model_validate({"kind": kind, **params})


def _floor(x: float, digits: int = 3) -> float:
    return max(0.0, math.floor(x * 10 ** digits + 1e-9) / 10 ** digits)


def _ceil(x: float, digits: int) -> float:
    return math.ceil(x * 10 ** digits - 1e-9) / 10 ** digits


def propose_gates(m: Measured) -> list[tuple[Any, str, str]]:
    """(gate, its toml comment, why in words for the README). Each comparative gate asks for at least what the
    suite can detect, so it can pass or fail on a real effect rather than stay "not shown" by construction."""
    n = m.ndcg.n
    base = m.base["ndcg@10"]
    out: list[tuple[Any, str, str]] = []
    floor = _floor(base - FLOOR_MARGIN)
    out.append((_gate("absolute", metric="ndcg@10", min=floor),
                f"a floor just under the base ({base:.4f} - {FLOOR_MARGIN:g}, rounded down)",
                f"the candidate's NDCG@10 is at least {floor:g}: a floor just under the base's {base:.4f} (the base "
                f"minus {FLOOR_MARGIN:g}, rounded down to 3 decimals); a sanity floor, no interval involved."))
    det = m.ndcg
    if not det.sd_difference > 0:
        gain = _gate("improvement", metric="ndcg@10", min_relative=REFERENCE_GAIN)
        why = (f"NDCG@10 improves by {100 * REFERENCE_GAIN:g}% with a 95% interval above 0. The base's per-query "
               "values do not vary, so there was no spread to size this gate on; 5% is a starting point.")
    elif base > 0 and _ceil(det.mde / base, 2) <= 10:
        rel = max(0.01, _ceil(det.mde / base, 2))
        gain = _gate("improvement", metric="ndcg@10", min_relative=rel)
        why = (f"NDCG@10 improves by at least {100 * rel:g}% (+{rel * base:.4f}) with a 95% interval above 0: the "
               f"estimated minimum detectable effect ({det.mde:+.4f}, {100 * det.mde / base:.1f}% of the base) "
               "rounded up to a whole percent, so a candidate with a gain of that size can pass and one without "
               "it fails or is not shown. A smaller required gain would be too small for this suite to show.")
    else:
        absolute = min(1.0, max(0.001, _ceil(det.mde, 3)))
        gain = _gate("improvement", metric="ndcg@10", min_absolute=absolute)
        why = (f"NDCG@10 improves by at least +{absolute:g} with a 95% interval above 0: the estimated minimum "
               f"detectable effect ({det.mde:+.4f}) rounded up (the base's NDCG@10 is {base:.4f}, too small to ask "
               "for a relative gain).")
    out.append((gain, "at least the minimum detectable effect (README.md), rounded up", why))
    r = m.recall
    head = (f"Recall@100 is no worse than the base's ({m.base['recall@100']:.4f}) by more than {{margin:g}}: the 95% "
            "interval's lower end must lie above -{margin:g}. ")
    if r.sd_difference > 0:
        margin = min(1.0, max(0.01, _ceil(r.mde, 2)))
        comment = f"margin >= the minimum detectable effect of recall@100 ({r.mde:.4f})"
        why = head.format(margin=margin) + (
            f"The margin is the estimated minimum detectable effect on Recall@100 ({r.mde:.4f}) rounded up to 2 "
            "decimals (at least 0.01): a tighter margin could not be confirmed by this suite even for a candidate "
            "that loses nothing.")
    else:
        margin = 0.01
        comment = "a starting point: the base's recall@100 has no spread to size a margin on"
        why = head.format(margin=margin) + (
            f"The base's Recall@100 is {r.base:.4f} on every query, so there was no spread to size the margin on; "
            "0.01 is a starting point.")
    out.append((_gate("non_inferiority", metric="recall@100", margin=margin), comment, why))
    fraction = max(BUDGET_FRACTION, _ceil(1 / n, 2)) if n else BUDGET_FRACTION
    out.append((_gate("regression_budget", metric="ndcg@10", max_drop=BUDGET_DROP, max_fraction=fraction),
                "a starting point: tighten it once you know your candidates",
                f"at most {100 * fraction:g}% of the {n:,} queries (at least one) may lose more than {BUDGET_DROP:g} "
                "NDCG@10: a count per query, no interval. A starting point: fine-tunes measured in this repository "
                "lost that much on 0-9% of their domain queries."))
    v = m.versus_bm25
    out.append((_gate("improvement", metric="ndcg@10", against="bm25", min_absolute=0.0),
                f"base - BM25 here: {v.difference:+.4f} NDCG@10",
                f"the candidate beats BM25 on NDCG@10 with a 95% interval above 0: otherwise fine-tuning bought "
                f"nothing over what a team can ship without a model. Here the base scores {v.candidate:.4f} and BM25 "
                f"{v.base:.4f} (base - BM25 {v.difference:+.4f}, 95% CI [{v.ci[0]:+.4f}, {v.ci[1]:+.4f}]); with the "
                f"spread of those per-query differences (sd {v.sd_difference:.4f}) the suite detects a gap of about "
                f"{v.mde:.4f}, so a candidate must beat BM25 by about that much to pass."
                + (f" The base is measurably worse than BM25 on these queries: a candidate must gain about "
                   f"{-v.difference + v.mde:.4f} over the base to pass this gate; if none does, BM25 (or a hybrid "
                   "with it) is the system to ship." if v.ci[1] < 0 else "")))
    return out


# --------------------------------------------------------------------------------------------------- texts


def _toml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid TOML basic string


@dataclass
class Plan:
    """Everything ``init`` decided, before anything is written."""

    opts: InitOptions
    name: str
    data_ref: dict[str, Any]  # [data.main]
    data_files: dict[str, str]  # under <out>/data/, empty when the suite points at the original folder
    data_note: str  # where the data is and how the split was made (README)
    counts: dict[str, Any]
    measured: Measured
    gates: list[tuple[Any, str, str]]
    notes: list[str] = field(default_factory=list)

    @property
    def mde_sentence(self) -> str:
        return mde_sentence(self.measured.ndcg)


def _base_table(p: Plan) -> dict[str, Any]:
    spec: dict[str, Any] = {"model": p.opts.base}
    if p.opts.max_seq_length:
        spec["max_seq_length"] = p.opts.max_seq_length
    return spec


def suite_toml(p: Plan) -> str:
    m = p.measured
    ds = m.dataset
    when = datetime.now(timezone.utc).date().isoformat()
    ref = p.data_ref
    lines = [
        f"{MARK} on {when} from {p.counts['source']} (see README.md). Edit freely;",
        "# `embedgate init --force` rewrites this file.",
        f"name = {_toml_str(p.name)}",
        f"description = {_toml_str(p.counts['description'])}",
        "",
        "[base]                                   # measured on the held-out queries in README.md",
    ]
    lines += [f"{k} = {_toml_str(v) if isinstance(v, str) else v}" for k, v in _base_table(p).items()]
    lines += [
        "",
        "# What the team could ship without fine-tuning, scored on the same queries: BM25 (bm25s) over title + text.",
        "[references.bm25]",
        'kind = "bm25"',
        "",
        f"[data.main]                              # {ref['comment']}",
        f"path = {_toml_str(ref['path'])}",
        f"split = {_toml_str(ref['split'])}",
    ]
    for key in ("max_queries", "corpus_size", "seed"):
        if ref.get(key) is not None:
            lines.append(f"{key} = {ref[key]}")
    lines += [
        "",
        "[evaluation]",
        f"metrics = {json.dumps(SUITE_METRICS)}",
        f"ks = {json.dumps(SUITE_KS)}",
        f"confidence = {CONFIDENCE}",
        "resamples = 10000",
        "seed = 0",
        "",
        f"# base {m.model.get('name', p.opts.base)} on {ds.name} {ds.split} ({len(ds.queries):,} queries, "
        f"{len(ds.corpus):,} documents): "
        + ", ".join(f"{k} {m.base[k]:.4f}" for k in MEASURED) + f"; BM25 ndcg@10 {m.bm25['ndcg@10']:.4f}",
        f"# {p.mde_sentence[0].upper()}{p.mde_sentence[1:]}",
        f"# (sd of a candidate's per-query differences estimated as sd(base) x sqrt(2 (1 - {m.ndcg.correlation:g})); "
        "README.md says why)",
    ]
    for gate, comment, _ in p.gates:
        lines += ["", gate.toml(comment)]
    return "\n".join(lines) + "\n"


def _f(x: float) -> str:
    return f"{x:.4f}"


def readme(p: Plan) -> str:
    m, ds, c, o = p.measured, p.measured.dataset, p.counts, p.opts
    out = Path(o.out)
    det, r = m.ndcg, m.recall
    rows = [("base (" + Path(o.base).name + ")", m.base), ("BM25 (bm25s, lucene, k1 1.5, b 0.75)", m.bm25)]
    lines = [
        f"# {p.name}: a retrieval suite made by `embedgate init`",
        "",
        "Run it:",
        "",
        "```bash",
        f"pytest {out.as_posix()} --candidate PATH            # each gate is a test item",
        f"embedgate gate {out.as_posix()} --candidate PATH    # or as a command: exit 0 pass, 1 fail, 2 bad input",
        "```",
        "",
        "## Data",
        "",
        f"- Source: `{c['source']}` ({c['format']}); {c['summary']}",
        f"- {p.data_note}",
        f"- Held-out split `{ds.split}`: {len(ds.queries):,} queries, {len(ds.corpus):,} documents, "
        f"{sum(len(x) for x in ds.qrels.values()):,} judgments"
        + (f"; {len(ds.excluded_queries):,} queries without a positive judgment are left out of the scores"
           if ds.excluded_queries else "") + ".",
        f"- Content hash of the held-out set (`RetrievalSet.content_hash`, over corpus, queries and judgments): "
        f"`{ds.content_hash}`. Every gate result records it; a different hash means different data.",
    ]
    if ds.sampling:
        lines.append(f"- A seeded subset (max_queries {ds.sampling['max_queries']}, corpus_size "
                     f"{ds.sampling['corpus_size']}, seed {ds.sampling['seed']}), as `[data.main]` states.")
    lines += [
        "",
        f"## Measured on `{ds.split}` ({datetime.now(timezone.utc).date().isoformat()}, this harness)",
        "",
        f"Base model `{o.base}`" + (f", max_seq_length {o.max_seq_length}" if o.max_seq_length else "")
        + f", fingerprint `{str(m.model.get('fingerprint', ''))[:12]}`.",
        "",
        "| system | queries | documents | NDCG@10 | Recall@10 | Recall@100 | MRR@10 |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {label} | {len(ds.queries):,} | {len(ds.corpus):,} | " + " | ".join(_f(v[k]) for k in MEASURED)
              + " |" for label, v in rows]
    if m.queries_with_tied_scores:
        lines += ["", f"{m.queries_with_tied_scores} of {len(ds.queries)} base rankings hold tied scores; ties are "
                      "ordered as trec_eval orders them (document id descending)."]
    lines += [
        "",
        "## What this suite can detect",
        "",
        f"**{p.mde_sentence[0].upper()}{p.mde_sentence[1:]}.**",
        "",
        f"How: the gates decide on the paired t-test over the queries (harness/compare.py); its minimum detectable "
        f"effect at 95% confidence and 80% power is (t(0.975, n-1) + t(0.8, n-1)) x sd(d) / sqrt(n), d the "
        f"candidate-minus-base differences per query. Before any candidate exists sd(d) is estimated from the base "
        f"alone: if base and candidate spread alike and their per-query values correlate at rho, sd(d) = sd(base) x "
        f"sqrt(2 (1 - rho)). Assumed rho = {det.correlation:g} (so sd(d) = {math.sqrt(2 * (1 - det.correlation)):.3f} "
        f"x sd(base)); the fine-tunes measured in this repository had sd(d) / sd(base) of 0.60 (regulatory) and 0.45 "
        f"(legal) on NDCG@10, so this errs on the wide side. Here sd(base) = {det.sd_base:.4f} on NDCG@10, so "
        f"sd(d) is about {det.sd_difference:.4f}; "
        + (f"on Recall@100 sd(base) = {r.sd_base:.4f}, sd(d) about {r.sd_difference:.4f}, detectable about "
           f"{r.mde:.4f}. " if r.sd_difference > 0 else
           f"on Recall@100 the base scores {r.base:.4f} on every query (no spread to estimate from). ")
        + "Once a candidate is gated, each gate reports the minimum detectable effect from its real differences.",
        "",
        "## The gates and why",
        "",
    ]
    lines += [f"- `{g.label}`: {why}" for g, _, why in p.gates]
    for note in p.notes:
        lines += ["", note]
    lines += ["", f"Made with `{c['command']}`."]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ the plan


def existing_files(out: Path) -> list[str]:
    """The files of ``out`` that init would overwrite."""
    if out.exists() and not out.is_dir():
        raise ConfigError("--out must be a folder, and a file is there", path=out, field="out")
    found = [n for n in ("suite.toml", "README.md") if (out / n).exists()]
    if (out / "data").exists():
        found += sorted(p.relative_to(out).as_posix() for p in (out / "data").rglob("*") if p.is_file()) or ["data/"]
    return found


def check_out(out: Path, force: bool) -> None:
    found = existing_files(out)
    if found and not force:
        shown = ", ".join(found[:6]) + (f" and {len(found) - 6} more" if len(found) > 6 else "")
        raise ConfigError(f"this folder already holds a suite ({shown}); nothing was written. Pass --force to "
                          "overwrite those files, or choose another --out", path=out, field="out")


def _relative(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


def _command(o: InitOptions) -> str:
    parts = ["embedgate init", str(o.data), "--out", str(o.out)]
    if o.base != DEFAULT_BASE:
        parts += ["--base", o.base]
    for flag, value in (("--name", o.name), ("--split", None if o.split == "test" else o.split),
                        ("--max-seq-length", o.max_seq_length), ("--test-fraction", o.test_fraction),
                        ("--seed", o.seed), ("--max-queries", o.max_queries), ("--corpus-size", o.corpus_size),
                        ("--assumed-correlation", None if o.correlation == DEFAULT_CORRELATION else o.correlation)):
        if value is not None:
            parts += [flag, str(value)]
    for opt, col in o.columns.mapped():
        parts += [opt, col]
    return " ".join(parts)


def plan(opts: InitOptions, say: Callable[[str], None] = lambda m: None) -> Plan:
    """Read, validate, split, measure and propose; nothing is written. Bad input raises an EmbedgateError."""
    check_options(opts)
    src, out = Path(opts.data), Path(opts.out)
    check_out(out, opts.force)
    if not src.exists():
        raise DataError("data not found (a BEIR folder, a csv / tsv / jsonl / parquet table, or a saved Hugging "
                        "Face dataset)", path=src)
    name = opts.name or out.resolve().name
    notes: list[str] = []
    cols = opts.columns
    pooled: Pooled | None = None
    split: Split | None = None
    subset = bool(opts.max_queries or opts.corpus_size)  # the seed also draws a subset
    unused = [flag for flag, v in (("--test-fraction", opts.test_fraction), ("--seed", None if subset else opts.seed),
                                   ("--group-col", cols.group)) if v is not None]
    if src.is_file():
        if src.suffix.lower() not in TABLE_SUFFIXES:
            raise DataError(f"a table is a {', '.join(TABLE_SUFFIXES)} file; a BEIR set or a saved dataset is a "
                            "folder", path=src)
        pooled = read_table(src, cols)
    elif is_hf_table(src):
        pooled = read_hf_table(src, cols, opts.split)
    else:
        if cols.table_only():
            raise ConfigError(f"{', '.join(cols.table_only())} map the columns of a table or a saved dataset; "
                              f"{src} is a BEIR folder (corpus, queries, qrels), whose fields are fixed",
                              field=cols.table_only()[0].lstrip("-"))
        has_split = opts.split in data_mod.available_splits(src) or data_mod.is_hf_disk(src)
        if has_split:
            ds = data_mod.load(src, opts.split, name=src.resolve().name)
            if unused:
                notes.append(f"The folder has its own `{opts.split}` split, so {', '.join(unused)} "
                             f"{'was' if len(unused) == 1 else 'were'} not used.")
            data_ref = {"path": _relative(src, out), "split": opts.split,
                        "comment": f"the data's own {opts.split!r} split, in place (not copied)"}
            data_note = (f"The suite reads the original folder in place (`[data.main] path = \"{data_ref['path']}\"`, "
                         f"relative to suite.toml); its own `{opts.split}` split is the held-out one. Nothing was "
                         "copied.")
            counts = {"source": str(src), "format": ds.format, "summary": f"{len(ds.corpus):,} documents.",
                      "description": f"Retrieval on {ds.name} ({opts.split} split), made by embedgate init."}
            files: dict[str, str] = {}
        else:
            say(f"{src}: no {opts.split!r} split (available: {', '.join(data_mod.available_splits(src)) or 'none'}); "
                "pooling its judgments for a seeded split")
            pooled = pool_beir(src, cols.group)
    if pooled is not None:
        if pooled.given is not None:
            split = given_split(pooled, opts.split)
            if unused:
                notes.append(f"The dataset has its own `{opts.split}` split, so {', '.join(unused)} "
                             f"{'was' if len(unused) == 1 else 'were'} not used.")
        else:
            split = make_split(pooled, opts.split, opts.fraction, opts.split_seed)
        files = beir_files(pooled, split)
        side_q = {s: len(q) for s, q in split.qrels.items()}
        groups = f", {len(set(pooled.groups.values())):,} groups" if pooled.groups is not None else ""
        merged = (f"; {pooled.merged:,} repeated row{'' if pooled.merged == 1 else 's'} (same pair, same grade) "
                  "merged" if pooled.merged else "")
        counts = {"source": str(src), "format": pooled.format,
                  "summary": (f"{pooled.rows:,} judgments, {len(pooled.queries):,} queries, {len(pooled.corpus):,} "
                              f"documents{groups}{merged}."),
                  "description": f"Retrieval on {src.stem if src.is_file() else src.name}, made by embedgate init."}
        data_ref = {"path": "data", "split": opts.split, "comment": "the data embedgate init wrote (README.md)"}
        data_note = (("The held-out split is " if split.method == "given" else "The split was made here, ")
                     + split.rule + f" Result: train {side_q.get(TRAIN, 0):,} queries, {opts.split} "
                     f"{side_q.get(opts.split, 0):,} queries"
                     + (f"; {len({split.units[q] for q in split.qrels[opts.split]}):,} of "
                        f"{len(set(split.units.values())):,} group units in {opts.split}" if pooled.groups is not None
                        and split.units else "")
                     + ". Both sides search the whole corpus, as BEIR sets do. Written as a BEIR folder in `data/` "
                     "(corpus.jsonl, queries.jsonl, qrels/train.tsv, qrels/" + f"{opts.split}.tsv).")
        staging = Path(tempfile.mkdtemp(prefix="embedgate-init-"))
        try:  # read back what will be written, through the suite's own reader: the hash is the suite's hash
            for rel, text in files.items():
                atomic_write_text(staging / rel, text)
            ds = data_mod.load(staging, opts.split, name=src.stem if src.is_file() else src.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        ds.source = str(out / "data")
    if opts.max_queries or opts.corpus_size:
        ds = ds.subset(max_queries=opts.max_queries, corpus_size=opts.corpus_size, seed=opts.split_seed)
        data_ref.update(max_queries=opts.max_queries, corpus_size=opts.corpus_size, seed=opts.split_seed)
    if len(ds.queries) < 2:
        raise DataError(f"the held-out split {opts.split!r} has {len(ds.queries)} query with a positive judgment; "
                        "at least 2 are needed to measure anything", path=ds.source or src)
    counts["command"] = _command(opts)
    base = {"name": opts.base, **({"max_seq_length": opts.max_seq_length} if opts.max_seq_length else {})}
    say(f"measuring {opts.base} and BM25 on {ds.name} {ds.split} ({len(ds.queries):,} queries, {len(ds.corpus):,} "
        "documents)")
    measured = measure(ds, base, cache=opts.cache, correlation=opts.correlation)
    p = Plan(opts=opts, name=name, data_ref=data_ref, data_files=files, data_note=data_note, counts=counts,
             measured=measured, gates=propose_gates(measured), notes=notes)
    validate_suite_text(suite_toml(p), out)
    return p


def validate_suite_text(text: str, out: Path) -> None:
    """The suite.toml about to be written must load as the harness will load it (paths relative to ``out``)."""
    import tomllib

    from .schema import SuiteConfig, validate_config

    raw = tomllib.loads(text)
    validate_config(SuiteConfig, {**raw, "path": out / "suite.toml"}, path=out / "suite.toml", text=text,
                    context={"base_dir": out.resolve()})


def write(p: Plan) -> list[Path]:
    """The files, each atomically: the data first, then README.md, suite.toml last (its presence marks a complete
    suite). Re-checks the folder first: nothing is overwritten without ``force``."""
    out = Path(p.opts.out)
    check_out(out, p.opts.force)
    written = []
    if p.data_files:
        stale = out / "data" / "qrels"
        if p.opts.force and stale.is_dir():  # a held-out split of an earlier run that this one does not write
            for old in stale.glob("*.tsv"):
                if f"qrels/{old.name}" not in p.data_files:
                    old.unlink()
        for rel, text in p.data_files.items():
            written.append(atomic_write_text(out / "data" / rel, text))
    written.append(atomic_write_text(out / "README.md", readme(p)))
    written.append(atomic_write_text(out / "suite.toml", suite_toml(p)))
    return written


def init_suite(opts: InitOptions, say: Callable[[str], None] = lambda m: None) -> Plan:
    """Plan, then write: ``embedgate init`` in one call. Returns the plan (its numbers are what the README says)."""
    p = plan(opts, say)
    write(p)
    return p


__all__ = ["Columns", "InitOptions", "Pooled", "Split", "Detectable", "Measured", "Plan", "stable_id", "read_table",
           "read_hf_table", "pool_beir", "split_units", "make_split", "unit_hash", "beir_files",
           "estimate_detectable", "mde_sentence", "measure", "propose_gates", "suite_toml", "readme", "plan", "write",
           "init_suite", "check_out", "existing_files"]
