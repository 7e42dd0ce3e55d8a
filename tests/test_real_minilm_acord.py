"""The real all-MiniLM-L6-v2 on ACORD: graded metrics equal to trec_eval's.

A file of its own (not in test_real_minilm.py) so that a parallel run (`pytest -n 2`, one file per worker) encodes
ACORD and scifact at the same time. The corpus is the judged clauses only (1,020 of 3,931: every clause judged for
the 57 test queries, ranked against one another): the graded, tie-heavy rankings that make ACORD the hard case for
trec_eval equality, at a quarter of the encoding. The full-corpus base numbers (NDCG@10 0.1209, 50 of 57 rankings
with ties) are measured by `embedgate gate suites/legal` and stated in suites/legal/README.md."""
from __future__ import annotations

from embedgate.harness.data import load
from embedgate.harness.evaluate import evaluate
from test_metrics import ALL, assert_matches_trec_eval
from test_real_minilm import MINILM

import pytest

pytestmark = pytest.mark.real_model


def test_acord_graded_metrics_match_trec_eval(datasets_dir, test_cache):
    acord = load(datasets_dir / "acord").subset(corpus_size=1000, seed=0)
    judged = {d for q in acord.qrels.values() for d in q}
    assert judged <= set(acord.corpus) and len(acord.corpus) < 3931  # every judged clause (1,020), no distractor
    assert max(g for q in acord.qrels.values() for g in q.values()) > 1  # graded
    res = evaluate(acord, MINILM, metrics=ALL, cache=test_cache)
    assert_matches_trec_eval(acord.qrels, res.rankings)
    # ACORD clauses that agree on their first 256 tokens embed identically: rankings hold ties, ordered as trec_eval
    # orders them (id descending), for every metric
    assert res.conventions["queries_with_tied_scores"] > 0
