"""Pairs without an LLM, from the structure of the documents. Weaker than LLM queries: they ask in the
documents' own words and shapes, so a model learns less from them and a suite made of them is easier.

- title -> body: a document's title asks for the start of its body (E5/Contriever-style title-passage pairs);
- heading -> section: a markdown heading asks for the first chunk of its section;
- lead -> rest: a paragraph's first sentence asks for the rest of that paragraph (the inverse cloze task).

The text used as a query is taken out of the body (recorded as a removed span) before chunking, as the inverse
cloze task does: otherwise every query would sit verbatim in its own passage and be found trivially.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .chunk import Chunk
from .documents import Body, SourceDocument, merge_spans
from .filters import Candidate

GENERATORS = ("title", "heading", "lead")
LEAD_MIN_WORDS = 10
LEAD_MAX_WORDS = 60
REST_MIN_WORDS = 25
SECTION_MIN_WORDS = 10
TARGET_HEAD_CHARS = 400
WARNING = ("no LLM: pairs come from titles, headings and first sentences. They are much weaker than LLM queries "
           "(they use the documents' own words), so a model trained on them learns less and the test split is "
           "easier than real questions. Set ANTHROPIC_API_KEY for LLM queries.")

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "no", "nos", "vs", "v", "sec", "secs", "art", "arts", "para",
    "paras", "cl", "ch", "e.g", "i.e", "etc", "inc", "ltd", "co", "corp", "fig", "figs", "vol", "pp", "p", "j", "jj",
    "hon", "ors", "anr", "viz", "cf", "approx", "al", "u.s", "u.k", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
    "sep", "sept", "oct", "nov", "dec", "rs", "ibid", "op", "cit", "govt", "dept", "reg", "regs", "sch",
}
_BOUNDARY_RE = re.compile(r"[.!?]+[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_ENUMERATOR_RE = re.compile(r"\A\s*(?:\(?[0-9]{1,3}[.)]|\(?[a-zA-Z][.)]|\(?[ivxIVX]{1,4}[.)]|[-*•])\s+")
_WORD_RE = re.compile(r"\w+")


@dataclass(frozen=True)
class Anchor:
    """A query taken from a document, and the source span of the text it asks for."""

    query: str
    generator: str
    doc_id: str
    target: tuple[int, int]
    ordinal: int  # position among the document's anchors of this generator


def words(text: str) -> int:
    return len(_WORD_RE.findall(text))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentence spans of one paragraph: a split after . ! ? and a capital or digit, unless the word before the
    stop is a known abbreviation, an initial (one letter) or a number in a list (``1.``)."""
    spans, start = [], 0
    for m in _BOUNDARY_RE.finditer(text):
        before = text[start:m.start() + 1]
        last = before.split()[-1] if before.split() else ""
        token = last.rstrip(".!?\"'”’)]").lstrip("(\"'“‘[").lower()
        if token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha()) or (token.isdigit() and
                                                                                  len(before.split()) == 1):
            continue
        spans.append((start, m.end()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """Paragraphs: blocks between blank lines; a block of long lines (one paragraph per line, as in many
    exported texts) is split at each line, a block of short wrapped lines is one paragraph."""
    out = []
    for block in re.finditer(r"(?:[^\n]*\S[^\n]*(?:\n|$))+", text):
        lines = [m for m in re.finditer(r"[^\n]*\S[^\n]*", block.group(0))]
        if len(lines) > 1 and sum(len(m.group(0)) for m in lines) / len(lines) > 150:
            out.extend((block.start() + m.start(), block.start() + m.end()) for m in lines)
        else:
            out.append((block.start(), block.start() + len(block.group(0).rstrip())))
    return out


def _body_words(doc: SourceDocument, start: int, end: int) -> int:
    """Words of body text in a source span (removed spans, such as sub-heading lines, not counted)."""
    inside = [(max(a, start) - start, min(b, end) - start) for a, b in doc.removed if a < end and b > start]
    return words(Body.build(doc.text[start:end], inside).text)


def _lead(paragraph: str) -> tuple[int, int, str] | None:
    """(start, end, query) of a paragraph's first sentence if it makes a usable query and leaves enough text."""
    spans = sentence_spans(paragraph)
    if len(spans) < 2:
        return None
    s0, s1 = spans[0]
    sentence = paragraph[s0:s1]
    enum = _ENUMERATOR_RE.match(sentence)
    query = " ".join(sentence[enum.end() if enum else 0:].split())
    if not LEAD_MIN_WORDS <= words(query) <= LEAD_MAX_WORDS or not query.rstrip("\"'”’)]").endswith((".", "?", "!")):
        return None
    if words(paragraph[s1:]) < REST_MIN_WORDS:
        return None
    return s0, s1, query


def extract(docs: list[SourceDocument], generators=GENERATORS, *, lead_gap_chars: int = 800
            ) -> tuple[list[SourceDocument], list[Anchor]]:
    """Queries taken from each document, and the documents with those query texts removed from their bodies.
    ``lead_gap_chars`` spaces lead sentences (about one per chunk) so the corpus keeps most of its sentences."""
    unknown = sorted(set(generators) - set(GENERATORS))
    if unknown:
        from embedgate.harness.errors import ConfigError

        raise ConfigError(f"unknown offline generator(s) {', '.join(unknown)}; known: {', '.join(GENERATORS)}",
                          field="offline_generators")
    out_docs, anchors = [], []
    for doc in docs:
        body = doc.body()
        if not body.text.strip():
            out_docs.append(doc)
            continue
        body_start = body.to_source(len(body.text) - len(body.text.lstrip()))
        body_end = body.to_source(len(body.text.rstrip()), end=True)
        if "title" in generators and doc.title:
            anchors.append(Anchor(doc.title, "title", doc.id, (body_start, body_end), 0))
        if "heading" in generators:
            for i, sec in enumerate(doc.sections):
                if _body_words(doc, sec.start, sec.end) >= SECTION_MIN_WORDS:  # not an empty part heading
                    anchors.append(Anchor(sec.heading, "heading", doc.id, (sec.start, sec.end), i))
        removed = list(doc.removed)
        if "lead" in generators:
            last = -lead_gap_chars
            n = 0
            for p0, p1 in paragraph_spans(body.text):
                if p0 - last < lead_gap_chars:
                    continue
                found = _lead(body.text[p0:p1])
                if found is None:
                    continue
                s0, s1, query = found
                src0, src1 = body.to_source(p0 + s0), body.to_source(p0 + s1, end=True)
                removed.append((src0, src1))
                anchors.append(Anchor(query, "lead", doc.id, (src1, body.to_source(p1, end=True)), n))
                n += 1
                last = p0
        out_docs.append(replace(doc, removed=merge_spans(removed)))
    return out_docs, anchors


def _best_chunk(target: tuple[int, int], chunks: list[Chunk]) -> Chunk | None:
    """The chunk holding most of the target's opening (its first TARGET_HEAD_CHARS characters: what a title or a
    heading announces); on a tie, the earlier chunk."""
    start, end = target[0], min(target[1], target[0] + TARGET_HEAD_CHARS)
    best, best_overlap = None, 0
    for c in chunks:
        overlap = min(c.char_end, end) - max(c.char_start, start)
        if overlap > best_overlap:
            best, best_overlap = c, overlap
    return best


def candidates(anchors: list[Anchor], chunks: list[Chunk]) -> list[Candidate]:
    by_doc: dict[str, list[Chunk]] = {}
    for c in chunks:
        by_doc.setdefault(c.doc_id, []).append(c)
    out = []
    for a in anchors:
        chunk = _best_chunk(a.target, by_doc.get(a.doc_id, []))
        if chunk is not None:
            out.append(Candidate(query=a.query, chunk_id=chunk.id, doc_id=a.doc_id, generator=a.generator,
                                 key=f"{a.doc_id}:{a.generator}{a.ordinal}"))
    order = {c.id: i for i, c in enumerate(chunks)}
    return sorted(out, key=lambda c: (order[c.chunk_id], c.key))
