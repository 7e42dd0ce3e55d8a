"""Documents in: a folder of .txt, .md, .jsonl (and .pdf when pypdf is installed) -> SourceDocument.

Every offset is kept in the coordinates of the source text (the file's text, or a jsonl record's ``text``), so a
chunk can always be traced back to the characters it came from. Parts that are not body text (a markdown title,
heading lines, front matter; in offline mode also the sentences used as queries) are recorded as removed spans
instead of being cut out of the source.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from embedgate.harness.errors import DataError

SUFFIXES = (".txt", ".md", ".markdown", ".jsonl", ".pdf")
TITLE_MAX_CHARS = 120
_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\r?\n.*?\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)
_ID_UNSAFE_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class Section:
    """A markdown heading and the span of its content (up to the next heading of the same or a higher level)."""

    heading: str
    level: int
    start: int
    end: int


@dataclass
class SourceDocument:
    id: str
    source: str  # path relative to the documents folder, with ":<line>" for a jsonl record
    title: str
    text: str
    removed: list[tuple[int, int]] = field(default_factory=list)  # source spans that are not body text
    sections: list[Section] = field(default_factory=list)
    kind: str = "text"  # text | markdown | jsonl | pdf

    def body(self) -> "Body":
        return Body.build(self.text, self.removed)

    def body_hash(self) -> str:
        normalised = " ".join(self.body().text.split()).casefold()
        return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


@dataclass
class Body:
    """The body text of a document (source minus removed spans) with a map back to source offsets."""

    text: str
    _body_starts: list[int]
    _source_starts: list[int]

    @classmethod
    def build(cls, source: str, removed: list[tuple[int, int]]) -> "Body":
        keep: list[tuple[int, int]] = []
        pos = 0
        for s, e in merge_spans(removed):
            if s > pos:
                keep.append((pos, s))
            pos = max(pos, e)
        if pos < len(source):
            keep.append((pos, len(source)))
        parts, body_starts, source_starts, n = [], [], [], 0
        for s, e in keep:
            body_starts.append(n)
            source_starts.append(s)
            parts.append(source[s:e])
            n += e - s
        return cls("".join(parts), body_starts, source_starts)

    def to_source(self, pos: int, *, end: bool = False) -> int:
        """Source offset of body offset ``pos``; with ``end``, the offset just after body character ``pos - 1``."""
        if not self._body_starts:
            return 0
        probe = pos - 1 if end and pos > 0 else pos
        i = max(0, bisect.bisect_right(self._body_starts, probe) - 1)
        return self._source_starts[i] + (pos - self._body_starts[i])


def merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        elif e > s:
            out.append((s, e))
    return out


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for m in re.finditer("\n", text):
        starts.append(m.end())
    return starts


def _normalise_text(text: str) -> str:
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", text)


def _read_text(path: Path) -> str:
    try:
        return _normalise_text(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DataError(f"not valid UTF-8 ({exc.reason} at byte {exc.start}); re-save the file as UTF-8",
                        path=path, line=line) from None


def _plain_title(text: str) -> tuple[str, list[tuple[int, int]]]:
    """A plain-text title: the first line when it is short and does not read as a sentence."""
    stripped = text.lstrip("\n")
    offset = len(text) - len(stripped)
    first, sep, rest = stripped.partition("\n")
    candidate = first.strip()
    if (sep and rest.strip() and 0 < len(candidate) <= TITLE_MAX_CHARS and not candidate.endswith((".", ",", ";", ":"))
            and len(candidate.split()) >= 2):
        return candidate, [(0, offset + len(first) + 1)]
    return "", []


def _inline_text(token) -> str:
    """The visible text of a markdown inline token (markup, link targets and images dropped)."""
    parts = [c.content for c in (token.children or []) if c.type in ("text", "code_inline")]
    return " ".join("".join(parts).split())


def parse_markdown(text: str) -> tuple[str, list[tuple[int, int]], list[Section]]:
    """(title, removed spans, sections) of a markdown text. The first level-1 heading that comes before any other
    heading is the title; every heading line is removed from the body; each heading owns the text up to the next
    heading of the same or a higher level."""
    from markdown_it import MarkdownIt  # CommonMark: fenced code, setext headings, indented code handled right

    removed: list[tuple[int, int]] = []
    parse_text = text
    fm = _FRONT_MATTER_RE.match(text)
    if fm:
        removed.append((0, fm.end()))
        # keep line numbers: blank the front matter out for the parser
        parse_text = re.sub(r"[^\n]", " ", text[: fm.end()]) + text[fm.end():]
    starts = _line_starts(text) + [len(text)]
    tokens = MarkdownIt("commonmark").parse(parse_text)
    headings: list[tuple[int, str, int, int]] = []  # level, text, line start, line end (exclusive)
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.map:
            inline = tokens[i + 1]
            headings.append((int(tok.tag[1]), _inline_text(inline), tok.map[0], tok.map[1]))
    title = ""
    sections: list[Section] = []
    for j, (level, heading, l0, l1) in enumerate(headings):
        span = (starts[l0], starts[min(l1, len(starts) - 1)])
        removed.append(span)
        if j == 0 and level == 1 and not title and heading:
            title = heading
            continue
        end = len(text)
        for level2, _, m0, _ in headings[j + 1:]:
            if level2 <= level:
                end = starts[m0]
                break
        if heading:
            sections.append(Section(heading, level, span[1], end))
    return title, removed, sections


def _read_pdf(path: Path) -> str:
    try:
        from pypdf import PdfReader  # optional: pip install pypdf
    except ImportError:
        raise DataError("reading PDF needs the pypdf package (pip install pypdf), or convert the file to .txt",
                        path=path) from None
    try:
        reader = PdfReader(str(path))
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # pypdf raises many types for damaged files
        raise DataError(f"cannot read PDF: {exc}", path=path) from None
    return _normalise_text("\n\n".join(p.strip() for p in pages if p.strip()))


def _safe_id(text: str) -> str:
    return _ID_UNSAFE_RE.sub("_", text.strip())


def _iter_jsonl_docs(path: Path, rel: str) -> Iterator[SourceDocument]:
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"not valid UTF-8 ({exc.reason})", path=path, line=line_no) from None
            if not line.strip():
                continue
            try:
                rec = json.loads(line.lstrip("\ufeff"))
            except json.JSONDecodeError as exc:
                raise DataError(f"malformed JSON ({exc.msg} at column {exc.colno})", path=path, line=line_no) \
                    from None
            if not isinstance(rec, dict):
                raise DataError(f"expected a JSON object, got {type(rec).__name__}", path=path, line=line_no)
            doc_id = rec.get("_id", rec.get("id"))
            if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)) or not str(doc_id).strip():
                raise DataError("missing or empty id (expected `_id` or `id`: a string or an integer)", path=path,
                                line=line_no, field="_id")
            text, title = rec.get("text"), rec.get("title", "")
            if not isinstance(text, str):
                raise DataError(f"expected a string, got {type(text).__name__}", path=path, line=line_no,
                                field="text")
            if title is None:
                title = ""
            if not isinstance(title, str):
                raise DataError(f"expected a string, got {type(title).__name__}", path=path, line=line_no,
                                field="title")
            yield SourceDocument(id=_safe_id(str(doc_id)), source=f"{rel}:{line_no}", title=" ".join(title.split()),
                                 text=_normalise_text(text), kind="jsonl")


def _file_document(path: Path, rel: str) -> SourceDocument:
    doc_id = _safe_id(str(Path(rel).with_suffix("").as_posix()))
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        text = _read_pdf(path)
        title, removed = _plain_title(text)
        return SourceDocument(doc_id, rel, title, text, removed, kind="pdf")
    text = _read_text(path)
    if suffix in (".md", ".markdown"):
        title, removed, sections = parse_markdown(text)
        return SourceDocument(doc_id, rel, title, text, removed, sections, kind="markdown")
    title, removed = _plain_title(text)
    return SourceDocument(doc_id, rel, title, text, removed, kind="text")


@dataclass
class ReadReport:
    files: int = 0
    documents: int = 0
    empty: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (skipped id, kept id)
    ignored_files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"files": self.files, "documents": self.documents, "empty_documents": self.empty,
                "duplicate_documents": [{"skipped": a, "same_text_as": b} for a, b in self.duplicates],
                "ignored_files": self.ignored_files}


def read_documents(folder: str | Path, *, max_documents: int | None = None, exclude: Path | None = None
                   ) -> tuple[list[SourceDocument], ReadReport]:
    """Every document under ``folder`` (recursively, sorted by path), validated. Empty documents and exact
    duplicates (same body text after whitespace and case folding) are skipped and reported; two documents with
    the same id are an error naming both places. ``exclude``: a folder left out (the output, if it sits inside)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("documents folder not found" if not folder.exists() else "expected a folder of documents",
                        path=folder)
    report = ReadReport()
    docs: list[SourceDocument] = []
    seen_ids: dict[str, str] = {}
    seen_bodies: dict[str, str] = {}
    skip = Path(exclude).resolve() if exclude is not None else None
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(folder).parts)
        and not (skip is not None and p.resolve().is_relative_to(skip)))
    for path in paths:
        rel = path.relative_to(folder).as_posix()
        if path.suffix.lower() not in SUFFIXES:
            report.ignored_files.append(rel)
            continue
        report.files += 1
        found = _iter_jsonl_docs(path, rel) if path.suffix.lower() == ".jsonl" else [_file_document(path, rel)]
        for doc in found:
            if doc.id in seen_ids:
                raise DataError(f"duplicate document id {doc.id!r} (also from {seen_ids[doc.id]})",
                                path=folder / doc.source.split(":")[0],
                                line=int(doc.source.rsplit(":", 1)[1]) if doc.kind == "jsonl" else None,
                                field="_id" if doc.kind == "jsonl" else None)
            seen_ids[doc.id] = doc.source
            if not doc.body().text.strip():
                report.empty.append(doc.id)
                continue
            digest = doc.body_hash()
            if digest in seen_bodies:
                report.duplicates.append((doc.id, seen_bodies[digest]))
                continue
            seen_bodies[digest] = doc.id
            docs.append(doc)
            if max_documents is not None and len(docs) >= max_documents:
                break
        if max_documents is not None and len(docs) >= max_documents:
            break
    if not docs:
        raise DataError(f"no usable documents found (looked for {', '.join(SUFFIXES)})", path=folder)
    report.documents = len(docs)
    return docs, report
