"""Reference systems: what BM25 costs beside the bi-encoder, and what adding references costs a warm gate.

1. On one corpus (scifact test by default): BM25 (bm25s) index + search of every query, against the bi-encoder
   (all-MiniLM-L6-v2) encoding the same corpus and queries from an empty cache, plus its exact search.
2. A warm gate of ``suites/regulatory`` (every embedding already cached) run twice as fresh processes: once as
   shipped (base, candidate, bm25 and two hybrids) and once with the references and their gates removed. The
   difference is what the references cost a gate whose embeddings are cached.

    python bench/bench_systems.py --candidate runs/regulatory [--cache /tmp/warm-cache]

Results go into BENCHMARKS.md between markers.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks_md import replace_section

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- bench_systems:start -->", "<!-- bench_systems:end -->"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def corpus_costs(data: str) -> dict:
    from embedgate.harness import data as data_mod
    from embedgate.harness.encode import EmbeddingCache
    from embedgate.harness.models import ModelSpec, load_model
    from embedgate.harness.schema import BM25System
    from embedgate.harness.systems.bm25 import run_bm25
    from embedgate.harness.systems.dense import run_dense

    ds = data_mod.load(data, "test")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        bm25 = run_bm25("bm25", BM25System(kind="bm25"), ds, depth=100, cache=EmbeddingCache(tmp))
        t_bm25 = time.perf_counter() - t0
        model = load_model(ModelSpec(MODEL, max_seq_length=256))
        t0 = time.perf_counter()
        dense = run_dense("base", model, ds, depth=100, cache=EmbeddingCache(Path(tmp) / "dense"))
        t_dense = time.perf_counter() - t0
    return {"data": ds.name, "documents": len(ds.corpus), "queries": len(ds.queries),
            "bm25": {"total_s": t_bm25, **bm25.timings, "index_bytes": bm25.index_bytes},
            "dense": {"total_s": t_dense, "encode_s": dense.timings["encode_s"],
                      "retrieve_s": dense.timings["retrieve_s"], "index_bytes": dense.index_bytes}}


def strip_references(text: str) -> str:
    """suite.toml without its [references.*] tables and the gates that read them."""
    text = re.sub(r"\n# What the team could ship instead.*?(?=\n# Every test question|\n\[data\.)", "\n", text,
                  flags=re.S)
    text = re.sub(r"\n\[references\.[^\]]+\][^\[]*", "\n", text)
    return re.sub(r"\n# Against what could be shipped instead.*\Z", "\n", text, flags=re.S)


def warm_gate(suite_dir: Path, candidate: str, cache: str, out: Path) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "embedgate.harness.shells.cli", "gate", str(suite_dir), "--candidate",
                           candidate, "--cache-dir", cache, "--results-dir", str(out), "-q"],
                          capture_output=True, text=True,
                          env={"EMBEDGATE_DATA": str(REPO.parent / "shared" / "datasets"), **os.environ,
                               "EMBEDGATE_NO_PROGRESS": "1"})
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(proc.stderr[-2000:])
    result = json.loads(sorted(out.glob("*.json"))[-1].read_text())
    return {"wall_s": wall, "systems": len(result["datasets"]["main"]["systems"]), "gates": len(result["gates"]),
            "encoded": sum(t.get("encode", {}).get(role, {}).get("encoded", 0)
                           for d in result["timings"]["datasets"].values() for t in d.values()
                           for role in ("documents", "queries"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "datasets" / "scifact"))
    ap.add_argument("--candidate", required=True, help="the regulatory candidate (trained by the README's job)")
    ap.add_argument("--cache", default=None, help="a cache that already holds the regulatory suite's embeddings")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    costs = corpus_costs(args.data)
    suite = REPO / "suites" / "regulatory"
    cache = args.cache or str(Path.home() / ".cache" / "embedgate")
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "regulatory"
        bare.mkdir()
        (bare / "suite.toml").write_text(strip_references((suite / "suite.toml").read_text()))
        warm_gate(suite, args.candidate, cache, Path(tmp) / "prime")  # fills the cache and numba's
        runs = {}
        for label, folder in (("without references", bare), ("with references", suite)):
            runs[label] = warm_gate(folder, args.candidate, cache, Path(tmp) / label.replace(" ", "-"))
    load_after = os.getloadavg()[0]
    b, d = costs["bm25"], costs["dense"]
    w0, w1 = runs["without references"], runs["with references"]
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = f"""{START}
## Reference systems: BM25 beside the bi-encoder

Command: `python bench/bench_systems.py --candidate runs/regulatory` ({now}; {os.cpu_count()} cores, load average
{load_before:.2f} before / {load_after:.2f} after; a shared machine: compare the ratios).

On {costs['data']} test ({costs['documents']:,} documents, {costs['queries']} queries), from an empty cache:

| system | build | search every query | total | ratio | index |
|---|---|---|---|---|---|
| BM25 (bm25s, lucene, English stemmer + stopwords) | index {b['index_s']:.1f} s | {b['retrieve_s']:.1f} s | {b['total_s']:.1f} s | 1.00 | {b['index_bytes'] / 1e6:.1f} MB |
| all-MiniLM-L6-v2 (encode corpus + queries, exact search) | encode {d['encode_s']:.1f} s | {d['retrieve_s']:.1f} s | {d['total_s']:.1f} s | {d['total_s'] / b['total_s']:.0f}x BM25 | {d['index_bytes'] / 1e6:.1f} MB (fp32) |

Warm `embedgate gate suites/regulatory` (2,786 + 300 queries; every embedding cached, fresh processes):

| suite | systems | gates | texts encoded | wall time |
|---|---|---|---|---|
| without references | {w0['systems']} | {w0['gates']} | {w0['encoded']} | {w0['wall_s']:.1f} s |
| as shipped (bm25, bm25-base, bm25-candidate) | {w1['systems']} | {w1['gates']} | {w1['encoded']} | {w1['wall_s']:.1f} s |

Adding the three references costs a warm gate {w1['wall_s'] - w0['wall_s']:.1f} s ({w1['wall_s'] / w0['wall_s']:.2f}x);
the BM25 index comes from the cache, and the time goes to fusing 2,786 rankings with ranx, scoring three more
runs and timing each system's query latency (30 queries, batch 1).
{END}"""
    replace_section(START, END, section)
    print(section)


if __name__ == "__main__":
    main()
