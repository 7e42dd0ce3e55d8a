"""Training pairs from a search log: ``[train] log = "clicks.parquet"`` (csv, tsv, jsonl or parquet).

A log has one row per result shown: the query, the document (an id resolved in ``[train] corpus``, or its text),
whether it was clicked, and optionally the dwell time, the position (1 = top), the timestamp (ISO 8601 or epoch
seconds) and a session. ``[train.log_columns]`` maps those to the log's column names; an optional column named by
its default may be absent (it was not logged), one named in the recipe must be there.

The rules (``[train.log_rules]``), applied in this order:

1. **Time cut first**: with ``before``, only rows strictly before it are read at all (timestamps without a zone are
   UTC); every later step, the "clicked anywhere" set included, sees only those rows, so nothing of the gated
   period reaches training.
2. Rows with an empty query or document are dropped; a document id that is not in the corpus is an error.
3. A **click** is a row with ``clicked`` true (no clicked column: every row is a click). A click **qualifies** as a
   positive when its dwell is at least ``min_dwell_s`` (when dwell is logged; a click without a dwell value then
   does not qualify).
4. **One pair per (query, document)**, with the number of its qualifying clicks recorded; a (query, document) needs
   at least ``min_clicks`` of them. Queries are compared as written (surrounding spaces removed).
5. **Skip-above negatives** (Joachims' "click > skip above", ``skip_above = true``, needs positions and impressions):
   an *impression* is the rows of one query with the same session (with a session column) or else the same
   timestamp. For each qualifying click of a pair, the results shown above it in that impression become that
   pair's negatives, except any document clicked for that query anywhere in the log (any dwell, any impression,
   after the time cut): a clicked document is never a negative of its query. Per pair they are ranked by how often
   they were skipped above its clicks, then by how close above the click they were, then by id, and the first
   ``max_negatives`` are kept.

Training rows: sentence-transformers batches are tables, so every row has the same negative columns. Without
skip-above negatives the rows are (query, document) pairs, and ``[hard_negatives]`` may mine negatives (every
document clicked for a query is kept out of its candidates, like a judged positive). With them, every row has as
many negative columns as the pair with the most negatives (at most ``max_negatives``); a pair with fewer repeats its
own negatives in order, and a pair without any (its clicks were on the top result, or everything above was clicked
too) is left out of the training rows and counted (``pairs_without_negative``); ``skip_above = false`` trains every
pair.

The counts (rows read, rows after the time cut, clicks, qualifying clicks, pairs, queries, negatives, rows dropped
per reason) go into the training manifest under ``data.train.stats``. Bad input is a DataError naming the log, the
line (row, for parquet) and the column or value.
"""
from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from embedgate.harness import data as data_mod
from embedgate.harness.errors import ConfigError, DataError
from embedgate.harness.schema import LogColumns, LogRules

from .pairs import PairSet, TrainingPair, _sample

__all__ = ["LOG_SUFFIXES", "LogFrame", "LogPair", "LogPairs", "read_log", "apply_rules", "load_corpus",
           "parse_time", "to_pair_set", "pairs_from_log"]

LOG_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")
OPTIONAL = ("clicked", "dwell_s", "position", "timestamp", "session")
DROP_REASONS = ("at_or_after_time_cut", "empty_query", "empty_document", "not_clicked", "click_without_dwell",
                "short_dwell", "below_min_clicks")
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


# ------------------------------------------------------------------------------------------------ reading


@dataclass
class LogFrame:
    """The log as a normalised DataFrame: ``row`` (the line, or the 1-based row of a parquet file), ``query``,
    ``doc`` (the id, or the text when the log carries texts), ``text`` (texts only), and those of ``clicked``,
    ``dwell`` (NaN: not logged on that row), ``position``, ``time`` (epoch seconds, UTC) and ``session`` that the
    log has (``present``: mapping key -> the log's column)."""

    frame: Any  # pandas.DataFrame
    path: Path
    present: dict[str, str]
    columns: list[str]  # the log's own columns, as read
    mapping: LogColumns = field(default_factory=LogColumns)
    text_mode: bool = False

    @property
    def parquet(self) -> bool:
        return self.path.suffix.lower() == ".parquet"

    def error(self, message: str, row: int | None = None, column: str | None = None) -> DataError:
        if row is not None and self.parquet:
            message = f"{message} (row {row})"
        return DataError(message, path=self.path, line=row, field=column)


