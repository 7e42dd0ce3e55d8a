"""Training recipes: a TOML file -> a validated Recipe. Every problem is a ConfigError naming the recipe file, the line
and the key (``schedule.learning_rate``), before any model is loaded.

The tables, their types, ranges and defaults are typed once in ``harness.schema`` (``RecipeFile``); this module
resolves what the types cannot: paths (relative to the recipe file, with ``${VAR}`` / ``${VAR:-default}``), the
data folder behind a suite (also a click log's corpus), the dev set of a training split, and the rules that join
tables (one source of pairs in ``[train]``; a click log's keys only with a log). ``output`` is relative
to the working directory (where runs are usually kept). See docs/training.md for every key.
"""
from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedgate.harness.errors import ConfigError, EmbedgateError
from embedgate.harness.io import read_toml
from embedgate.harness.models import ModelSpec
from embedgate.harness.schema import (ContaminationTable, DevTable, LogColumns, LogRules, LossSettings,
                                      MiningSettings, RecipeFile, Schedule, TrainTable, config_path, expand_env,
                                      toml_line, validate_config)

__all__ = ["Recipe", "DataSource", "TrainSettings", "DevSettings", "LossSettings", "Schedule", "MiningSettings",
           "ContaminationSettings", "load_recipe", "parse_recipe", "apply_overrides"]


@dataclass(frozen=True)
class DataSource:
    """Where pairs (or dev queries) come from: a suite's main data, a BEIR folder, a pairs file or a click log."""

    kind: str  # "suite" | "data" | "pairs" | "log"
    path: Path
    split: str = "train"

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.path), "split": self.split}


@dataclass(frozen=True)
class TrainSettings:
    source: DataSource
    min_relevance: int
    max_pairs: int | None
    max_per_query: int | None
    max_seq_length: int | None  # training-time truncation; the saved model keeps the base's
    # a click log (source.kind == "log"): where its document ids resolve (None: the log carries texts), its columns
    # and its rules (trainers.logs)
    corpus: Path | None = None
    log_columns: LogColumns | None = None
    log_rules: LogRules | None = None


@dataclass(frozen=True)
class DevSettings:
    source: DataSource
    max_queries: int | None
    corpus_size: int | None
    seed: int
    metrics: tuple[str, ...]
    metric: str
    holdout: int | None  # queries held out of the training split (not trained on) as the dev set


@dataclass(frozen=True)
class ContaminationSettings:
    suites: tuple[Path, ...] = ()
    data: tuple[DataSource, ...] = ()
    threshold: float = ContaminationTable.model_fields["threshold"].default
    ngram: int = ContaminationTable.model_fields["ngram"].default


@dataclass
class Recipe:
    name: str
    path: Path | None
    description: str
    base: dict[str, Any]
    train: TrainSettings
    dev: DevSettings | None
    mining: MiningSettings | None
    loss: LossSettings
    schedule: Schedule
    output: Path
    seed: int = 0
    suite: Path | None = None
    allow_contamination: bool = False
    contamination: ContaminationSettings = field(default_factory=ContaminationSettings)
    raw: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    @property
    def sha256(self) -> str:
        """Of the resolved settings (file plus overrides), so a resumed run can tell it is the same recipe."""
        from embedgate.harness.io import dumps_json

        return hashlib.sha256(dumps_json(self.raw, indent=None).encode()).hexdigest()

    @property
    def base_spec(self) -> ModelSpec:
        return ModelSpec.parse(self.base)


# ------------------------------------------------------------------------------------------------ resolving


