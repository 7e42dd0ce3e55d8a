"""Vectors as they will be served: Matryoshka truncation, storage precision, and rescoring, all derived from the
float32 encoding the cache holds (so a sweep over dimensions and precisions costs no encoding).

- ``truncate_dim``: the first N dimensions, renormalised when the spec normalises (cosine stays cosine).
- ``precision``: float16 (both sides rounded to half); int8 / uint8 through sentence-transformers'
  ``quantize_embeddings`` with ranges calibrated on the corpus embeddings (queries use the same ranges; the ranges
  are stored in the result); binary / ubinary (sign bits, packed) searched by Hamming distance with a faiss binary
  index, score = -distance.
- ``rescore = N``: the quantized search's top N re-scored with the float query against the quantized documents
  (int8 values, or +-1 for a bit), as sentence-transformers describes; below N the quantized order follows.
Every ranking uses the harness's tie rule (score desc, then document id desc); Hamming distances tie often, so
ties at the cut-off are resolved over the full corpus, never by faiss's internal order.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ConfigError
from ..retrieve import Ranking, id_ranks, search, top_k

BYTES_PER_DIM = {"float32": 4.0, "float16": 2.0, "int8": 1.0, "uint8": 1.0, "binary": 1 / 8, "ubinary": 1 / 8}
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.int32)


def is_default(spec) -> bool:
    return spec.truncate_dim is None and spec.precision == "float32" and spec.rescore is None


def truncate(vecs: np.ndarray, dim: int | None, normalize: bool) -> np.ndarray:
    if dim is None:
        return vecs
    if dim > vecs.shape[1]:
        raise ConfigError(f"truncate_dim {dim} is larger than the model's dimension {vecs.shape[1]}",
                          field="truncate_dim")
    out = np.ascontiguousarray(vecs[:, :dim], dtype=np.float32)
    if normalize:
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out = out / np.where(norms == 0, 1.0, norms)
    return out.astype(np.float32)


class Served:
    """Quantized documents and the way to search them with a float query."""

    def __init__(self, doc_vecs: np.ndarray, doc_ids: Sequence[str], spec, normalize: bool):
        from sentence_transformers.util.quantization import quantize_embeddings

        self.spec, self.normalize, self.doc_ids = spec, normalize, list(doc_ids)
        self.id_rank = id_ranks(self.doc_ids)
        self.float_docs = truncate(doc_vecs, spec.truncate_dim, normalize)
        self.dim = self.float_docs.shape[1]
        self.precision = spec.precision
        self.calibration = None
        if self.precision == "float16":
            self.docs = self.float_docs.astype(np.float16).astype(np.float32)
        elif self.precision in ("int8", "uint8"):
            self.calibration = self.float_docs
            self.docs = quantize_embeddings(self.float_docs, precision=self.precision,
                                            calibration_embeddings=self.calibration)
        elif self.precision in ("binary", "ubinary"):
            self.docs = quantize_embeddings(self.float_docs, precision="ubinary")  # the same bits either way
        else:
            self.docs = self.float_docs
        self._binary_index = None

    # ---- what the result states
    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"truncate_dim": self.spec.truncate_dim, "dimensions": self.dim,
                               "precision": self.precision, "rescore": self.spec.rescore}
        if self.calibration is not None:
            lo, hi = self.calibration.min(axis=0), self.calibration.max(axis=0)
            out["int8_ranges"] = {"calibrated_on": f"the corpus embeddings ({len(self.calibration)} documents)",
                                  "min": [round(float(x), 6) for x in lo], "max": [round(float(x), 6) for x in hi]}
        if self.precision in ("binary", "ubinary"):
            out["search"] = "Hamming distance (faiss IndexBinaryFlat), score = -distance"
        return out

    def index_bytes(self) -> int:
        return int(np.ceil(len(self.doc_ids) * self.dim * BYTES_PER_DIM[self.precision]))

    # ---- search
    def _queries(self, q_vecs: np.ndarray) -> np.ndarray:
        from sentence_transformers.util.quantization import quantize_embeddings

        q = truncate(q_vecs, self.spec.truncate_dim, self.normalize)
        if self.precision == "float16":
            return q.astype(np.float16).astype(np.float32)
        if self.precision in ("int8", "uint8"):
            return quantize_embeddings(q, precision=self.precision, calibration_embeddings=self.calibration)
        if self.precision in ("binary", "ubinary"):
            return quantize_embeddings(q, precision="ubinary")
        return q

    def search(self, q_vecs: np.ndarray, depth: int) -> list[Ranking]:
        q_float = truncate(q_vecs, self.spec.truncate_dim, self.normalize)
        q = self._queries(q_vecs)
        first = max(depth, self.spec.rescore or 0)
        if self.precision in ("binary", "ubinary"):
            ranked = self._hamming(q, first)
        elif self.precision in ("int8", "uint8"):
            # integer dot products, exact in float32 (|sum| < 2**24 for any real dimension)
            ranked = search(q.astype(np.float32), self.docs.astype(np.float32), self.doc_ids, first)
        else:
            ranked = search(q, self.docs, self.doc_ids, first)
        if self.spec.rescore:
            ranked = [self._rescore(qf, r, depth) for qf, r in zip(q_float, ranked)]
        return [r[:depth] for r in ranked]

    def _doc_values(self, idx: np.ndarray) -> np.ndarray:
        if self.precision in ("binary", "ubinary"):
            bits = np.unpackbits(self.docs[idx], axis=1)[:, :self.dim].astype(np.float64)
            return 2.0 * bits - 1.0
        return self.docs[idx].astype(np.float64)

    def _rescore(self, q_float: np.ndarray, ranking: Ranking, depth: int) -> Ranking:
        n = self.spec.rescore
        head = ranking[:n]
        if not head:
            return ranking
        pos = {d: i for i, d in enumerate(self.doc_ids)}
        idx = np.asarray([pos[d] for d, _ in head])
        scores = (self._doc_values(idx) @ q_float.astype(np.float64)).astype(np.float32).astype(np.float64)
        rescored = top_k(scores, [d for d, _ in head], id_ranks([d for d, _ in head]), len(head))
        floor = min(s for _, s in rescored)
        return rescored + [(d, floor - 1.0 - i) for i, (d, _) in enumerate(ranking[n:depth])]

    def _hamming(self, q_packed: np.ndarray, k: int) -> list[Ranking]:
        import faiss

        n = len(self.doc_ids)
        k = min(k, n)
        if self._binary_index is None:
            self._binary_index = faiss.IndexBinaryFlat(self.docs.shape[1] * 8)
            self._binary_index.add(np.ascontiguousarray(self.docs))
        fetch = min(n, k + 64)
        dist, idx = self._binary_index.search(np.ascontiguousarray(q_packed), fetch)
        out = []
        for qi in range(len(q_packed)):
            kth = dist[qi][k - 1]
            if fetch < n and dist[qi][fetch - 1] <= kth:  # ties reach past what was fetched: all distances
                full = _POPCOUNT[np.bitwise_xor(self.docs, q_packed[qi])].sum(axis=1)
                cand = np.nonzero(full <= kth)[0]
                d = full[cand]
            else:
                keep = dist[qi] <= kth
                cand, d = idx[qi][keep], dist[qi][keep]
            scores = -d.astype(np.float64)
            order = np.lexsort((-self.id_rank[cand], -scores))[:k]
            out.append([(self.doc_ids[cand[j]], float(scores[j])) for j in order])
        return out


def serving_search(doc_vecs: np.ndarray, doc_ids: Sequence[str], spec, normalize: bool
                   ) -> tuple[Callable[[np.ndarray, int], list[Ranking]], dict[str, Any], int]:
    """(search function over query vectors, what the result states, index bytes)."""
    served = Served(doc_vecs, doc_ids, spec, normalize)
    return served.search, served.info(), served.index_bytes()
