"""``train(recipe)``: base model + domain pairs -> a fine-tuned model folder with a card and a training manifest.

The stages, each reported as it starts:
1. the recipe is validated and the output folder checked (a finished model is never overwritten silently; an
   interrupted run resumes from its last checkpoint);
2. the training pairs are built and checked against the suite's held-out queries (contamination guard);
3. hard negatives are mined with the base model (optional);
4. sentence-transformers' Trainer runs (no-duplicate batches, the harness's dev metric picks the best checkpoint,
   fixed seeds, bf16/fp16 on a GPU and fp32 on CPU, DDP when launched by torchrun / accelerate);
5. the model, its card (README.md) and training_manifest.json are written, the manifest last.

Layout of the output folder: the model files, README.md, training_manifest.json, and while training (or with
``keep_checkpoints``) ``.checkpoints/`` holding the Trainer's checkpoints, the training rows and the run state; the
dot keeps them out of the model's fingerprint.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import time
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from embedgate.harness.errors import ConfigError, DataError
from embedgate.harness.io import write_json

from .recipe import Recipe, load_recipe

log = logging.getLogger(__name__)

CHECKPOINTS = ".checkpoints"
RUN_STATE = "run.json"
TRAINING_ROWS = "training_rows.jsonl"
MANIFEST = "training_manifest.json"
UNBOUNDED = 10 ** 9  # eval/save "every N steps" when only the final step is meant


@dataclass
class TrainResult:
    output: Path
    manifest: dict[str, Any]
    resumed_from: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ run environment


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def choose_precision(requested: str) -> tuple[str, str]:
    """(precision, device kind): bf16 where the GPU supports it, else fp16 on a GPU, fp32 on CPU."""
    import torch

    cuda = torch.cuda.is_available()
    if requested == "auto":
        if cuda:
            return ("bf16" if torch.cuda.is_bf16_supported() else "fp16"), "cuda"
        return "fp32", "cpu"
    if requested in ("bf16", "fp16") and not cuda:
        raise ConfigError(f"precision = \"{requested}\" needs a CUDA GPU; this machine has none (use \"auto\" or "
                          "\"fp32\")", field="schedule.precision")
    if requested == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError("this GPU does not support bf16; use fp16 or auto", field="schedule.precision")
    return requested, "cuda" if cuda else "cpu"


# ------------------------------------------------------------------------------------------ output folder


def _ours(folder: Path) -> bool:
    return (folder / MANIFEST).is_file() or (folder / CHECKPOINTS / RUN_STATE).is_file()


def last_checkpoint(folder: Path) -> Path | None:
    ckpts = folder / CHECKPOINTS
    if not ckpts.is_dir():
        return None
    from transformers.trainer_utils import get_last_checkpoint

    found = get_last_checkpoint(str(ckpts))
    return Path(found) if found else None


def prepare_output(recipe: Recipe, output: Path, resume: bool | None, overwrite: bool) -> Path | None:
    """The checkpoint to resume from (or None for a fresh run), after making the folder safe to write."""
    ckpt = last_checkpoint(output)
    state_file = output / CHECKPOINTS / RUN_STATE
    if ckpt is not None and not overwrite and resume is not False:
        try:
            state = json.loads(state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ConfigError(f"{ckpt} has no readable run state ({state_file}); pass --overwrite to start again",
                              path=output) from None
        if state.get("recipe_sha256") != recipe.sha256:
            raise ConfigError("holds checkpoints of a run with different settings; pass --overwrite to discard "
                              "them, or choose another output folder", path=output)
        return ckpt
    if resume is True and not overwrite:
        raise ConfigError("nothing to resume: no checkpoint in this folder", path=output / CHECKPOINTS)
    if output.exists() and any(output.iterdir()):
        if not overwrite:
            what = "a trained model" if (output / MANIFEST).is_file() else \
                "checkpoints of an interrupted run (pass --resume to continue it)" if ckpt else "files"
            raise ConfigError(f"the output folder already holds {what}; pass --overwrite to replace it, or choose "
                              "another output", path=output)
        if not _ours(output):
            raise ConfigError("--overwrite only replaces folders written by `embedgate train` (no "
                              f"{MANIFEST} or {CHECKPOINTS}/ here); remove it yourself or choose another output",
                              path=output)
        if is_main_process():
            shutil.rmtree(output)
    return None


def _readable(folder: Path) -> None:
    """Atomic writes create files readable by the owner only; a model folder is meant to be shared, so give its
    files the modes the umask allows, as a plain save would."""
    mask = os.umask(0)
    os.umask(mask)
    for p in folder.rglob("*"):
        if p.is_file() and CHECKPOINTS not in p.relative_to(folder).parts:
            p.chmod(0o666 & ~mask)


def _install_files(src: Path, dst: Path) -> None:
    """Move the saved model's files into the output folder one by one (os.replace: each file appears whole)."""
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src)
        target = dst / rel
        if p.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, target)
    shutil.rmtree(src, ignore_errors=True)


