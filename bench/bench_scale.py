"""Peak memory and wall time of `embedgate eval` at 100k and 1M documents, stage by stage.

A small in-process model (tests/tiny_model.py's random BERT: 2 layers, 384 wide, mean pooling, Normalize; its
vocabulary holds every word of the corpus, so a 12-word document is 14 tokens) on synthetic, deterministic corpora:
a seeded list of pseudo-words, documents of a 2-word title and a 10-word text, queries of 6 words drawn from one
document each (judged relevant to it). Every measurement is a fresh subprocess:

- ``baseline``: the interpreter with every module an evaluation imports (the harness, torch,
  sentence-transformers, faiss, ranx), nothing loaded;
- ``fixed``: the costs that do not grow with the data: the model loaded and run once on 2,048 texts, ranx's numba
  code compiled by scoring 50 queries;
- per corpus size, ``cold`` (empty cache: everything is encoded) then ``warm`` (the same cache: nothing is).

Each evaluation goes through the library (``harness.evaluate.evaluate``, what ``embedgate eval`` calls) with the
CLI's default metrics (depth 100). Its stages are timed by wrapping the module functions ``evaluate`` calls
(``data.load``, ``load_model``, ``encode_set``, ``search``, ``score_with_memo``); per stage the peak RSS is the
larger of ``ru_maxrss`` at the stage's end (when it rose in that stage) and psutil samples every 20 ms; the process
peak is ``ru_maxrss``. Budget: peak <= baseline + 1.5 x (float32 embedding matrix of documents and queries + model
weights).

``--code DIR`` runs another checkout (a folder holding ``embedgate/``, e.g. ``git archive REF`` unpacked into
``DIR/embedgate``; ``--ref REF`` does that into the work folder, ``--snapshot`` copies the working tree there), so
the code before a change is measured with the same script, and editing the tree during a measurement changes
nothing. Results are kept per label in the work folder; ``--write`` puts the labels given by
``--compare before,after`` into BENCHMARKS.md between markers.

    nice -n 10 python bench/bench_scale.py --label before --ref 4576d73 --sizes 100000,1000000
    nice -n 10 python bench/bench_scale.py --label after --snapshot --sizes 100000,1000000 --keep-cache
    nice -n 10 python bench/bench_scale.py --label after-ivf --snapshot --index ivf --reuse-cache after
    nice -n 10 python bench/bench_scale.py --label processes --snapshot --processes-sweep 1,2 --sizes 20000
    python bench/bench_scale.py --write --compare before,after,after-ivf,processes
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- bench_scale:start -->", "<!-- bench_scale:end -->"
SYLLABLES = ["ka", "lo", "mi", "ra", "te", "su", "no", "vi", "pe", "da", "zo", "ri", "ma", "fu", "ge", "ho", "ja",
             "ke", "lu", "ba"]
HIDDEN = 384
BATCH_SIZE = 512

CHILD = r'''
import json, os, resource, sys, threading, time
import psutil

proc = psutil.Process()
mode = sys.argv[1]


def maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


if mode == "baseline":
    import embedgate.harness.evaluate, embedgate.harness.metrics, embedgate.harness.models  # noqa: F401
    import faiss, ranx, sentence_transformers, torch  # noqa: F401
    print(json.dumps({"rss": proc.memory_info().rss, "maxrss": maxrss()}))
    sys.exit(0)

if mode == "fixed":
    # the costs that do not grow with the data: the model loaded and run once (torch's inference working memory),
    # ranx's numba code compiled by scoring a few queries
    from embedgate.harness.metrics import DEFAULT_FAMILIES, metric_grid, score_queries
    from embedgate.harness.models import load_model
    m = load_model({"name": sys.argv[2], "batch_size": int(sys.argv[3])})
    m.embed([f"warm up text number {i} of the model" for i in range(2048)], "document", False)
    rankings = {f"q{i}": [(f"d{j}", 1.0 - j / 100) for j in range(100)] for i in range(50)}
    score_queries({f"q{i}": {f"d{i}": 1} for i in range(50)}, rankings,
                  metric_grid(DEFAULT_FAMILIES, [1, 3, 5, 10, 100]))
    print(json.dumps({"rss": proc.memory_info().rss, "maxrss": maxrss()}))
    sys.exit(0)

data, model, cache, index = sys.argv[2:6]
batch_size = int(sys.argv[6])
processes = int(sys.argv[7]) if len(sys.argv) > 7 else 1
import embedgate.harness.evaluate as ev
from embedgate.harness import data as data_mod
from embedgate.harness.metrics import DEFAULT_FAMILIES, metric_grid

stages = []  # (name, start, end, maxrss at end)
samples = []
stop = threading.Event()


def sampler():
    while not stop.is_set():
        samples.append((time.perf_counter(), proc.memory_info().rss))
        stop.wait(0.02)


def timed(name, fn):
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            stages.append((name, t, time.perf_counter(), maxrss()))
    return wrapper


data_mod.load = timed("load_data", data_mod.load)
ev.load_model = timed("load_model", ev.load_model)
ev.encode_set = timed("encode", ev.encode_set)
ev.search = timed("search", ev.search)
ev.score_with_memo = timed("score", ev.score_with_memo)
threading.Thread(target=sampler, daemon=True).start()
ks = [1, 3, 5, 10, 100]
t0 = time.perf_counter()
start_maxrss = maxrss()
result = ev.evaluate(data, {"name": model, "batch_size": batch_size, **({"processes": processes} if processes > 1 else {})}, ks=ks, metrics=metric_grid(DEFAULT_FAMILIES, ks),
                     cache=cache, index=index, show_progress=False)
t1 = time.perf_counter()
stop.set()
out = {"total_s": t1 - t0, "maxrss": maxrss(), "maxrss_before": start_maxrss, "stages": {},
       "metrics": {k: result.metrics[k] for k in ("ndcg@10", "recall@100")},
       "encoded": sum(s["encoded"] for s in result.timings["encode"].values()),
       "cached": sum(s["cached"] for s in result.timings["encode"].values()),
       "index_recall": result.conventions.get("index_recall")}
prev_max = start_maxrss
for name, a, b, mr in stages:
    sampled = max((r for t, r in samples if a <= t <= b), default=0)
    # ru_maxrss rose in this stage (by more than the few pages that move between two stages): its peak
    rose = mr > prev_max * 1.01
    out["stages"][name] = {"s": b - a, "peak_rss": max(sampled, mr if rose else 0), "sampled_peak": sampled,
                           "maxrss_at_end": mr}
    prev_max = max(prev_max, mr)
last = stages[-1][2] if stages else t0
out["stages"]["rest"] = {"s": t1 - last, "peak_rss": max((r for t, r in samples if t >= last), default=0)}
print(json.dumps(out))
'''


def words(seed: int = 0, n: int = 1800) -> list[str]:
    rng = random.Random(seed)
    vocab: set[str] = set()
    while len(vocab) < n:
        vocab.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))))
    return sorted(vocab)


def make_data(folder: Path, n_docs: int, n_queries: int, seed: int = 0) -> Path:
    """A BEIR folder, the same bytes for the same arguments."""
    done = folder / ".complete"
    if done.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    vocab = words(seed)
    rng = random.Random(seed + 1)
    docs: list[list[str]] = []
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for i in range(n_docs):
            w = [rng.choice(vocab) for _ in range(12)]
            if i < 200_000:  # queries come from the first 200k documents
                docs.append(w)
            fh.write(json.dumps({"_id": f"d{i}", "title": " ".join(w[:2]), "text": " ".join(w[2:])}) + "\n")
    qrng = random.Random(seed + 2)
    (folder / "qrels").mkdir(exist_ok=True)
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as qf, \
            open(folder / "qrels" / "test.tsv", "w", encoding="utf-8") as rf:
        rf.write("query-id\tcorpus-id\tscore\n")
        for q in range(n_queries):
            target = qrng.randrange(len(docs))
            qf.write(json.dumps({"_id": f"q{q}", "text": " ".join(qrng.sample(docs[target], 6))}) + "\n")
            rf.write(f"q{q}\td{target}\t1\n")
    done.write_text("")
    return folder


def make_model(folder: Path) -> Path:
    if (folder / "modules.json").is_file():
        return folder
    sys.path.insert(0, str(REPO / "tests"))
    from tiny_model import build_tiny_model

    return build_tiny_model(folder, words(), hidden=HIDDEN, layers=2, max_seq_length=32)


def child(code: Path | None, *args: str) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMBEDGATE_NO_PROGRESS": "1", "TOKENIZERS_PARALLELISM": "false"}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"child {args[0]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "wall_s": time.perf_counter() - t0}


def checkout(ref: str, work: Path) -> tuple[Path, str]:
    commit = subprocess.run(["git", "rev-parse", ref], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout.strip()
    root = work / f"code-{commit[:12]}"
    if not (root / "embedgate" / "harness").is_dir():
        (root / "embedgate").mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", commit], cwd=REPO, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root / "embedgate")], input=archive, check=True)
    return root, commit


def snapshot(work: Path) -> tuple[Path, str]:
    """The working tree as it is now (tracked and untracked, not ignored files), so that editing the code while a
    long measurement runs does not change what it measures."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()
    root = work / f"code-tree-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}"
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (root / "embedgate" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / "embedgate" / name)
    return root, f"working tree on {head[:12]} ({root.name})"


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def measure(args) -> int:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    code, commit = (None, "working tree")
    if args.ref:
        code, commit = checkout(args.ref, work)
    elif args.snapshot:
        code, commit = snapshot(work)
    elif args.code:
        code = Path(args.code)
    if code is not None:
        probe = subprocess.run([sys.executable, "-c", "import embedgate.harness; print(embedgate.harness.__file__)"],
                               env={**os.environ, "PYTHONPATH": str(code)}, capture_output=True, text=True, check=True)
        assert probe.stdout.strip().startswith(str(code)), f"--code not picked up: {probe.stdout}"
    model = make_model(work / "model")
    model_bytes = sum(p.stat().st_size for p in model.glob("*.safetensors"))
    load_before = os.getloadavg()
    base = child(code, "baseline")
    fixed = child(code, "fixed", str(model), str(BATCH_SIZE))
    if args.only_baselines:  # add them to a saved measurement of this label
        path = work / f"results-{args.label}.json"
        record = json.loads(path.read_text())
        record.update(baseline=base, fixed=fixed)
        for r in record["runs"]:
            r["ratio"] = (r["maxrss"] - base["maxrss"]) / (r["matrix_bytes"] + r["model_bytes"])
            r["ratio_fixed"] = (r["maxrss"] - fixed["maxrss"]) / (r["matrix_bytes"] + r["model_bytes"])
            r["budget_bytes"] = base["maxrss"] + 1.5 * (r["matrix_bytes"] + r["model_bytes"])
        path.write_text(json.dumps(record, indent=1))
        print(f"[{args.label}] baseline {gib(base['maxrss'])}, fixed costs {gib(fixed['maxrss'])}: {path}")
        return 0
    print(f"[{args.label}] baseline: {gib(base['maxrss'])} (imports done, nothing loaded); fixed costs: "
          f"{gib(fixed['maxrss'])} (the model run once, ranx compiled)", flush=True)
    runs = []
    sweep = [int(x) for x in args.processes_sweep.split(",")] if args.processes_sweep else []
    for n in args.sizes if sweep else ():
        # cold runs only (a warm one encodes nothing), one per process count, each on an empty cache
        data = make_data(work / f"data-{n}-{args.queries}", n, args.queries)
        for procs in sweep:
            cache = work / f"cache-{args.label}-{n}-p{procs}"
            shutil.rmtree(cache, ignore_errors=True)
            r = child(code, "eval", str(data), str(model), str(cache), args.index, str(BATCH_SIZE), str(procs))
            shutil.rmtree(cache, ignore_errors=True)
            r.update(size=n, phase="cold", processes=procs)
            runs.append(r)
            print(f"[{args.label}] {n} cold, {procs} process(es): encode {r['stages']['encode']['s']:.1f} s, "
                  f"total {r['total_s']:.1f} s, parent peak {gib(r['maxrss'])}; ndcg@10 "
                  f"{r['metrics']['ndcg@10']:.4f}", flush=True)
    for n in args.sizes if not sweep else ():
        data = make_data(work / f"data-{n}-{args.queries}", n, args.queries)
        if args.reuse_cache:  # another label's kept cache: warm runs only (e.g. an approximate index)
            cache, phases = work / f"cache-{args.reuse_cache}-{n}", ("warm",)
        else:
            cache, phases = work / f"cache-{args.label}-{n}", ("cold", "warm")
            shutil.rmtree(cache, ignore_errors=True)
        for phase in phases:
            r = child(code, "eval", str(data), str(model), str(cache), args.index, str(BATCH_SIZE))
            matrix = (n + args.queries) * HIDDEN * 4
            r.update(size=n, phase=phase, matrix_bytes=matrix, model_bytes=model_bytes,
                     ratio=(r["maxrss"] - base["maxrss"]) / (matrix + model_bytes),
                     ratio_fixed=(r["maxrss"] - fixed["maxrss"]) / (matrix + model_bytes),
                     budget_bytes=base["maxrss"] + 1.5 * (matrix + model_bytes))
            runs.append(r)
            st = r["stages"]
            print(f"[{args.label}] {n} {phase}: peak {gib(r['maxrss'])} (budget {gib(r['budget_bytes'])}, "
                  f"ratio {r['ratio']:.2f}); " + ", ".join(f"{k} {v['s']:.1f} s / {gib(v['peak_rss'])}"
                                                            for k, v in st.items())
                  + f"; encoded {r['encoded']}, cached {r['cached']}; ndcg@10 {r['metrics']['ndcg@10']:.4f}",
                  flush=True)
        if not args.keep_cache and not args.reuse_cache:
            shutil.rmtree(cache, ignore_errors=True)
    load_after = os.getloadavg()
    record = {"label": args.label, "code": commit, "baseline": base, "fixed": fixed, "runs": runs,
              **({"processes_sweep": sweep} if sweep else {}),
              "queries": args.queries,
              "index": args.index, "batch_size": BATCH_SIZE, "model_bytes": model_bytes,
              "load_before": load_before[0], "load_after": load_after[0], "cores": os.cpu_count(),
              "machine": platform.machine(), "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "command": " ".join(["python", "bench/bench_scale.py"] + sys.argv[1:])}
    path = work / f"results-{args.label}.json"
    path.write_text(json.dumps(record, indent=1))
    print(f"results: {path}")
    return 0


def stage_peak(stages: dict, name: str) -> float:
    """A stage's peak RSS: the highest sample in it, or ``ru_maxrss`` at its end when that rose in the stage by more
    than 1% (a spike between two samples; the few pages that move between two stages do not count). Results saved
    before ``maxrss_at_end`` was recorded are read by the same rule, from the previous stages' peaks."""
    names = list(stages)
    s = stages[name]
    if "maxrss_at_end" in s or "sampled_peak" not in s or s["peak_rss"] <= s["sampled_peak"]:
        return s["peak_rss"]
    prev = max((stages[n]["peak_rss"] for n in names[:names.index(name)]), default=0)
    return s["peak_rss"] if s["peak_rss"] > prev * 1.01 else s["sampled_peak"]


def section(records: list[dict]) -> str:
    sweeps = [r for r in records if r.get("processes_sweep")]
    exact = [r for r in records if r["index"] == "exact" and not r.get("processes_sweep")]
    approx = [r for r in records if r["index"] != "exact" and not r.get("processes_sweep")]
    first = records[0]
    lines = [START, "## Scale: `embedgate eval` at 100k and 1M documents, peak memory and time per stage", "",
             f"A 2-layer, 384-wide random BERT (tests/tiny_model.py, {first['model_bytes'] / 2**20:.1f} MiB of "
             f"weights, batch {first['batch_size']}) on synthetic seeded corpora (12-word documents: a 2-word title "
             f"and 10 words of text, 14 tokens each) and {first['queries']:,} queries, depth 100, CPU. Each row is a "
             "fresh process through the library (`harness.evaluate.evaluate`, what `embedgate eval` runs); `cold` "
             "starts from an empty cache, `warm` reruns on it. Peak RSS is `ru_maxrss`; per stage, the peak seen "
             "in that stage (psutil samples every 20 ms and `ru_maxrss` at its end). Budget: peak <= baseline + "
             "1.5 x (float32 embeddings of documents and queries + model weights); *ratio* is (peak - baseline) / "
             "(embeddings + model), *over fixed* the same from the fixed costs (the model run once and ranx's numba "
             "code compiled, which do not grow with the corpus).", ""]
    for rec in records:
        lines.append(f"- **{rec['label']}** ({rec['code'][:12]}, index {rec['index']}): `{rec['command']}`; "
                     f"{rec['when']}; {rec['machine']}, {rec['cores']} cores, load average "
                     f"{rec['load_before']:.2f} before / {rec['load_after']:.2f} after; baseline "
                     f"{gib(rec['baseline']['maxrss'])}" + (f", fixed costs {gib(rec['fixed']['maxrss'])}"
                                                            if rec.get("fixed") else "") + ".")

    def cell(st: dict, name: str) -> str:
        s = st.get(name)
        return f"{s['s']:.1f} s, {gib(stage_peak(st, name))}" if s else ""

    lines += ["", "| code | documents | run | load data | load model | encode | search | score | total | peak RSS "
              "| budget | ratio (goal <= 1.5) | over fixed |",
              "|---|---:|---|---|---|---|---|---|---:|---:|---:|---:|---:|"]
    for size in sorted({r["size"] for rec in exact for r in rec["runs"]}):
        for rec in exact:
            for r in (r for r in rec["runs"] if r["size"] == size):
                st = r["stages"]
                lines.append(f"| {rec['label']} | {size:,} | {r['phase']} ({r['encoded']:,} encoded) | "
                             f"{cell(st, 'load_data')} | {cell(st, 'load_model')} | {cell(st, 'encode')} | "
                             f"{cell(st, 'search')} | {cell(st, 'score')} | {r['total_s']:.1f} s | "
                             f"{gib(r['maxrss'])} | {gib(r['budget_bytes'])} | {r['ratio']:.2f} | "
                             + (f"{r['ratio_fixed']:.2f}" if "ratio_fixed" in r else "") + " |")
    last = exact[-1] if exact else None
    if last:
        held = [f"{r['size']:,} {r['phase']} {r['ratio']:.2f}" for r in last["runs"] if r["ratio"] <= 1.5]
        over = [f"{r['size']:,} {r['phase']} {r['ratio']:.2f} ({r.get('ratio_fixed', float('nan')):.2f} over the "
                f"fixed costs)" for r in last["runs"] if r["ratio"] > 1.5]
        lines += ["", f"**{last['label']}** against the budget: within it: {'; '.join(held) or 'none'}; over it: "
                  f"{'; '.join(over) or 'none'}. Where a small corpus is over, it is the fixed costs (the model's "
                  "first forward pass and ranx's compiled code, measured in a process of their own) that exceed "
                  "1.5 x a small matrix, not anything that grows with the corpus: see the *over fixed* column."]
    if len(exact) == 2:
        a, b = exact
        lines += ["", f"{b['label']} / {a['label']}:", ""]
        for rb in b["runs"]:
            ra = next((r for r in a["runs"] if r["size"] == rb["size"] and r["phase"] == rb["phase"]), None)
            if ra:
                lines.append(f"- {rb['size']:,} documents, {rb['phase']}: peak RSS x{rb['maxrss'] / ra['maxrss']:.2f} "
                             f"({gib(ra['maxrss'])} -> {gib(rb['maxrss'])}), encode stage "
                             f"x{rb['stages']['encode']['s'] / ra['stages']['encode']['s']:.2f}, search "
                             f"x{rb['stages']['search']['s'] / ra['stages']['search']['s']:.2f}, total "
                             f"x{rb['total_s'] / ra['total_s']:.2f}; NDCG@10 {ra['metrics']['ndcg@10']:.4f} -> "
                             f"{rb['metrics']['ndcg@10']:.4f}, recall@100 {ra['metrics']['recall@100']:.4f} -> "
                             f"{rb['metrics']['recall@100']:.4f}")
    if approx:
        ref = {(r["size"]): r for r in exact[-1]["runs"] if r["phase"] == "warm"} if exact else {}
        lines += ["", "Approximate search on the same warm caches (the recall: of the exact top 100, on a seeded "
                  "sample of the queries, as `conventions.index_recall` records it):", "",
                  "| documents | index | settings | search (build + all queries) | exact search | recall@100 | "
                  "NDCG@10 (exact) | peak RSS |", "|---:|---|---|---:|---:|---:|---:|---:|"]
        for rec in approx:
            for r in rec["runs"]:
                rr, e = r["index_recall"], ref.get(r["size"])
                params = ", ".join(f"{k} {v}" for k, v in rr["params"].items())
                lines.append(f"| {r['size']:,} | {rec['index']} | {params} | {r['stages']['search']['s']:.1f} s | "
                             + (f"{e['stages']['search']['s']:.1f} s" if e else "") + f" | {rr['recall']:.4f} "
                             f"({rr['sample_queries']:,} queries, {rr['seconds']:.0f} s) | "
                             f"{r['metrics']['ndcg@10']:.4f}" + (f" ({e['metrics']['ndcg@10']:.4f})" if e else "")
                             + f" | {gib(r['maxrss'])} |")
    if approx:
        lines += ["", "An approximate index keeps its own copy of the vectors (IVF: the inverted lists), so its peak is "
                  "not under the exact-search budget. On these synthetic corpora encoded by a random model the "
                  "vectors have no cluster structure, which is the worst case for IVF: its recall here says why "
                  "the result records it, and is no estimate for a trained model's vectors."]
    for rec in sweeps:
        lines += ["", f"Encoding in several processes (`processes = N`, sentence-transformers' multi-process pool; "
                  f"cold runs on empty caches, the same corpus; each worker gets cpu_count / N torch threads): "
                  f"`{rec['command']}`; {rec['when']}; {rec['cores']} cores, load average "
                  f"{rec['load_before']:.2f} before / {rec['load_after']:.2f} after.", "",
                  "| documents | processes | encode (pool start included) | total | x one process (encode) | "
                  "NDCG@10 | peak RSS of the parent |", "|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rec["runs"]:
            one = next((o for o in rec["runs"] if o["size"] == r["size"] and o["processes"] == 1), None)
            ratio = f"x{r['stages']['encode']['s'] / one['stages']['encode']['s']:.2f}" if one else ""
            lines.append(f"| {r['size']:,} | {r['processes']} | {r['stages']['encode']['s']:.1f} s | "
                         f"{r['total_s']:.1f} s | {ratio} | {r['metrics']['ndcg@10']:.4f} | {gib(r['maxrss'])} |")
        lines += ["", "The workers' memory is their own (not in the parent's peak). The workers share the "
                  f"machine's {rec['cores']} cores with nothing gained in compute: N workers of cpu_count / N "
                  "threads against one process of cpu_count threads, plus the pool's start-up (each worker imports "
                  "torch and loads the model); the pool is for several GPUs or many cores."]
    lines += ["", "Shared machine: compare the ratios and the memory, not absolute seconds.", END]
    return "\n".join(lines)


def write(args) -> int:
    work = Path(args.work)
    records = [json.loads((work / f"results-{label}.json").read_text()) for label in args.compare.split(",")]
    text_block = section(records)
    print(text_block)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from benchmarks_md import replace_section

    print(f"written: {replace_section(START, END, text_block)}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--label", default="after", help="name of this measurement (results-LABEL.json)")
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--index", default="exact")
    ap.add_argument("--code", help="a folder holding embedgate/ (another checkout) to measure instead")
    ap.add_argument("--ref", help="a git commit to measure (unpacked into the work folder)")
    ap.add_argument("--processes-sweep", help="e.g. 1,2: cold runs per size with that many encoding processes")
    ap.add_argument("--snapshot", action="store_true", help="measure a copy of the working tree taken at the start")
    ap.add_argument("--work", default=os.environ.get("EMBEDGATE_BENCH_WORK", "/tmp/embedgate-bench-scale"))
    ap.add_argument("--keep-cache", action="store_true", help="keep each size's cache (for --reuse-cache)")
    ap.add_argument("--reuse-cache", help="warm runs on the cache a --keep-cache run of this label kept")
    ap.add_argument("--only-baselines", action="store_true",
                    help="measure the baseline and fixed costs again and add them to this label's saved results")
    ap.add_argument("--write", action="store_true", help="write BENCHMARKS.md from saved results")
    ap.add_argument("--compare", default="before,after", help="labels to write, comma-separated")
    args = ap.parse_args()
    return write(args) if args.write else measure(args)


if __name__ == "__main__":
    sys.exit(main())
