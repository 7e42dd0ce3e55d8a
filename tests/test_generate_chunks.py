"""Reading documents and chunking them with the base model's tokenizer: ids, offsets back to the source, overlap,
word boundaries, and clear errors for bad input."""
from __future__ import annotations

import json
import re

import pytest

from embedgate.harness.errors import DataError
from test_generate_support import vocabulary_texts
from embedgate.trainers.generate.chunk import chunk_documents, load_tokenizer, windows
from embedgate.trainers.generate.documents import parse_markdown, read_documents

KNOWN = " ".join(re.findall(r"[a-z]+", " ".join(vocabulary_texts()).lower()))  # every word: one token here


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from tiny_model import build_tiny_model

    model = build_tiny_model(tmp_path_factory.mktemp("chunk-model") / "m", vocabulary_texts(), max_seq_length=128)
    return load_tokenizer(str(model))


MARKDOWN = """---
author: someone
date: 2026-01-01
---
# The lease agreement

Opening words of the lease before any section.

## Rent and notice

The tenant pays rent monthly.

```
# not a heading, code
```

Setext heading here
-------------------

Text under the setext heading.
"""


def test_markdown_title_sections_front_matter_and_code(tmp_path):
    title, removed, sections = parse_markdown(MARKDOWN)
    assert title == "The lease agreement"
    assert [(s.heading, s.level) for s in sections] == [("Rent and notice", 2), ("Setext heading here", 2)]
    body = "".join(MARKDOWN[a:b] for a, b in _keep(removed, len(MARKDOWN)))
    assert "author" not in body and "# The lease" not in body and "## Rent" not in body and "-----" not in body
    assert "# not a heading, code" in body  # a '#' line inside a code fence is text
    rent = sections[0]
    assert MARKDOWN[rent.start:rent.end].strip().startswith("The tenant pays rent monthly.")
    assert MARKDOWN[rent.start:rent.end].rstrip().endswith("```")


def _keep(removed, n):
    pos = 0
    for a, b in sorted(removed):
        if a > pos:
            yield pos, a
        pos = max(pos, b)
    if pos < n:
        yield pos, n


def test_reading_a_folder(tmp_path):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "sub" / "lease.md").write_text(MARKDOWN, encoding="utf-8")
    (docs / "memo.txt").write_text("Memo on royalties\n\nThe licensee pays royalties quarterly.\n", encoding="utf-8")
    (docs / "notitle.txt").write_text("the licensee pays royalties quarterly, as the memo says. More text.\n")
    (docs / "zcopy.txt").write_text("Memo on royalties\n\nThe   licensee pays ROYALTIES quarterly.\n")  # same body
    (docs / "empty.md").write_text("# Only a title\n")
    (docs / "image.png").write_bytes(b"\x89PNG")
    (docs / "more.jsonl").write_text(json.dumps({"_id": "r1", "title": "Record one", "text": "Audit rights."})
                                     + "\n\n" + json.dumps({"id": 7, "text": "Governing law is New York."}) + "\n")
    (docs / "out").mkdir()  # an output folder inside the documents folder is not read back as documents
    (docs / "out" / "corpus.jsonl").write_text(json.dumps({"_id": "sub/lease#0", "text": "a chunk"}) + "\n")
    found, report = read_documents(docs, exclude=docs / "out")
    by_id = {d.id: d for d in found}
    assert sorted(by_id) == ["7", "memo", "notitle", "r1", "sub/lease"]
    assert by_id["memo"].title == "Memo on royalties" and by_id["memo"].body().text.strip() == \
        "The licensee pays royalties quarterly."
    assert by_id["notitle"].title == ""  # a first line that reads as a sentence is not a title
    assert by_id["r1"].title == "Record one" and by_id["r1"].source == "more.jsonl:1"
    assert by_id["7"].source == "more.jsonl:3"
    assert report.empty == ["empty"] and report.duplicates == [("zcopy", "memo")]
    assert report.ignored_files == ["image.png"]


@pytest.mark.parametrize("name,content,line,field,fragment", [
    ("bad.jsonl", b'{"_id": "a", "text": "ok"}\n{"_id": "b", "text": 5}\n', 2, "text", "expected a string"),
    ("bad.jsonl", b'{"_id": "a", "text": "ok"}\n{"text": "no id"}\n', 2, "_id", "missing or empty id"),
    ("bad.jsonl", b'{"_id": "a", "text": "ok"}\n{"_id": "b", "text": "x"\n', 2, None, "malformed JSON"),
    ("bad.txt", b"fine line\nbad \xff byte\n", 2, None, "not valid UTF-8"),
])
def test_bad_documents_name_file_line_and_field(tmp_path, name, content, line, field, fragment):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError) as err:
        read_documents(tmp_path)
    assert err.value.path == str(tmp_path / name) and err.value.line == line and err.value.field == field
    assert fragment in err.value.message


def test_duplicate_ids_across_files_are_an_error(tmp_path):
    (tmp_path / "a.txt").write_text("Some text here.")
    (tmp_path / "x.jsonl").write_text(json.dumps({"_id": "a", "text": "other"}) + "\n")
    with pytest.raises(DataError, match="duplicate document id 'a' \\(also from a.txt\\)") as err:
        read_documents(tmp_path)
    assert err.value.line == 1 and err.value.field == "_id"


