"""Training pairs from graded judgments and pairs files, and hard-negative mining that never hands a judged
positive to the loss as a negative."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import write_beir
from embedgate.harness import data
from embedgate.harness.errors import DataError
from embedgate.harness.models import load_model
from embedgate.trainers.mining import MiningSettings, mine
from embedgate.trainers.pairs import pairs_from_retrieval_set, read_pairs_file

CORPUS = {
    "gl1": ("", "this agreement is governed by the laws of new york"),
    "gl2": ("", "the laws of new york govern this agreement and its interpretation"),
    "gl3": ("", "governing law new york state courts"),
    "gl4": ("", "this agreement shall be governed by english law"),
    "tm1": ("", "either party may terminate this agreement upon thirty days notice"),
    "tm2": ("", "termination for convenience on written notice"),
    "ry1": ("", "the licensee shall pay royalties quarterly"),
    "cf1": ("", "confidential information shall not be disclosed"),
    "cat": ("", "cats purr and dogs bark in the garden"),
    "pro": ("", "protein folding in cells depends on chaperones"),
}
QUERIES = {"q1": "new york governing law", "q2": "termination on notice", "q3": "royalty payments"}
QRELS = {"q1": {"gl1": 4, "gl2": 3, "gl3": 1, "gl4": 0}, "q2": {"tm1": 2, "tm2": 1}, "q3": {"ry1": 1}}


@pytest.fixture
def graded(tmp_path):
    return data.load(write_beir(tmp_path / "graded", CORPUS, QUERIES, QRELS, split="train"), "train")


def test_graded_pairs_keep_the_best_judgments_and_remember_all_positives(graded):
    ps = pairs_from_retrieval_set(graded, min_relevance=2)
    assert [(p.query_id, p.positive_id, p.relevance) for p in ps.pairs] == [
        ("q1", "gl1", 4), ("q1", "gl2", 3), ("q2", "tm1", 2)]
    # every judged positive (grade >= 1) is known, so mining can keep the 1-graded gl3 out of the negatives;
    # gl4 is judged non-relevant (0) and may be a negative
    assert ps.judged["new york governing law"] == {CORPUS["gl1"][1], CORPUS["gl2"][1], CORPUS["gl3"][1]}
    assert len(ps.corpus) == len(CORPUS)
    all_pairs = pairs_from_retrieval_set(graded, min_relevance=1)
    assert len(all_pairs.pairs) == 6
    assert len(pairs_from_retrieval_set(graded, min_relevance=1, max_per_query=1).pairs) == 3
    capped = pairs_from_retrieval_set(graded, min_relevance=1, max_pairs=4, seed=1)
    assert len(capped.pairs) == 4 and capped.content_hash() != all_pairs.content_hash()
    with pytest.raises(DataError, match="grades present"):
        pairs_from_retrieval_set(graded, min_relevance=5)


def test_pairs_files_are_validated_by_line_and_field(tmp_path):
    good = tmp_path / "pairs.jsonl"
    good.write_text('{"query": "a", "positive": "b", "negative_1": "c", "negative_2": "d"}\n'
                    '{"anchor": "e", "positive": "f", "negative_1": "g", "negative_2": "h"}\n')
    ps = read_pairs_file(good)
    assert [p.negatives for p in ps.pairs] == [("c", "d"), ("g", "h")] and ps.n_negatives == 2
    assert ps.to_dataset().column_names == ["anchor", "positive", "negative_1", "negative_2"]
    csv = tmp_path / "pairs.csv"
    csv.write_text("query,positive\nwhat,that\n")
    assert read_pairs_file(csv).pairs[0].positive == "that"
    for text, line, field in [
        ('{"query": "a", "positive": "b"}\n{"query": "c"}\n', 2, "positive"),
        ('{"query": "a", "positive": "b", "negative": "x"}\n{"query": "c", "positive": "d"}\n', 2, "negative"),
        ('{"query": "", "positive": "b"}\n', 1, "query"),
        ('{"query": "a", "positive": "b", "negative_2": "x"}\n', 1, "negative_2"),
        ('{"query": "a", "positive": "b"\n', 1, None),
    ]:
        bad = tmp_path / "bad.jsonl"
        bad.write_text(text)
        with pytest.raises(DataError) as info:
            read_pairs_file(bad)
        assert (info.value.line, info.value.field) == (line, field) and info.value.path == str(bad)


def test_mining_never_takes_a_judged_positive_as_a_negative(graded, tiny_model):
    base = load_model(str(tiny_model))
    ps = pairs_from_retrieval_set(graded, min_relevance=2)
    # relative_margin None: every ranked candidate is eligible, so only the judged-positive rule keeps gl3 out
    settings = MiningSettings(num_negatives=4, per_pair=2, relative_margin=None)
    mined, stats = mine(ps, base, settings, cache=None)
    assert len(mined.pairs) == len(ps.pairs) == stats["pairs_out"]
    judged_texts = {t for texts in ps.judged.values() for t in texts}
    for p in mined.pairs:
        assert len(p.negatives) == 2 and len(set(p.negatives)) == 2
        assert not set(p.negatives) & ps.judged[p.query]
        assert p.positive not in p.negatives
    # gl3 (judged 1) would otherwise be a candidate for q1: the statistics count it as kept out
    assert stats["skipped_judged_positives"] >= 1 and stats["kept_out"] == "judged positives"
    # what was kept out is named by the pairs' source, once: the log's pairs say clicked documents
    import dataclasses

    _, log_stats = mine(dataclasses.replace(ps, judged_label="clicked documents"), base, settings, cache=None)
    assert log_stats["kept_out"] == "clicked documents"
    # the two pairs of q1 take different negatives from the query's list (round robin)
    q1 = [p.negatives for p in mined.pairs if p.query_id == "q1"]
    assert q1[0] != q1[1]
    # statistics are recomputed from the embeddings, independently of sentence-transformers' printout
    model = base.model
    qv = model.encode([ps.pairs[0].query], normalize_embeddings=True)
    pv = model.encode([ps.pairs[0].positive], normalize_embeddings=True)
    pos = [float(np.dot(model.encode([p.query], normalize_embeddings=True)[0],
                        model.encode([p.positive], normalize_embeddings=True)[0])) for p in ps.pairs]
    assert stats["positive_scores"]["mean"] == pytest.approx(np.mean(pos), abs=1e-4)
    assert float(np.dot(qv[0], pv[0])) == pytest.approx(pos[0], abs=1e-6)
    assert judged_texts and stats["sentence_transformers_report"]


def test_a_relative_margin_drops_candidates_too_close_to_the_positive(graded, tiny_model):
    base = load_model(str(tiny_model))
    ps = pairs_from_retrieval_set(graded, min_relevance=1)
    model = base.model
    mined, stats = mine(ps, base, MiningSettings(num_negatives=3, relative_margin=0.05), cache=None)
    for p in mined.pairs:
        q = model.encode([p.query], normalize_embeddings=True)[0]
        s_pos = float(np.dot(q, model.encode([p.positive], normalize_embeddings=True)[0]))
        s_neg = float(np.dot(q, model.encode([p.negatives[0]], normalize_embeddings=True)[0]))
        assert s_neg <= s_pos - abs(s_pos) * 0.05 + 1e-6
    assert stats["pairs_in"] == 6 and stats["pairs_out"] + stats["pairs_dropped_without_negative"] == 6


def test_every_loss_builds_and_computes_on_a_batch(tiny_model):
    """mnrl, cached_mnrl, gist (the tiny model as its own guide) and cached_gist, bare and inside MatryoshkaLoss."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import losses

    from embedgate.trainers.losses import build_loss
    from embedgate.trainers.recipe import LossSettings

    model = SentenceTransformer(str(tiny_model), device="cpu")
    guide = SentenceTransformer(str(tiny_model), device="cpu")
    texts = {"anchor": ["governing law", "termination notice"],
             "positive": ["the laws of new york govern", "either party may terminate"]}
    features = [model.tokenize(texts[c]) for c in ("anchor", "positive")]
    expected = {"mnrl": losses.MultipleNegativesRankingLoss, "cached_mnrl": losses.CachedMultipleNegativesRankingLoss,
                "gist": losses.GISTEmbedLoss, "cached_gist": losses.CachedGISTEmbedLoss}
    for name, cls in expected.items():
        for dims in ((), (32, 16)):
            # the settings a loss does not use are refused by LossSettings itself, so give each only its own
            own = ({"mini_batch_size": 1} if name.startswith("cached") else {}) | (
                {"guide_model": str(tiny_model)} if "gist" in name else {})
            loss = build_loss(LossSettings(name=name, matryoshka_dims=dims, **own), model,
                              guide=guide if "gist" in name else None)
            assert isinstance(loss, losses.MatryoshkaLoss if dims else cls)
            value = loss(features, labels=None)
            assert torch.isfinite(value) and value.requires_grad
