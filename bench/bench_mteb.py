"""Side by side with MTEB: one custom retrieval task (BEIR scifact, test split, all-MiniLM-L6-v2) through mteb 2.x
and through `embedgate eval`, each cold and warm.

Every measurement is a fresh process (imports and model loading included in both), timed with
``time.perf_counter`` around the subprocess. Per repeat, on empty folders:

- mteb: a custom ``AbsTaskRetrieval`` whose ``load_data`` reads the local BEIR folder, run by
  ``mteb.evaluate(model_meta, task, cache=ResultCache(folder))``, the model being the registry's ModelMeta for
  all-MiniLM-L6-v2 loaded (lazily, by mteb) from the local copy. *cold*: empty ``ResultCache`` folder. *warm*: the
  same call again (default ``overwrite_strategy="only-missing"``): mteb finds the saved scores and returns them.
- mteb with its embedding cache, ``CachedEmbeddingWrapper`` (skip with ``--skip-embedding-cache``): *cold* on empty
  folders, then *warm* with ``overwrite_strategy="always"`` so the evaluation runs again from the cached vectors.
- embedgate: ``embedgate eval DATA --model M --max-seq-length 256 --cache-dir C`` on an empty ``C`` (cold), then
  again (warm: embeddings from the cache, search run again, per-query scores from the score memo).

Each warm run is repeated (``--warm-repeats``, 5 by default) and its median kept: a warm run takes a second or
less on one side, so one sample on a shared machine says more about the load than about the tool.

What bounds the cold ratio (skip with ``--skip-kernels``): both cold runs spend nearly all their time in
sentence-transformers' ``encode`` on the same torch kernels, so the bench also measures, on a sample of the corpus in
one process, the throughput of the other ways to compute the same vectors on this CPU (onnxruntime fp32 through
``embedgate export``, torch bfloat16) with their lowest cosine to the torch fp32 vectors, and runs ``embedgate eval
--dtype bfloat16`` cold on the whole set for its NDCG@10 (a different numeric setting: not counted for the goal).

    python bench/bench_mteb.py [--data ../shared/datasets/scifact] [--runs 1] [--warm-repeats 5]
                               [--work /tmp/embedgate-bench-mteb]
    python bench/bench_mteb.py --query-limit 20 --corpus-limit 300 --no-write    # smoke test on a subset
    python bench/bench_mteb.py --write                                           # BENCHMARKS.md from saved results

The subset (``--query-limit``/``--corpus-limit``) is deterministic and the same for both tools: the first N test
queries by id (numeric ids in numeric order), every document they judge, then the first documents by id until
the corpus has ``--corpus-limit`` documents; written as a BEIR folder under the work folder, which both read. The raw
results go to ``<work>/results.json``; BENCHMARKS.md gets its section between markers (unless ``--no-write``).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from benchmarks_md import replace_section

REPO = Path(__file__).resolve().parents[1]
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MAX_SEQ_LENGTH = 256
BATCH_SIZE = 32
TASK_NAME = "SciFactLocalBEIR"
START, END = "<!-- bench_mteb:start -->", "<!-- bench_mteb:end -->"
DEFAULT_WORK = "/tmp/embedgate-bench-mteb"
HEADING = "## Side by side with MTEB: scifact, all-MiniLM-L6-v2, cold and warm"
PACKAGES = ["mteb", "sentence-transformers", "torch", "transformers", "embedgate", "ranx", "pytrec-eval-terrier"]
AGREE = 1e-4


def default_data() -> str:
    root = os.environ.get("EMBEDGATE_DATA")
    return str(Path(root) / "scifact") if root else str(REPO.parent / "shared" / "datasets" / "scifact")


def child_env(**extra: str) -> dict:
    """Offline, and with Python writing bytecode as it does by default: a machine that sets PYTHONDONTWRITEBYTECODE
    (this one does) would have each process compile again every module without a .pyc (sentence-transformers'
    here, and an editable checkout's), on both sides."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **extra}


# --------------------------------------------------------------------------------------------------- the data


def id_key(x: str):
    """Numeric ids in numeric order, then the others as strings."""
    return (0, int(x), "") if x.isdigit() else (1, 0, x)


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_qrels(path: Path) -> list[tuple[str, str, int]]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    if rows and not rows[0][-1].lstrip("-").isdigit():
        rows = rows[1:]  # header: query-id corpus-id score
    return [(str(q), str(d), int(s)) for q, d, s in rows]


def make_subset(data: Path, query_limit: int | None, corpus_limit: int | None, work: Path) -> Path:
    """The same deterministic subset for both tools, as a BEIR folder (the full set: ``data`` itself)."""
    if not query_limit and not corpus_limit:
        return data
    qrels = read_qrels(data / "qrels" / "test.tsv")
    positive = sorted({q for q, _, s in qrels if s > 0}, key=id_key)
    qids = set(positive[:query_limit] if query_limit else positive)
    qrels = [r for r in qrels if r[0] in qids]
    corpus = read_jsonl(data / "corpus.jsonl")
    keep = {d for _, d, _ in qrels}
    for doc_id in sorted((str(d["_id"]) for d in corpus), key=id_key):
        if corpus_limit and len(keep) >= corpus_limit:
            break
        keep.add(doc_id)
    out = work / "data" / f"{data.name}-q{query_limit or 'all'}-c{corpus_limit or 'all'}"
    if out.exists():
        shutil.rmtree(out)
    (out / "qrels").mkdir(parents=True)
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in corpus if str(d["_id"]) in keep)
    with (out / "queries.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(q, ensure_ascii=False) + "\n" for q in read_jsonl(data / "queries.jsonl")
                      if str(q["_id"]) in qids)
    with (out / "qrels" / "test.tsv").open("w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        fh.writelines(f"{q}\t{d}\t{s}\n" for q, d, s in qrels)
    return out


def content_hash(data: Path) -> str:
    """sha256 of the three BEIR files: the custom task's dataset revision."""
    h = hashlib.sha256()
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        h.update((data / name).read_bytes())
    return h.hexdigest()[:40]


def describe(data: Path) -> dict:
    """The set as embedgate reads it (its loader's counts and content hash), and the files' hash, which is the
    revision mteb's task is given."""
    from embedgate.harness.data import load

    info = load(data, split="test").describe()
    return {"path": str(data), "sha256": content_hash(data), "content_hash": info["content_hash"],
            "documents": info["n_documents"], "queries": info["n_queries"], "judgments": info["n_judgments"],
            "zero_judgments": info["n_judgments"] - info["n_positive_judgments"]}


# --------------------------------------------------------------------------------------------------- mteb (child)

STATS = {"model_loads": 0, "encoded": 0}  # module-level: ModelMeta.load_model deep-copies the loader's arguments


def mteb_task(folder: Path):
    """The custom task: scifact from a local BEIR folder (mteb's own loader reads hub repositories only)."""
    from datasets import Dataset
    from mteb.abstasks import AbsTaskRetrieval
    from mteb.abstasks.task_metadata import TaskMetadata

    class SciFactLocal(AbsTaskRetrieval):
        metadata = TaskMetadata(
            name=TASK_NAME, description="BEIR scifact test split, read from a local BEIR folder.",
            dataset={"path": str(folder), "revision": content_hash(folder)}, type="Retrieval", category="t2t",
            modalities=["text"], eval_splits=["test"], eval_langs=["eng-Latn"], main_score="ndcg_at_10")

        def load_data(self, num_proc=None, **kwargs) -> None:
            if self.data_loaded:
                return
            corpus = read_jsonl(folder / "corpus.jsonl")
            qrels: dict[str, dict[str, int]] = {}
            for q, d, s in read_qrels(folder / "qrels" / "test.tsv"):
                qrels.setdefault(q, {})[d] = s
            # as mteb's loader: the judged queries only
            queries = [r for r in read_jsonl(folder / "queries.jsonl") if str(r["_id"]) in qrels]
            self.dataset = {"default": {"test": {
                "corpus": Dataset.from_dict({"id": [str(r["_id"]) for r in corpus],
                                             "title": [r.get("title") or "" for r in corpus],
                                             "text": [r["text"] for r in corpus]}),
                "queries": Dataset.from_dict({"id": [str(r["_id"]) for r in queries],
                                              "text": [r["text"] for r in queries]}),
                "relevant_docs": qrels, "top_ranked": None}}}
            self.data_loaded = True

    return SciFactLocal()


def mteb_loader(name: str, revision: str | None = None, *, emb_dir: str, **kwargs):
    """What the registry's ModelMeta loads: the local copy (no hub here), behind CachedEmbeddingWrapper if asked."""
    from mteb.models.cache_wrappers import CachedEmbeddingWrapper
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper
    from sentence_transformers import SentenceTransformer

    from embedgate.harness.models import resolve_model_path

    class Counting(SentenceTransformerEncoderWrapper):
        def encode(self, inputs, **kw):
            STATS["encoded"] += len(inputs.dataset)
            return super().encode(inputs, **kw)

    class Cached(CachedEmbeddingWrapper):
        # ModelMeta.load_model sets `mteb_model_meta` on what the loader returns; the wrapper's is read-only
        @property
        def mteb_model_meta(self):
            return self._model.mteb_model_meta

        @mteb_model_meta.setter
        def mteb_model_meta(self, meta) -> None:
            self._model.mteb_model_meta = meta

    STATS["model_loads"] += 1
    path, _ = resolve_model_path(name)
    st = SentenceTransformer(path, device="cpu")
    st.max_seq_length = MAX_SEQ_LENGTH
    return Cached(Counting(st), emb_dir) if emb_dir else Counting(st)


def mteb_child(data: str, results_dir: str, emb_dir: str, strategy: str) -> None:
    """One mteb run in this (fresh) process; prints one JSON line. ``emb_dir`` "-": no embedding cache."""
    t0 = time.perf_counter()
    from functools import partial

    import mteb
    from mteb.cache import ResultCache

    meta = mteb.get_model_meta(MODEL)
    meta = meta.model_copy(update={"loader": partial(mteb_loader, emb_dir="" if emb_dir == "-" else emb_dir)})
    result = mteb.evaluate(meta, mteb_task(Path(data)), cache=ResultCache(cache_path=results_dir),
                           overwrite_strategy=strategy, co2_tracker=False, show_progress_bar=False,
                           encode_kwargs={"batch_size": BATCH_SIZE, "show_progress_bar": False})
    task_result = result.task_results[0]
    scores = task_result.scores["test"][0]
    print(json.dumps({"seconds": time.perf_counter() - t0, "ndcg@10": scores["ndcg_at_10"],
                      "mrr@10": scores["mrr_at_10"], "model_loaded": STATS["model_loads"] > 0,
                      "encoded": STATS["encoded"], "mteb_evaluation_time_s": task_result.evaluation_time}))


# --------------------------------------------------------------------------------------------------- kernels (child)


def kernels_child(data: str, work: str, sample: str) -> None:
    """Throughput of the ways to compute all-MiniLM-L6-v2's vectors on this CPU, on the first ``sample`` documents
    of the corpus (their text as embedgate encodes it), in this one process; prints one JSON line."""
    import itertools

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from embedgate.harness.backends import OnnxSentenceEncoder, export_onnx
    from embedgate.harness.data import load
    from embedgate.harness.models import resolve_model_path

    corpus = load(data, split="test").corpus
    texts = [doc.full_text for doc in itertools.islice(corpus.values(), int(sample))]
    path, _ = resolve_model_path(MODEL)

    def rate(model) -> tuple[float, np.ndarray]:
        model.encode(texts[:BATCH_SIZE], batch_size=BATCH_SIZE)  # first call: allocations, lazy init
        t0 = time.perf_counter()
        vecs = model.encode(texts, batch_size=BATCH_SIZE, normalize_embeddings=True)
        return len(texts) / (time.perf_counter() - t0), np.asarray(vecs, dtype=np.float32)

    out = {"documents": len(texts), "torch_threads": torch.get_num_threads(), "rows": {}}
    st = SentenceTransformer(path, device="cpu")
    st.max_seq_length = MAX_SEQ_LENGTH
    with torch.inference_mode():
        ref_rate, ref = rate(st)
        out["rows"]["torch fp32"] = {"docs_per_s": ref_rate, "min_cosine": 1.0}
        bf16_rate, vecs = rate(st.to(torch.bfloat16))
        out["rows"]["torch bf16"] = {"docs_per_s": bf16_rate, "min_cosine": float((vecs * ref).sum(1).min())}
    t0 = time.perf_counter()
    export_onnx(path, Path(work) / "onnx-fp32", overwrite=True)
    out["onnx_export_s"] = time.perf_counter() - t0
    ort_rate, vecs = rate(OnnxSentenceEncoder(Path(work) / "onnx-fp32", "onnx/model.onnx", MAX_SEQ_LENGTH))
    out["rows"]["onnxruntime fp32"] = {"docs_per_s": ort_rate, "min_cosine": float((vecs * ref).sum(1).min())}
    print(json.dumps(out))


# --------------------------------------------------------------------------------------------------- the runs


def timed(cmd: list[str], env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-4000:])
        raise SystemExit(f"failed ({out.returncode}): {' '.join(cmd)}")
    return wall, out.stdout