def _is_missing(value: Any) -> bool:
    """None, NaN, pandas' NA and NaT (what an empty parquet or jsonl cell reads as)."""
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _text_value(value: Any) -> str:
    """A query, id or text cell as a stripped string ('' when missing); integral numbers without '.0'."""
    if _is_missing(value):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def parse_time(value: Any) -> float | None:
    """ISO 8601 (a date, or a date and time; no zone = UTC), epoch seconds (a number or a numeric string), or a
    datetime -> epoch seconds; None when it is none of these."""
    if _is_missing(value) or isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if isinstance(value, datetime):  # pandas.Timestamp is one too
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    if isinstance(value, str):
        s = value.strip()
        if not s:
            return None
        if _NUMBER_RE.match(s):
            return float(s)
        try:
            d = datetime.fromisoformat(s[:-1] + "+00:00" if s[-1] in "zZ" else s)
        except ValueError:
            return None
        return parse_time(d)
    return None


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _read_frame(path: Path):
    """(DataFrame of the log's own columns as read, row numbers for messages)."""
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix not in LOG_SUFFIXES:
        raise DataError(f"a log must be one of {', '.join(LOG_SUFFIXES)}", path=path)
    if not path.is_file():
        raise DataError("log file not found", path=path)
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
            rows = list(range(1, len(frame) + 1))
        elif suffix == ".jsonl":
            records = list(data_mod._iter_jsonl(path))
            frame = pd.DataFrame([rec for _, rec in records])
            rows = [line for line, _ in records]
        else:
            data_mod._check_utf8(path)
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False,
                                encoding="utf-8")
            rows = list(range(2, len(frame) + 2))  # the header is line 1
    except DataError:
        raise
    except Exception as exc:  # pandas / pyarrow parse errors carry their own wording
        raise DataError(f"cannot read the log: {exc}", path=path) from None
    frame.columns = [str(c) for c in frame.columns]
    return frame.reset_index(drop=True), rows


