"""Deployment forms: truncated and quantized vectors equal an independent computation, a sweep costs no encoding,
the ONNX export is gated like any candidate, and bad serving options are clear errors before encoding."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from embedgate.harness import data as data_mod
from embedgate.harness.errors import ConfigError, EmbedgateError
from embedgate.harness.evaluate import evaluate
from embedgate.harness.metrics import score_queries
from embedgate.harness.models import ModelSpec, load_model
from embedgate.harness.suite import load_suite, run_suite
from suite_helpers import write_tiny_suite


@pytest.fixture(scope="module")
def scifact_small(datasets_dir):
    return data_mod.load(datasets_dir / "scifact", "test").subset(max_queries=60, corpus_size=500, seed=0)


def _ranked(scores: np.ndarray, doc_ids: list[str], k: int) -> list[tuple[str, float]]:
    """Score desc, then document id desc, written out independently of the harness."""
    pairs = sorted(zip(doc_ids, scores.tolist()), key=lambda t: (t[1], t[0]), reverse=True)
    return pairs[:k]


@pytest.mark.parametrize("dim", [16, 8])
def test_truncated_metrics_equal_sentence_transformers_evaluator(scifact_small, tiny_model, dim):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    ds = scifact_small
    ours = evaluate(ds, ModelSpec(str(tiny_model), truncate_dim=dim), metrics=["ndcg@10", "mrr@10"], cache=False)
    ev = InformationRetrievalEvaluator(
        queries=ds.queries, corpus={d: doc.full_text for d, doc in ds.corpus.items()},
        relevant_docs={q: {d for d, r in rels.items() if r > 0} for q, rels in ds.qrels.items()},
        truncate_dim=dim, show_progress_bar=False, name="st", ndcg_at_k=[10], mrr_at_k=[10])
    theirs = ev(SentenceTransformer(str(tiny_model), device="cpu"))
    assert ours.metrics["ndcg@10"] == pytest.approx(theirs["st_cosine_ndcg@10"], abs=1e-4)
    assert ours.metrics["mrr@10"] == pytest.approx(theirs["st_cosine_mrr@10"], abs=1e-4)
    assert ours.model["serving"]["dimensions"] == dim


@pytest.mark.parametrize("precision", ["int8", "binary"])
@pytest.mark.parametrize("rescore", [None, 20])
def test_quantized_metrics_equal_quantize_embeddings_and_exact_search(scifact_small, tiny_model, precision, rescore):
    from sentence_transformers.util.quantization import quantize_embeddings

    ds = scifact_small
    ours = evaluate(ds, ModelSpec(str(tiny_model), precision=precision, rescore=rescore), metrics=["ndcg@10"],
                    cache=False)
    model = load_model(str(tiny_model))
    doc_ids, qids = list(ds.corpus), list(ds.queries)
    docs = model.embed([ds.corpus[d].full_text for d in doc_ids], "document", False)
    queries = model.embed([ds.queries[q] for q in qids], "query", False)
    if precision == "int8":
        dq = quantize_embeddings(docs, precision="int8", calibration_embeddings=docs).astype(np.int64)
        qq = quantize_embeddings(queries, precision="int8", calibration_embeddings=docs).astype(np.int64)
        quantized_scores = qq @ dq.T
        doc_values = dq.astype(np.float64)
    else:
        bits_d = np.unpackbits(quantize_embeddings(docs, precision="ubinary"), axis=1)
        bits_q = np.unpackbits(quantize_embeddings(queries, precision="ubinary"), axis=1)
        quantized_scores = -(bits_q[:, None, :] != bits_d[None, :, :]).sum(axis=2)  # -Hamming
        doc_values = 2.0 * bits_d - 1.0
    rankings = {}
    for i, q in enumerate(qids):
        first = _ranked(quantized_scores[i].astype(np.float64), doc_ids, max(100, rescore or 0))
        if rescore:
            pos = {d: j for j, d in enumerate(doc_ids)}
            head = [d for d, _ in first[:rescore]]
            s = np.array([doc_values[pos[d]] @ queries[i].astype(np.float64) for d in head], dtype=np.float32)
            first = _ranked(s.astype(np.float64), head, rescore) + first[rescore:100]
        rankings[q] = first[:100]
    expected = score_queries(ds.qrels, rankings, ["ndcg@10"])["ndcg@10"]
    got = {q: v["ndcg@10"] for q, v in ours.per_query.items()}
    for q in expected:
        assert got[q] == pytest.approx(expected[q], abs=1e-6), q
    serving = ours.model["serving"]
    assert serving["precision"] == precision and serving["rescore"] == rescore
    if precision == "int8":
        assert serving["int8_ranges"]["min"] == pytest.approx(docs.min(axis=0).tolist(), abs=1e-6)


def test_a_sweep_is_scored_from_one_encoding(small_beir, tiny_model, tmp_path):
    variants = '[variants]\ntruncate_dim = [16, 8]\nprecision = ["int8", "binary"]\n'
    gates = ('[[gates]]\nkind = "non_inferiority"\nsystem = "candidate-16d-int8"\nagainst = "candidate"\n'
             'metric = "ndcg@10"\nmargin = 0.5\n')
    folder = write_tiny_suite(tmp_path / "s", str(tiny_model), small_beir, variants + gates)
    result = run_suite(folder, str(tiny_model), cache=tmp_path / "cache")
    sec = result.datasets["main"]
    names = {"candidate-16d", "candidate-8d", "candidate-int8", "candidate-binary", "candidate-16d-int8",
             "candidate-16d-binary", "candidate-8d-int8", "candidate-8d-binary"}
    assert names <= set(sec.systems)
    encoded = {n: t["encode"]["documents"]["encoded"] + t["encode"]["queries"]["encoded"]
               for n, t in result.timings["datasets"]["main"].items() if "encode" in t}
    assert encoded["base"] > 0  # the one encoding (base and candidate are the same model here)
    assert all(encoded[n] == 0 for n in names), encoded
    assert sec.systems["candidate-8d-binary"].info["serving"]["dimensions"] == 8
    assert sec.systems["candidate-8d-binary"].index_bytes == sec.data["n_documents"] * 1  # 8 bits a document
    assert sec.systems["candidate-16d-int8"].index_bytes == sec.data["n_documents"] * 16
    assert "candidate-8d vs candidate" in sec.versus and "candidate-8d vs base" in sec.versus
    assert result.gates[0].system == "candidate-16d-int8" and result.gates[0].against == "candidate"


@pytest.mark.parametrize("table,field,words", [
    ('truncate_dim = 64\n', "truncate_dim", "larger than the model's dimension 32"),
    ('precision = "int4"\n', "base.precision", "int8"),
    ('rescore = 10\n', "base.rescore", "not quantized"),
    ('backend = "openvino"\n', "backend", "torch 2.14"),
    ('backend = "onnx"\n', "onnx_file", "embedgate export"),
])
def test_bad_serving_options_fail_before_encoding(small_beir, tiny_model, tmp_path, table, field, words):
    gates = '[[gates]]\nkind = "absolute"\nmetric = "ndcg@10"\nmin = 0.1\n'
    folder = write_tiny_suite(tmp_path / "s", str(tiny_model), small_beir, gates)
    text = (folder / "suite.toml").read_text().replace(f'model = "{tiny_model}"\n', f'model = "{tiny_model}"\n{table}')
    (folder / "suite.toml").write_text(text)
    with pytest.raises(EmbedgateError) as err:
        run_suite(load_suite(folder), str(tiny_model), cache=tmp_path / "cache")
    assert err.value.field == field and words in err.value.message, (err.value.field, err.value.message)
    assert not (tmp_path / "cache").exists()


def test_onnx_export_is_gated_against_the_torch_candidate(small_beir, tiny_model, tmp_path):
    from embedgate.harness.backends import export_onnx

    out = tmp_path / "onnx-int8"
    proc = subprocess.run([sys.executable, "-m", "embedgate.harness.shells.cli", "export", str(tiny_model),
                           "--to", "onnx", "--quantize", "int8", "--output", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (out / "onnx" / "model.onnx").is_file() and not list(out.glob("*.safetensors"))
    fp32 = tmp_path / "onnx-fp32"
    manifest = export_onnx(str(tiny_model), fp32)
    assert manifest["probe"]["max_abs_difference"] < 1e-5
    torch_model, onnx_model = load_model(str(tiny_model)), load_model(str(fp32))
    assert onnx_model.spec.backend == "onnx" and onnx_model.fingerprint != torch_model.fingerprint
    texts = [d.full_text for d in data_mod.load(small_beir, "test").corpus.values()]
    np.testing.assert_allclose(onnx_model.embed(texts, "document", False),
                               torch_model.embed(texts, "document", False), atol=1e-5)
    gates = (f'[references.torch-fp32]\nmodel = "{tiny_model}"\n\n'
             '[[gates]]\nkind = "non_inferiority"\nagainst = "torch-fp32"\nmetric = "ndcg@10"\nmargin = 0.5\n\n'
             '[[gates]]\nkind = "latency"\nagainst = "torch-fp32"\nmax_ratio = 100\n')
    folder = write_tiny_suite(tmp_path / "s", str(tiny_model), small_beir, gates)
    result = run_suite(folder, str(out), cache=tmp_path / "cache")
    assert result.models["candidate"]["backend"] == "onnx"
    assert result.gates[0].against == "torch-fp32" and result.gates[0].status == "pass"
    lat = result.gates[1]
    assert lat.kind == "latency" and lat.status == "pass" and lat.details["latency"]["p95_ms"] > 0
    again = subprocess.run([sys.executable, "-m", "embedgate.harness.shells.cli", "export", str(tiny_model),
                            "--output", str(out)], capture_output=True, text=True)
    assert again.returncode == 2 and "--overwrite" in again.stderr


def test_latency_gate_fails_a_slow_system(small_beir, tiny_model, tmp_path):
    gates = ('[references.bm25]\nkind = "bm25"\n\n'
             '[[gates]]\nkind = "latency"\nagainst = "bm25"\nmax_ratio = 0.001\n')
    folder = write_tiny_suite(tmp_path / "s", str(tiny_model), small_beir, gates)
    result = run_suite(folder, str(tiny_model), cache=tmp_path / "cache")
    gate = result.gates[0]
    assert gate.status == "fail" and gate.reference.value == pytest.approx(
        0.001 * result.datasets["main"].systems["bm25"].latency["p95_ms"])
    with pytest.raises(ConfigError):
        bad = write_tiny_suite(tmp_path / "b", str(tiny_model), small_beir,
                               '[[gates]]\nkind = "latency"\n')
        load_suite(bad)
