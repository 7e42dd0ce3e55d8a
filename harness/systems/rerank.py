"""Reranking: a sentence-transformers CrossEncoder rescores the top ``k`` documents of a first-stage system.

The reranked k come first, ordered by the cross-encoder's score (ties: document id desc); the first stage's
documents below k follow in their first-stage order (scored below every reranked one), so metrics deeper than k
still see a full ranking. The cross-encoder loads from a local folder or a hub id, never with remote code, and
never from pickled weights."""
from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..models import _check_no_pickle, default_device, quiet_loading, resolve_model_path, weights_fingerprint
from ..schema import RerankSystem
from . import SystemRun


@lru_cache(maxsize=8)
def load_cross_encoder(name: str, revision: str | None, max_length: int | None):
    from sentence_transformers import CrossEncoder

    quiet_loading()
    path, source = resolve_model_path(name, revision)
    _check_no_pickle(Path(path))
    try:
        model = CrossEncoder(path, max_length=max_length, device=default_device(), trust_remote_code=False,
                             local_files_only=True)
    except Exception as exc:
        raise ModelError(f"cannot load a sentence-transformers CrossEncoder: {exc}", path=path) from None
    return model, path, source, weights_fingerprint(path)


def rerank_one(model, query: str, ranking: list, docs: dict, k: int, batch_size: int, depth: int) -> list:
    head, tail = ranking[:k], ranking[k:depth]
    if not head:
        return []
    scores = model.predict([(query, docs[d]) for d, _ in head], batch_size=batch_size, show_progress_bar=False,
                           convert_to_numpy=True)
    scores = np.asarray(scores, dtype=np.float32).astype(np.float64).reshape(-1)
    reranked = sorted(((d, float(s)) for (d, _), s in zip(head, scores)), key=lambda t: (t[1], t[0]), reverse=True)
    floor = min(s for _, s in reranked)
    return reranked + [(d, floor - 1.0 - i) for i, (d, _) in enumerate(tail)]


def run_rerank(name: str, spec: RerankSystem, dataset, first: SystemRun, *, depth: int) -> SystemRun:
    t0 = time.perf_counter()
    model, path, source, wfp = load_cross_encoder(spec.model, spec.revision, spec.max_length)
    texts = {d: doc.full_text for d, doc in dataset.corpus.items()}
    rankings = {q: rerank_one(model, dataset.queries[q], first.rankings[q], texts, spec.k, spec.batch_size, depth)
                for q in dataset.queries}
    info = {"kind": "rerank", "model": spec.model, "path": path, "source": source, "weights_fingerprint": wfp,
            "first_stage": spec.first_stage, "k": spec.k, "batch_size": spec.batch_size,
            "max_length": spec.max_length, "library": "sentence_transformers.CrossEncoder"}

    def search_one(text: str):
        return rerank_one(model, text, first.search_one(text), texts, spec.k, spec.batch_size, depth)

    return SystemRun(name=name, kind="rerank", rankings=rankings, info=info, index_bytes=first.index_bytes,
                     timings={"rerank_s": round(time.perf_counter() - t0, 3), "pairs": spec.k * len(rankings)},
                     conventions={"tie_break": "cross-encoder score desc, then document id desc; below k the "
                                               "first stage's order"},
                     search_one=search_one if first.search_one else None, cost_usd=first.cost_usd)