def read_log(path: str | Path, columns: LogColumns | None = None) -> LogFrame:
    """Read and normalise a log; a mapped column that is missing, or a value that cannot be read, is a DataError."""
    import numpy as np
    import pandas as pd

    path = Path(path)
    columns = columns or LogColumns()
    given = columns.model_fields_set
    raw, rows = _read_frame(path)
    have = list(raw.columns)
    if raw.empty:
        raise DataError("the log has no rows", path=path)

    def missing(key: str, name: str) -> DataError:
        return DataError(f"no such column (log_columns.{key} = {name!r}); the log's columns: {', '.join(have)}",
                         path=path, field=name)

    lf = LogFrame(frame=None, path=path, present={}, columns=have, mapping=columns,
                  text_mode=columns.document is not None)
    out = pd.DataFrame({"row": np.asarray(rows, dtype=np.int64)})
    if columns.query not in have:
        raise missing("query", columns.query)
    out["query"] = [_text_value(v) for v in raw[columns.query].tolist()]
    lf.present["query"] = columns.query
    if lf.text_mode:
        if columns.document not in have:
            raise missing("document", columns.document)
        out["text"] = [_text_value(v) for v in raw[columns.document].tolist()]
        lf.present["document"] = columns.document
        if "document_id" in given:
            if columns.document_id not in have:
                raise missing("document_id", columns.document_id)
            lf.present["document_id"] = columns.document_id
        out["doc"] = out["text"]  # the text is the document's identity
    else:
        if columns.document_id not in have:
            raise missing("document_id", columns.document_id)
        out["doc"] = [_text_value(v) for v in raw[columns.document_id].tolist()]
        lf.present["document_id"] = columns.document_id
    if "document_id" in lf.present and lf.text_mode:
        out["doc_id"] = [_text_value(v) for v in raw[columns.document_id].tolist()]
    for key in OPTIONAL:
        name = getattr(columns, key)
        if name in have:
            lf.present[key] = name
        elif key in given:
            raise missing(key, name)

    def values(key: str) -> list:
        return raw[lf.present[key]].tolist()

    if "clicked" in lf.present:
        clicked = []
        for row, v in zip(rows, values("clicked")):
            if isinstance(v, (bool, np.bool_)):
                clicked.append(bool(v))
            elif isinstance(v, numbers.Real) and not _is_missing(v) and float(v) in (0.0, 1.0):
                clicked.append(bool(v))
            elif isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
                clicked.append(v.strip().lower() in _TRUE)
            else:
                raise lf.error(f"clicked must be true/false or 1/0, got {v!r}", row, lf.present["clicked"])
        out["clicked"] = clicked
    if "dwell_s" in lf.present:
        dwell = []
        for row, v in zip(rows, values("dwell_s")):
            if _is_missing(v) or (isinstance(v, str) and not v.strip()):
                dwell.append(math.nan)
                continue
            try:
                x = float(v) if not isinstance(v, bool) else math.nan
            except (TypeError, ValueError):
                x = math.nan
            if isinstance(v, bool) or math.isnan(x) or x < 0:
                raise lf.error(f"dwell must be a number of seconds >= 0, got {v!r}", row, lf.present["dwell_s"])
            dwell.append(x)
        out["dwell"] = np.asarray(dwell, dtype=np.float64)
    if "position" in lf.present:
        pos = []
        for row, v in zip(rows, values("position")):
            try:
                x = float(v) if not isinstance(v, bool) and not _is_missing(v) else math.nan
            except (TypeError, ValueError):
                x = math.nan
            if math.isnan(x) or not x.is_integer() or x < 1:
                raise lf.error(f"position must be a whole number >= 1 (1 = top), got {v!r}", row,
                               lf.present["position"])
            pos.append(int(x))
        out["position"] = np.asarray(pos, dtype=np.int64)
    if "timestamp" in lf.present:
        cache: dict[Any, float | None] = {}
        times = []
        for row, v in zip(rows, values("timestamp")):
            try:
                t = cache[v] if v in cache else cache.setdefault(v, parse_time(v))
            except TypeError:  # an unhashable cell
                t = parse_time(v)
            if t is None:
                raise lf.error(f"cannot read timestamp {v!r} (ISO 8601, e.g. 2026-05-31T12:00:00Z, or epoch "
                               "seconds)", row, lf.present["timestamp"])
            if abs(t) >= 1e11:  # past the year 5000: milliseconds (or finer) since the epoch
                raise lf.error(f"timestamp {v!r} is not in epoch seconds (milliseconds? divide by 1000)", row,
                               lf.present["timestamp"])
            times.append(t)
        out["time"] = np.asarray(times, dtype=np.float64)
    if "session" in lf.present:
        sessions = [_text_value(v) for v in values("session")]
        for row, s in zip(rows, sessions):
            if not s:
                raise lf.error("empty session", row, lf.present["session"])
        out["session"] = sessions
    lf.frame = out
    return lf


def load_corpus(folder: str | Path) -> dict[str, data_mod.Document]:
    """The corpus of a retrieval-set folder (BEIR or tables, or a Hugging Face folder), without its judgments."""
    folder = Path(folder)
    if data_mod.is_hf_disk(folder):
        from datasets import load_from_disk

        try:
            ds = data_mod._hf_single(load_from_disk(str(folder / "corpus")), folder / "corpus", "corpus")
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"cannot load dataset: {exc}", path=folder / "corpus") from None
        return data_mod.read_corpus(folder / "corpus", data_mod._hf_rows(ds))
    path = data_mod._find(folder, "corpus")
    if path is None:
        raise DataError("no corpus file (corpus.jsonl, .csv, .tsv or .parquet)", path=folder)
    return data_mod.read_corpus(path)