def run_mteb(data: Path, results: Path, emb: Path | None, strategy: str) -> dict:
    wall, stdout = timed([sys.executable, str(Path(__file__).resolve()), "--mteb-child", str(data), str(results),
                          str(emb) if emb else "-", strategy], child_env(MTEB_CACHE=str(results)))
    return {**json.loads(stdout.strip().splitlines()[-1]), "wall_s": wall, "overwrite_strategy": strategy,
            "embedding_cache": emb is not None}


def run_embedgate(data: Path, cache: Path, out: Path, *extra: str) -> dict:
    wall, _ = timed([sys.executable, "-m", "embedgate.harness.shells.cli", "eval", str(data), "--model", MODEL,
                     "--max-seq-length", str(MAX_SEQ_LENGTH), "--batch-size", str(BATCH_SIZE),
                     "--cache-dir", str(cache), "--out", str(out), *extra], child_env(EMBEDGATE_NO_PROGRESS="1"))
    res = json.loads(out.read_text(encoding="utf-8"))
    enc = res["timings"]["encode"]
    return {"wall_s": wall, "ndcg@10": res["metrics"]["ndcg@10"], "mrr@10": res["metrics"]["mrr@10"],
            "encoded": enc["documents"]["encoded"] + enc["queries"]["encoded"],
            "encode_s": res["timings"]["encode_s"], "total_s": res["timings"]["total_s"],
            "tie_break": res["conventions"].get("tie_break"),
            "ignore_identical_ids": res["conventions"].get("ignore_identical_ids")}


