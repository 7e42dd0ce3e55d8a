"""Contamination guard: exact and near-duplicate held-out queries in training texts, on made-up and real data."""
from __future__ import annotations

import random

import pytest

from embedgate.harness import data
from embedgate.trainers.contamination import HeldOutQuery, _Index, check, normalize, shingles


def jaccard(a: str, b: str, n: int = 5) -> float:
    """Independent of the module: character n-gram Jaccard on texts normalised by hand-written rules."""
    def grams(t):
        t = " ".join("".join(ch if ch.isalnum() else " " for ch in t.lower()).split())
        return {t[i:i + n] for i in range(len(t) - n + 1)} or {t}
    ga, gb = grams(a), grams(b)
    return len(ga & gb) / len(ga | gb)


HELD = [HeldOutQuery("demo test", "t1", "Which law governs this agreement?"),
        HeldOutQuery("demo test", "t2", "Termination for convenience upon thirty days written notice by either party "
                                     "to the other party in accordance with the notice provisions"),
        HeldOutQuery("demo test", "t3", "audit rights")]


def rows(pairs):
    for i, (q, p) in enumerate(pairs):
        yield "query", q, f"q{i}", i
        yield "positive", p, f"d{i}", i


def test_normalisation_ignores_case_width_punctuation_and_spacing():
    assert normalize("Which LAW governs\tthis  agreement?") == normalize("which law governs this agreement")
    assert normalize("ＡＵＤＩＴ  Rights!") == "audit rights"  # full-width letters (NFKC)
    assert normalize("don’t — stop") == normalize("don't stop")


def test_exact_and_near_duplicates_are_found_and_named():
    near = ("Termination for convenience upon thirty days' written notice by either party to the other party, in "
            "accordance with the notice provisions.")  # differs in punctuation only
    close = ("Termination for convenience upon thirty day written notice by either party to the other party in "
             "accordance with the notice provisions")  # one letter less
    far = "Termination for cause upon material breach"
    assert jaccard(close, HELD[1].text) >= 0.9 > jaccard(far, HELD[1].text)
    report = check(rows([("which law governs this agreement", "Governing law: New York."),
                         (close, "Either party may terminate."),
                         (far, near),  # a held-out query's text as a training positive is a leak too
                         ("audit", "The licensor may audit the books.")]),
                   HELD, [{"name": "demo"}], threshold=0.9)
    found = {(o.kind, o.training_row, o.heldout.query_id, o.match) for o in report.overlaps}
    assert found == {("query", 0, "t1", "exact"), ("query", 1, "t2", "near"), ("positive", 2, "t2", "exact")}
    near_hit = next(o for o in report.overlaps if o.match == "near")
    assert near_hit.similarity == pytest.approx(jaccard(close, HELD[1].text))
    message = report.message()
    assert "t1" in message and "t2" in message and "row 1 q0" in message and "allow_contamination" in message


def test_shared_documents_are_counted_not_blocked():
    report = check(rows([("a new training query", "A clause that a held-out query also retrieves.")]), HELD,
                   [{"name": "demo"}], heldout_positive_texts={"a clause that a held-out query also retrieves"})
    assert report.clean and report.shared_documents == 1
    assert report.as_dict()["policy"].startswith("a held-out query's text")


def test_the_index_misses_no_pair_above_the_threshold():
    """The rare-n-gram candidate search against brute force over every pair, on texts built to be close."""
    rng = random.Random(0)
    words = ["law", "party", "notice", "term", "audit", "licence", "royalty", "breach", "cure", "days"]
    base = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(60)]
    variants = [" ".join(t.split()[:-1] + [rng.choice(words)]) for t in base]
    held = [HeldOutQuery("x", str(i), t) for i, t in enumerate(base)]
    index = _Index(held, 5)
    for threshold in (0.6, 0.8, 0.9):
        for t in variants + base[:10]:
            g = shingles(normalize(t), 5)
            got = {held[i].query_id for i, _ in index.near(g, threshold)}
            brute = set()
            for h in held:
                other = shingles(normalize(h.text), 5)
                if len(g & other) / len(g | other) >= threshold:
                    brute.add(h.query_id)
            assert got == brute


def _beir_overlaps(datasets_dir, name):
    train = data.load(datasets_dir / name, "train")
    test = data.load(datasets_dir / name, "test")
    held = [HeldOutQuery(f"{name} test", q, t) for q, t in sorted(test.queries.items())]
    training = (("query", t, q, i) for i, (q, t) in enumerate(sorted(train.queries.items())))
    return train, test, check(training, held, [{"name": name}], threshold=0.9)


def test_real_scifact_claims_shared_by_train_and_test(datasets_dir):
    train, test, report = _beir_overlaps(datasets_dir, "scifact")
    # SOURCE.md: 2 claim texts occur in both train and test; count them independently by raw equality
    raw_shared = set(train.queries.values()) & set(test.queries.values())
    assert len(raw_shared) == 2
    exact = {o.training_text for o in report.overlaps if o.match == "exact"}
    assert exact == raw_shared
    # and the claim variants (negated or with other numbers) SciFact writes in pairs are near duplicates
    near = [o for o in report.overlaps if o.match == "near"]
    assert near and all(jaccard(o.training_text, o.heldout.text) >= 0.9 - 1e-9 for o in near)


def test_real_nfcorpus_queries_shared_by_train_and_test(datasets_dir):
    train, test, report = _beir_overlaps(datasets_dir, "nfcorpus")
    raw_shared = set(train.queries.values()) & set(test.queries.values())
    assert len(raw_shared) >= 4
    assert raw_shared <= {o.training_text for o in report.overlaps}