# ------------------------------------------------------------------------------------------------ rules


@dataclass(frozen=True)
class LogPair:
    query: str
    document: str  # the key: the id, or the text when the log carries texts
    clicks: int  # qualifying clicks
    negatives: tuple[str, ...] = ()  # keys of the skip-above negatives, best first
    document_id: str | None = None


@dataclass
class LogPairs:
    pairs: list[LogPair]
    clicked: dict[str, set[str]]  # query -> every document clicked for it (any dwell), after the time cut
    stats: dict[str, Any]
    skip_above: bool  # whether skip-above negatives were drawn
    texts: dict[str, str] = field(default_factory=dict)  # document key -> text (the log's texts or the corpus')


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


_REASON_WORDS = {"at_or_after_time_cut": "at or after the time cut", "empty_query": "with an empty query",
                 "empty_document": "with an empty document", "not_clicked": "not clicked",
                 "click_without_dwell": "clicks without a dwell value", "short_dwell": "clicks with dwell < {d} s",
                 "below_min_clicks": "clicks of a (query, document) with fewer than {m} qualifying clicks"}


def _dropped_words(dropped: dict[str, int], rules: LogRules) -> str:
    parts = [f"{n} {_REASON_WORDS[k].format(d=f'{rules.min_dwell_s:g}', m=rules.min_clicks)}"
             for k, n in dropped.items() if n]
    return ", ".join(parts) or "none dropped"