# ------------------------------------------------------------------------------------------ data


def split_holdout(ds, n: int, seed: int):
    """(training part, dev part): ``n`` seeded queries of a retrieval set become the dev set and leave training."""
    import random

    from embedgate.harness.data import RetrievalSet

    qids = sorted(ds.queries)
    if n >= len(qids):
        raise ConfigError(f"holdout = {n} leaves no training query ({len(qids)} queries in the split)",
                          field="dev.holdout")
    held = set(random.Random(seed).sample(qids, n))

    def part(keep: set[str], label: str) -> RetrievalSet:
        return RetrievalSet(name=ds.name, split=ds.split, corpus=ds.corpus,
                            queries={q: ds.queries[q] for q in qids if q in keep},
                            qrels={q: dict(ds.qrels[q]) for q in qids if q in keep}, source=ds.source,
                            format=ds.format, sampling={"holdout": label, "holdout_queries": n, "seed": seed,
                                                        "parent_content_hash": ds.content_hash})

    return part(set(qids) - held, "training part"), part(held, "held-out dev part")


def build_pairs(recipe: Recipe):
    """(pairs, dev set carved out of the training split or None)."""
    from embedgate.harness import data as data_mod

    from .pairs import pairs_from_retrieval_set, read_pairs_file

    t = recipe.train
    if t.source.kind == "pairs":
        return read_pairs_file(t.source.path, max_pairs=t.max_pairs, max_per_query=t.max_per_query,
                               seed=recipe.seed), None
    if t.source.kind == "log":
        from .logs import pairs_from_log

        return pairs_from_log(t.source.path, columns=t.log_columns, rules=t.log_rules, corpus=t.corpus,
                              max_pairs=t.max_pairs, max_per_query=t.max_per_query, seed=recipe.seed), None
    ds = data_mod.load(t.source.path, t.source.split)
    dev = None
    if recipe.dev and recipe.dev.holdout:
        ds, dev = split_holdout(ds, recipe.dev.holdout, recipe.dev.seed)
        if recipe.dev.max_queries or recipe.dev.corpus_size:
            dev = dev.subset(max_queries=recipe.dev.max_queries, corpus_size=recipe.dev.corpus_size,
                             seed=recipe.dev.seed)
    return pairs_from_retrieval_set(ds, min_relevance=t.min_relevance, max_pairs=t.max_pairs,
                                    max_per_query=t.max_per_query, seed=recipe.seed), dev


def heldout_sets(recipe: Recipe):
    """[(description, RetrievalSet)] of every set a gate will score: each data set of the named suites (its split,
    all of its queries) and the [contamination] data."""
    from embedgate.harness import data as data_mod
    from embedgate.harness.suite import load_suite

    seen: set[tuple[str, str]] = set()
    out = []
    refs = []
    for suite_path in recipe.contamination.suites:
        suite = load_suite(suite_path)
        refs += [(f"{suite.name}/{name}", ref.path, ref.split) for name, ref in suite.data.items()]
    refs += [(f"{src.path.name}", src.path, src.split) for src in recipe.contamination.data]
    for label, path, split in refs:
        key = (str(Path(path).resolve()), split)
        if key in seen:
            continue
        seen.add(key)
        ds = data_mod.load(path, split)
        out.append(({"name": f"{label} ({ds.name} {split})", "path": str(path), "split": split,
                     "content_hash": ds.content_hash, "queries": len(ds.queries)}, ds))
    return out


