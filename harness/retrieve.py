"""Top-k retrieval by inner product (cosine on normalised vectors) with faiss.

Exact search runs over corpus chunks and merges per-chunk top-k lists, so memory stays bounded by
``queries x chunk``. Ties are broken deterministically in trec_eval's order: higher score first, then the larger
document id (trec_eval sorts a run by score, then by docno descending; pytrec_eval, BEIR and MTEB inherit it). So a
saved run scored by trec_eval gives the numbers embedgate reports, ties included. Ties are not rare: documents that
agree on their first max_seq_length tokens embed identically (ACORD has hundreds in its top-100 lists, and the tie
order moves its NDCG@10 by 5%). A tie that straddles the cut-off is resolved by fetching more from the chunk, so the
result never depends on the corpus order or the chunk size. HNSW (approximate) is an option for corpora too big for
exact search.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

Ranking = list[tuple[str, float]]


def _faiss():
    import faiss  # imported lazily: it is heavy and only needed here

    return faiss


def _rescore(docs: np.ndarray, query64: np.ndarray) -> np.ndarray:
    """Inner products computed in float64 (the same for any batch or chunk shape: BLAS and non-BLAS paths round
    differently in float32), then rounded to float32, the precision of the embeddings and the precision trec_eval
    keeps for a run's scores: two documents closer than that are a tie, ordered by the tie rule, as trec_eval
    would order them. Returned as float64 holding float32 values."""
    return (docs.astype(np.float64) @ query64).astype(np.float32).astype(np.float64)


def _exact_chunk(faiss, queries: np.ndarray, docs: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per query: (scores, local indices) holding the top k plus every document tied with the k-th.

    faiss finds candidates; they are rescored (``_rescore``) so that a score does not depend on the batch or chunk
    shape."""
    index = faiss.IndexFlatIP(docs.shape[1])
    index.add(docs)
    n = docs.shape[0]
    fetch = min(n, k + 8)
    _, idx = index.search(queries, fetch)
    out = []
    for qi in range(len(queries)):
        q64 = queries[qi].astype(np.float64)
        i = idx[qi][idx[qi] >= 0]
        s = _rescore(docs[i], q64)
        if fetch < n and len(s) >= k and s.min() >= np.sort(s)[-k]:
            # everything fetched ties with the k-th: more ties may lie beyond, so rescore the whole chunk
            full = _rescore(docs, q64)
            i = np.nonzero(full >= np.sort(s)[-k])[0]
            s = full[i]
        out.append((s, i))
    return out


def search(query_vectors: np.ndarray, doc_vectors: np.ndarray, doc_ids: Sequence[str], k: int = 100, *,
           chunk_size: int = 50_000, query_block: int = 4096, index: str = "exact",
           hnsw_m: int = 32, hnsw_ef_search: int = 256) -> list[Ranking]:
    """One ranking per query: [(doc_id, score), ...] best first, at most k long."""
    faiss = _faiss()
    queries = np.ascontiguousarray(query_vectors, dtype=np.float32)
    docs = np.ascontiguousarray(doc_vectors, dtype=np.float32)
    if len(doc_ids) != len(docs):
        raise ValueError("doc_ids and doc_vectors differ in length")
    if len(docs) == 0 or len(queries) == 0:
        return [[] for _ in range(len(queries))]
    # id order as integers, so tie-breaking compares ints rather than strings (code point order = strcmp on UTF-8)
    id_rank = id_ranks(doc_ids)
    k = max(1, int(k))
    if index == "hnsw":
        return _hnsw(faiss, queries, docs, doc_ids, id_rank, k, hnsw_m, hnsw_ef_search)
    if index != "exact":
        raise ValueError(f"unknown index {index!r}; use 'exact' or 'hnsw'")
    rankings: list[Ranking] = []
    for q0 in range(0, len(queries), query_block):
        qblock = queries[q0:q0 + query_block]
        cand_scores: list[list[np.ndarray]] = [[] for _ in range(len(qblock))]
        cand_idx: list[list[np.ndarray]] = [[] for _ in range(len(qblock))]
        for c0 in range(0, len(docs), chunk_size):
            for qi, (s, i) in enumerate(_exact_chunk(faiss, qblock, docs[c0:c0 + chunk_size], k)):
                cand_scores[qi].append(s)
                cand_idx[qi].append(i + c0)
        for qi in range(len(qblock)):
            rankings.append(_top(np.concatenate(cand_scores[qi]), np.concatenate(cand_idx[qi]), id_rank, doc_ids, k))
    return rankings


def id_ranks(doc_ids: Sequence[str]) -> np.ndarray:
    """Each document's position in id order: the tie rule compares these integers (code point order)."""
    order = np.argsort(np.asarray(doc_ids, dtype=object), kind="stable")
    ranks = np.empty(len(doc_ids), dtype=np.int64)
    ranks[order] = np.arange(len(doc_ids))
    return ranks


def top_k(scores: np.ndarray, doc_ids: Sequence[str], id_rank: np.ndarray, k: int) -> Ranking:
    """The best k of one query's scores over every document, ties in trec_eval's order (as ``search``)."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) == 0:
        return []
    k = min(max(1, int(k)), len(scores))
    kth = np.partition(scores, -k)[-k]
    idx = np.nonzero(scores >= kth)[0]
    return _top(scores[idx], idx, id_rank, doc_ids, k)


def _top(scores: np.ndarray, idx: np.ndarray, id_rank: np.ndarray, doc_ids: Sequence[str], k: int) -> Ranking:
    order = np.lexsort((-id_rank[idx], -scores))[:k]  # score desc, then document id desc (trec_eval)
    return [(doc_ids[idx[j]], float(scores[j])) for j in order]


def _hnsw(faiss, queries, docs, doc_ids, id_rank, k, m, ef_search) -> list[Ranking]:
    index = faiss.IndexHNSWFlat(docs.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = max(2 * m, 80)
    index.hnsw.efSearch = max(ef_search, k)
    index.add(docs)
    _, idx = index.search(queries, min(k, len(docs)))
    out = []
    for qi in range(len(queries)):
        i = idx[qi][idx[qi] >= 0]
        out.append(_top(_rescore(docs[i], queries[qi].astype(np.float64)), i, id_rank, doc_ids, k))
    return out
