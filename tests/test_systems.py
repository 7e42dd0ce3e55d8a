"""Reference systems: BM25, hybrid fusion and reranking equal an independent computation; a suite with references
runs them on the same queries; bad system tables are clear errors before any encoding."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from embedgate.harness import data as data_mod
from embedgate.harness.encode import EmbeddingCache
from embedgate.harness.errors import ConfigError
from embedgate.harness.schema import BM25System, HybridSystem, RerankSystem
from embedgate.harness.suite import load_suite, run_suite
from embedgate.harness.systems import run_systems
from embedgate.harness.systems.bm25 import run_bm25
from embedgate.harness.systems.fusion import fuse_rankings, tune_weights
from suite_helpers import write_tiny_suite


@pytest.fixture(scope="module")
def scifact_small(datasets_dir):
    return data_mod.load(datasets_dir / "scifact", "test").subset(max_queries=80, corpus_size=800, seed=0)


def _trec_order(scores: dict[str, float], k: int) -> list[str]:
    """trec_eval's order, written out independently: score desc, then document id desc."""
    return [d for d, _ in sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:k]]


def _ndcg10_ir_measures(qrels, rankings) -> dict[str, float]:
    import ir_measures
    from ir_measures import nDCG

    run = [ir_measures.ScoredDoc(q, d, float(len(r) - i)) for q, r in rankings.items() for i, d in enumerate(r)]
    qr = [ir_measures.Qrel(q, d, rel) for q, rels in qrels.items() for d, rel in rels.items()]
    return {m.query_id: m.value for m in ir_measures.iter_calc([nDCG @ 10], qr, run)}


def test_bm25_equals_bm25s_driven_directly(scifact_small, tmp_path):
    """The same tokenization through bm25s by hand, every document scored, ranked by trec_eval's rule and scored
    by ir-measures: NDCG@10 equal to 1e-6 per query."""
    import bm25s
    import Stemmer

    from embedgate.harness.metrics import score_queries

    ds = scifact_small
    run = run_bm25("bm25", BM25System(kind="bm25"), ds, depth=100, cache=EmbeddingCache(tmp_path))
    ours = score_queries(ds.qrels, run.rankings, ["ndcg@10"])["ndcg@10"]

    ids = list(ds.corpus)
    stem = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()  # defaults: lucene, k1 1.5, b 0.75
    retriever.index(bm25s.tokenize([ds.corpus[d].full_text for d in ids], stopwords="en", stemmer=stem,
                                   show_progress=False), show_progress=False)
    docs, scores = retriever.retrieve(bm25s.tokenize([ds.queries[q] for q in ds.queries], stopwords="en",
                                                     stemmer=stem, show_progress=False),
                                      k=len(ids), show_progress=False)
    theirs_rank = {q: _trec_order({ids[i]: float(np.float32(s)) for i, s in zip(docs[j], scores[j])}, 100)
                   for j, q in enumerate(ds.queries)}
    theirs = _ndcg10_ir_measures(ds.qrels, theirs_rank)
    assert set(ours) == set(theirs) and len(ours) == 80
    for q in ours:
        assert ours[q] == pytest.approx(theirs[q], abs=1e-6), q
    mean = float(np.mean(list(ours.values())))
    assert 0.55 < mean < 0.85  # BM25 on scifact is strong (0.6863 on the full test set)
    assert run.info["k1"] == 1.5 and run.info["b"] == 0.75 and run.info["stemmer"] == "PyStemmer english"
    assert run.index_bytes > 0


def test_bm25_index_is_cached_and_a_damaged_one_rebuilt(scifact_small, tmp_path):
    cache = EmbeddingCache(tmp_path)
    spec = BM25System(kind="bm25")
    first = run_bm25("bm25", spec, scifact_small, depth=20, cache=cache)
    second = run_bm25("bm25", spec, scifact_small, depth=20, cache=cache)
    assert first.timings["index_cached"] is False and second.timings["index_cached"] is True
    assert first.rankings == second.rankings
    other = run_bm25("bm25", spec.model_copy(update={"k1": 0.9}), scifact_small, depth=20, cache=cache)
    assert other.timings["index_cached"] is False  # settings are part of the key
    for npy in (tmp_path / "bm25").glob("*/data.csc.index.npy"):
        npy.write_bytes(npy.read_bytes()[:40])  # truncated
    again = run_bm25("bm25", spec, scifact_small, depth=20, cache=cache)
    assert again.rankings == first.rankings