def check_contamination(recipe: Recipe, pairs, allow: bool):
    from .contamination import ContaminationError, HeldOutQuery, check

    sets = heldout_sets(recipe)
    heldout = [HeldOutQuery(f"{ds.name} {ds.split}", qid, text) for _, ds in sets
               for qid, text in sorted(ds.queries.items())]
    positives = {ds.corpus[d].full_text for _, ds in sets for rels in ds.qrels.values()
                 for d, r in rels.items() if r > 0}

    def rows() -> Iterable[tuple[str, str, str | None, int]]:
        for i, p in enumerate(pairs.pairs):
            yield "query", p.query, p.query_id, i
            yield "positive", p.positive, p.positive_id, i
            for neg in p.negatives:
                yield "negative", neg, None, i

    report = check(rows(), heldout, [info for info, _ in sets], threshold=recipe.contamination.threshold,
                   ngram=recipe.contamination.ngram, heldout_positive_texts=positives)
    if not report.clean and not allow:
        raise ContaminationError(report.message(), path=recipe.path, field="allow_contamination")
    return report


def load_dev(recipe: Recipe):
    from embedgate.harness import data as data_mod

    d = recipe.dev
    ds = data_mod.load(d.source.path, d.source.split)
    if d.max_queries or d.corpus_size:
        ds = ds.subset(max_queries=d.max_queries, corpus_size=d.corpus_size, seed=d.seed)
    return ds


# ------------------------------------------------------------------------------------------ training


def training_arguments(recipe: Recipe, checkpoints: Path, precision: str, has_dev: bool, resuming: bool = False,
                       negative_columns: int | None = None):
    """``negative_columns``: of the training rows (default: what the recipe mines; a click log brings its own)."""
    import torch
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers

    s = recipe.schedule
    eval_steps = s.eval_steps or UNBOUNDED  # unset: evaluate at the final step only (HF always evaluates it)
    save_steps = s.save_steps or eval_steps  # keep = "best" can only choose among saved, evaluated steps
    q_prompt, d_prompt = recipe.base_spec.prompts()
    prompts = None
    if q_prompt or d_prompt:  # train with the prompts the model is evaluated with
        n_neg = negative_columns if negative_columns is not None else (recipe.mining.per_pair if recipe.mining
                                                                        else 0)
        cols = ["anchor", "positive"] + [f"negative_{i}" for i in range(1, 1 + n_neg)]
        prompts = {c: (q_prompt if c == "anchor" else d_prompt) for c in cols}
    return SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=s.epochs,
        max_steps=s.max_steps or -1,
        per_device_train_batch_size=s.batch_size,
        gradient_accumulation_steps=s.gradient_accumulation_steps,
        learning_rate=s.learning_rate,
        warmup_steps=s.warmup,  # a float < 1 is a fraction of the steps (transformers 5; warmup_ratio is deprecated)
        weight_decay=s.weight_decay,
        lr_scheduler_type=s.lr_scheduler,
        seed=recipe.seed,
        data_seed=recipe.seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        eval_strategy="steps" if has_dev else "no",
        eval_steps=eval_steps if has_dev else None,
        eval_on_start=has_dev and not resuming,  # the base model's dev numbers, step 0 of the history
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=s.save_total_limit,
        load_best_model_at_end=has_dev and s.keep == "best",
        metric_for_best_model=f"eval_dev_{recipe.dev.metric}" if has_dev else None,
        greater_is_better=True,
        logging_steps=s.logging_steps,
        report_to="none",
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        dataloader_num_workers=s.dataloader_workers,
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),  # also what makes torchrun on CPU processes a DDP run (gloo)
        prompts=prompts,
        disable_tqdm=False,
    )


