"""Offline generators, the filters and the split by document."""
from __future__ import annotations

from collections import Counter

import pytest

from embedgate.harness.errors import ConfigError
from test_generate_support import vocabulary_texts
from embedgate.trainers.generate.chunk import chunk_documents, load_tokenizer
from embedgate.trainers.generate.documents import read_documents
from embedgate.trainers.generate.filters import (Candidate, FilterReport, FilterSettings, Pair, apply_filters,
                                       drop_near_duplicates_of_test, longest_shared_run)
from embedgate.trainers.generate.offline import candidates, extract, paragraph_spans, sentence_spans
from embedgate.trainers.generate.split import assign, parse_fractions


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from tiny_model import build_tiny_model

    model = build_tiny_model(tmp_path_factory.mktemp("pairs-model") / "m", vocabulary_texts(), max_seq_length=128)
    return load_tokenizer(str(model))


# ------------------------------------------------------------------------------------------ offline generators

FILLER = ("The parties agree that the terms in this part apply to every renewal of the agreement and to each "
          "schedule attached to it, unless a later written amendment signed by both of them says otherwise. ")


def test_sentence_splitting_keeps_abbreviations_and_initials():
    text = ("Mr. Smith paid Rs. 500 under Sec. 4 of the Act, e.g. by cheque. The court, per J. Kumar, agreed. "
            "See No. 12 below! Then it ended.")
    got = [text[a:b].strip() for a, b in sentence_spans(text)]
    assert got == ["Mr. Smith paid Rs. 500 under Sec. 4 of the Act, e.g. by cheque.",
                   "The court, per J. Kumar, agreed.", "See No. 12 below!", "Then it ended."]


def test_paragraphs_of_wrapped_and_one_line_styles():
    wrapped = "A short wrapped line\nthat continues here.\n\nSecond block."
    assert [wrapped[a:b] for a, b in paragraph_spans(wrapped)] == ["A short wrapped line\nthat continues here.",
                                                                    "Second block."]
    long_lines = ("x" * 200 + ".\n") * 3
    assert len(paragraph_spans(long_lines)) == 3


def test_offline_generators_take_queries_out_of_the_text(tmp_path, tokenizer):
    lead = "The tenant must give written notice of termination at least three months before the lease ends."
    md = (f"# Lease handbook for tenants\n\nOpening remarks. {FILLER * 2}\n\n"
          f"## Ending the lease early\n\n{lead} {FILLER * 3}\n\n"
          f"## Paying rent\n\nRent is due monthly. {FILLER * 2}\n\n## Empty part\n\n## Last part\n\nShort.\n")
    (tmp_path / "hand.md").write_text(md)
    docs, _ = read_documents(tmp_path)
    docs, anchors = extract(docs, lead_gap_chars=200)
    chunks, _ = chunk_documents(docs, tokenizer, size=64, overlap=16)
    cands = candidates(anchors, chunks)
    by_gen = {(c.generator, c.query): c for c in cands}
    text_of = {c.id: c.text for c in chunks}
    # title -> the first chunk of the body
    assert by_gen[("title", "Lease handbook for tenants")].chunk_id == "hand#0"
    # heading -> the chunk holding most of its section; sections without text ask for nothing
    ending = by_gen[("heading", "Ending the lease early")]
    start = md.index("## Ending") + len("## Ending the lease early\n\n")
    head = (start, start + 400)
    share = {c.id: min(c.char_end, head[1]) - max(c.char_start, head[0]) for c in chunks}
    assert ending.chunk_id == max(share, key=lambda cid: (share[cid], -int(cid.split("#")[1])))
    assert ("heading", "Empty part") not in by_gen and ("heading", "Last part") not in by_gen
    # lead sentence -> the rest of its paragraph, and the sentence itself is gone from the corpus
    rest = md.index(lead) + len(lead)
    share = {c.id: min(c.char_end, rest + 400) - max(c.char_start, rest) for c in chunks}
    assert by_gen[("lead", lead)].chunk_id == max(share, key=lambda cid: (share[cid], -int(cid.split("#")[1])))
    corpus = " ".join(text_of.values())
    assert lead not in corpus and "Lease handbook" not in corpus and "Ending the lease early" not in corpus
    assert FILLER.strip()[:60] in corpus


def test_unknown_offline_generator_is_refused(tmp_path):
    (tmp_path / "a.txt").write_text("Some title here\n\nBody text.")
    docs, _ = read_documents(tmp_path)
    with pytest.raises(ConfigError, match="unknown offline generator"):
        extract(docs, ("title", "summary"))


# ------------------------------------------------------------------------------------------ filters

def cand(query, chunk, doc=None, key=None):
    return Candidate(query, chunk, doc or chunk.split("#")[0], "llm", key or f"{chunk}:{query[:8]}")


PASSAGES = {
    "a#0": "The licensee shall pay royalties quarterly within thirty days of the end of each quarter.",
    "a#1": "Audit rights allow the licensor to inspect the books once a year during business hours.",
    "b#0": "Either party may terminate this agreement upon ninety days written notice to the other party.",
    "c#0": "Standard boilerplate: this page intentionally left blank.",
    "d#0": "Standard boilerplate: this page intentionally LEFT blank.",
}