def _member_runs(ds, tiny_model, tmp_path):
    from embedgate.harness.models import ModelSpec, load_model

    specs = {"bm25": BM25System(kind="bm25"), "dense": ModelSpec(str(tiny_model))}
    return run_systems(ds, specs, depth=50, cache=EmbeddingCache(tmp_path), loaded={"dense": load_model(
        specs["dense"])})


@pytest.mark.parametrize("method,norm", [("rrf", None), ("wsum", "min-max"), ("mnz", "max")])
def test_fusion_equals_ranx_fuse(scifact_small, tiny_model, tmp_path, method, norm):
    from ranx import Run, fuse

    runs = _member_runs(scifact_small, tiny_model, tmp_path)
    spec = HybridSystem(kind="hybrid", systems=["bm25", "dense"], method=method, norm=norm)
    ours = fuse_rankings(spec, [runs["bm25"].rankings, runs["dense"].rankings], depth=50)
    # ranx on the same runs; rank-based methods read the member order, so give ranx rank scores
    rank_based = method == "rrf"
    members = [Run({q: {d: (float(len(r) - i) if rank_based else s) for i, (d, s) in enumerate(r)}
                    for q, r in runs[n].rankings.items()}) for n in ("bm25", "dense")]
    params = {"k": 60} if method == "rrf" else ({"weights": [1.0, 1.0]} if method == "wsum" else {})
    expected = fuse(members, norm=norm, method=method, params=params).to_dict()
    for q in scifact_small.queries:
        assert [d for d, _ in ours[q]] == _trec_order(expected[q], 50)
        assert [s for _, s in ours[q]] == pytest.approx(sorted(expected[q].values(), reverse=True)[:50])


def test_fusion_weights_tuned_on_a_dev_split_with_optimize_fusion(scifact_small, tiny_model, tmp_path):
    from ranx import Qrels, Run, optimize_fusion

    runs = _member_runs(scifact_small, tiny_model, tmp_path)
    spec = HybridSystem(kind="hybrid", systems=["bm25", "dense"], method="wsum", norm="min-max", tune_split="dev")
    members = [runs["bm25"].rankings, runs["dense"].rankings]
    weights = tune_weights(spec, scifact_small.qrels, members)
    best = optimize_fusion(Qrels(scifact_small.qrels), [Run({q: dict(r) for q, r in m.items()}) for m in members],
                           norm="min-max", method="wsum", metric="ndcg@10")
    assert weights == pytest.approx(list(best["weights"]))
    assert sum(weights) == pytest.approx(1.0, abs=0.02)


def test_rerank_equals_cross_encoder_rank(scifact_small, tmp_path):
    from sentence_transformers import CrossEncoder
    from tiny_model import build_tiny_cross_encoder

    from embedgate.harness.systems.rerank import run_rerank

    ds = scifact_small
    texts = [d.full_text for d in list(ds.corpus.values())[:200]]
    ce_path = build_tiny_cross_encoder(tmp_path / "ce", texts)
    first = run_bm25("bm25", BM25System(kind="bm25"), ds, depth=30, cache=EmbeddingCache(tmp_path / "c"))
    spec = RerankSystem(kind="rerank", model=str(ce_path), first_stage="bm25", k=10, max_length=128)
    run = run_rerank("rerank", spec, ds, first, depth=30)
    ce = CrossEncoder(str(ce_path), max_length=128, local_files_only=True)
    for q in list(ds.queries)[:15]:
        head = [d for d, _ in first.rankings[q][:10]]
        ranked = ce.rank(ds.queries[q], [ds.corpus[d].full_text for d in head])
        expected = {head[r["corpus_id"]]: float(np.float32(r["score"])) for r in ranked}
        got = run.rankings[q]
        assert [d for d, _ in got[:10]] == _trec_order(expected, 10)
        assert [s for _, s in got[:10]] == pytest.approx(sorted(expected.values(), reverse=True), abs=1e-6)
        # below k: the first stage's order
        assert [d for d, _ in got[10:]] == [d for d, _ in first.rankings[q][10:30]]
    assert run.info["k"] == 10 and run.info["first_stage"] == "bm25"


REFERENCES = """
[references.bm25]
kind = "bm25"

[references.hybrid]
kind = "hybrid"
systems = ["bm25", "candidate"]
"""

GATES_VS_BM25 = """
[[gates]]
kind = "improvement"
metric = "ndcg@10"
against = "bm25"

[[gates]]
kind = "non_inferiority"
system = "hybrid"
against = "bm25"
metric = "ndcg@10"
margin = 0.05
"""


