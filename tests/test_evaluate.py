"""`embedgate eval` and harness.evaluate: the table, the result JSON, the TREC run, the warm cache."""
from __future__ import annotations

import json

import pytest

from embedgate.harness.shells.cli import main
from embedgate.harness.evaluate import evaluate
from test_metrics import assert_matches_trec_eval


def test_eval_cli_writes_result_and_trec_run(small_beir, tiny_model, tmp_path, capsys):
    out, run = tmp_path / "result.json", tmp_path / "run.trec"
    cache = tmp_path / "cache"
    argv = ["eval", str(small_beir), "--model", str(tiny_model), "--k", "1,3,10", "--out", str(out),
            "--save-run", str(run), "--cache-dir", str(cache)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "ndcg" in printed and "@10" in printed and "encoded 12, from cache 0" in printed
    result = json.loads(out.read_text())
    assert set(result) >= {"metrics", "per_query", "data", "model", "environment", "timings", "conventions"}
    assert set(result["metrics"]) == {f"{f}@{k}" for f in ("ndcg", "mrr", "recall", "precision", "map", "hit")
                                      for k in (1, 3, 10)}
    assert set(result["per_query"]) == {"q1", "q2", "q3", "q4"}
    assert result["data"]["content_hash"] and result["model"]["fingerprint"]
    assert result["environment"]["packages"]["torch"].startswith("2.")
    lines = run.read_text().splitlines()
    assert len(lines) == 4 * 8
    qid, q0, doc, rank, score, name = lines[0].split()
    assert q0 == "Q0" and rank == "1" and name == tiny_model.name
    # the mean in the file is the mean of the per-query values in the file
    ndcg = [v["ndcg@10"] for v in result["per_query"].values()]
    assert result["metrics"]["ndcg@10"] == sum(ndcg) / len(ndcg)
    # trec_eval on the saved run gives the reported numbers (it re-sorts by the scores in the file)
    import ir_measures

    from embedgate.harness.data import load

    measures = [ir_measures.nDCG @ 10, ir_measures.RR @ 10, ir_measures.R @ 3]
    qrels = load(small_beir).qrels
    ref = ir_measures.calc_aggregate(measures, qrels, ir_measures.read_trec_run(str(run)))
    for name, measure in zip(("ndcg@10", "mrr@10", "recall@3"), measures):
        assert result["metrics"][name] == pytest.approx(ref[measure], abs=1e-9), name
    # warm: nothing encoded the second time
    assert main(argv) == 0
    assert "encoded 0, from cache 12" in capsys.readouterr().out


def test_python_api_agrees_with_trec_eval_on_its_own_ranking(small_beir, tiny_model):
    res = evaluate(small_beir, str(tiny_model), cache=False)
    from embedgate.harness.data import load

    assert_matches_trec_eval(load(small_beir).qrels, res.rankings, list(res.metrics))
    for qid, ranking in res.rankings.items():
        scores = [s for _, s in ranking]
        assert scores == sorted(scores, reverse=True)


def test_ignore_identical_ids_is_explicit(tmp_path, tiny_model):
    from conftest import write_beir

    folder = write_beir(tmp_path / "same", {"q1": ("", "a text about law"), "d1": ("", "a text about law too")},
                        {"q1": "a text about law"}, {"q1": {"d1": 1}})
    kept = evaluate(folder, str(tiny_model), cache=False, metrics=["mrr@10"])
    dropped = evaluate(folder, str(tiny_model), cache=False, metrics=["mrr@10"], ignore_identical_ids=True)
    assert [d for d, _ in kept.rankings["q1"]][0] == "q1" and kept.metrics["mrr@10"] == 0.5
    assert "q1" not in [d for d, _ in dropped.rankings["q1"]] and dropped.metrics["mrr@10"] == 1.0
    assert dropped.conventions["ignore_identical_ids"] is True


def test_scores_are_memoised_by_content_and_damage_is_recomputed(small_beir, tiny_model, tmp_path):
    first = evaluate(small_beir, str(tiny_model), cache=tmp_path, metrics=["ndcg@10", "mrr@10"])
    memo = list((tmp_path / "scores").glob("*.json"))
    assert len(memo) == 1
    memo[0].write_text('{"ndcg@10": {"q1": NaN}}')
    again = evaluate(small_beir, str(tiny_model), cache=tmp_path, metrics=["ndcg@10", "mrr@10"])
    assert again.per_query == first.per_query
    assert json.loads(memo[0].read_text())["ndcg@10"] == {q: v["ndcg@10"] for q, v in first.per_query.items()}
    # another metric set or another ranking is another entry, never a stale hit
    evaluate(small_beir, str(tiny_model), cache=tmp_path, metrics=["ndcg@5"])
    assert len(list((tmp_path / "scores").glob("*.json"))) == 2
