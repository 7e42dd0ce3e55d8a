"""Training throughput: `embedgate train` against a bare sentence-transformers Trainer, side by side.

Same model, same pairs, same settings (MNRL, no-duplicate batches, batch size, learning rate, warm-up, seed, fixed
number of steps, no evaluation, no hard-negative mining: the trainer loop is what is compared). Runs alternate
(bare, embedgate, bare, embedgate, ...) so a change in machine load hits both; the best of the repeats is kept for
each, the usual way to read a noisy shared machine. Two numbers per side:
- loop samples/s: the Trainer's own ``train_samples_per_second`` (what the 95% goal is about);
- end-to-end seconds: the whole call, including (for embedgate) the recipe, data loading, contamination guard,
  model card and manifest.

    python bench/bench_train.py                       # acord train pairs, MiniLM, batch 32, 8 steps, 2 repeats
    python bench/bench_train.py --steps 4 --repeats 1 --write   # and replace the section in BENCHMARKS.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SECTION = "## Training throughput"
START, END = "<!-- bench_train:start -->", "<!-- bench_train:end -->"


def bare_run(model_path: str, pairs, args_in, workdir: Path) -> dict:
    """A plain SentenceTransformerTrainer on the same rows and settings."""
    import torch
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, \
        SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import set_seed

    t0 = time.perf_counter()
    set_seed(0)
    model = SentenceTransformer(model_path, device="cpu", model_kwargs={"dtype": torch.float32},
                                local_files_only=True)
    model.max_seq_length = args_in.max_seq_length
    args = SentenceTransformerTrainingArguments(
        output_dir=str(workdir / "bare"), max_steps=args_in.steps, per_device_train_batch_size=args_in.batch_size,
        learning_rate=2e-5, warmup_steps=0.1, weight_decay=0.01, seed=0, data_seed=0,
        batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", eval_strategy="no", report_to="none",
        logging_steps=10, disable_tqdm=True, dataloader_pin_memory=False)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=pairs.to_dataset(),
                                         loss=MultipleNegativesRankingLoss(model))
    out = trainer.train()
    return {"loop_samples_per_s": out.metrics["train_samples_per_second"], "loop_s": out.metrics["train_runtime"],
            "end_to_end_s": time.perf_counter() - t0, "steps": trainer.state.global_step}


RECIPE = """name = "bench"
allow_contamination = true  # the pairs are a training split; the guard still runs (see [contamination])
[base]
model = "{model}"
max_seq_length = {msl}
[train]
data = "{data}"
split = "{split}"
min_relevance = {min_rel}
[dev]
enabled = false
[contamination]
data = [{{ path = "{data}", split = "test" }}]
[schedule]
max_steps = {steps}
batch_size = {bs}
learning_rate = 2e-5
warmup = 0.1
precision = "fp32"
"""


def embedgate_run(recipe: Path, workdir: Path) -> dict:
    from embedgate.trainers.train import train

    out = workdir / "embedgate"
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    result = train(recipe, output=out, progress=None, cache=False)
    wall = time.perf_counter() - t0
    t = result.manifest["training"]
    return {"loop_samples_per_s": t["train_samples_per_second"], "loop_s": t["train_runtime_s"],
            "end_to_end_s": wall, "steps": t["global_step"]}


def write_section(text: str, path: Path) -> None:
    """Replace (or append) only this section of BENCHMARKS.md, between its markers; other sections are left as they
    are. A file from before the markers: the section runs from its heading to the next heading or marker."""
    from embedgate.harness.io import atomic_write_text

    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    block = f"{START}\n{text.rstrip()}\n{END}\n"
    if START in old and END in old:
        rest = old[old.index(END) + len(END):].lstrip("\n")
        new = old[:old.index(START)] + block + ("\n" + rest if rest else "")
    elif SECTION in old:
        start = old.find(SECTION)
        ends = [i for i in (old.find("\n## ", start + 1), old.find("\n<!-- ", start + 1)) if i != -1]
        new = old[:start] + block + ("\n" + old[min(ends) + 1:] if ends else "")
    else:
        new = old.rstrip("\n") + "\n\n" + block
    atomic_write_text(path, new.rstrip("\n") + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("EMBEDGATE_DATA", str(REPO.parent / "shared" / "datasets"))
                    + "/acord")
    ap.add_argument("--split", default="train")
    ap.add_argument("--min-relevance", type=int, default=1)
    ap.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    ap.add_argument("--max-seq-length", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="replace the section in BENCHMARKS.md")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from embedgate.harness.data import load
    from embedgate.harness.models import load_model
    from embedgate.trainers.pairs import pairs_from_retrieval_set

    base = load_model({"name": args.model, "max_seq_length": args.max_seq_length})
    pairs = pairs_from_retrieval_set(load(args.data, args.split), min_relevance=args.min_relevance, seed=0)
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    recipe = work / "recipe.toml"
    recipe.write_text(RECIPE.format(model=base.path, msl=args.max_seq_length, data=args.data, split=args.split,
                                    min_rel=args.min_relevance, steps=args.steps, bs=args.batch_size))
    runs: dict[str, list[dict]] = {"bare": [], "embedgate": []}
    load_before = os.getloadavg()[0]
    try:
        for i in range(args.repeats):
            for side in ("bare", "embedgate"):
                r = bare_run(base.path, pairs, args, work) if side == "bare" else embedgate_run(recipe, work)
                runs[side].append(r)
                print(f"repeat {i + 1} {side:<9} {r['loop_samples_per_s']:.2f} samples/s in the loop, "
                      f"{r['end_to_end_s']:.1f} s end to end ({r['steps']} steps)", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = {side: max(rs, key=lambda r: r["loop_samples_per_s"]) for side, rs in runs.items()}
    ratio = best["embedgate"]["loop_samples_per_s"] / best["bare"]["loop_samples_per_s"]
    e2e = best["bare"]["end_to_end_s"] / best["embedgate"]["end_to_end_s"]
    summary = {"ratio_loop": round(ratio, 4), "ratio_end_to_end": round(e2e, 4), "best": best, "runs": runs,
               "settings": vars(args) | {"pairs": len(pairs.pairs), "torch_threads": torch.get_num_threads()},
               "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2)}
    print(json.dumps(summary, indent=1))
    cmd = (f"python bench/bench_train.py --steps {args.steps} --repeats {args.repeats} --batch-size "
           f"{args.batch_size} --max-seq-length {args.max_seq_length}" + (" --write" if args.write else ""))
    text = f"""{SECTION}