class _Resolver:
    """Turns the typed tables into a Recipe; every problem names the file, the line and the key."""

    def __init__(self, path: Path | None, text: str):
        self.path = path
        self.text = text
        self.base_dir = path.parent.resolve() if path else Path.cwd()

    def error(self, message: str, *loc: str) -> ConfigError:
        return ConfigError(message, path=self.path or "<recipe>", line=toml_line(self.text, loc) if self.text else None,
                           field=".".join(loc) or None)

    def path_of(self, value: str, *loc: str, folder: bool | None = None) -> Path:
        if not isinstance(value, str):  # a Path would be taken as one; a recipe value must be text
            raise self.error(f"expected a path, got {value!r}", *loc)
        try:
            p = config_path(value, self.base_dir)
        except ValueError as exc:
            raise self.error(str(exc), *loc) from None
        if not p.exists():
            raise self.error(f"not found: {p}", *loc)
        if folder is True and not p.is_dir():
            raise self.error(f"expected a folder: {p}", *loc)
        if folder is False and not p.is_file():
            raise self.error(f"expected a file: {p}", *loc)
        return p

    def suite_main(self, value: str, *loc: str) -> tuple[Path, Path]:
        """(suite.toml, the folder of its main data set), through the harness's suite loader."""
        from embedgate.harness.suite import load_suite

        try:
            suite = load_suite(self.path_of(value, *loc))
        except EmbedgateError as exc:
            raise self.error(f"cannot read the suite: {exc}", *loc) from None
        ref = suite.data.get("main") or next((r for r in suite.data.values() if r.role == "domain"), None)
        if ref is None:
            raise self.error("the suite has no domain data set ([data.main])", *loc)
        return suite.path, ref.path

    def source(self, table: TrainTable | DevTable, name: str, kinds: tuple[str, ...], split: str) -> DataSource | None:
        given = [k for k in kinds if getattr(table, k, None) is not None]
        if len(given) > 1:
            what = "one source of training pairs" if name == "train" else "one source of dev queries"
            raise self.error(f"[{name}] takes {what}: give one of {', '.join(kinds)}, not {' and '.join(given)}",
                             name, given[1])
        if not given:
            return None
        kind = given[0]
        value = getattr(table, kind)
        if kind == "suite":
            return DataSource("suite", self.suite_main(value, name, "suite")[1], split)
        if kind == "data":
            from embedgate.harness.data import available_splits, is_hf_disk

            folder = self.path_of(value, name, "data", folder=True)
            if not is_hf_disk(folder) and split not in available_splits(folder):
                raise self.error(f"split {split!r} not in {folder} (available: "
                                 f"{', '.join(available_splits(folder)) or 'none'})", name, "split")
            return DataSource("data", folder, split)
        if kind == "log":
            from .logs import LOG_SUFFIXES

            p = self.path_of(value, name, "log", folder=False)
            if p.suffix.lower() not in LOG_SUFFIXES:
                raise self.error(f"a log must be {', '.join(LOG_SUFFIXES[:-1])} or {LOG_SUFFIXES[-1]}", name, "log")
            return DataSource("log", p, "")
        p = self.path_of(value, name, "pairs", folder=False)
        if p.suffix.lower() not in (".jsonl", ".csv", ".tsv"):
            raise self.error("a pairs file must be .jsonl, .csv or .tsv", name, "pairs")
        return DataSource("pairs", p, "")

    def log_corpus(self, value: str) -> tuple[Path | None, Path]:
        """(the suite file or None, the folder whose corpus a log's document ids resolve in): a suite (its main
        data set) or a retrieval-set folder."""
        p = self.path_of(value, "train", "corpus")
        if p.suffix.lower() == ".toml" or (p / "suite.toml").is_file():
            return self.suite_main(value, "train", "corpus")
        if not p.is_dir():
            raise self.error(f"expected a suite or a data folder (BEIR layout: corpus.jsonl, ...): {p}", "train",
                             "corpus")
        return None, p

    def dev(self, d: DevTable, given: bool, source: DataSource) -> DevSettings | None:
        if not d.enabled:
            return None
        if d.holdout is not None:
            if d.suite or d.data or d.split:
                raise self.error("holdout takes its dev queries from the training split; drop suite/data/split",
                                 "dev", "holdout")
            if source.kind in ("pairs", "log"):
                raise self.error("holdout needs judged training data (suite or data), not a "
                                 f"{'pairs file' if source.kind == 'pairs' else 'click log'}", "dev", "holdout")
            dsource = source
        else:
            dsource = self.source(d, "dev", ("suite", "data"), d.split or "dev")
            if dsource is None and source.kind in ("suite", "data"):
                from embedgate.harness.data import available_splits

                if (d.split or "dev") in available_splits(source.path):
                    dsource = DataSource(source.kind, source.path, d.split or "dev")
        if dsource is None:
            if given:
                raise self.error("name the dev data (suite or data, or holdout = N queries of the training "
                                 "split), or set enabled = false", "dev", "data")
            return None
        if d.holdout is None and dsource.path == source.path and dsource.split == source.split:
            raise self.error("the dev split is the training split: pick another, or hold out queries with holdout = "
                             "N (model selection on trained queries picks the most overfit checkpoint)", "dev",
                             "split")
        metrics = list(d.metrics)
        metric = d.metric or metrics[0]
        if metric not in metrics:
            metrics.append(metric)
        return DevSettings(dsource, d.max_queries, d.corpus_size, d.seed, tuple(metrics), metric, d.holdout)


