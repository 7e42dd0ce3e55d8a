"""`embedgate train RECIPE.toml`: fine-tune a candidate. Exit 0 when the model folder is written, 2 on bad input
(recipe errors, contamination), 130 when interrupted (run it again to resume)."""
from __future__ import annotations


def cmd_train(args) -> int:
    from .train import train

    result = train(args.recipe, resume=args.resume, overwrite=args.overwrite, output=args.output,
                   overrides=args.set or None, allow_contamination=True if args.allow_contamination else None,
                   cache=False if args.no_cache else args.cache_dir)
    m = result.manifest
    if m:
        sel = m.get("dev_selection") or {}
        tr = m["training"]
        print(f"model: {result.output}")
        print(f"steps {tr['global_step']}, {tr['train_samples_per_second']:.2f} samples/s, "
              f"{m['wall_time_s']:.0f} s in all")
        if sel.get("base") is not None and sel.get("kept") is not None:
            print(f"dev {sel['metric']}: {sel['base']:.4f} (base) -> {sel['kept']:.4f} (kept, step "
                  f"{sel['kept_step']})")
        if m["recipe"].get("suite"):
            import os
            from pathlib import Path

            print(f"next: embedgate gate {os.path.relpath(Path(m['recipe']['suite']).parent)} --candidate "
                  f"{result.output}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="fine-tune a candidate model from a recipe (TOML)",
                       description="Fine-tune a base model on domain pairs with sentence-transformers' Trainer; "
                                   "writes the model, a model card and training_manifest.json. Several GPUs: "
                                   "torchrun --nproc_per_node N -m embedgate.harness.shells.cli train RECIPE.toml")
    p.add_argument("recipe", help="recipe file (see trainers/recipes/ and docs/training.md)")
    resume = p.add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="resume", action="store_true", default=None,
                        help="continue an interrupted run from its last checkpoint (the default when the output "
                             "folder holds checkpoints of the same recipe)")
    resume.add_argument("--no-resume", dest="resume", action="store_false",
                        help="refuse to resume (fail if checkpoints exist, unless --overwrite)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an output folder written by an earlier `embedgate train`")
    p.add_argument("--output", default=None, help="output folder (default: the recipe's `output`, or runs/<name>)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set schedule.learning_rate=5e-5 (repeatable)")
    p.add_argument("--allow-contamination", action="store_true",
                   help="train even if training texts overlap held-out queries (recorded in the manifest)")
    p.add_argument("--cache-dir", default=None,
                   help="embedding cache for mining with the base model (default $EMBEDGATE_CACHE)")
    p.add_argument("--no-cache", action="store_true", help="mine hard negatives without the embedding cache")
    p.set_defaults(func=cmd_train)