def apply_rules(lf: LogFrame, rules: LogRules | None = None, *,
                corpus: dict[str, Any] | None = None, corpus_path: str | Path | None = None) -> LogPairs:
    """The rules of the module docstring over a read log. ``corpus``: document id -> anything (ids must be in it);
    None when the log carries document texts."""
    rules = rules or LogRules()
    df = lf.frame
    n_rows = len(df)
    dropped = {k: 0 for k in DROP_REASONS}
    stats: dict[str, Any] = {"rows_read": n_rows}

    # 1. the time cut, before anything else
    if rules.before is not None:
        if "time" not in df:
            raise ConfigError(f"log_rules.before needs timestamps, and the log has no column "
                              f"{lf.mapping.timestamp!r} (log_columns.timestamp); the log's columns: "
                              f"{', '.join(lf.columns)}", path=lf.path, field="log_rules.before")
        cut = parse_time(rules.before)
        keep = df["time"] < cut
        dropped["at_or_after_time_cut"] = int((~keep).sum())
        if not keep.any():
            raise DataError(f"the time cut before = {rules.before} leaves no row: all {n_rows} rows are at or "
                            f"after it (timestamps from {_iso(df['time'].min())} to {_iso(df['time'].max())})",
                            path=lf.path, field=lf.present["timestamp"])
        df = df[keep]
    stats["rows_after_time_cut"] = len(df)
    if "time" in df and len(df):
        stats["time_range"] = {"first": _iso(float(df["time"].min())), "last": _iso(float(df["time"].max()))}

    # 2. empty cells, ids outside the corpus
    empty_q = df["query"] == ""
    dropped["empty_query"] = int(empty_q.sum())
    df = df[~empty_q]
    empty_d = df["doc"] == ""
    dropped["empty_document"] = int(empty_d.sum())
    df = df[~empty_d]
    if corpus is not None:
        unknown = df[~df["doc"].isin(corpus.keys())]
        if len(unknown):
            ids = list(dict.fromkeys(unknown["doc"].tolist()))
            first = int(unknown["row"].iloc[0])
            raise lf.error(f"{_plural(len(ids), 'document id')} ({_plural(len(unknown), 'row')}) not in the "
                           f"corpus {corpus_path or ''}: {', '.join(repr(i) for i in ids[:5])}"
                           f"{', ...' if len(ids) > 5 else ''} (the first here)", first,
                           lf.present["document_id"])

    # 3. clicks, and which of them qualify
    is_click = df["clicked"] if "clicked" in df else None
    clicks = df[is_click] if is_click is not None else df
    dropped["not_clicked"] = len(df) - len(clicks)
    clicked: dict[str, set[str]] = {}
    for q, d in zip(clicks["query"].tolist(), clicks["doc"].tolist()):
        clicked.setdefault(q, set()).add(d)
    stats["clicks"] = len(clicks)
    qualifying = clicks
    if "dwell" in clicks:
        no_dwell = clicks["dwell"].isna()
        dropped["click_without_dwell"] = int(no_dwell.sum())
        short = ~no_dwell & (clicks["dwell"] < rules.min_dwell_s)
        dropped["short_dwell"] = int(short.sum())
        qualifying = clicks[~no_dwell & ~short]
    stats["qualifying_clicks"] = len(qualifying)

    # 4. one pair per (query, document) with enough qualifying clicks
    counts = qualifying.groupby(["query", "doc"], sort=True).size()
    enough = counts[counts >= rules.min_clicks]
    dropped["below_min_clicks"] = int(counts[counts < rules.min_clicks].sum())
    stats["dropped"] = dropped
    if enough.empty:
        raise DataError(f"no usable click in the log's {n_rows} rows: {_dropped_words(dropped, rules)}",
                        path=lf.path)

    # 5. skip-above negatives
    why_not = None
    if not rules.skip_above:
        why_not = "off (skip_above = false)"
    elif "position" not in df:
        why_not = "not available: the log has no position column"
    elif "session" not in df and "time" not in df:
        why_not = "not available: the log has neither a session nor a timestamp column to group impressions"
    if why_not and rules.skip_above and "skip_above" in rules.model_fields_set:
        raise ConfigError(f"log_rules.skip_above = true needs positions and impressions, but it is {why_not}; "
                          f"the log's columns: {', '.join(lf.columns)}", path=lf.path, field="log_rules.skip_above")
    pair_keys = set(enough.index)
    found: dict[tuple[str, str], dict[str, list]] = {}
    n_impressions = None
    if why_not is None:
        group = "session" if "session" in df else "time"
        shown: dict[tuple, list[tuple[int, str]]] = {}
        for q, g, pos, d in zip(df["query"].tolist(), df[group].tolist(), df["position"].tolist(),
                                df["doc"].tolist()):
            shown.setdefault((q, g), []).append((pos, d))
        n_impressions = len(shown)
        for q, g, pos, d in zip(qualifying["query"].tolist(), qualifying[group].tolist(),
                                qualifying["position"].tolist(), qualifying["doc"].tolist()):
            if (q, d) not in pair_keys:
                continue
            never = clicked.get(q, set())
            acc = found.setdefault((q, d), {})
            for above_pos, other in shown[(q, g)]:
                if above_pos < pos and other not in never:
                    times, best = acc.get(other, (0, math.inf))
                    acc[other] = (times + 1, min(best, pos - above_pos))
    pairs = []
    for (q, d), n in enough.items():
        acc = found.get((q, d), {})
        ranked = sorted(acc, key=lambda o: (-acc[o][0], acc[o][1], o))
        pairs.append(LogPair(q, d, int(n), tuple(ranked[:rules.max_negatives])))
    # pairs by query, most clicked first (max_per_query keeps those), then by document
    pairs.sort(key=lambda p: (p.query, -p.clicks, p.document))
    stats.update({
        "pairs": len(pairs),
        "queries": len({p.query for p in pairs}),
        "clicks_in_pairs": sum(p.clicks for p in pairs),
        "impressions": n_impressions,
        "skip_above": why_not or "on",
        "negatives": sum(len(p.negatives) for p in pairs),
        "negatives_before_cap": sum(len(found.get((p.query, p.document), {})) for p in pairs),
        "pairs_with_negatives": sum(1 for p in pairs if p.negatives),
    })
    return LogPairs(pairs=pairs, clicked=clicked, stats=stats, skip_above=why_not is None)


