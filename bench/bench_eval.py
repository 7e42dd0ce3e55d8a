"""Wall time of `embedgate eval` against sentence-transformers' InformationRetrievalEvaluator, side by side.

Both run as fresh processes on the same model and data (imports and model loading included in both). embedgate
runs twice on one empty cache folder: cold (encodes everything) and warm (same model and data again). The peer
has no cache, so its one run is its cost every time. Results go into BENCHMARKS.md between markers.

    python bench/bench_eval.py [--data ../shared/datasets/scifact] [--repeats 1]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
START, END = "<!-- bench_eval:start -->", "<!-- bench_eval:end -->"

PEER = r"""
import json, sys, time
t0 = time.perf_counter()
from sentence_transformers import SentenceTransformer
from sentence_transformers.evaluation import InformationRetrievalEvaluator
from embedgate.harness.data import load
from embedgate.harness.models import resolve_model_path
ds = load(sys.argv[1], "test")
path, _ = resolve_model_path(sys.argv[2])
model = SentenceTransformer(path, device="cpu")
model.max_seq_length = 256
ev = InformationRetrievalEvaluator(
    queries=ds.queries, corpus={d: doc.full_text for d, doc in ds.corpus.items()},
    relevant_docs={q: {d for d, r in rels.items() if r > 0} for q, rels in ds.qrels.items()},
    show_progress_bar=False, batch_size=32, name="peer")
scores = ev(model)
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "ndcg@10": scores["peer_cosine_ndcg@10"], "mrr@10": scores["peer_cosine_mrr@10"]}))
"""


def run_peer(data: str) -> dict:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PEER, data, MODEL], capture_output=True, text=True, check=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - t0
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "wall_s": wall}


def run_embedgate(data: str, cache: str, result: str) -> dict:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "embedgate.harness.shells.cli", "eval", data, "--model", MODEL, "--max-seq-length", "256",
                    "--cache-dir", cache, "--out", result], capture_output=True, text=True, check=True,
                   env={**os.environ, "HF_HUB_OFFLINE": "1", "EMBEDGATE_NO_PROGRESS": "1"})
    wall = time.perf_counter() - t0
    res = json.loads(Path(result).read_text())
    enc = res["timings"]["encode"]
    return {"wall_s": wall, "ndcg@10": res["metrics"]["ndcg@10"], "mrr@10": res["metrics"]["mrr@10"],
            "encoded": enc["documents"]["encoded"] + enc["queries"]["encoded"]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "datasets" / "scifact"))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    load_before = os.getloadavg()
    rows = []
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            peer = run_peer(args.data)
            cold = run_embedgate(args.data, tmp, f"{tmp}/cold.json")
            warm = run_embedgate(args.data, tmp, f"{tmp}/warm.json")
        rows.append((peer, cold, warm))
        print(f"run {i + 1}: peer {peer['wall_s']:.1f} s, embedgate cold {cold['wall_s']:.1f} s "
              f"(ratio {cold['wall_s'] / peer['wall_s']:.2f}), warm {warm['wall_s']:.1f} s "
              f"({peer['wall_s'] / warm['wall_s']:.1f}x faster; encoded {warm['encoded']})")
    load_after = os.getloadavg()
    peer_s = min(r[0]["wall_s"] for r in rows)
    cold_s = min(r[1]["wall_s"] for r in rows)
    warm_s = min(r[2]["wall_s"] for r in rows)
    p, c, w = rows[0]
    section = f"""{START}
## Evaluation: `embedgate eval` vs sentence-transformers `InformationRetrievalEvaluator`

Command: `python bench/bench_eval.py --data {os.path.relpath(args.data, REPO)} --repeats {args.repeats}` (both as fresh
processes, imports and model loading included; best of {args.repeats}). Model {MODEL}, max_seq_length 256, CPU.
Machine: {platform.machine()}, {os.cpu_count()} cores, load average {load_before[0]:.2f} before / {load_after[0]:.2f}
after; {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.

| run | wall time | ratio to the evaluator | NDCG@10 | MRR@10 |
|---|---|---|---|---|
| InformationRetrievalEvaluator (re-encodes every call) | {peer_s:.1f} s | 1.00 | {p['ndcg@10']:.4f} | {p['mrr@10']:.4f} |
| embedgate eval, cold cache | {cold_s:.1f} s | {cold_s / peer_s:.2f} (goal <= 1.0) | {c['ndcg@10']:.4f} | {c['mrr@10']:.4f} |
| embedgate eval, warm cache (encoded {w['encoded']} texts) | {warm_s:.1f} s | {peer_s / warm_s:.1f}x faster (goal >= 20x) | {w['ndcg@10']:.4f} | {w['mrr@10']:.4f} |

The evaluator scores binary relevance; on a binary set (scifact) its NDCG@10 equals ours.
{END}"""
    print(section)
    if not args.no_write:
        path = REPO / "BENCHMARKS.md"
        text = path.read_text() if path.exists() else "# Benchmarks\n\nSpeed measured side by side with a peer.\n"
        if START in text:
            text = text[: text.index(START)] + section + text[text.index(END) + len(END):]
        else:
            text = text.rstrip() + "\n\n" + section + "\n"
        from embedgate.harness.io import atomic_write_text

        atomic_write_text(path, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
