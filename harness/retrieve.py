"""Top-k retrieval by inner product (cosine on normalised vectors) with faiss.

Exact search runs over corpus chunks and merges per-chunk top-k lists, so memory stays bounded by
``queries x chunk``. Ties are broken deterministically in trec_eval's order: higher score first, then the larger
document id (trec_eval sorts a run by score, then by docno descending; pytrec_eval, BEIR and MTEB inherit it). So a
saved run scored by trec_eval gives the numbers embedgate reports, ties included. Ties are not rare: documents that
agree on their first max_seq_length tokens embed identically (ACORD has hundreds in its top-100 lists, and the tie
order moves its NDCG@10 by 5%). A tie that straddles the cut-off is resolved by fetching more from the chunk, so the
result never depends on the corpus order or the chunk size. Per query, the candidates kept between chunks are the
running top k and its ties, so a query block holds ``query_block x (k + ties)`` candidates whatever the corpus size.

Approximate indexes, for corpora too big for exact search (both hold their own copy of the document vectors):
HNSW (faiss ``IndexHNSWFlat``, M 32, efSearch max(256, k)) and IVF (faiss ``IndexIVFFlat``, inner product: ``nlist``
= round(sqrt(n)) lists, at most n / 39 so that every list has faiss' minimum of training points; k-means trained on
a seeded sample of min(n, 64 x nlist) documents; ``nprobe`` = max(1, nlist / 16) lists searched per query). Their
candidates are rescored like exact search's. ``index_recall`` measures one against exact search on a seeded sample
of queries; ``evaluate`` records it in ``conventions.index_recall``.
"""
from __future__ import annotations

import math
import time
from typing import Any, Sequence

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
    n = docs.shape[0]
    fetch = min(n, k + 8)
    _, idx = faiss.knn(queries, docs, fetch, metric=faiss.METRIC_INNER_PRODUCT)  # IndexFlatIP's search, no copy
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


APPROXIMATE = ("hnsw", "ivf")
INDEXES = ("exact",) + APPROXIMATE