def _log_settings(r: _Resolver, t: TrainTable, raw_mining: Any, mining: MiningSettings | None) -> dict[str, Any]:
    """corpus, log_columns, log_rules (and the suite behind the corpus, if any) of ``[train] log = ...``."""
    columns = t.log_columns or LogColumns()
    rules = t.log_rules or LogRules()
    if "split" in t.model_fields_set:
        raise r.error("split applies to judged data (suite or data); a click log's time cut is log_rules.before",
                      "train", "split")
    if columns.document is not None and t.corpus is not None:
        raise r.error("the log carries document texts (log_columns.document): drop corpus, or map document_id and "
                      "drop log_columns.document", "train", "corpus")
    if columns.document is None and t.corpus is None:
        raise r.error("a log's document ids need a corpus to resolve in: corpus = a suite or a BEIR folder, or map "
                      "log_columns.document to the log's text column", "train", "log")
    suite_file, corpus = r.log_corpus(t.corpus) if t.corpus is not None else (None, None)
    if rules.skip_above and mining is not None and mining.enabled:
        raise r.error("the log's skip-above negatives and [hard_negatives] both give negatives: set skip_above = "
                      "false in [train.log_rules] to mine, or remove [hard_negatives]", "hard_negatives")
    return {"suite_file": suite_file, "corpus": corpus, "log_columns": columns, "log_rules": rules}


# ------------------------------------------------------------------------------------------------ loading


def apply_overrides(raw: dict, overrides: list[str] | dict[str, Any] | None) -> dict:
    """``["schedule.learning_rate=5e-5", ...]`` (values read as TOML, else as strings) applied to a copy."""
    import copy

    out = copy.deepcopy(raw)
    if not overrides:
        return out
    items = overrides.items() if isinstance(overrides, dict) else []
    if not isinstance(overrides, dict):
        parsed = []
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} is not KEY=VALUE (e.g. schedule.learning_rate=5e-5)",
                                  field="--set")
            key, value = item.split("=", 1)
            try:
                parsed.append((key.strip(), tomllib.loads(f"v = {value}")["v"]))
            except tomllib.TOMLDecodeError:
                parsed.append((key.strip(), value))
        items = parsed
    for key, value in items:
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"cannot set {key}: {part} is not a table", field=key)
        node[parts[-1]] = value
    return out


def load_recipe(path: str | Path, overrides: list[str] | dict[str, Any] | None = None) -> Recipe:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("recipe file not found", path=path)
    raw, text = read_toml(path)
    return parse_recipe(apply_overrides(raw, overrides), path=path, text=text)


