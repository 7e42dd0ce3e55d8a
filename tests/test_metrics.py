"""Metrics against trec_eval (pytrec_eval through ir-measures) and the stated conventions."""
from __future__ import annotations

import numpy as np
import pytest

from embedgate.harness.errors import ConfigError
from embedgate.harness.metrics import metric_grid, parse_metric, score_queries

ALL = metric_grid(("ndcg", "mrr", "recall", "precision", "map", "hit"), (1, 3, 5, 10, 100))


def trec_eval_scores(qrels, rankings, names):
    """The same metrics from trec_eval (pytrec_eval, through ir-measures where trec_eval has the measure), given
    the rankings' own scores: trec_eval sorts them by its own rule (fp32 score, then document id descending), so
    this checks embedgate's order as well as its arithmetic. trec_eval's recip_rank has no cut-off (ir-measures
    would hand RR@k to the MS MARCO script, which orders ties the other way), so MRR@k is trec_eval's recip_rank
    over each ranking's first k documents; which documents those are is checked by P@k and nDCG@k."""
    import ir_measures
    import pytrec_eval
    from ir_measures import AP, R, P, Success, nDCG

    ctor = {"ndcg": nDCG, "recall": R, "precision": P, "map": AP, "hit": Success}
    scored = {q: {d: float(s) for d, s in r} for q, r in rankings.items()}
    measures = {n: ctor[parse_metric(n)[0]] @ parse_metric(n)[1] for n in names if parse_metric(n)[0] != "mrr"}
    out = {n: {} for n in names}
    for m in ir_measures.iter_calc(list(measures.values()), qrels, scored):
        for n, meas in measures.items():
            if m.measure == meas:
                out[n][m.query_id] = m.value
    recip_rank = pytrec_eval.RelevanceEvaluator({q: {d: int(r) for d, r in rels.items()} for q, rels in qrels.items()},
                                                {"recip_rank"})
    for n in names:
        family, k = parse_metric(n)
        if family == "mrr":
            cut = {q: {d: float(s) for d, s in r[:k]} for q, r in rankings.items() if r}
            out[n] = {q: v["recip_rank"] for q, v in recip_rank.evaluate(cut).items()}
    return out


def assert_matches_trec_eval(qrels, rankings, names=ALL):
    ours = score_queries(qrels, rankings, names)
    ref = trec_eval_scores(qrels, rankings, names)
    for name in names:
        for qid in qrels:
            assert ours[name][qid] == pytest.approx(ref[name].get(qid, 0.0), abs=1e-6), (name, qid)


def test_random_graded_runs_match_trec_eval():
    rng = np.random.default_rng(0)
    docs = [f"d{i}" for i in range(60)]
    qrels, rankings = {}, {}
    for qi in range(40):
        judged = rng.choice(docs, size=rng.integers(1, 15), replace=False)
        rels = {d: int(rng.integers(0, 4)) for d in judged}
        rels[judged[0]] = max(1, rels[judged[0]])
        qrels[f"q{qi}"] = rels
        order = rng.permutation(docs)[: rng.integers(0, 60)]
        rankings[f"q{qi}"] = [(d, 1.0 - i / 100) for i, d in enumerate(order)]
    assert_matches_trec_eval(qrels, rankings)


def test_tied_scores_are_ordered_as_trec_eval_orders_them():
    """Documents with equal embeddings (texts that agree on their first max_seq_length tokens) tie; the harness's
    ranking of them must be the one trec_eval computes from the saved scores."""
    from embedgate.harness.evaluate import tied_queries
    from embedgate.harness.retrieve import search

    rng = np.random.default_rng(5)
    distinct = rng.normal(size=(40, 16)).astype(np.float32)
    docs = np.concatenate([distinct, np.repeat(distinct[:10], 4, axis=0)])  # 10 vectors shared by 5 documents
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    ids = [f"d{i:03d}" for i in rng.permutation(len(docs))]
    queries = docs[:10] + 0.3 * rng.normal(size=(10, 16)).astype(np.float32)
    rankings = {f"q{i}": r for i, r in enumerate(search(queries, docs, ids, 30, chunk_size=17))}
    assert tied_queries(rankings) == len(rankings)  # ties everywhere
    qrels = {q: {d: int(rng.integers(1, 4)) for d in rng.choice(ids, 8, replace=False)} for q in rankings}
    assert_matches_trec_eval(qrels, rankings)


def test_hand_computed_values():
    qrels = {"q": {"a": 2, "b": 1, "z": 1}}
    ranking = {"q": [("b", 0.9), ("x", 0.8), ("a", 0.7)]}
    s = score_queries(qrels, ranking, ["ndcg@3", "mrr@3", "recall@3", "precision@3", "map@3", "hit@1"])
    dcg = 1 / np.log2(2) + 2 / np.log2(4)
    idcg = 2 / np.log2(2) + 1 / np.log2(3) + 1 / np.log2(4)
    assert s["ndcg@3"]["q"] == pytest.approx(dcg / idcg)
    assert s["mrr@3"]["q"] == 1.0
    assert s["recall@3"]["q"] == pytest.approx(2 / 3)  # divides by all 3 relevant documents, not min(k, R)
    assert s["precision@3"]["q"] == pytest.approx(2 / 3)
    assert s["map@3"]["q"] == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert s["hit@1"]["q"] == 1.0


def test_empty_or_irrelevant_ranking_scores_zero_and_counts():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}}
    s = score_queries(qrels, {"q1": [("a", 1.0)], "q2": [("x", 1.0)], "q3": []}, ["ndcg@10", "recall@10"])
    assert s["ndcg@10"] == {"q1": 1.0, "q2": 0.0, "q3": 0.0}
    # a query missing from the run is scored too (0), never dropped from the mean
    s = score_queries(qrels, {"q1": [("a", 1.0)]}, ["mrr@10"])
    assert s["mrr@10"] == {"q1": 1.0, "q2": 0.0, "q3": 0.0}


def test_ties_in_scores_keep_the_given_order():
    qrels = {"q": {"b": 1}}
    assert score_queries(qrels, {"q": [("a", 0.5), ("b", 0.5)]}, ["mrr@10"])["mrr@10"]["q"] == 0.5
    assert score_queries(qrels, {"q": [("b", 0.5), ("a", 0.5)]}, ["mrr@10"])["mrr@10"]["q"] == 1.0


def test_query_without_positive_is_refused():
    with pytest.raises(ValueError, match="no positive judgment"):
        score_queries({"q": {"a": 0}}, {"q": [("a", 1.0)]}, ["ndcg@10"])


@pytest.mark.parametrize("bad", ["ndcg", "ndgc@10", "ndcg@0", "recall@x"])
def test_bad_metric_names(bad):
    with pytest.raises(ConfigError):
        parse_metric(bad)


def test_aliases():
    assert parse_metric("NDCG@10") == ("ndcg", 10)
    assert parse_metric("hit_rate@5") == ("hit", 5)
    assert parse_metric("P@3") == ("precision", 3)