def test_longest_shared_run_counts_words_in_a_row():
    assert longest_shared_run("when must the licensee pay royalties quarterly", PASSAGES["a#0"]) == 3  # "pay royalties quarterly"
    assert longest_shared_run("royalty schedule", PASSAGES["a#0"]) == 0


def test_each_filter_drops_what_it_should_and_counts_it():
    cands = [
        cand("royalties?", "a#0"),                                                     # too short (1 word)
        cand("licensee shall pay royalties quarterly within thirty days", "a#0"),      # 8 of 8 words copied
        cand("how often are royalty payments due", "a#0"),                             # kept
        cand("How often are royalty payments due?", "a#0", key="a#0:dup"),             # duplicate, same passage
        cand("how often are royalty payments due", "a#1", key="a#1:merge"),            # same doc: merged
        cand("when can the licensor look at the accounts", "a#1"),                     # kept
        cand("what happens at the end of the contract", "a#1"),                        # across documents...
        cand("What happens at the end of the contract", "b#0"),                        # ...both dropped
        cand("is there a blank page in the agreement", "c#0"),                         # passage not unique
    ]
    pairs, report = apply_filters(cands, PASSAGES, FilterSettings())
    assert [(p.query, p.chunk_ids) for p in pairs] == [
        ("how often are royalty payments due", ["a#0", "a#1"]),
        ("when can the licensor look at the accounts", ["a#1"])]
    assert report.as_dict()["dropped"] == {"too_short": 1, "copies_passage": 1, "ambiguous_passage": 1,
                                           "duplicate_across_documents": 2, "duplicate": 1,
                                           "near_duplicate_of_test_query": 0}
    assert report.merged == 1 and report.kept == 2
    assert report.candidates == report.kept + sum(report.dropped.values()) + report.merged
    assert report.examples["copies_passage"][0]["detail"] == "8 of 8 words in a row are in the passage"


def test_copy_threshold_scales_with_query_length():
    s = FilterSettings(max_copy_ratio=0.75, min_copy_words=4)
    # 12 words sharing a 6-word run: 6 < ceil(0.75 * 12) = 9, kept; sharing 9 words in a row: dropped
    q_keep = "in which cases shall pay royalties quarterly within thirty days apply here"
    q_drop = "royalties quarterly within thirty days of the end of each quarter for licensees"
    pairs, report = apply_filters([cand(q_keep, "a#0"), cand(q_drop, "a#0")], PASSAGES, s)
    assert [p.query for p in pairs] == [q_keep] and report.dropped["copies_passage"] == 1


def test_train_queries_near_a_test_query_are_dropped_by_the_guards_rule():
    pairs = [Pair("t1", "what is the notice period for ending the lease", "test-doc", ["test-doc#0"], "llm"),
             Pair("r1", "What is the notice period for ending the lease?!", "train-doc", ["train-doc#0"], "llm"),
             Pair("r2", "what is the notice period for ending the leases", "train-doc", ["train-doc#1"], "llm"),
             Pair("r3", "who pays for repairs to the roof", "train-doc", ["train-doc#1"], "llm")]
    split = {"test-doc": "test", "train-doc": "train"}
    report = FilterReport(candidates=4, kept=4)
    kept = drop_near_duplicates_of_test(pairs, split, report)
    assert [p.query_id for p in kept] == ["t1", "r3"]
    assert report.dropped["near_duplicate_of_test_query"] == 2 and report.kept == 2


# ------------------------------------------------------------------------------------------ split

def test_split_is_by_document_seeded_and_stable_when_documents_are_added():
    ids = [f"doc{i}" for i in range(2000)]
    split, method = assign(ids, (0.7, 0.1, 0.2), seed=0)
    assert method == "hash"
    counts = Counter(split.values())
    assert abs(counts["train"] / 2000 - 0.7) < 0.04 and abs(counts["test"] / 2000 - 0.2) < 0.04
    assert assign(ids, (0.7, 0.1, 0.2), seed=0)[0] == split
    other = assign(ids, (0.7, 0.1, 0.2), seed=1)[0]
    assert sum(split[d] != other[d] for d in ids) > 500
    more = assign(ids + [f"new{i}" for i in range(500)], (0.7, 0.1, 0.2), seed=0)[0]
    assert all(more[d] == split[d] for d in ids)  # adding documents moves no old one


def test_small_corpora_still_get_train_and_test():
    for n in (2, 3, 5):
        split, method = assign([f"d{i}" for i in range(n)], (0.7, 0.1, 0.2), seed=0)
        assert {"train", "test"} <= set(split.values())


@pytest.mark.parametrize("text", ["0.7,0.3", "0.8,0.1,0.2", "1,0,0", "a,b,c"])
def test_bad_split_fractions(text):
    with pytest.raises(ConfigError):
        parse_fractions(text)
