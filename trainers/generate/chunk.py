"""Token-window chunking with the base model's own tokenizer, so a chunk's size is what the model will see.

Windows of ``size`` tokens overlap by ``overlap`` tokens; a window never ends inside a word when a word boundary
is near (long unbroken runs such as URLs are cut where they must be). Each chunk keeps its document id, its
position, its character span in the source text and its token span in the document body.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from embedgate.harness.errors import ConfigError, ModelError

from .documents import SourceDocument

log = logging.getLogger(__name__)

DEFAULT_CHUNK_TOKENS = 200
DEFAULT_OVERLAP = 40
MIN_CHUNK_TOKENS = 16
_WORD_BACKOFF = 16  # how many tokens a boundary may move to avoid cutting a word


@dataclass(frozen=True)
class Chunk:
    id: str  # "<doc_id>#<n>"
    doc_id: str
    n: int
    text: str
    title: str
    section: str  # heading of the markdown section the chunk starts in ("" if none)
    char_start: int  # in the source text
    char_end: int
    token_start: int  # in the tokenised document body
    token_end: int

    @property
    def n_tokens(self) -> int:
        return self.token_end - self.token_start

    @property
    def sha256(self) -> str:
        return hashlib.sha256(f"{self.title}\x1f{self.text}".encode("utf-8")).hexdigest()

    def record(self, source: str, split: str | None = None) -> dict[str, Any]:
        out = asdict(self)
        out.pop("text")
        out.update(source=source, n_tokens=self.n_tokens, sha256=self.sha256)
        if split is not None:
            out["split"] = split
        return out


@dataclass
class Tokenizer:
    """A Hugging Face fast tokenizer and the sequence length of the model it belongs to."""

    name: str
    path: str
    hf: Any
    max_seq_length: int | None

    def offsets(self, text: str) -> list[tuple[int, int]]:
        enc = self.hf(text, add_special_tokens=False, return_offsets_mapping=True, return_attention_mask=False,
                      return_token_type_ids=False, verbose=False)
        return [tuple(o) for o in enc["offset_mapping"]]


def load_tokenizer(model: str) -> Tokenizer:
    """The tokenizer of ``model`` (a folder or a hub id resolved offline-first like every model here)."""
    from embedgate.harness.models import resolve_model_path

    path, _ = resolve_model_path(model)
    try:
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    except Exception as exc:
        raise ModelError(f"cannot load a tokenizer: {exc}", path=path) from None
    if not getattr(hf, "is_fast", False):
        raise ModelError("chunking needs a fast tokenizer (one with character offsets)", path=path)
    hf.model_max_length = 1 << 30  # chunking tokenises whole documents: no "longer than the maximum" warnings
    max_seq = None
    cfg = Path(path) / "sentence_bert_config.json"
    if cfg.is_file():
        try:
            max_seq = json.loads(cfg.read_text(encoding="utf-8")).get("max_seq_length")
        except (OSError, ValueError):
            max_seq = None
    return Tokenizer(name=model, path=path, hf=hf, max_seq_length=max_seq)


def _attached(offsets: list[tuple[int, int]], i: int) -> bool:
    """Token i continues the word of token i-1 (no whitespace between them)."""
    return 0 < i < len(offsets) and offsets[i][0] == offsets[i - 1][1]


def _word_start(offsets: list[tuple[int, int]], i: int, lo: int) -> int:
    """Move boundary i back to the start of its word, unless that would take more than _WORD_BACKOFF tokens or
    go to ``lo`` or below."""
    j = i
    while j > lo + 1 and _attached(offsets, j) and i - j < _WORD_BACKOFF:
        j -= 1
    return j if not _attached(offsets, j) else i


def windows(offsets: list[tuple[int, int]], size: int, overlap: int) -> list[tuple[int, int]]:
    """Token windows [start, end) covering every token, ``size`` long at most, overlapping by about ``overlap``."""
    n = len(offsets)
    if n == 0:
        return []
    if n <= size:
        return [(0, n)]
    out: list[tuple[int, int]] = []
    start = 0
    while True:
        end = start + size
        if end >= n:
            out.append((start, n))
            return out
        end = _word_start(offsets, end, start)
        out.append((start, end))
        nxt = _word_start(offsets, end - overlap, start)
        start = nxt if nxt > start else end - overlap


def validate_sizes(size: int, overlap: int, tokenizer: Tokenizer | None = None) -> None:
    if size < MIN_CHUNK_TOKENS:
        raise ConfigError(f"chunk size must be at least {MIN_CHUNK_TOKENS} tokens, got {size}", field="chunk_tokens")
    if not 0 <= overlap <= size // 2:
        raise ConfigError(f"overlap must be between 0 and half the chunk size ({size // 2}), got {overlap}",
                          field="overlap")


def chunk_documents(docs: list[SourceDocument], tokenizer: Tokenizer, *, size: int = DEFAULT_CHUNK_TOKENS,
                    overlap: int = DEFAULT_OVERLAP, min_tokens: int = MIN_CHUNK_TOKENS
                    ) -> tuple[list[Chunk], dict[str, Any]]:
    """Chunks of every document, in document order, and counts (documents too short, tail chunks dropped)."""
    validate_sizes(size, overlap, tokenizer)
    chunks: list[Chunk] = []
    too_short: list[str] = []
    tails_merged = 0
    for doc in docs:
        body = doc.body()
        offsets = tokenizer.offsets(body.text)
        spans = windows(offsets, size, overlap)
        if len(offsets) < min_tokens:
            too_short.append(doc.id)
            continue
        if len(spans) > 1 and spans[-1][1] - spans[-1][0] < min_tokens:
            # a sliver at the end (only possible with a small overlap): the previous window takes its tokens
            spans[-2:] = [(spans[-2][0], spans[-1][1])]
            tails_merged += 1
        for n, (ts, te) in enumerate(spans):
            b0, b1 = offsets[ts][0], offsets[te - 1][1]
            c0, c1 = body.to_source(b0), body.to_source(b1, end=True)
            section = ""
            for sec in doc.sections:  # the innermost section the chunk starts in
                if sec.start <= c0 < sec.end:
                    section = sec.heading
            chunks.append(Chunk(id=f"{doc.id}#{n}", doc_id=doc.id, n=n, text=body.text[b0:b1].strip(),
                                title=doc.title, section=section, char_start=c0, char_end=c1, token_start=ts,
                                token_end=te))
    stats = {"chunks": len(chunks), "chunk_tokens": size, "overlap": overlap, "min_tokens": min_tokens,
             "documents_too_short": too_short, "tail_chunks_merged": tails_merged, "tokenizer": tokenizer.name}
    if tokenizer.max_seq_length and size + 2 > tokenizer.max_seq_length:
        log.warning("chunks of %d tokens are longer than the model's max_seq_length %d: it will truncate them",
                    size, tokenizer.max_seq_length)
    return chunks, stats