def test_windows_cover_every_token_with_the_asked_overlap():
    offsets = [(i * 2, i * 2 + 1) for i in range(1000)]  # one-letter words: every token starts a word
    spans = windows(offsets, 200, 40)
    assert spans[0] == (0, 200)
    assert all(b[0] == a[1] - 40 for a, b in zip(spans, spans[1:]))
    assert all(e - s == 200 for s, e in spans[:-1]) and spans[-1][1] == 1000
    assert windows(offsets[:150], 200, 40) == [(0, 150)]


def test_chunks_keep_ids_offsets_and_overlap(tmp_path, tokenizer):
    words = KNOWN.split()
    text = " ".join(words[:700])  # every word is one token of this tokenizer
    (tmp_path / "plain.txt").write_text(text)
    docs, _ = read_documents(tmp_path)
    chunks, stats = chunk_documents(docs, tokenizer, size=100, overlap=25)
    n_tokens = len(tokenizer.offsets(text))
    assert [c.id for c in chunks] == [f"plain#{i}" for i in range(len(chunks))]
    for a, b in zip(chunks, chunks[1:]):
        assert b.token_start == a.token_end - 25
        assert a.n_tokens == 100
        # the overlap is the same text at the end of one chunk and the start of the next
        shared = text[b.char_start:a.char_end]
        assert a.text.endswith(shared) and b.text.startswith(shared) and len(shared.split()) >= 20
    assert chunks[-1].token_end == n_tokens and chunks[0].token_start == 0
    for c in chunks:
        assert text[c.char_start:c.char_end] == c.text
    assert stats["chunks"] == len(chunks) and stats["documents_too_short"] == []


def test_chunks_of_markdown_trace_back_to_the_source_without_headings(tmp_path, tokenizer):
    sections = "\n\n".join(f"## Part {k} heading\n\n" + " ".join(KNOWN.split()[k * 60:(k + 1) * 60])
                           for k in range(6))
    source = f"# Title of the doc\n\n{sections}\n"
    (tmp_path / "d.md").write_text(source)
    docs, _ = read_documents(tmp_path)
    chunks, _ = chunk_documents(docs, tokenizer, size=64, overlap=16)
    assert len(chunks) > 4
    for c in chunks:
        expected = re.sub(r"(?m)^#{1,6} .*\n", "", source[c.char_start:c.char_end])
        assert c.text == expected.strip()
        assert "heading" not in c.text and c.title == "Title of the doc"
        # its section is the last heading above where it starts
        assert c.section == re.findall(r"(?m)^## (.*)$", source[:c.char_start])[-1]


def test_chunk_boundaries_do_not_cut_words(tmp_path, tokenizer):
    # unknown words split into many word pieces: a window must still end between words
    text = " ".join(f"zqxwvk{i:03d}plmn" for i in range(300))
    (tmp_path / "odd.txt").write_text(text)
    docs, _ = read_documents(tmp_path)
    chunks, _ = chunk_documents(docs, tokenizer, size=50, overlap=10)
    assert len(chunks) > 5
    for c in chunks:
        assert c.char_start == 0 or text[c.char_start - 1] == " "
        assert c.char_end == len(text) or text[c.char_end] == " "
        assert c.n_tokens <= 50
    covered = set()
    for c in chunks:
        covered.update(range(c.token_start, c.token_end))
    assert covered == set(range(len(tokenizer.offsets(text))))


def test_too_short_documents_are_reported(tmp_path, tokenizer):
    (tmp_path / "tiny.txt").write_text("lease notice")
    (tmp_path / "long.txt").write_text(" ".join(KNOWN.split()[:80]))
    docs, _ = read_documents(tmp_path)
    chunks, stats = chunk_documents(docs, tokenizer, size=64, overlap=16)
    assert stats["documents_too_short"] == ["tiny"] and {c.doc_id for c in chunks} == {"long"}


def _pdf(lines: list[str]) -> bytes:
    """A minimal one-page PDF with text lines, written by hand (no PDF writer needed)."""
    content = "BT /F1 12 Tf 72 720 Td " + " ".join(f"({line}) Tj 0 -16 Td" for line in lines) + " ET"
    objs = ["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            "/Resources << /Font << /F1 5 0 R >> >> >>",
            f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{obj}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    return out + f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()


def test_pdf_without_pypdf_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    (tmp_path / "guide.pdf").write_bytes(_pdf(["Lease termination guide", "The tenant must give notice."]))
    monkeypatch.setitem(sys.modules, "pypdf", None)  # as if it were not installed
    with pytest.raises(DataError, match=r"pip install pypdf") as err:
        read_documents(tmp_path)
    assert err.value.path == str(tmp_path / "guide.pdf")


def test_pdf_text_is_read_with_pypdf(tmp_path):
    import pypdf  # noqa: F401  (a test dependency: the PDF path is tested, never skipped)
    (tmp_path / "guide.pdf").write_bytes(_pdf(["Lease termination guide", "The tenant must give notice in writing."]))
    (doc,), _ = read_documents(tmp_path)
    assert (doc.id, doc.kind, doc.title) == ("guide", "pdf", "Lease termination guide")
    assert doc.body().text.strip() == "The tenant must give notice in writing."