def test_suite_runs_every_system_on_the_same_queries(small_beir, tiny_model, tmp_path):
    folder = write_tiny_suite(tmp_path / "s", str(tiny_model), small_beir, REFERENCES + GATES_VS_BM25)
    result = run_suite(folder, str(tiny_model), cache=tmp_path / "cache")
    sec = result.datasets["main"]
    assert set(sec.metrics) == {"base", "candidate", "bm25", "hybrid"}
    assert set(sec.per_query["bm25"]) == set(sec.per_query["hybrid"]) == set(sec.per_query["base"])
    gate = result.gates[0]
    assert gate.name == "ndcg@10 improves vs bm25" and gate.against == "bm25" and gate.system == "candidate"
    # the gate's sides are the systems it names: its numbers are their means
    assert gate.base == pytest.approx(sec.metrics["bm25"]["ndcg@10"])
    assert gate.candidate == pytest.approx(sec.metrics["candidate"]["ndcg@10"])
    ni = result.gates[1]
    assert ni.system == "hybrid" and ni.candidate == pytest.approx(sec.metrics["hybrid"]["ndcg@10"])
    assert "bm25" in ni.message and "hybrid" in ni.message
    cmp = sec.versus["candidate vs bm25"]["ndcg@10"]
    assert cmp.difference == pytest.approx(sec.metrics["candidate"]["ndcg@10"] - sec.metrics["bm25"]["ndcg@10"])
    assert tuple(cmp.ci) == pytest.approx(gate.ci)
    bm25 = sec.systems["bm25"]
    assert bm25.kind == "bm25" and bm25.info["method"] == "lucene" and bm25.index_bytes > 0
    assert bm25.latency["measured"] and bm25.latency["p95_ms"] >= bm25.latency["p50_ms"] > 0
    assert sec.systems["hybrid"].index_bytes == bm25.index_bytes + sec.systems["candidate"].index_bytes
    assert sec.systems["candidate"].index_bytes == sec.data["n_documents"] * 32 * 4  # 32 dimensions, fp32


def test_candidate_may_be_a_system_file(small_beir, tiny_model, tmp_path):
    folder = write_tiny_suite(tmp_path / "s", str(tiny_model), small_beir, REFERENCES.split("[references.hybrid]")[0]
                              + GATES_VS_BM25.split("[[gates]]\nkind = \"non_inferiority\"")[0])
    system = tmp_path / "served.toml"
    system.write_text(f'kind = "hybrid"\nsystems = ["bm25", "{tiny_model}"]\n')
    result = run_suite(folder, str(system), cache=tmp_path / "cache")
    sec = result.datasets["main"]
    assert sec.systems["candidate"].kind == "hybrid"
    assert sec.systems["candidate"].info["systems"] == ["bm25", str(tiny_model)]
    assert str(tiny_model) in sec.metrics  # the fused model is scored beside it


BAD = [
    ('[references.x]\nkind = "bm2"\n', "references.x.kind", "unknown system kind 'bm2'; did you mean 'bm25'?"),
    ('[references.x]\nkind = "api"\nprovider = "openia"\nmodel = "m"\n', "references.x.provider", "openai"),
    ('[references.x]\nkind = "hybrid"\nsystems = ["x", "base"]\n', "references.x.systems", "names itself"),
    ('[references.x]\nkind = "hybrid"\nsystems = ["bm25", "base"]\n', "references.x.systems",
     "unknown system 'bm25'"),
    ('[references.x]\nkind = "hybrid"\nsystems = ["base"]\n', "references.x.systems", "at least 2"),
    ('[references.x]\nkind = "rerank"\nmodel = "m"\nfirst_stage = "base"\nk = 0\n', "references.x.k",
     "must be > 0"),
    ('[references.x]\nkind = "hybrid"\nsystems = ["candidate", "base"]\nmethod = "wsum"\n', "references.x.norm",
     "state a normalisation"),
    ('[references.x]\nkind = "hybrid"\nsystems = ["candidate", "base"]\nmethod = "wsum"\nnorm = "min-max"\n'
     'tune_split = "test"\n', "references.x.tune_split", "name a dev split"),
    ('[references.base]\nkind = "bm25"\n', "references.base", "another name"),
]