`embedgate train` against a bare sentence-transformers `SentenceTransformerTrainer` on the same rows and settings
({Path(args.data).name} [{args.split}], {len(pairs.pairs)} pairs, {Path(args.model).name}, MNRL, no-duplicate
batches of {args.batch_size}, max_seq_length {args.max_seq_length}, {args.steps} steps, fp32 on CPU, no evaluation,
no mining), runs alternated, best of {args.repeats} per side. Measured {time.strftime('%Y-%m-%d')} on
{platform.machine()} with {os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads, load average
{load_before:.1f} before / {os.getloadavg()[0]:.1f} after (a shared machine: compare ratios, not absolute numbers).

| | bare Trainer | embedgate train | ratio |
|---|---:|---:|---:|
| training loop, samples/s | {best['bare']['loop_samples_per_s']:.2f} | {best['embedgate']['loop_samples_per_s']:.2f} | {ratio:.1%} |
| end to end, seconds | {best['bare']['end_to_end_s']:.1f} | {best['embedgate']['end_to_end_s']:.1f} | {e2e:.1%} |

Goal: the loop at >= 95% of the bare Trainer's samples/s. End to end, embedgate also validates the recipe, runs the
contamination guard against the test split, fingerprints the base model and writes the card and manifest.

Command: `{cmd}`
"""
    if args.write:
        write_section(text, REPO / "BENCHMARKS.md")
        print(f"wrote the section to {REPO / 'BENCHMARKS.md'}", file=sys.stderr)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
