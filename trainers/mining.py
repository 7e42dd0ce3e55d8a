"""Hard negatives mined with the base model through ``sentence_transformers.util.mine_hard_negatives``.

sentence-transformers does the candidate search and the margin rule (``relative_margin``: a candidate must score at
least that fraction below the query's positive, the guard against unjudged true positives, NV-Retriever's
TopK-PercPos). Two things are added around it:
- embeddings come through the harness's encoding cache, so the base model's corpus vectors computed here are the
  ones the gate reuses (and a second run mines for free);
- a candidate that is a *judged* positive of the query at any grade (e.g. a 2-star clause when training only on
  4-star ones) is dropped: the miner only knows the positives it was given.
With several positives per query, sentence-transformers measures the margin from the query's *weakest* positive; on
graded data with many positives (ACORD: ~30 per query, some scoring near 0) that leaves most queries without any
negative (37 of 51 on ACORD's train split). ``margin_reference = "pair"`` (the default) applies the same relative /
absolute margin to each (query, positive) pair's own score instead, on the candidates sentence-transformers
retrieved; ``"query"`` keeps sentence-transformers' rule unchanged. Each pair of a query takes different negatives
from its pool (round robin), so a query with many positives does not repeat one negative. The statistics (score distributions, what was skipped and why) go to the
training manifest.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import time
from typing import Any, Sequence

import numpy as np

from embedgate.harness.encode import EmbeddingCache, is_terminal, encode_texts
from embedgate.harness.models import LoadedModel

from .pairs import PairSet, TrainingPair

log = logging.getLogger(__name__)


# typed (with its defaults) in the schema, beside every other config
from embedgate.harness.schema import MiningSettings  # noqa: E402


class _CachedEncoder:
    """Looks like a SentenceTransformer to mine_hard_negatives, but encodes through the harness cache with the
    spec's prompts (the prompts mine_hard_negatives passes are ignored: the spec is the single source)."""

    def __init__(self, loaded: LoadedModel, cache: EmbeddingCache | None):
        self._loaded = loaded
        self._cache = cache
        self.seconds = 0.0

    def _encode(self, texts: Sequence[str], role: str) -> np.ndarray:
        t0 = time.perf_counter()
        vecs, _ = encode_texts(self._loaded, list(texts), role, self._cache)
        if not self._loaded.spec.normalize:  # the margin rule compares cosine scores
            vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        self.seconds += time.perf_counter() - t0
        return vecs

    def encode_document(self, texts, **_ignored) -> np.ndarray:
        return self._encode(texts, "document")

    def encode_query(self, texts, **_ignored) -> np.ndarray:
        return self._encode(texts, "query")

    def similarity(self, a, b):
        import torch

        return torch.as_tensor(np.asarray(a)) @ torch.as_tensor(np.asarray(b)).T

    def similarity_pairwise(self, a, b):
        import torch

        return (torch.as_tensor(np.asarray(a)) * torch.as_tensor(np.asarray(b))).sum(dim=-1)

    def get_embedding_dimension(self) -> int:
        return self._loaded.dimension

    def __getattr__(self, name: str) -> Any:  # device, model_card_data, ...
        return getattr(self._loaded.model, name)


def _quantiles(values: Sequence[float]) -> dict[str, float] | None:
    if len(values) == 0:
        return None
    a = np.asarray(values, dtype=np.float64)
    q = np.quantile(a, [0.0, 0.25, 0.5, 0.75, 1.0])
    return {"count": int(a.size), "mean": round(float(a.mean()), 4), "std": round(float(a.std()), 4),
            "min": round(float(q[0]), 4), "q25": round(float(q[1]), 4), "median": round(float(q[2]), 4),
            "q75": round(float(q[3]), 4), "max": round(float(q[4]), 4)}


def _window(settings: MiningSettings) -> int:
    """How many ranked candidates per query are looked at (ST's range_max)."""
    if settings.range_max is not None:
        return settings.range_max
    return settings.range_min + max(300, 10 * settings.num_negatives)


def _passes_margin(score: float, positive: float, settings: MiningSettings) -> bool:
    if settings.relative_margin is not None and score > positive - abs(positive) * settings.relative_margin:
        return False
    if settings.absolute_margin is not None and score + settings.absolute_margin > positive:
        return False
    return True