@pytest.mark.parametrize("table,field,words", BAD, ids=[b[1] + ":" + b[2][:20] for b in BAD])
def test_bad_system_tables_name_file_line_and_field(small_beir, tiny_model, tmp_path, table, field, words):
    gates = '[[gates]]\nkind = "absolute"\nmetric = "ndcg@10"\nmin = 0.1\n'
    folder = write_tiny_suite(tmp_path / "s", str(tiny_model), small_beir, table + gates)
    with pytest.raises(ConfigError) as err:
        load_suite(folder)
    e = err.value
    assert e.field == field and words in e.message, (e.field, e.message)
    assert Path(e.path) == folder / "suite.toml" and e.line is not None
    text = (folder / "suite.toml").read_text().splitlines()
    assert text[e.line - 1].startswith(("[references", "k =", "tune_split", "systems", "provider", "kind", "method")), \
        text[e.line - 1]


def test_gate_against_an_unknown_system(small_beir, tiny_model, tmp_path):
    gates = '[[gates]]\nkind = "improvement"\nmetric = "ndcg@10"\nagainst = "bm52"\n'
    folder = write_tiny_suite(tmp_path / "s", str(tiny_model), small_beir, REFERENCES + gates)
    with pytest.raises(ConfigError) as err:
        load_suite(folder)
    assert err.value.field == "gates[0].against" and "did you mean 'bm25'" in err.value.message


def test_missing_api_key_and_missing_sdk_stop_the_gate_with_exit_2(small_beir, tiny_model, tmp_path):
    """Before any encoding or spending: the CLI exits 2 with one line naming the suite file, line and field."""
    table = '[references.oa]\nkind = "api"\nprovider = "openai"\nmodel = "text-embedding-3-small"\n'
    gates = '[[gates]]\nkind = "improvement"\nmetric = "ndcg@10"\nagainst = "oa"\n'
    folder = write_tiny_suite(tmp_path / "s", str(tiny_model), small_beir, table + gates)
    env = {k: v for k, v in __import__("os").environ.items() if k != "OPENAI_API_KEY"}
    env["EMBEDGATE_CACHE"] = str(tmp_path / "cache")
    proc = subprocess.run([sys.executable, "-m", "embedgate.harness.shells.cli", "gate", str(folder),
                           "--candidate", str(tiny_model), "--results-dir", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "OPENAI_API_KEY" in proc.stderr and "suite.toml" in proc.stderr and "references.oa" in proc.stderr
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.npz"))


def test_a_recipe_gated_over_seeds_pools_the_improvement_and_holds_guards_per_seed(small_beir, tiny_model,
                                                                                  tmp_path):
    """Three candidates (seeds): the improvement gate decides on the per-query mean over them, paired against the
    base; a guard must hold for each; each candidate's own gates are kept."""
    from tiny_model import build_tiny_model

    from conftest import TINY_TEXTS
    from embedgate.harness.compare import paired_compare
    from embedgate.harness.evaluate import evaluate

    seeds = [build_tiny_model(tmp_path / f"seed{k}", TINY_TEXTS, seed=k + 1) for k in range(3)]
    gates = ('[[gates]]\nkind = "improvement"\nmetric = "ndcg@10"\n\n'
             '[[gates]]\nkind = "non_inferiority"\nmetric = "ndcg@10"\nmargin = 0.5\n')
    folder = write_tiny_suite(tmp_path / "s", str(tiny_model), small_beir, gates)
    result = run_suite(folder, [str(p) for p in seeds], cache=tmp_path / "cache")
    assert len(result.seeds) == 3 and result.pooling["candidates"] == 3
    base = evaluate(small_beir, str(tiny_model), metrics=["ndcg@10"], cache=False).per_query
    each = [evaluate(small_beir, str(p), metrics=["ndcg@10"], cache=False).per_query for p in seeds]
    pooled = {q: float(np.mean([e[q]["ndcg@10"] for e in each])) for q in base}
    expected = paired_compare({q: v["ndcg@10"] for q, v in base.items()}, pooled, confidence=0.95, resamples=500,
                              seed=0)
    imp = result.gates[0]
    assert imp.details["pooled"] and imp.candidate == pytest.approx(expected.candidate)
    assert tuple(imp.ci) == pytest.approx(expected.ci)
    assert [d["difference"] for d in imp.details["seeds"]] == pytest.approx(
        [np.mean([e[q]["ndcg@10"] for q in base]) - expected.base for e in each])
    guard = result.gates[1]
    assert guard.details["pooled"] is False and len(guard.details["seeds"]) == 3
    assert (guard.status == "pass") == all(s.gates[1].status == "pass" for s in result.seeds)
    for seed, e in zip(result.seeds, each):
        assert seed.metrics["main"]["ndcg@10"] == pytest.approx(np.mean([e[q]["ndcg@10"] for q in base]))
    with pytest.raises(ConfigError, match="given twice"):
        run_suite(folder, [str(seeds[0]), str(seeds[0])], cache=False)
