"""Serving forms: what a sweep of dimensions x precisions costs, and the backends side by side.

1. On scifact test with all-MiniLM-L6-v2, from an empty cache: one evaluation (encode + search + score), then a
   4 dimensions x 3 precisions sweep on the same cache (each variant derived from the cached float32 vectors).
   The issue's bar: the whole sweep costs at most 1.2x the one evaluation.
2. Backends in one run on this machine: torch fp32, ONNX fp32 and ONNX int8 (graphs written by `embedgate
   export`): documents per second encoding scifact documents, query latency p50/p95 at batch 1, and the lowest
   cosine of each backend's vectors to torch's.

    python bench/bench_serving.py [--data ../shared/datasets/scifact] [--docs 600] [--queries 50]

Results go into BENCHMARKS.md between markers.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks_md import replace_section

import numpy as np

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- bench_serving:start -->", "<!-- bench_serving:end -->"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DIMS = [384, 256, 128, 64]
PRECISIONS = ["float32", "int8", "binary"]


def sweep(data: str) -> dict:
    from embedgate.harness import data as data_mod
    from embedgate.harness.evaluate import evaluate
    from embedgate.harness.models import ModelSpec

    ds = data_mod.load(data, "test")
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        one = evaluate(ds, ModelSpec(MODEL, max_seq_length=256), metrics=["ndcg@10"], cache=cache)
        t_one = time.perf_counter() - t0
        rows.append({"dims": 384, "precision": "float32", "ndcg@10": one.metrics["ndcg@10"], "seconds": t_one,
                     "encoded": one.timings["encode"]["documents"]["encoded"]})
        t0 = time.perf_counter()
        for dim in DIMS:
            for prec in PRECISIONS:
                if dim == 384 and prec == "float32":
                    continue
                t1 = time.perf_counter()
                spec = ModelSpec(MODEL, max_seq_length=256, truncate_dim=None if dim == 384 else dim, precision=prec)
                r = evaluate(ds, spec, metrics=["ndcg@10"], cache=cache)
                rows.append({"dims": dim, "precision": prec, "ndcg@10": r.metrics["ndcg@10"],
                             "seconds": time.perf_counter() - t1,
                             "encoded": r.timings["encode"]["documents"]["encoded"]})
        t_rest = time.perf_counter() - t0
    return {"documents": len(ds.corpus), "queries": len(ds.queries), "one_s": t_one, "rest_s": t_rest,
            "rows": rows}


def backends(data: str, n_docs: int, n_queries: int) -> list[dict]:
    from embedgate.harness import data as data_mod
    from embedgate.harness.backends import export_onnx
    from embedgate.harness.models import ModelSpec, load_model, resolve_model_path

    ds = data_mod.load(data, "test")
    docs = [d.full_text for d in list(ds.corpus.values())[:n_docs]]
    queries = list(ds.queries.values())[:n_queries]
    src, _ = resolve_model_path(MODEL)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(src, Path(tmp) / "fp32")
        export_onnx(src, Path(tmp) / "int8", quantize="int8")
        models = {"torch fp32": load_model(ModelSpec(MODEL, max_seq_length=256)),
                  "onnx fp32": load_model(ModelSpec(str(Path(tmp) / "fp32"), max_seq_length=256)),
                  "onnx int8": load_model(ModelSpec(str(Path(tmp) / "int8"), max_seq_length=256))}
        reference = None
        for name, m in models.items():
            m.embed(docs[:8], "document", False)  # warm-up: lazy loading, first-call allocations
            t0 = time.perf_counter()
            vecs = np.asarray(m.embed(docs, "document", False))
            dps = len(docs) / (time.perf_counter() - t0)
            times = []
            for q in queries:
                t1 = time.perf_counter()
                m.embed([q], "query", False)
                times.append(1000 * (time.perf_counter() - t1))
            reference = vecs if reference is None else reference
            out.append({"backend": name, "docs_per_s": dps, "p50_ms": float(np.percentile(times, 50)),
                        "p95_ms": float(np.percentile(times, 95)),
                        "min_cosine": float((vecs * reference).sum(axis=1).min())})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "datasets" / "scifact"))
    ap.add_argument("--docs", type=int, default=600)
    ap.add_argument("--queries", type=int, default=50)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load_before = os.getloadavg()[0]
    sw = sweep(args.data)
    be = backends(args.data, args.docs, args.queries)
    load_after = os.getloadavg()[0]
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    ratio = (sw["one_s"] + sw["rest_s"]) / sw["one_s"]
    lines = [START, "## Serving forms: a dimensions x precisions sweep, and the backends", "",
             f"Command: `python bench/bench_serving.py` ({now}; {os.cpu_count()} cores, load average "
             f"{load_before:.2f} before / {load_after:.2f} after; a shared machine: compare the ratios).", "",
             f"Sweep on scifact test ({sw['documents']:,} documents, {sw['queries']} queries), all-MiniLM-L6-v2, "
             f"from an empty cache: one evaluation took {sw['one_s']:.1f} s; the other "
             f"{len(sw['rows']) - 1} variants of the {len(DIMS)} x {len(PRECISIONS)} sweep took {sw['rest_s']:.1f} s "
             f"more (no text encoded again): the whole sweep costs **{ratio:.2f}x** one evaluation (goal <= 1.2x).",
             "", "| dimensions | precision | NDCG@10 | seconds | documents encoded |", "|---|---|---|---|---|"]
    for r in sw["rows"]:
        lines.append(f"| {r['dims']} | {r['precision']} | {r['ndcg@10']:.4f} | {r['seconds']:.1f} | {r['encoded']:,} |")
    base = be[0]
    lines += ["", f"Backends, one run, {args.docs} scifact documents (256 tokens) and {args.queries} queries at "
                  "batch 1, CPU:", "",
              "| backend | documents/s | ratio | query p50 / p95 (ms) | lowest cosine to torch |", "|---|---|---|---|---|"]
    for b in be:
        lines.append(f"| {b['backend']} | {b['docs_per_s']:.1f} | {b['docs_per_s'] / base['docs_per_s']:.2f}x | "
                     f"{b['p50_ms']:.1f} / {b['p95_ms']:.1f} | {b['min_cosine']:.4f} |")
    lines += ["", "OpenVINO is not in the table: it cannot be installed beside the CPU torch pin (docs/backends.md).",
              END]
    section = "\n".join(lines)
    replace_section(START, END, section)
    print(section)


if __name__ == "__main__":
    main()
