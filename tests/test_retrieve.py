"""Exact retrieval agrees with a brute-force reference and breaks ties as trec_eval does (document id descending),
whatever the chunking."""
from __future__ import annotations

import numpy as np
import pytest

from embedgate.harness.retrieve import search


def reference(q, docs, ids, k):
    """Scores at fp32 precision, best first, ties by document id descending (trec_eval's order)."""
    out = []
    for row in (q.astype(np.float64) @ docs.astype(np.float64).T).astype(np.float32):
        by_id_desc = sorted(range(len(ids)), key=lambda j: ids[j], reverse=True)
        order = sorted(by_id_desc, key=lambda j: -row[j])[:k]  # stable: ties keep the id order
        out.append([ids[j] for j in order])
    return out


def _normed(rng, n, d):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("chunk_size", [7, 64, 50_000])
def test_matches_brute_force_for_any_chunk_size(chunk_size):
    rng = np.random.default_rng(0)
    docs, q = _normed(rng, 500, 16), _normed(rng, 20, 16)
    ids = [f"doc{i:04d}" for i in rng.permutation(500)]
    got = [[d for d, _ in r] for r in search(q, docs, ids, 25, chunk_size=chunk_size)]
    assert got == reference(q, docs, ids, 25)


def test_ties_are_broken_by_document_id_descending_across_the_cutoff():
    rng = np.random.default_rng(1)
    base = _normed(rng, 1, 8)[0]
    docs = np.stack([base] * 30 + list(_normed(rng, 10, 8)))  # 30 identical documents, all tied
    ids = [f"d{i:02d}" for i in rng.permutation(40)]
    for chunk in (5, 13, 1000):
        ranking = search(base[None, :], docs, ids, 10, chunk_size=chunk)[0]
        tied = sorted((ids[i] for i in range(30)), reverse=True)
        assert [d for d, _ in ranking] == tied[:10]
        assert len({s for _, s in ranking}) == 1


def test_scores_are_cosine_similarities():
    rng = np.random.default_rng(2)
    docs, q = _normed(rng, 50, 8), _normed(rng, 3, 8)
    ids = [str(i) for i in range(50)]
    for qi, ranking in enumerate(search(q, docs, ids, 5)):
        for d, s in ranking:
            exact = float(docs[int(d)].astype(np.float64) @ q[qi].astype(np.float64))
            assert s == float(np.float32(exact))  # fp64 product, kept at fp32 precision


def test_hnsw_finds_nearly_all_exact_neighbours():
    rng = np.random.default_rng(3)
    docs, q = _normed(rng, 3000, 32), _normed(rng, 50, 32)
    ids = [f"d{i}" for i in range(3000)]
    exact = search(q, docs, ids, 10)
    approx = search(q, docs, ids, 10, index="hnsw")
    overlap = np.mean([len({d for d, _ in a} & {d for d, _ in e}) / 10 for a, e in zip(approx, exact)])
    assert overlap > 0.95


def test_k_larger_than_corpus_and_empty_inputs():
    rng = np.random.default_rng(4)
    docs, q = _normed(rng, 3, 4), _normed(rng, 2, 4)
    assert [len(r) for r in search(q, docs, ["a", "b", "c"], 10)] == [3, 3]
    assert search(q, docs[:0], [], 10) == [[], []]