class _StageTimer:
    def __init__(self, say: Callable[[str], None]):
        self.say = say
        self.times: dict[str, float] = {}
        self._name: str | None = None
        self._t0 = 0.0
        self.n = 0

    def stage(self, name: str, message: str) -> None:
        self.stop()
        self.n += 1
        self._name, self._t0 = name, time.perf_counter()
        self.say(f"[{self.n}] {message}")

    def stop(self) -> None:
        if self._name is not None:
            self.times[self._name] = round(time.perf_counter() - self._t0, 2)
            self._name = None


def train(recipe: "Recipe | str | Path", *, resume: bool | None = None, overwrite: bool = False,
          output: "str | Path | None" = None, overrides: list[str] | dict[str, Any] | None = None,
          allow_contamination: bool | None = None, callbacks: Iterable[Any] = (),
          progress: Callable[[str], None] | None = _stderr, cache: "str | Path | bool | None" = None) -> TrainResult:
    """Run a recipe. ``resume``: None resumes when the output folder holds checkpoints of this recipe, True requires
    it, False refuses to. ``cache``: the embedding cache used to mine with the base model (default
    ``$EMBEDGATE_CACHE``; False disables it)."""
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    say = (progress if is_main_process() else None) or (lambda _m: None)
    timer = _StageTimer(say)
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, overrides)
    elif overrides:
        raise ValueError("overrides apply to a recipe file; pass a path, or change the Recipe")
    allow = recipe.allow_contamination if allow_contamination is None else allow_contamination
    out = Path(output) if output is not None else recipe.output
    precision, device_kind = choose_precision(recipe.schedule.precision)

    from accelerate import PartialState

    timer.stage("prepare", f"recipe {recipe.name}: output {out}")
    # one process, or one per GPU under torchrun / accelerate launch (several CPU processes too: gloo)
    processes = PartialState(cpu=device_kind == "cpu")
    with processes.main_process_first():  # rank 0 decides (and may clear the folder); the others follow
        if processes.is_main_process:
            resume_from = prepare_output(recipe, out, resume, overwrite)
        else:
            resume_from = last_checkpoint(out)
    ckpt_dir = out / CHECKPOINTS
    if resume_from:
        say(f"    resuming from {resume_from}")

    from embedgate.harness.encode import EmbeddingCache
    from embedgate.harness.models import load_model

    timer.stage("base_model", f"base model {recipe.base_spec.name}")
    base = load_model(recipe.base_spec, device="cpu" if device_kind == "cpu" else None)

    timer.stage("data", f"training data: {recipe.train.source.kind} {recipe.train.source.path}"
                + (f" [{recipe.train.source.split}]" if recipe.train.source.split else ""))
    pairs, holdout_dev = build_pairs(recipe)
    say(f"    {len(pairs.pairs)} pairs, {len({p.query for p in pairs.pairs})} queries"
        + (f" (relevance >= {recipe.train.min_relevance})" if recipe.train.source.kind in ("suite", "data")
           else ""))
    if recipe.train.source.kind == "log":
        st = pairs.source["stats"]
        say(f"    log: {st['rows_read']} rows, {st['rows_after_time_cut']} before the time cut, {st['clicks']} "
            f"clicks, {st['qualifying_clicks']} qualifying, {st['pairs']} (query, document) pairs; skip-above "
            f"negatives {st['skip_above']}: {st['negatives']}"
            + (f", {st['pairs_without_negative']} pairs without one left out" if st["pairs_without_negative"]
               else ""))
    if recipe.mining and pairs.n_negatives:
        raise ConfigError("the pairs file already has negative columns; remove [hard_negatives] from the recipe or "
                          "the negatives from the file", path=recipe.path, field="hard_negatives")

    timer.stage("contamination", "contamination guard: training texts vs held-out queries")
    report = check_contamination(recipe, pairs, allow)
    if report.clean:
        say(f"    clean: no training text matches any of {sum(s['queries'] for s in report.checked_against)} "
            f"held-out queries ({report.shared_documents} training positives are also held-out positives: "
            "shared corpus, expected)")
    else:
        say(f"    ALLOWED: {len(report.overlaps)} overlaps with held-out queries (recorded in the manifest)")

    store = None if cache is False else EmbeddingCache(None if cache in (None, True) else cache)
    mining_stats = None
    rows_file = ckpt_dir / TRAINING_ROWS
    if resume_from and rows_file.is_file():
        timer.stage("mining", f"training rows of the interrupted run: {rows_file}")
        pairs = _reload_rows(rows_file, pairs)
        state = json.loads((ckpt_dir / RUN_STATE).read_text(encoding="utf-8"))
        if pairs.content_hash() != state.get("rows_sha256"):
            raise DataError("the saved training rows do not match the run state; pass --overwrite to start again",
                            path=rows_file)
        mining_stats = state.get("mining")
    elif recipe.mining:
        timer.stage("mining", f"mining hard negatives with the base model ({recipe.mining.num_negatives} per "
                    f"query, relative margin {recipe.mining.relative_margin}, per {recipe.mining.margin_reference})")
        from .mining import mine
        from .pairs import kept_out

        with processes.main_process_first():  # rank 0 encodes; the others read its cache entries
            try:
                pairs, mining_stats = mine(pairs, base, recipe.mining, store, seed=recipe.seed)
            except ValueError as exc:
                raise ConfigError(str(exc), path=recipe.path, field="hard_negatives") from None
        say(f"    {mining_stats['pairs_out']} of {mining_stats['pairs_in']} pairs got negatives; "
            f"{mining_stats['skipped_judged_positives']} "
            f"{kept_out(mining_stats)} kept out of the negatives")

    dev_set = None
    if recipe.dev:
        timer.stage("dev", f"dev data: {recipe.dev.source.path} [{recipe.dev.source.split}]")
        dev_set = holdout_dev if holdout_dev is not None else load_dev(recipe)
        say(f"    {len(dev_set.queries)} queries, {len(dev_set.corpus)} documents; best checkpoint by "
            f"{recipe.dev.metric}")

    if processes.is_main_process:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        if not resume_from:
            from .pairs import write_pairs

            write_pairs(rows_file, pairs.pairs)
            write_json(ckpt_dir / RUN_STATE, {"recipe_sha256": recipe.sha256, "rows_sha256": pairs.content_hash(),
                                              "mining": mining_stats, "started_at": started_at})

    timer.stage("train", f"training ({precision} on {device_kind}, {world_size()} process"
                f"{'es' if world_size() > 1 else ''})")
    trainer, evaluator, train_output, model = _run_trainer(recipe, base, pairs, dev_set, ckpt_dir, precision,
                                                           resume_from, callbacks)

    timer.stage("save", f"saving the model, card and manifest to {out}")
    manifest = None
    if trainer.is_world_process_zero():
        tmp = ckpt_dir / "final-model"
        if tmp.exists():
            shutil.rmtree(tmp)
        model.max_seq_length = base.max_seq_length  # the saved model is used as the base was
        model.save(str(tmp))
        _install_files(tmp, out)
        timer.stop()
        manifest = _manifest(recipe, out, base, pairs, report, mining_stats, dev_set, trainer, evaluator,
                             train_output, precision, device_kind, resume_from, started_at,
                             time.perf_counter() - started, dict(timer.times))
        manifest["recipe"]["overrides"] = list(overrides) if isinstance(overrides, (list, tuple)) else \
            [f"{k}={v!r}" for k, v in (overrides or {}).items()]
        from .card import write_card

        write_card(out, manifest)
        write_json(out / MANIFEST, manifest)  # last: its presence marks a complete model folder
        _readable(out)
        if not recipe.schedule.keep_checkpoints:
            shutil.rmtree(ckpt_dir, ignore_errors=True)
        say(f"done in {manifest['wall_time_s']:.0f} s: {out}")  # the CLI then prints the command that gates it
    timer.stop()
    return TrainResult(output=out, manifest=manifest or {}, resumed_from=str(resume_from) if resume_from else None,
                       timings=timer.times)


