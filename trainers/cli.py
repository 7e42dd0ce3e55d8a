"""`embedgate train RECIPE.toml`: fine-tune a candidate. Exit 0 when the model folder is written, 2 on bad input
(recipe errors, contamination), 130 when interrupted (run it again to resume)."""
from __future__ import annotations


def parse_seeds(text: str) -> list[int]:
    """``0,1,2`` -> [0, 1, 2]; a duplicate or a non-integer is an error (exit 2)."""
    from embedgate.harness.errors import ConfigError

    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds takes comma-separated integers, got {text!r}", field="seeds") from None
    dupes = sorted({s for s in seeds if seeds.count(s) > 1})
    if dupes or not seeds or any(s < 0 for s in seeds):
        raise ConfigError(f"--seeds must list distinct non-negative integers, got {text!r}"
                          + (f" ({', '.join(map(str, dupes))} twice)" if dupes else ""), field="seeds")
    return seeds


def cmd_train(args) -> int:
    if args.seeds:
        return _train_seeds(args)
    from .train import train

    result = train(args.recipe, resume=args.resume, overwrite=args.overwrite, output=args.output,
                   overrides=args.set or None, allow_contamination=True if args.allow_contamination else None,
                   cache=False if args.no_cache else args.cache_dir)
    _summary(result)
    return 0


def _train_seeds(args) -> int:
    """One candidate per seed, into <output>-seed<k>; then the command that gates them as one recipe."""
    import os
    from pathlib import Path

    from .recipe import load_recipe
    from .train import train

    seeds = parse_seeds(args.seeds)
    recipe = load_recipe(args.recipe, args.set or None)
    base = Path(args.output) if args.output else recipe.output
    outputs = []
    for seed in seeds:
        print(f"== seed {seed} ({len(outputs) + 1} of {len(seeds)})")
        result = train(args.recipe, resume=args.resume, overwrite=args.overwrite,
                       output=str(base.parent / f"{base.name}-seed{seed}"), overrides=[*(args.set or []),
                                                                                       f"seed={seed}"],
                       allow_contamination=True if args.allow_contamination else None,
                       cache=False if args.no_cache else args.cache_dir)
        _summary(result, next_step=False)
        outputs.append(result.output)
    if recipe.suite:
        print(f"next: embedgate gate {os.path.relpath(Path(recipe.suite).parent)} "
              + " ".join(f"--candidate {o}" for o in outputs))
    return 0


def _summary(result, next_step: bool = True) -> None:
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
        if next_step and m["recipe"].get("suite"):
            import os
            from pathlib import Path

            print(f"next: embedgate gate {os.path.relpath(Path(m['recipe']['suite']).parent)} --candidate "
                  f"{result.output}")


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
    p.add_argument("--seeds", default=None, metavar="0,1,2",
                   help="train one candidate per seed, into <output>-seed<k>, and print the command that gates them "
                        "as one recipe (the improvement judged on the evidence pooled over seeds)")
    p.set_defaults(func=cmd_train)