def parse_recipe(raw: dict, *, path: Path | None = None, text: str = "") -> Recipe:
    r = _Resolver(path, text)
    base = raw.get("base")
    if not isinstance(base, dict) or "model" not in base and "name" not in base:
        raise r.error("a [base] table with `model = ...` is required", "base", "model")
    if "train" not in raw:
        raise r.error("the [train] table needs one of suite, data, pairs or log", "train", "data")
    f: RecipeFile = validate_config(RecipeFile, raw, path=path or "<recipe>", text=text)
    name = f.name or (path.stem if path else "recipe")

    suite_file = r.suite_main(f.suite, "suite")[0] if f.suite else None
    source = r.source(f.train, "train", ("suite", "data", "pairs", "log"), f.train.split)
    if source is None:
        raise r.error("the [train] table needs one of suite, data, pairs or log", "train", "data")
    if source.kind == "suite" and suite_file is None:
        suite_file = r.suite_main(f.train.suite, "train", "suite")[0]
    if source.kind in ("pairs", "log") and "min_relevance" in f.train.model_fields_set:
        raise r.error("min_relevance applies to graded judgments (suite or data), not to a "
                      f"{'pairs file' if source.kind == 'pairs' else 'click log'}", "train", "min_relevance")
    log_settings: dict[str, Any] = {}
    if source.kind == "log":
        log_settings = _log_settings(r, f.train, raw.get("hard_negatives"), f.hard_negatives)
        corpus_suite = log_settings.pop("suite_file")
        if suite_file is None:  # a corpus named by its suite: that suite is what the guard checks against
            suite_file = corpus_suite
    else:
        for key in ("corpus", "log_columns", "log_rules"):
            if getattr(f.train, key) is not None:
                raise r.error(f"{key} belongs to a click log ([train] log = \"...\"), not to {source.kind} = ...",
                              "train", key)
    train = TrainSettings(source, f.train.min_relevance, f.train.max_pairs, f.train.max_per_query,
                          f.train.max_seq_length, **log_settings)
    dev = r.dev(f.dev, "dev" in raw and bool(raw["dev"]), source)

    mining = f.hard_negatives if f.hard_negatives is not None and f.hard_negatives.enabled else None

    s = f.schedule
    keep = s.keep or ("best" if dev else "last")
    if keep == "best" and dev is None:
        raise r.error("keep = \"best\" needs a dev set to choose by; use keep = \"last\" or add [dev]", "schedule",
                      "keep")
    if keep == "best" and s.save_steps is not None and s.eval_steps is not None and s.save_steps % s.eval_steps:
        raise r.error(f"with keep = \"best\", save_steps ({s.save_steps}) must be a multiple of eval_steps "
                      f"({s.eval_steps}): only evaluated checkpoints can be chosen", "schedule", "save_steps")
    if f.loss.name == "mnrl" and s.batch_size < 2:
        raise r.error("in-batch negative losses need batch_size >= 2", "schedule", "batch_size")

    c = f.contamination
    c_suites = tuple(r.suite_main(x, "contamination", "suites")[0] for x in c.suites)
    c_data = tuple(DataSource("data", r.path_of(x.path, "contamination", "data", folder=True), x.split)
                   for x in c.data)
    if not c_suites and suite_file is not None:
        c_suites = (suite_file,)
    if not (c_suites or c_data) and not f.allow_contamination:
        raise r.error("nothing to check the training data against: name the suite the candidate is for "
                      "(suite = \"...\"), list held-out sets under [contamination], or set allow_contamination = "
                      "true", "suite")
    try:
        output = Path(expand_env(f.output or f"runs/{name}")).expanduser()
    except ValueError as exc:
        raise r.error(str(exc), "output") from None
    return Recipe(name=name, path=path, description=f.description, base=dict(base), train=train, dev=dev,
                  mining=mining, loss=f.loss, schedule=s.model_copy(update={"keep": keep}), output=output,
                  seed=f.seed, suite=suite_file, allow_contamination=f.allow_contamination,
                  contamination=ContaminationSettings(c_suites, c_data, c.threshold, c.ngram), raw=raw, text=text)