def _reload_rows(path: Path, like):
    from .pairs import read_pairs_file

    loaded = read_pairs_file(path)
    return dataclasses.replace(like, pairs=loaded.pairs,
                               source=like.source | {"hard_negatives": loaded.n_negatives > 0})


def _skip_final_save_callback():
    """With keep = "last", the model is saved from memory when training ends, so the checkpoint the Trainer writes
    at the final step (weights + optimizer state) would be written only to be deleted: skip it."""
    from transformers import TrainerCallback

    class SkipFinalSave(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= state.max_steps and (not args.save_steps or
                                                         state.global_step % int(args.save_steps)):
                control.should_save = False
            return control

    return SkipFinalSave()


def _run_trainer(recipe: Recipe, base, pairs, dev_set, ckpt_dir: Path, precision: str, resume_from,
                 callbacks):
    import torch
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from transformers import set_seed

    from .evaluator import HarnessEvaluator
    from .losses import build_loss

    from embedgate.harness.models import quiet_loading

    set_seed(recipe.seed)
    quiet_loading()  # no carriage-return "Loading weights" bar in a log file
    # fp32 weights whatever the precision (bf16/fp16 train under autocast); the Trainer places the model (DDP: one
    # device per process), CPU when there is no GPU
    model = SentenceTransformer(base.path, device=None if torch.cuda.is_available() else "cpu",
                                model_kwargs={"dtype": torch.float32}, local_files_only=True)
    model.max_seq_length = recipe.train.max_seq_length or base.max_seq_length
    guide = None
    if recipe.loss.guide_model:
        from embedgate.harness.models import ModelSpec, resolve_model_path

        gspec = ModelSpec.parse(recipe.loss.guide_model)
        gpath, _ = resolve_model_path(gspec.name, gspec.revision)
        guide = SentenceTransformer(gpath, device=str(model.device), local_files_only=True,
                                    model_kwargs={"dtype": torch.float32})
        if gspec.max_seq_length:
            guide.max_seq_length = gspec.max_seq_length
    loss = build_loss(recipe.loss, model, guide=guide, world_size=world_size())

    eval_spec = recipe.base_spec.model_copy(update={"max_seq_length": base.max_seq_length})
    evaluator = HarnessEvaluator(dev_set, eval_spec, recipe.dev.metrics, recipe.dev.metric) if dev_set else None
    train_dataset = pairs.to_dataset()
    args = training_arguments(recipe, ckpt_dir, precision, dev_set is not None, resuming=resume_from is not None,
                              negative_columns=pairs.n_negatives)
    extra = [_skip_final_save_callback()] if recipe.schedule.keep == "last" else []
    # embedgate writes its own model card: skip sentence-transformers' widget examples (a bar and a pass over the
    # data that end up nowhere)
    model.model_card_data.set_widget_examples = lambda dataset: None
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train_dataset, loss=loss,
                                         evaluator=evaluator, callbacks=extra + list(callbacks) or None)
    _plain_logging(trainer)
    output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    return trainer, evaluator, output, trainer.model


