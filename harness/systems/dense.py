"""Dense retrieval: embed queries and documents (through the embedding cache), exact inner-product search. Serves
local bi-encoders (models.LoadedModel) and embedding APIs (systems.api.ApiEncoder) alike; truncation, quantization
and rescoring (``serving``) are applied to the cached float32 vectors."""
from __future__ import annotations

import time

import numpy as np

from ..evaluate import encode_set, tied_queries
from ..retrieve import search
from . import SystemRun
from .serving import is_default, serving_search


def run_dense(name: str, encoder, dataset, *, depth: int, cache, kind: str = "bi-encoder") -> SystemRun:
    t0 = time.perf_counter()
    q_vecs, qids, doc_vecs, doc_ids, stats = encode_set(dataset, encoder, cache)
    t1 = time.perf_counter()
    spec = getattr(encoder, "spec", None)
    normalize = getattr(spec, "normalize", True)
    info = encoder.describe()
    if spec is not None and hasattr(spec, "precision") and not is_default(spec):
        do_search, serving, index_bytes = serving_search(doc_vecs, doc_ids, spec, normalize)
        info["serving"] = serving
        similarity = f"{serving['precision']} vectors at {serving['dimensions']} dimensions" + (
            f", top {spec.rescore} re-scored with the float query" if spec.rescore else "")
    else:
        def do_search(q, k):
            return search(q, doc_vecs, doc_ids, k)

        index_bytes = int(doc_vecs.nbytes)
        similarity = (f"inner product on {'normalised' if normalize else 'raw'} vectors, computed in fp64, kept at "
                      "fp32 precision (trec_eval's)")
    rankings = dict(zip(qids, do_search(q_vecs, depth)))
    t2 = time.perf_counter()

    def search_one(text: str):
        vec = np.asarray(encoder.embed([text], "query", False), dtype=np.float32)
        return do_search(vec, depth)[0]

    return SystemRun(
        name=name, kind=kind, rankings=rankings, info=info, index_bytes=index_bytes,
        timings={"encode_s": round(t1 - t0, 3), "retrieve_s": round(t2 - t1, 3),
                 "encode": {role: s.as_dict() for role, s in stats.items()}},
        conventions={"similarity": similarity, "tie_break": "score desc, then document id desc (trec_eval's order)",
                     "queries_with_tied_scores": tied_queries(rankings)},
        search_one=None if kind == "api" else search_one,
        cost_usd=info.get("cost_usd"))
