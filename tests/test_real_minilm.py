"""The real all-MiniLM-L6-v2 on real data: published numbers reproduced, every metric equal to trec_eval's."""
from __future__ import annotations

import pytest

from embedgate.harness.data import load
from embedgate.harness.evaluate import evaluate
from test_metrics import ALL, assert_matches_trec_eval

pytestmark = pytest.mark.real_model
MINILM = {"name": "sentence-transformers/all-MiniLM-L6-v2", "max_seq_length": 256}


@pytest.fixture(scope="module")
def scifact_result(datasets_dir, test_cache):
    return evaluate(datasets_dir / "scifact", MINILM, metrics=ALL, cache=test_cache)


def test_scifact_ndcg10_matches_mteb(scifact_result):
    assert scifact_result.metrics["ndcg@10"] == pytest.approx(0.6451, abs=5e-5)
    # the other published base numbers of ../shared/datasets/README.md
    assert scifact_result.metrics["mrr@10"] == pytest.approx(0.6047, abs=5e-5)
    assert scifact_result.metrics["recall@10"] == pytest.approx(0.7833, abs=5e-5)
    assert scifact_result.metrics["recall@100"] == pytest.approx(0.9250, abs=5e-5)


def test_scifact_every_metric_matches_trec_eval(scifact_result, datasets_dir):
    assert_matches_trec_eval(load(datasets_dir / "scifact").qrels, scifact_result.rankings)


def test_warm_cache_encodes_nothing(datasets_dir, test_cache, scifact_result):
    again = evaluate(datasets_dir / "scifact", MINILM, metrics=["ndcg@10"], cache=test_cache)
    enc = again.timings["encode"]
    assert enc["documents"]["encoded"] == 0 and enc["queries"]["encoded"] == 0
    assert again.metrics["ndcg@10"] == scifact_result.metrics["ndcg@10"]