# ------------------------------------------------------------------------------------------------ pairs


def to_pair_set(result: LogPairs, texts: dict[str, str], *, source: dict[str, Any],
                corpus_texts: list[str] | None = None, max_pairs: int | None = None,
                max_per_query: int | None = None, seed: int = 0) -> PairSet:
    """The training rows (module docstring: negative columns), sampled like any other pairs."""
    width = max((len(p.negatives) for p in result.pairs), default=0) if result.skip_above else 0
    rows: list[TrainingPair] = []
    without = 0
    for p in result.pairs:
        negatives: tuple[str, ...] = ()
        if width:
            if not p.negatives:
                without += 1
                continue
            negatives = tuple(texts[p.negatives[i % len(p.negatives)]] for i in range(width))
        rows.append(TrainingPair(p.query, texts[p.document], None, p.document_id, None, negatives,
                                 clicks=p.clicks))
    stats = dict(result.stats)
    stats.update({"negative_columns": width, "pairs_without_negative": without if width else None,
                  "training_rows": len(rows)})
    if not rows:
        raise DataError("no pair has a skip-above negative (every click was on the top result, or everything "
                        "above it was clicked too); set skip_above = false in [train.log_rules] to train the pairs "
                        "without negatives", path=source.get("path"), field="log_rules.skip_above")
    rows = _sample(rows, max_pairs, max_per_query, seed)
    judged = {q: {texts[d] for d in docs if d in texts} for q, docs in result.clicked.items()}
    return PairSet(pairs=rows, source={**source, "stats": stats, "max_pairs": max_pairs,
                                       "max_per_query": max_per_query, "seed": seed},
                   corpus=corpus_texts, judged=judged, judged_label="clicked documents")


def pairs_from_log(path: str | Path, *, columns: LogColumns | None = None, rules: LogRules | None = None,
                   corpus: str | Path | None = None, max_pairs: int | None = None,
                   max_per_query: int | None = None, seed: int = 0) -> PairSet:
    """Read a log, apply the rules, and return the training pairs (``corpus``: the retrieval-set folder the
    document ids resolve in; None when ``columns.document`` names a text column)."""
    from embedgate.harness.io import sha256_file

    path = Path(path)
    columns = columns or LogColumns()
    rules = rules or LogRules()
    if columns.document is None and corpus is None:
        raise ConfigError("document ids need a corpus to resolve in ([train] corpus = a suite or a BEIR folder), "
                          "or map log_columns.document to the log's document text column", path=path,
                          field="corpus")
    lf = read_log(path, columns)
    docs = load_corpus(corpus) if corpus is not None and not lf.text_mode else None
    result = apply_rules(lf, rules, corpus=docs, corpus_path=corpus)
    if docs is not None:
        texts = {d: doc.full_text for d, doc in docs.items()}
        corpus_texts = sorted(set(texts.values()))
    else:
        texts = dict(zip(lf.frame["doc"].tolist(), lf.frame["text"].tolist()))
        corpus_texts = None
    if lf.text_mode and "doc_id" in lf.frame:
        ids = dict(zip(lf.frame["doc"].tolist(), lf.frame["doc_id"].tolist()))
        result.pairs = [LogPair(p.query, p.document, p.clicks, p.negatives, ids.get(p.document) or None)
                        for p in result.pairs]
    elif not lf.text_mode:
        result.pairs = [LogPair(p.query, p.document, p.clicks, p.negatives, p.document) for p in result.pairs]
    source = {"kind": "click-log", "path": str(path), "file_sha256": sha256_file(path),
              "corpus": str(corpus) if corpus is not None and not lf.text_mode else None,
              "columns": {k: lf.present.get(k) for k in ("query", "document_id", "document", *OPTIONAL)},
              "rules": rules.model_dump()}
    return to_pair_set(result, texts, source=source, corpus_texts=corpus_texts, max_pairs=max_pairs,
                       max_per_query=max_per_query, seed=seed)