def run_kernels(data: Path, work: Path, sample: int) -> dict:
    wall, stdout = timed([sys.executable, str(Path(__file__).resolve()), "--kernels-child", str(data), str(work),
                          str(sample)], child_env())
    return {**json.loads(stdout.strip().splitlines()[-1]), "wall_s": wall}


ROWS = ["mteb_cold", "mteb_warm", "mteb_cached_cold", "mteb_cached_warm", "embedgate_cold", "embedgate_warm"]


def repeated(run, times: int) -> dict:
    """``run()`` ``times`` times (a warm run: the same state each time); the median wall time is the row's."""
    samples = [run() for _ in range(max(1, times))]
    walls = sorted(r["wall_s"] for r in samples)
    return {**samples[-1], "wall_s": statistics.median(walls), "walls_s": [r["wall_s"] for r in samples],
            "min_s": walls[0]}


def one_repeat(data: Path, run_dir: Path, mteb_first: bool, embedding_cache: bool, warm_repeats: int) -> dict:
    """Every cache folder of this repeat starts empty."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)

    def mteb_runs() -> dict:
        plain = run_dir / "mteb-results"
        out = {"mteb_cold": run_mteb(data, plain, None, "only-missing"),
               "mteb_warm": repeated(lambda: run_mteb(data, plain, None, "only-missing"), warm_repeats)}
        if embedding_cache:
            results, emb = run_dir / "mteb-cached-results", run_dir / "mteb-embeddings"
            out["mteb_cached_cold"] = run_mteb(data, results, emb, "only-missing")
            out["mteb_cached_warm"] = repeated(lambda: run_mteb(data, results, emb, "always"), warm_repeats)
        return out

    def embedgate_runs() -> dict:
        cache = run_dir / "embedgate-cache"
        return {"embedgate_cold": run_embedgate(data, cache, run_dir / "embedgate-cold.json"),
                "embedgate_warm": repeated(lambda: run_embedgate(data, cache, run_dir / "embedgate-warm.json"),
                                           warm_repeats)}

    first, second = (mteb_runs, embedgate_runs) if mteb_first else (embedgate_runs, mteb_runs)
    row = {**first(), **second()}
    return {k: row[k] for k in ROWS if k in row}


def versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def command(args) -> str:
    parts = ["python bench/bench_mteb.py"]
    if Path(args.data).resolve() != Path(default_data()).resolve():
        parts.append(f"--data {os.path.relpath(args.data, REPO)}")
    parts.append(f"--runs {args.runs}")
    if args.warm_repeats != 5:
        parts.append(f"--warm-repeats {args.warm_repeats}")
    if args.skip_kernels:
        parts.append("--skip-kernels")
    elif args.kernel_sample != 384:
        parts.append(f"--kernel-sample {args.kernel_sample}")
    if args.query_limit:
        parts.append(f"--query-limit {args.query_limit}")
    if args.corpus_limit:
        parts.append(f"--corpus-limit {args.corpus_limit}")
    if args.skip_embedding_cache:
        parts.append("--skip-embedding-cache")
    if Path(args.work).resolve() != Path(DEFAULT_WORK).resolve():
        parts.append(f"--work {args.work}")
    return " ".join(parts)


def measure(args) -> dict:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = make_subset(Path(args.data), args.query_limit, args.corpus_limit, work)
    load_before = os.getloadavg()
    started = datetime.now(timezone.utc)
    repeats = []
    for i in range(args.runs):  # alternate which tool goes first
        rep = one_repeat(data, work / f"run-{i + 1}", i % 2 == 0, not args.skip_embedding_cache, args.warm_repeats)
        repeats.append(rep)
        print(f"run {i + 1}: " + ", ".join(f"{k} {v['wall_s']:.1f} s (ndcg@10 {v['ndcg@10']:.4f}, "
                                           f"encoded {v['encoded']})" for k, v in rep.items()), flush=True)
    kernels = None
    if not args.skip_kernels:
        bf16_dir = work / "bf16"
        shutil.rmtree(bf16_dir, ignore_errors=True)
        bf16_dir.mkdir(parents=True)
        kernels = run_kernels(data, bf16_dir, args.kernel_sample)
        kernels["embedgate_bf16_cold"] = run_embedgate(data, bf16_dir / "cache", bf16_dir / "embedgate-bf16.json",
                                                       "--dtype", "bfloat16")
        print("kernels: " + json.dumps(kernels), flush=True)
    return {"command": command(args), "started": started.strftime("%Y-%m-%d %H:%M UTC"),
            "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": platform.machine(), "cores": os.cpu_count(), "load_before": load_before,
            "load_after": os.getloadavg(), "versions": versions(), "model": MODEL,
            "max_seq_length": MAX_SEQ_LENGTH, "batch_size": BATCH_SIZE, "data": describe(data),
            "full_set": data == Path(args.data), "warm_repeats": args.warm_repeats, "repeats": repeats,
            "kernels": kernels}


# --------------------------------------------------------------------------------------------------- the report


def best(res: dict, key: str) -> float:
    return min(r[key]["wall_s"] for r in res["repeats"])


def summary(res: dict) -> dict:
    first = res["repeats"][0]
    ndcg = {k: v["ndcg@10"] for k, v in first.items()}
    out = {"ndcg": ndcg, "diff": abs(ndcg["mteb_cold"] - ndcg["embedgate_cold"]),
           "agree": all(abs(ndcg[k] - ndcg["embedgate_cold"]) <= AGREE
                        for k in ("mteb_cold", "mteb_warm", "embedgate_warm")),
           "cold_ratio": best(res, "embedgate_cold") / best(res, "mteb_cold"),
           "warm_ratio": best(res, "mteb_warm") / best(res, "embedgate_warm")}
    if "mteb_cached_cold" in first:
        out["cached_diff"] = abs(ndcg["mteb_cached_cold"] - ndcg["mteb_cold"])
        out["cached_warm_ratio"] = best(res, "mteb_cached_warm") / best(res, "embedgate_warm")
        out["cached_cold_ratio"] = best(res, "embedgate_cold") / best(res, "mteb_cached_cold")
    return out


LABELS = {
    "mteb_cold": ("mteb, cold", "nothing (empty `ResultCache` folder)"),
    "mteb_warm": ("mteb, warm (`overwrite_strategy=\"only-missing\"`, the default)",
                  "its saved scores: the model and the data are not loaded, nothing is encoded, searched or scored"),
    "mteb_cached_cold": ("mteb + `CachedEmbeddingWrapper`, cold", "nothing (empty result and embedding folders)"),
    "mteb_cached_warm": ("mteb + `CachedEmbeddingWrapper`, warm (`overwrite_strategy=\"always\"`)",
                         "the cached embeddings; the evaluation (search, scoring) runs again"),
    "embedgate_cold": ("`embedgate eval`, cold", "nothing (empty `--cache-dir`)"),
    "embedgate_warm": ("`embedgate eval`, warm", "the cached embeddings (found by text hash under a fingerprint of "
                                                 "weights and settings) and the score memo; search runs again"),
}


def section(res: dict) -> str:
    s = summary(res)
    v, d = res["versions"], res["data"]
    first = res["repeats"][0]
    subset = "" if res["full_set"] else (f" **A subset** (`{Path(d['path']).name}`: the first queries by id, their "
                                         "judged documents and the first documents by id), not the full set.")
    lines = [START, HEADING, "",
             f"Command: `{res['command']}` ({res['started']}; {res['machine']}, {res['cores']} cores, load average "
             f"{res['load_before'][0]:.2f} before / {res['load_after'][0]:.2f} after; a shared machine: compare the "
             f"ratios). mteb {v['mteb']}, sentence-transformers {v['sentence-transformers']}, torch {v['torch']}, "
             f"Python {v['python']}.", "",
             f"One custom task on both sides: BEIR scifact test ({d['documents']:,} documents, {d['queries']} "
             f"queries) read from the same local folder, {res['model']} (max_seq_length {res['max_seq_length']}, "
             f"batch {res['batch_size']}, CPU). mteb runs it as an `AbsTaskRetrieval` subclass whose `load_data` "
             "reads the BEIR files, through `mteb.evaluate(model_meta, task, cache=ResultCache(folder))`, the "
             "registry's ModelMeta loading the model from the local copy. Every run is a fresh process timed around "
             f"the subprocess (imports and model loading included), writing bytecode as Python does by default "
             f"(PYTHONDONTWRITEBYTECODE, which this machine sets, is unset for both), HF_HUB_OFFLINE=1 for both (no "
             f"network here); each warm run {res.get('warm_repeats', 1)} times, its median kept (the other "
             f"samples in the last column); best of {len(res['repeats'])} repeat(s).{subset}",
             "", "| run | reuses | wall time | NDCG@10 | texts encoded | warm samples |",
             "|---|---|---|---|---|---|"]
    for key in first:
        label, reuses = LABELS[key]
        samples = ", ".join(f"{w:.2f}" for w in first[key].get("walls_s", [])) or "-"
        lines.append(f"| {label} | {reuses} | {best(res, key):.{2 if best(res, key) < 10 else 1}f} s | "
                     f"{first[key]['ndcg@10']:.4f} | {first[key]['encoded']:,} | {samples} |")
    lines += ["",
              f"- embedgate cold / mteb cold: **{s['cold_ratio']:.2f}** (goal <= 0.8).",
              f"- mteb warm / embedgate warm: **{s['warm_ratio']:.1f}x** (goal >= 20x)." + (
                  f" Of embedgate's warm {first['embedgate_warm']['wall_s']:.2f} s, the evaluation itself (reading "
                  "the data and checking it, the cache look-up with its checksums, the search, the score memo) took "
                  f"{first['embedgate_warm']['total_s']:.2f} s (`timings.total_s`); the rest is the interpreter, "
                  "its imports (numpy, pydantic, the harness; faiss is imported in the search) and writing the result."
                  if "total_s" in first["embedgate_warm"] else ""),
              f"- NDCG@10: mteb {s['ndcg']['mteb_cold']:.5f}, embedgate {s['ndcg']['embedgate_cold']:.6f} "
              f"(difference {s['diff']:.1e}: {'agree' if s['agree'] else 'DO NOT agree'} within {AGREE:g}; mteb "
              "rounds its scores to 5 decimals). Both rank by cosine with ties in trec_eval's order (score, then "
              "document id descending; mteb through pytrec_eval) and keep a hit whose id equals the query id "
              "(`ignore_identical_ids` off on both)."]
    if "cached_diff" in s:
        lines.append(f"- With `CachedEmbeddingWrapper`: embedgate cold / mteb cold {s['cached_cold_ratio']:.2f}, "
                     f"mteb warm / embedgate warm {s['cached_warm_ratio']:.1f}x. " + (
                         f"Its NDCG@10 is not mteb's own (difference {s['cached_diff']:.1e}): in mteb "
                         f"{v['mteb']} the wrapper builds a new dataloader from documents that are already "
                         "`title + \" \" + text`, which joins the title again, so every titled document is "
                         "encoded as `title title text`." if s["cached_diff"] > AGREE else
                         "Its NDCG@10 equals mteb's without it."))
    if res.get("kernels"):
        lines += ["", *bound_lines(res, s)]
    lines += ["",
              "What mteb's warm run reuses: `ResultCache` keys a result by task name, model name and revision (and "
              "experiment settings such as precision). When every split is there, `mteb.evaluate` returns the "
              "stored scores without loading the model or the data and without comparing the dataset revision, the "
              "data or the weights: a changed corpus under the same task name gets the old scores back. The only "
              "reuse of embeddings is `CachedEmbeddingWrapper`, opt-in, consulted only when the evaluation runs "
              "(`overwrite_strategy=\"always\"` or a missing result); it keys each vector by the sha256 of its text "
              "under `<folder>/<task name>/<query|document>`, with no model in the key (a folder per model is the "
              "user's job). embedgate's warm run finds each vector by the hash of its text under a namespace that "
              "fingerprints the weights and the encoding settings, so changed texts or weights are encoded again, "
              "and always searches again.",
              END]
    return "\n".join(lines)


def bound_lines(res: dict, s: dict) -> list[str]:
    """What bounds the cold ratio: the encoder's share of the cold run, and what else could compute the vectors."""
    k, cold = res["kernels"], res["repeats"][0]["embedgate_cold"]
    ref = k["rows"]["torch fp32"]["docs_per_s"]
    bf16 = k["embedgate_bf16_cold"]
    mteb_cold = best(res, "mteb_cold")
    lines = ["What bounds the cold ratio. embedgate's cold run spent "
             f"{cold['encode_s']:.1f} s of its {cold['wall_s']:.1f} s in encoding ({cold['encode_s'] / cold['wall_s']:.0%}; "
             "model loading included), and mteb encodes the same "
             f"{cold['encoded']:,} texts through the same sentence-transformers `encode` and torch kernels, so the "
             "two cold runs can differ only by the rest (imports, reading, search, scoring: seconds). 0.8x would "
             "need an encoder 1.25x faster than torch's on the same vectors. On this CPU, the first "
             f"{k['documents']} documents, in one process ({k['torch_threads']} torch threads, batch {BATCH_SIZE}):",
             "", "| encoder | documents/s | x torch fp32 | lowest cosine to torch fp32 |", "|---|---:|---:|---:|"]
    for name, row in k["rows"].items():
        lines.append(f"| {name} | {row['docs_per_s']:.1f} | {row['docs_per_s'] / ref:.2f}x | "
                     f"{row['min_cosine']:.6f} |")
    fast = [n for n, r in k["rows"].items() if r["docs_per_s"] >= 1.25 * ref]
    same = [n for n in fast if k["rows"][n]["min_cosine"] >= 1 - 1e-6]
    lines += ["", (f"Reaching 1.25x: {', '.join(fast) or 'none'}; with the same vectors (cosine within 1e-6): "
                   f"{', '.join(same) or 'none'}. ") +
              f"bfloat16 changes the vectors: `embedgate eval --dtype bfloat16`, cold, "
              f"took {bf16['wall_s']:.1f} s ({bf16['wall_s'] / mteb_cold:.2f}x mteb's fp32 cold run) for "
              f"NDCG@10 {bf16['ndcg@10']:.4f} against {s['ndcg']['embedgate_cold']:.4f} in fp32. It is a "
              "setting of the model (in its fingerprint, so its vectors are cached apart), open to mteb as well "
              "(`model_kwargs={\"torch_dtype\": torch.bfloat16}`), and not counted for the goal: the goal's "
              "runs compute the same fp32 vectors on both sides."]
    return lines