def _plain_logging(trainer) -> None:
    """One readable line per log event instead of the Trainer's raw dicts (which print eval_samples_per_second '0'
    for an evaluator without an eval dataset, and repeat the bar's last line). The bar itself only on a terminal."""
    import sys

    from transformers.trainer_callback import PrinterCallback, ProgressCallback, TrainerCallback

    class _QuietBar(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            pass

    class _Lines(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            step = f"step {state.global_step}/{state.max_steps}"
            dev = {k[len("eval_dev_"):]: v for k, v in logs.items() if k.startswith("eval_dev_")}
            if dev:
                secs = logs.get("eval_runtime")
                line = f"    dev at {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in dev.items()) + \
                    (f" ({secs:.0f} s)" if secs else "")
            elif "loss" in logs:
                line = (f"    {step}: loss {logs['loss']:.4f}"
                        + (f", grad norm {logs['grad_norm']:.3g}" if "grad_norm" in logs else "")
                        + (f", learning rate {logs['learning_rate']:.3g}" if "learning_rate" in logs else ""))
            elif "train_runtime" in logs:
                line = (f"    trained {state.global_step} steps in {logs['train_runtime']:.0f} s "
                        f"({logs.get('train_samples_per_second', 0):.2f} samples/s, mean loss "
                        f"{logs.get('train_loss', float('nan')):.4f})")
            else:
                return
            print(line, file=sys.stderr, flush=True)

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if getattr(sys.stderr, "isatty", None) and sys.stderr.isatty():
        trainer.add_callback(_QuietBar())
    trainer.add_callback(_Lines())


def _dev_history(trainer, metric_names) -> list[dict[str, Any]]:
    """Every dev evaluation from the Trainer's log (it survives a resume, unlike anything kept in memory)."""
    out = []
    for entry in trainer.state.log_history:
        values = {m: entry[f"eval_dev_{m}"] for m in metric_names if f"eval_dev_{m}" in entry}
        if values:
            out.append({"step": entry.get("step"), "epoch": entry.get("epoch"),
                        "metrics": {k: round(float(v), 6) for k, v in values.items()}})
    return out


def _manifest(recipe: Recipe, out: Path, base, pairs, report, mining_stats, dev_set, trainer, evaluator,
              train_output, precision, device_kind, resume_from, started_at, wall_s, timings) -> dict[str, Any]:
    from embedgate.harness.environment import environment
    from embedgate.harness.models import weights_fingerprint

    from .losses import describe_loss

    state = trainer.state
    history = _dev_history(trainer, recipe.dev.metrics) if recipe.dev else []
    metrics = dict(train_output.metrics)
    best = None
    if recipe.dev:
        key = recipe.dev.metric
        start = next((h for h in history if h["step"] == 0), None)
        chosen_step = int(Path(state.best_model_checkpoint).name.split("-")[-1]) if (
            state.best_model_checkpoint and recipe.schedule.keep == "best") else state.global_step
        chosen = next((h for h in reversed(history) if h["step"] == chosen_step), None)
        best = {"metric": key, "base": start["metrics"].get(key) if start else None,
                "kept_step": chosen_step, "kept": chosen["metrics"].get(key) if chosen else None,
                "rule": recipe.schedule.keep}
    from embedgate.harness.schema import MANIFEST_SCHEMA, TrainingManifest

    return TrainingManifest.model_validate({
        "schema": MANIFEST_SCHEMA,
        "name": recipe.name,
        "description": recipe.description,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "started_at": started_at,
        "wall_time_s": round(wall_s, 1),
        "seed": recipe.seed,
        "recipe": {"path": str(recipe.path) if recipe.path else None, "sha256": recipe.sha256,
                   "settings": recipe.raw, "suite": str(recipe.suite) if recipe.suite else None},
        "base_model": base.describe(),
        "candidate": {"path": str(out.resolve()), "weights_fingerprint": weights_fingerprint(out)},
        "data": {
            "train": pairs.describe(),
            "dev": dev_set.describe() | {"excluded_queries": len(dev_set.excluded_queries)} if dev_set else None,
        },
        "contamination": report.as_dict() | {"allowed": not report.clean},
        "hard_negatives": mining_stats,
        "training": {
            "loss": describe_loss(recipe.loss),
            "batch_sampler": "no_duplicates",
            "schedule": recipe.schedule.model_dump(),
            "train_max_seq_length": recipe.train.max_seq_length or base.max_seq_length,
            "precision": precision,
            "device": device_kind,
            "world_size": world_size(),
            "global_step": state.global_step,
            "epochs": round(float(state.epoch or 0), 4),
            "rows": len(pairs.pairs),
            "train_runtime_s": round(float(metrics.get("train_runtime", 0.0)), 2),
            "train_samples_per_second": round(float(metrics.get("train_samples_per_second", 0.0)), 3),
            "train_loss": round(float(metrics.get("train_loss", math.nan)), 6)
            if metrics.get("train_loss") is not None else None,
            "resumed_from": str(resume_from) if resume_from else None,
            "best_checkpoint": state.best_model_checkpoint,
        },
        "dev_metrics": history,
        "dev_selection": best,
        "timings": timings,
        "environment": environment(),
    }).model_dump(mode="json", by_alias=True)