def mine(pairs: PairSet, model: LoadedModel, settings: MiningSettings, cache: EmbeddingCache | None = None,
         seed: int = 0) -> tuple[PairSet, dict[str, Any]]:
    """(pairs with ``settings.per_pair`` negatives each, statistics). Pairs for which no valid negative remains are
    dropped and counted."""
    import random

    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    if settings.per_pair > settings.num_negatives:
        raise ValueError("per_pair cannot exceed num_negatives")
    if settings.margin_reference not in ("pair", "query"):
        raise ValueError("margin_reference must be 'pair' or 'query'")
    t0 = time.perf_counter()
    by_pair = settings.margin_reference == "pair"
    encoder = _CachedEncoder(model, cache)
    window = _window(settings)
    if by_pair:
        # One row per query: sentence-transformers ranks the pool and skips that row's positive; the margin is
        # applied below to each pair's own score, and the query's other judged positives are dropped there too.
        first: dict[str, str] = {}
        for p in pairs.pairs:
            first.setdefault(p.query, p.positive)
        dataset = Dataset.from_dict({"anchor": list(first), "positive": list(first.values())})
    else:
        dataset = Dataset.from_dict({"anchor": [p.query for p in pairs.pairs],
                                     "positive": [p.positive for p in pairs.pairs]})
    printed = io.StringIO()
    # its progress bars (stderr) redraw with carriage returns: only on a terminal
    quiet = contextlib.nullcontext() if is_terminal() else contextlib.redirect_stderr(io.StringIO())
    with contextlib.redirect_stdout(printed), quiet:
        mined = mine_hard_negatives(
            dataset, encoder, anchor_column_name="anchor", positive_column_name="positive",
            corpus=list(pairs.corpus) if pairs.corpus is not None else [p.positive for p in pairs.pairs],
            range_min=settings.range_min, range_max=window, max_score=settings.max_score,
            absolute_margin=None if by_pair else settings.absolute_margin,
            relative_margin=None if by_pair else settings.relative_margin,
            num_negatives=window - settings.range_min if by_pair else settings.num_negatives,
            sampling_strategy="top" if by_pair else settings.sampling,
            output_format="labeled-list", output_scores=True, batch_size=settings.batch_size, use_faiss=False,
            verbose=True,  # its statistics (stdout) go into the manifest
        )
    # labeled-list: one row per (query, positive) that has candidates: documents = [positive, candidates...] best
    # first, with scores. The candidate list is the same for every positive of a query.
    candidates: dict[str, list[tuple[str, float]]] = {}
    positive_score: dict[tuple[str, str], float] = {}
    for row in mined:
        docs, scores = row["positive"], row["scores"]
        positive_score[(row["anchor"], docs[0])] = float(scores[0])
        candidates.setdefault(row["anchor"], list(zip(docs[1:], map(float, scores[1:]))))
    if by_pair:
        q_vecs = encoder.encode_query([p.query for p in pairs.pairs])
        p_vecs = encoder.encode_document([p.positive for p in pairs.pairs])
        for p, s in zip(pairs.pairs, np.einsum("ij,ij->i", q_vecs.astype(np.float64), p_vecs.astype(np.float64))):
            positive_score[(p.query, p.positive)] = float(s)
    rng = random.Random(seed)
    skipped_judged = skipped_margin = 0
    judged_seen: set[tuple[str, str]] = set()
    out: list[TrainingPair] = []
    neg_scores: list[float] = []
    pos_scores: list[float] = []
    differences: list[float] = []
    pool_sizes: list[int] = []
    dropped = 0
    per_query_index: dict[str, int] = {}
    for p in pairs.pairs:
        judged = pairs.judged.get(p.query, set())
        ps = positive_score.get((p.query, p.positive))
        valid = []
        for d, s in candidates.get(p.query, []):
            if d in judged:
                if (p.query, d) not in judged_seen:
                    judged_seen.add((p.query, d))
                    skipped_judged += 1
                continue
            if by_pair and ps is not None and not _passes_margin(s, ps, settings):
                skipped_margin += 1
                continue
            valid.append((d, s))
        if by_pair and settings.sampling == "random" and len(valid) > settings.num_negatives:
            pool = sorted(rng.sample(valid, settings.num_negatives), key=lambda ds: -ds[1])
        else:
            pool = valid[:settings.num_negatives]
        pool_sizes.append(len(pool))
        if len(pool) < settings.per_pair:
            dropped += 1
            continue
        j = per_query_index.get(p.query, 0)
        per_query_index[p.query] = j + 1
        chosen = [pool[(j * settings.per_pair + i) % len(pool)] for i in range(settings.per_pair)]
        out.append(TrainingPair(p.query, p.positive, p.query_id, p.positive_id, p.relevance,
                                tuple(d for d, _ in chosen)))
        for _, s in chosen:
            neg_scores.append(s)
            if ps is not None:
                differences.append(ps - s)
        if ps is not None:
            pos_scores.append(ps)
    if not out:
        raise ValueError("hard-negative mining left no pair with a negative; loosen relative_margin or raise "
                         "range_max")
    queries = {p.query for p in pairs.pairs}
    kept_queries = {p.query for p in out}
    stats = {
        "settings": settings.model_dump() | {"window": window},
        "model": model.spec.name,
        "model_fingerprint": model.fingerprint,
        "pairs_in": len(pairs.pairs),
        "pairs_out": len(out),
        "pairs_dropped_without_negative": dropped,
        "queries": len(queries),
        "queries_without_negative": len(queries - kept_queries),
        "candidate_pool": len(pairs.corpus) if pairs.corpus is not None else len({p.positive for p in pairs.pairs}),
        "negatives_available_per_pair": _quantiles(pool_sizes),
        "skipped_judged_positives": skipped_judged,
        "kept_out": pairs.judged_label,  # what those skipped documents are: the training log and the card say this
        "skipped_by_pair_margin": skipped_margin if by_pair else None,
        "positive_scores": _quantiles(pos_scores),
        "negative_scores": _quantiles(neg_scores),
        "differences": _quantiles(differences),
        "sentence_transformers_report": printed.getvalue().strip().splitlines()[-20:],
        "seconds": round(time.perf_counter() - t0, 2),
        "encode_seconds": round(encoder.seconds, 2),
    }
    # the same set with new rows: corpus, judged positives and their label carry over, whatever fields PairSet gains
    return dataclasses.replace(pairs, pairs=out, source={**pairs.source, "hard_negatives": True}), stats