def write(work: Path) -> None:
    res = json.loads((work / "results.json").read_text(encoding="utf-8"))
    text = section(res)
    replace_section(START, END, text)
    print(text)


def main() -> int:
    if len(sys.argv) == 6 and sys.argv[1] == "--mteb-child":
        mteb_child(*sys.argv[2:])
        return 0
    if len(sys.argv) == 5 and sys.argv[1] == "--kernels-child":
        kernels_child(*sys.argv[2:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=default_data(), help="BEIR folder (default $EMBEDGATE_DATA/scifact)")
    ap.add_argument("--runs", type=int, default=1, help="repeats of the cold/warm runs of each tool (best is kept)")
    ap.add_argument("--warm-repeats", type=int, default=5,
                    help="runs of each warm configuration (the median is kept)")
    ap.add_argument("--skip-kernels", action="store_true",
                    help="leave out what bounds the cold ratio (encoder throughputs, the bfloat16 cold run)")
    ap.add_argument("--kernel-sample", type=int, default=384, help="documents the encoder throughputs are timed on")
    ap.add_argument("--work", default=DEFAULT_WORK, help="caches, subset data and results.json go here")
    ap.add_argument("--query-limit", type=int, default=None, help="smoke test: the first N test queries by id")
    ap.add_argument("--corpus-limit", type=int, default=None,
                    help="smoke test: their judged documents plus the first documents by id, N in all")
    ap.add_argument("--skip-embedding-cache", action="store_true",
                    help="leave out the mteb + CachedEmbeddingWrapper runs (one full encoding less)")
    ap.add_argument("--write", action="store_true", help="only write BENCHMARKS.md from <work>/results.json")
    ap.add_argument("--no-write", action="store_true", help="measure, save results.json, leave BENCHMARKS.md")
    args = ap.parse_args()
    work = Path(args.work)
    if args.write:
        write(work)
        return 0
    res = measure(args)
    (work / "results.json").write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    print(f"raw results: {work / 'results.json'}")
    if args.no_write:
        print(section(res))
    else:
        write(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