def index_params(index: str, n_docs: int, k: int = 100, *, hnsw_m: int = 32, hnsw_ef_search: int = 256,
                 ivf_nlist: int | None = None, ivf_nprobe: int | None = None) -> dict[str, Any]:
    """The settings an index is built and searched with for ``n_docs`` documents (what a result states)."""
    if index == "exact":
        return {}
    if index == "hnsw":
        return {"M": hnsw_m, "efConstruction": max(2 * hnsw_m, 80), "efSearch": max(hnsw_ef_search, k)}
    if index == "ivf":
        nlist = ivf_nlist or max(1, min(round(math.sqrt(n_docs)), n_docs // 39))
        nlist = max(1, min(nlist, n_docs))
        nprobe = max(1, min(nlist, ivf_nprobe or round(nlist / 16)))
        return {"nlist": nlist, "nprobe": nprobe, "train_sample": min(n_docs, 64 * nlist), "seed": 0}
    raise ValueError(f"unknown index {index!r}; use one of {', '.join(INDEXES)}")


def search(query_vectors: np.ndarray, doc_vectors: np.ndarray, doc_ids: Sequence[str], k: int = 100, *,
           chunk_size: int = 50_000, query_block: int = 4096, index: str = "exact",
           hnsw_m: int = 32, hnsw_ef_search: int = 256, ivf_nlist: int | None = None,
           ivf_nprobe: int | None = None) -> list[Ranking]:
    """One ranking per query: [(doc_id, score), ...] best first, at most k long."""
    faiss = _faiss()
    queries = np.ascontiguousarray(query_vectors, dtype=np.float32)
    docs = np.ascontiguousarray(doc_vectors, dtype=np.float32)
    if len(doc_ids) != len(docs):
        raise ValueError("doc_ids and doc_vectors differ in length")
    params = index_params(index, len(docs), k, hnsw_m=hnsw_m, hnsw_ef_search=hnsw_ef_search, ivf_nlist=ivf_nlist,
                          ivf_nprobe=ivf_nprobe)
    if len(docs) == 0 or len(queries) == 0:
        return [[] for _ in range(len(queries))]
    # id order as integers, so tie-breaking compares ints rather than strings (code point order = strcmp on UTF-8)
    id_rank = id_ranks(doc_ids)
    k = max(1, int(k))
    if index == "hnsw":
        return _hnsw(faiss, queries, docs, doc_ids, id_rank, k, params)
    if index == "ivf":
        return _ivf(faiss, queries, docs, doc_ids, id_rank, k, params)
    rankings: list[Ranking] = []
    for q0 in range(0, len(queries), query_block):
        qblock = queries[q0:q0 + query_block]
        kept: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(qblock)
        for c0 in range(0, len(docs), chunk_size):
            for qi, (s, i) in enumerate(_exact_chunk(faiss, qblock, docs[c0:c0 + chunk_size], k)):
                prev = kept[qi]
                if prev is not None:
                    s, i = np.concatenate((prev[0], s)), np.concatenate((prev[1], i + c0))
                else:
                    i = i + c0
                kept[qi] = _keep_top(s, i, k)
        for s, i in kept:
            rankings.append(_top(s, i, id_rank, doc_ids, k))
    return rankings


def _keep_top(scores: np.ndarray, idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The candidates that can still make the top k: the k best and every one tied with the k-th."""
    if len(scores) <= k:
        return scores, idx
    keep = scores >= np.partition(scores, -k)[-k]
    return scores[keep], idx[keep]


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
    # tolist(): Python ints and floats in one call (indexing numpy scalars one by one costs more than the sort)
    return [(doc_ids[i], s) for i, s in zip(idx[order].tolist(), scores[order].tolist())]


def _rescored(queries, docs, idx, id_rank, doc_ids, k) -> list[Ranking]:
    out = []
    for qi in range(len(queries)):
        i = idx[qi][idx[qi] >= 0]
        out.append(_top(_rescore(docs[i], queries[qi].astype(np.float64)), i, id_rank, doc_ids, k))
    return out


def _hnsw(faiss, queries, docs, doc_ids, id_rank, k, params) -> list[Ranking]:
    index = faiss.IndexHNSWFlat(docs.shape[1], params["M"], faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = params["efConstruction"]
    index.hnsw.efSearch = params["efSearch"]
    index.add(docs)
    _, idx = index.search(queries, min(k, len(docs)))
    return _rescored(queries, docs, idx, id_rank, doc_ids, k)


def _ivf(faiss, queries, docs, doc_ids, id_rank, k, params) -> list[Ranking]:
    n, dim = docs.shape
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, params["nlist"], faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = params["seed"]
    sample = params["train_sample"]
    rows = np.sort(np.random.default_rng(params["seed"]).choice(n, size=sample, replace=False)) if sample < n \
        else slice(None)
    index.train(np.ascontiguousarray(docs[rows]))
    for c0 in range(0, n, 262_144):
        index.add(docs[c0:c0 + 262_144])
    index.nprobe = params["nprobe"]
    _, idx = index.search(queries, min(k, n))
    return _rescored(queries, docs, idx, id_rank, doc_ids, k)


def index_recall(query_vectors: np.ndarray, doc_vectors: np.ndarray, doc_ids: Sequence[str],
                 rankings: Sequence[Ranking], k: int, *, index: str, sample: int = 1000, seed: int = 0,
                 **index_options) -> dict[str, Any]:
    """Recall@k of approximate ``rankings`` against exact search on a seeded sample of the queries: the share of
    the exact top k that the approximate top k holds, a document tied with the exact k-th counting as found."""
    t0 = time.perf_counter()
    nq = len(query_vectors)
    k = max(1, min(int(k), len(doc_ids)))
    m = min(sample, nq)
    chosen = np.sort(np.random.default_rng(seed).choice(nq, size=m, replace=False)) if m < nq else np.arange(nq)
    exact = search(np.asarray(query_vectors)[chosen], doc_vectors, doc_ids, k) if m else []
    per_query = []
    for j, truth in zip(chosen, exact):
        if not truth:
            continue
        kth = truth[-1][1]
        ids = {d for d, _ in truth}
        got = sum(1 for d, score in rankings[int(j)][:k] if d in ids or score == kth)
        per_query.append(min(got, len(truth)) / len(truth))
    return {"index": index, "params": index_params(index, len(doc_ids), k, **index_options), "k": k,
            "recall": round(float(np.mean(per_query)), 4) if per_query else None, "sample_queries": int(m),
            "of_queries": int(nq), "seed": seed, "against": "exact search (chunked, rescored in fp64)",
            "seconds": round(time.perf_counter() - t0, 3)}
