"""One evaluation: data in, encode (cached), retrieve, score. The result carries what produced it."""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from . import data as data_mod
from .encode import DocumentTexts, EmbeddingCache, EncodeStats, encode_texts
from .environment import environment
from .io import atomic_write_text, write_json
from .metrics import DEFAULT_FAMILIES, DEFAULT_KS, by_query, mean_scores, metric_grid, normalize_metrics, \
    parse_metric, score_queries
from .models import LoadedModel, ModelSpec, load_model
from .retrieve import Ranking, index_recall, search

from .schema import EVAL_RESULT_SCHEMA as RESULT_SCHEMA  # noqa: E402


@dataclass
class EvalResult:
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    rankings: dict[str, Ranking]
    data: dict[str, Any]
    model: dict[str, Any]
    environment: dict[str, Any]
    timings: dict[str, Any]
    conventions: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The eval result file (``embedgate.eval-result/1``), checked against its model in the schema."""
        from .schema import EvalResultFile

        return EvalResultFile.model_validate({
            "schema": RESULT_SCHEMA,
            "metrics": self.metrics,
            "per_query": self.per_query,
            "data": self.data,
            "model": self.model,
            "conventions": self.conventions,
            "environment": self.environment,
            "timings": self.timings,
        }).model_dump(mode="json", by_alias=True)

    def write(self, path: str | Path) -> Path:
        return write_json(path, self.to_dict())

    def trec_run(self, run_name: str = "embedgate") -> str:
        """The ranking in TREC run format: ``qid Q0 docid rank score run_name``, ranks from 1."""
        lines = []
        for qid, ranking in self.rankings.items():
            for rank, (doc_id, score) in enumerate(ranking, start=1):
                # full precision (shortest round-trip repr): scores that differ only past the 6th decimal must not
                # become ties that trec_eval would reorder
                lines.append(f"{qid} Q0 {doc_id} {rank} {score!r} {run_name}")
        return "\n".join(lines) + ("\n" if lines else "")

    def save_run(self, path: str | Path, run_name: str = "embedgate") -> Path:
        return atomic_write_text(path, self.trec_run(run_name))


def tied_queries(rankings: dict[str, Ranking]) -> int:
    """How many rankings hold two documents with the same score: there the order comes from the tie rule."""
    return sum(1 for r in rankings.values() if any(a[1] == b[1] for a, b in zip(r, r[1:])))


def scores_key(qrels, rankings, names) -> str:
    """Content key of a scoring call: the metrics are a pure function of judgments, ranking order and names."""
    from importlib.metadata import version

    h = hashlib.sha256(f"ranx {version('ranx')}\x1e{','.join(sorted(names))}\x1e".encode())
    for qid in sorted(qrels):
        h.update(f"Q{qid}\x1f".encode())
        h.update("\x1f".join(f"{d}={r}" for d, r in sorted(qrels[qid].items())).encode())
        h.update(b"\x1e")
        h.update("\x1f".join(d for d, _ in rankings.get(qid, [])).encode())
        h.update(b"\x1e")
    return h.hexdigest()


def score_with_memo(qrels, rankings, names, memo_dir: Path | None) -> dict[str, dict[str, float]]:
    """ranx's numba code compiles typed containers in every new process (seconds); a warm run with the same
    ranking reads the per-query scores it computed before. A damaged or partial entry is recomputed."""
    if memo_dir is None:
        return score_queries(qrels, rankings, names)
    path = memo_dir / f"{scores_key(qrels, rankings, names)}.json"
    if path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            if set(stored) == set(names) and all(set(stored[n]) == set(qrels) and all(
                    isinstance(v, float) and math.isfinite(v) for v in stored[n].values()) for n in names):
                return {n: {q: stored[n][q] for q in qrels} for n in names}
        except (OSError, ValueError):
            pass
    scores = score_queries(qrels, rankings, names)
    write_json(path, scores, indent=None)
    return scores


def _resolve_cache(cache) -> EmbeddingCache | None:
    if cache is False:
        return None
    if isinstance(cache, EmbeddingCache):
        return cache
    return EmbeddingCache(cache)


def encode_set(dataset: data_mod.RetrievalSet, model: LoadedModel, cache: EmbeddingCache | None,
               show_progress: bool | None = None):
    """(query vectors, query ids, document vectors, document ids, stats by role)."""
    doc_ids = list(dataset.corpus)
    qids = list(dataset.queries)
    doc_vecs, dstats = encode_texts(model, DocumentTexts(dataset.corpus, doc_ids), "document", cache,
                                    show_progress=show_progress)
    q_vecs, qstats = encode_texts(model, [dataset.queries[q] for q in qids], "query", cache,
                                  show_progress=show_progress)
    return q_vecs, qids, doc_vecs, doc_ids, {"documents": dstats, "queries": qstats}


def evaluate(data: "str | Path | data_mod.RetrievalSet", model: "str | dict | ModelSpec | LoadedModel", *,
             split: str = "test", ks: Sequence[int] = DEFAULT_KS, metrics: Iterable[str] | None = None,
             cache: "str | Path | EmbeddingCache | bool | None" = None, index: str = "exact",
             chunk_size: int = 50_000, ignore_identical_ids: bool = False, depth: int | None = None,
             show_progress: bool | None = None) -> EvalResult:
    """Evaluate ``model`` on ``data`` (a folder or a RetrievalSet). ``metrics`` defaults to every family at ``ks``;
    ``cache=False`` disables the embedding cache, ``None`` uses the default folder (``$EMBEDGATE_CACHE``)."""
    t0 = time.perf_counter()
    dataset = data_mod.load(data, split)
    t_load = time.perf_counter()
    names = normalize_metrics(metrics) if metrics is not None else metric_grid(DEFAULT_FAMILIES, ks)
    depth = depth or max(max(parse_metric(n)[1] for n in names), max(ks) if ks else 1)
    loaded = load_model(model)
    t_model = time.perf_counter()
    store = _resolve_cache(cache)
    q_vecs, qids, doc_vecs, doc_ids, stats = encode_set(dataset, loaded, store, show_progress)
    t_enc = time.perf_counter()
    fetch = depth + (1 if ignore_identical_ids else 0)
    from .systems.serving import is_default, serving_search

    serving = None
    if not is_default(loaded.spec):
        do_search, serving, index_bytes = serving_search(doc_vecs, doc_ids, loaded.spec, loaded.spec.normalize)
        ranked = do_search(q_vecs, fetch)
    else:
        ranked = search(q_vecs, doc_vecs, doc_ids, fetch, chunk_size=chunk_size, index=index)
    rankings: dict[str, Ranking] = {}
    for qid, ranking in zip(qids, ranked):
        if ignore_identical_ids:
            ranking = [(d, s) for d, s in ranking if d != qid]
        rankings[qid] = ranking[:depth]
    # an approximate index says how far it is from exact search: recall@depth on a seeded query sample (its time is
    # in retrieve_s and index_recall.seconds); scoring then needs the rankings only, not the embeddings
    recall = index_recall(q_vecs, doc_vecs, doc_ids, ranked, depth, index=index) \
        if index != "exact" and serving is None else None
    del q_vecs, doc_vecs, ranked
    t_ret = time.perf_counter()
    per_metric = score_with_memo(dataset.qrels, rankings, names, store.root / "scores" if store else None)
    t_score = time.perf_counter()
    enc: EncodeStats = EncodeStats()
    for s in stats.values():
        enc.add(s)
    return EvalResult(
        metrics=mean_scores(per_metric),
        per_query=by_query(per_metric),
        rankings=rankings,
        data=dataset.describe(),
        model=loaded.describe() | ({"serving": serving} if serving else {}),
        environment=environment(),
        timings={
            "load_data_s": round(t_load - t0, 3),
            "load_model_s": round(t_model - t_load, 3),
            "encode_s": round(t_enc - t_model, 3),
            "retrieve_s": round(t_ret - t_enc, 3),
            "score_s": round(t_score - t_ret, 3),
            "total_s": round(t_score - t0, 3),
            "encode": {role: s.as_dict() for role, s in stats.items()},
        },
        conventions={
            "depth": depth,
            "index": index,
            **({"index_recall": recall} if recall else {}),
            "similarity": f"inner product on {'normalised' if loaded.spec.normalize else 'raw'} vectors, computed "
                          "in fp64, kept at fp32 precision (trec_eval's)",
            "tie_break": "score desc, then document id desc (trec_eval's order)",
            "queries_with_tied_scores": tied_queries(rankings),
            "ignore_identical_ids": ignore_identical_ids,
            "relevance_threshold": 1,
            "empty_ranking": "scores 0 and stays in the mean",
            "no_positive_judgment": "reported in data.excluded_queries and left out",
        },
    )
