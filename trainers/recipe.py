"""Training recipes: a TOML file -> a validated Recipe. Every problem is a ConfigError naming the recipe file, the line
and the key (``schedule.learning_rate``), before any model is loaded.

Paths inside a recipe (suites, data, pairs files) are relative to the recipe file and may use ``${VAR}`` /
``${VAR:-default}``; ``output`` is relative to the working directory (where runs are usually kept). See
docs/training.md for every key.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedgate.harness.errors import ConfigError, EmbedgateError
from embedgate.harness.io import read_toml
from embedgate.harness.metrics import normalize_metrics
from embedgate.harness.models import ModelSpec

from .mining import MiningSettings

LOSSES = ("mnrl", "cached_mnrl", "gist", "cached_gist")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
KEEP = ("best", "last")
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

TOP_KEYS = {"name", "description", "suite", "output", "seed", "allow_contamination", "base", "train", "dev",
            "hard_negatives", "loss", "schedule", "contamination"}
TRAIN_KEYS = {"suite", "data", "pairs", "split", "min_relevance", "max_pairs", "max_per_query", "max_seq_length"}
DEV_KEYS = {"enabled", "suite", "data", "split", "holdout", "max_queries", "corpus_size", "seed", "metrics",
            "metric"}
MINING_KEYS = {"enabled", "num_negatives", "per_pair", "relative_margin", "absolute_margin", "range_min", "range_max",
               "max_score", "sampling", "margin_reference", "batch_size"}
LOSS_KEYS = {"name", "scale", "temperature", "mini_batch_size", "guide_model", "margin_strategy", "margin",
             "matryoshka_dims", "matryoshka_weights"}
SCHEDULE_KEYS = {"epochs", "max_steps", "batch_size", "learning_rate", "warmup", "weight_decay", "lr_scheduler",
                 "gradient_accumulation_steps", "eval_steps", "save_steps", "save_total_limit", "logging_steps",
                 "precision", "keep", "keep_checkpoints", "dataloader_workers"}
CONTAMINATION_KEYS = {"suites", "data", "threshold", "ngram"}


@dataclass(frozen=True)
class DataSource:
    """Where pairs (or dev queries) come from: a suite's main data, a BEIR folder, or a pairs file."""

    kind: str  # "suite" | "data" | "pairs"
    path: Path
    split: str = "train"

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.path), "split": self.split}


@dataclass(frozen=True)
class TrainSettings:
    source: DataSource
    min_relevance: int = 1
    max_pairs: int | None = None
    max_per_query: int | None = None
    max_seq_length: int | None = None  # training-time truncation; the saved model keeps the base's


@dataclass(frozen=True)
class DevSettings:
    source: DataSource
    max_queries: int | None = None
    corpus_size: int | None = None
    seed: int = 0
    metrics: tuple[str, ...] = ("ndcg@10", "mrr@10", "recall@100")
    metric: str = "ndcg@10"
    holdout: int | None = None  # queries held out of the training split (not trained on) as the dev set


@dataclass(frozen=True)
class LossSettings:
    name: str = "mnrl"
    scale: float = 20.0              # MNRL: similarity scale (1 / temperature)
    temperature: float = 0.01        # GIST
    mini_batch_size: int = 32
    guide_model: dict[str, Any] | None = None
    margin_strategy: str = "absolute"
    margin: float = 0.0
    matryoshka_dims: tuple[int, ...] = ()
    matryoshka_weights: tuple[float, ...] = ()


@dataclass(frozen=True)
class Schedule:
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 32
    learning_rate: float = 2e-5
    warmup: float = 0.1  # a fraction of the steps (< 1) or a number of steps (>= 1), as transformers 5 reads it
    weight_decay: float = 0.01
    lr_scheduler: str = "linear"
    gradient_accumulation_steps: int = 1
    eval_steps: int | None = None  # None: once per epoch
    save_steps: int | None = None  # None: with every evaluation
    save_total_limit: int = 2
    logging_steps: int = 10
    precision: str = "auto"
    keep: str = "best"  # the checkpoint kept at the end: best on the dev metric, or the last
    keep_checkpoints: bool = False
    dataloader_workers: int = 0


@dataclass(frozen=True)
class ContaminationSettings:
    suites: tuple[Path, ...] = ()
    data: tuple[DataSource, ...] = ()
    threshold: float = 0.9
    ngram: int = 5


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


# ------------------------------------------------------------------------------------------------ helpers


class _Where:
    """Line numbers of tables and keys (tomllib keeps none), for error messages."""

    def __init__(self, path: Path | None, text: str):
        self.path = path
        self.lines = text.splitlines()

    def line(self, table: str | None, key: str | None = None) -> int | None:
        """The key's line within its table (or the table's header line, or None)."""
        start = 0
        if table:
            header = re.compile(rf"^\s*\[\s*{re.escape(table)}\s*\]")
            found = next((i for i, ln in enumerate(self.lines) if header.match(ln)), None)
            if found is None:
                return None
            start = found + 1
        if key is not None:
            pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
            for i in range(start, len(self.lines)):
                if self.lines[i].lstrip().startswith("["):
                    break
                if pattern.match(self.lines[i]):
                    return i + 1
        return start or None

    def error(self, message: str, table: str | None, key: str | None = None) -> ConfigError:
        name = ".".join(x for x in (table, key) if x) or None
        return ConfigError(message, path=self.path or "<recipe>", line=self.line(table, key), field=name)


def _expand(text: str, where: _Where, table: str | None, key: str) -> str:
    def sub(m: re.Match) -> str:
        value = os.environ.get(m.group(1))
        if value is None:
            if m.group(2) is None:
                raise where.error(f"environment variable {m.group(1)} is not set and has no default", table, key)
            return m.group(2)
        return value

    return _ENV_RE.sub(sub, text)


def _table(raw: dict, name: str, allowed: set[str], where: _Where) -> dict:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise where.error("expected a table", None, name)
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise where.error(f"unknown key; known: {', '.join(sorted(allowed))}", name, unknown[0])
    return value


def _num(t: dict, table: str, key: str, where: _Where, default: Any, *, integer: bool = False,
         lo: float | None = None, hi: float | None = None, lo_open: bool = False, optional: bool = False) -> Any:
    if key not in t:
        return default
    v = t[key]
    if optional and v is None:
        return None
    ok = not isinstance(v, bool) and (isinstance(v, int) if integer else isinstance(v, (int, float)))
    if not ok:
        raise where.error(f"expected {'an integer' if integer else 'a number'}, got {v!r}", table, key)
    if not math.isfinite(v) or (lo is not None and (v <= lo if lo_open else v < lo)) or (hi is not None and v > hi):
        lo_s = "" if lo is None else (f"> {lo}" if lo_open else f">= {lo}")
        hi_s = "" if hi is None else f"<= {hi}"
        raise where.error(f"{v!r} is out of range (must be {' and '.join(x for x in (lo_s, hi_s) if x)})", table, key)
    return v


def _str(t: dict, table: str | None, key: str, where: _Where, default: Any, choices: tuple[str, ...] | None = None):
    if key not in t:
        return default
    v = t[key]
    if not isinstance(v, str) or not v.strip():
        raise where.error(f"expected a non-empty string, got {v!r}", table, key)
    if choices and v not in choices:
        raise where.error(f"must be one of {', '.join(choices)}, got {v!r}", table, key)
    return v


def _bool(t: dict, table: str | None, key: str, where: _Where, default: bool) -> bool:
    if key not in t:
        return default
    v = t[key]
    if not isinstance(v, bool):
        raise where.error(f"expected true or false, got {v!r}", table, key)
    return v


def _path(value: Any, base_dir: Path, where: _Where, table: str | None, key: str, *, must_exist: bool = True,
          folder: bool | None = None) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise where.error(f"expected a path, got {value!r}", table, key)
    p = Path(_expand(value, where, table, key)).expanduser()
    if not p.is_absolute():
        p = (base_dir / p).resolve()
    if must_exist and not p.exists():
        raise where.error(f"not found: {p}", table, key)
    if must_exist and folder is True and not p.is_dir():
        raise where.error(f"expected a folder: {p}", table, key)
    if must_exist and folder is False and not p.is_file():
        raise where.error(f"expected a file: {p}", table, key)
    return p


def _suite_main(suite_path: Path, where: _Where, table: str, key: str) -> tuple[Path, Path]:
    """(suite.toml, the folder of its main data set), through the harness's suite loader."""
    from embedgate.harness.suite import load_suite

    try:
        suite = load_suite(suite_path)
    except EmbedgateError as exc:
        raise where.error(f"cannot read the suite: {exc}", table, key) from None
    ref = suite.data.get("main") or next((r for r in suite.data.values() if r.role == "domain"), None)
    if ref is None:
        raise where.error("the suite has no domain data set ([data.main])", table, key)
    return suite.path, ref.path


def _source(t: dict, table: str, where: _Where, base_dir: Path, default_split: str,
            kinds: tuple[str, ...]) -> DataSource | None:
    given = [k for k in kinds if k in t]
    if len(given) > 1:
        raise where.error(f"give one of {', '.join(kinds)}, not {' and '.join(given)}", table, given[1])
    if not given:
        return None
    kind = given[0]
    split = _str(t, table, "split", where, default_split)
    if kind == "suite":
        _, folder = _suite_main(_path(t["suite"], base_dir, where, table, "suite"), where, table, "suite")
        return DataSource("suite", folder, split)
    if kind == "data":
        folder = _path(t["data"], base_dir, where, table, "data", folder=True)
        from embedgate.harness.data import available_splits, is_hf_disk

        if not is_hf_disk(folder) and split not in available_splits(folder):
            raise where.error(f"split {split!r} not in {folder} (available: "
                              f"{', '.join(available_splits(folder)) or 'none'})", table, "split")
        return DataSource("data", folder, split)
    p = _path(t["pairs"], base_dir, where, table, "pairs", folder=False)
    if p.suffix.lower() not in (".jsonl", ".csv", ".tsv"):
        raise where.error("a pairs file must be .jsonl, .csv or .tsv", table, "pairs")
    return DataSource("pairs", p, "")


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
    where = _Where(path, text)
    base_dir = path.parent.resolve() if path else Path.cwd()
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise where.error(f"unknown key; known: {', '.join(sorted(TOP_KEYS))}", None, unknown[0])

    name = _str(raw, None, "name", where, path.stem if path else "recipe")
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", name):
        raise where.error("use letters, digits, '-', '_' and '.' (it names the output folder)", None, "name")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise where.error("expected a string", None, "description")
    seed = _num(raw, None, "seed", where, 0, integer=True, lo=0)
    allow = _bool(raw, None, "allow_contamination", where, False)
    suite_file = None
    if "suite" in raw:
        suite_file, _ = _suite_main(_path(raw["suite"], base_dir, where, None, "suite"), where, None, "suite")
    output = Path(_expand(_str(raw, None, "output", where, f"runs/{name}"), where, None, "output")).expanduser()

    base = raw.get("base")
    if not isinstance(base, dict) or "model" not in base and "name" not in base:
        raise where.error("a [base] table with `model = ...` is required", "base", "model")
    try:
        ModelSpec.parse(base)
    except EmbedgateError as exc:
        raise where.error(exc.message, "base", exc.field or "model") from None

    t = _table(raw, "train", TRAIN_KEYS, where)
    source = _source(t, "train", where, base_dir, "train", ("suite", "data", "pairs"))
    if source is None:
        raise where.error("the [train] table needs one of suite, data or pairs", "train", "data")
    if source.kind == "suite" and suite_file is None:
        suite_file, _ = _suite_main(_path(t["suite"], base_dir, where, "train", "suite"), where, "train", "suite")
    train = TrainSettings(
        source=source,
        min_relevance=_num(t, "train", "min_relevance", where, 1, integer=True, lo=1),
        max_pairs=_num(t, "train", "max_pairs", where, None, integer=True, lo=1),
        max_per_query=_num(t, "train", "max_per_query", where, None, integer=True, lo=1),
        max_seq_length=_num(t, "train", "max_seq_length", where, None, integer=True, lo=1),
    )
    if source.kind == "pairs" and "min_relevance" in t:
        raise where.error("min_relevance applies to graded judgments (suite or data), not to a pairs file",
                          "train", "min_relevance")

    d = _table(raw, "dev", DEV_KEYS, where)
    dev = None
    if _bool(d, "dev", "enabled", where, True):
        holdout = _num(d, "dev", "holdout", where, None, integer=True, lo=1)
        dsource = _source(d, "dev", where, base_dir, "dev", ("suite", "data"))
        if holdout is not None:
            if dsource is not None or "split" in d:
                raise where.error("holdout takes its dev queries from the training split; drop suite/data/split",
                                  "dev", "holdout")
            if source.kind == "pairs":
                raise where.error("holdout needs judged training data (suite or data), not a pairs file", "dev",
                                  "holdout")
            dsource = source
        elif dsource is None and source.kind in ("suite", "data"):
            from embedgate.harness.data import available_splits

            split = _str(d, "dev", "split", where, "dev")
            if split in available_splits(source.path):
                dsource = DataSource(source.kind, source.path, split)
        if dsource is None and d:
            raise where.error("name the dev data (suite or data, or holdout = N queries of the training split), "
                              "or set enabled = false", "dev", "data")
        if dsource is not None:
            if holdout is None and dsource.path == source.path and dsource.split == source.split:
                raise where.error("the dev split is the training split: pick another, or hold out queries with "
                                  "holdout = N (model selection on trained queries picks the most overfit "
                                  "checkpoint)", "dev", "split")
            metrics = d.get("metrics", list(DevSettings.metrics))
            if not isinstance(metrics, list) or not metrics:
                raise where.error("expected a list of metrics, e.g. [\"ndcg@10\"]", "dev", "metrics")
            try:
                metrics = normalize_metrics(metrics)
                metric = normalize_metrics([_str(d, "dev", "metric", where, metrics[0])])[0]
            except ConfigError as exc:
                raise where.error(exc.message, "dev", "metric" if "metric" in d else "metrics") from None
            if metric not in metrics:
                metrics.append(metric)
            dev = DevSettings(dsource, _num(d, "dev", "max_queries", where, None, integer=True, lo=1),
                              _num(d, "dev", "corpus_size", where, None, integer=True, lo=1),
                              _num(d, "dev", "seed", where, 0, integer=True, lo=0), tuple(metrics), metric, holdout)

    m = _table(raw, "hard_negatives", MINING_KEYS, where)
    mining = None
    if "hard_negatives" in raw and _bool(m, "hard_negatives", "enabled", where, True):
        num = _num(m, "hard_negatives", "num_negatives", where, 10, integer=True, lo=1)
        per_pair = _num(m, "hard_negatives", "per_pair", where, 1, integer=True, lo=1, hi=num)
        rmin = _num(m, "hard_negatives", "range_min", where, 0, integer=True, lo=0)
        rmax = _num(m, "hard_negatives", "range_max", where, None, integer=True, lo=rmin + num, optional=True)
        mining = MiningSettings(
            num_negatives=num, per_pair=per_pair,
            relative_margin=_num(m, "hard_negatives", "relative_margin", where, 0.05, lo=0, hi=1, optional=True),
            absolute_margin=_num(m, "hard_negatives", "absolute_margin", where, None, lo=0, hi=2, optional=True),
            range_min=rmin, range_max=rmax,
            max_score=_num(m, "hard_negatives", "max_score", where, None, lo=-1, hi=1, optional=True),
            sampling=_str(m, "hard_negatives", "sampling", where, "top", ("top", "random")),
            margin_reference=_str(m, "hard_negatives", "margin_reference", where, "pair", ("pair", "query")),
            batch_size=_num(m, "hard_negatives", "batch_size", where, 32, integer=True, lo=1),
        )

    lt = _table(raw, "loss", LOSS_KEYS, where)
    lname = _str(lt, "loss", "name", where, "mnrl", LOSSES)
    guide = lt.get("guide_model")
    if lname in ("gist", "cached_gist"):
        if guide is None:
            raise where.error(f"the {lname} loss needs a guide model (guide_model = \"name or folder\")", "loss",
                              "guide_model")
        guide = {"name": guide} if isinstance(guide, str) else guide
        try:
            guide = ModelSpec.parse(guide).settings()
        except EmbedgateError as exc:
            raise where.error(exc.message, "loss", "guide_model") from None
    elif guide is not None:
        raise where.error(f"guide_model is only used by the gist losses, not {lname}", "loss", "guide_model")
    dims = lt.get("matryoshka_dims", [])
    if not isinstance(dims, list) or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in dims):
        raise where.error("expected a list of positive integers, e.g. [384, 256, 128, 64]", "loss",
                          "matryoshka_dims")
    if len(set(dims)) != len(dims):
        raise where.error("dimensions repeat", "loss", "matryoshka_dims")
    weights = lt.get("matryoshka_weights", [])
    if weights and (not isinstance(weights, list) or len(weights) != len(dims) or not all(
            isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0 for w in weights)):
        raise where.error("expected one positive weight per dimension", "loss", "matryoshka_weights")
    loss = LossSettings(
        name=lname, scale=_num(lt, "loss", "scale", where, 20.0, lo=0, lo_open=True),
        temperature=_num(lt, "loss", "temperature", where, 0.01, lo=0, lo_open=True, hi=10),
        mini_batch_size=_num(lt, "loss", "mini_batch_size", where, 32, integer=True, lo=1),
        guide_model=guide,
        margin_strategy=_str(lt, "loss", "margin_strategy", where, "absolute", ("absolute", "relative")),
        margin=_num(lt, "loss", "margin", where, 0.0, lo=0, hi=1),
        matryoshka_dims=tuple(dims), matryoshka_weights=tuple(float(w) for w in weights),
    )
    for key in ("margin", "margin_strategy", "temperature"):
        if lname not in ("gist", "cached_gist") and key in lt:
            raise where.error(f"{key} belongs to the gist losses, not {lname} (which uses scale)", "loss", key)
    if lname in ("gist", "cached_gist") and "scale" in lt:
        raise where.error("the gist losses take temperature, not scale", "loss", "scale")
    if not lname.startswith("cached") and "mini_batch_size" in lt:
        raise where.error(f"mini_batch_size belongs to the cached losses, not {lname}", "loss", "mini_batch_size")

    s = _table(raw, "schedule", SCHEDULE_KEYS, where)
    max_steps = _num(s, "schedule", "max_steps", where, None, integer=True, lo=1)
    epochs = _num(s, "schedule", "epochs", where, 1.0, lo=0, lo_open=True, hi=1000)
    warmup = _num(s, "schedule", "warmup", where, 0.1, lo=0)
    if warmup >= 1 and not float(warmup).is_integer():
        raise where.error("warmup is a fraction of the steps (< 1) or a whole number of steps", "schedule", "warmup")
    eval_steps = _num(s, "schedule", "eval_steps", where, None, integer=True, lo=1)
    save_steps = _num(s, "schedule", "save_steps", where, None, integer=True, lo=1)
    keep = _str(s, "schedule", "keep", where, "best" if dev else "last", KEEP)
    if keep == "best" and dev is None:
        raise where.error("keep = \"best\" needs a dev set to choose by; use keep = \"last\" or add [dev]",
                          "schedule", "keep")
    if keep == "best" and save_steps is not None and eval_steps is not None and save_steps % eval_steps:
        raise where.error(f"with keep = \"best\", save_steps ({save_steps}) must be a multiple of eval_steps "
                          f"({eval_steps}): only evaluated checkpoints can be chosen", "schedule", "save_steps")
    batch_size = _num(s, "schedule", "batch_size", where, 32, integer=True, lo=1)
    if loss.name == "mnrl" and batch_size < 2:
        raise where.error("in-batch negative losses need batch_size >= 2", "schedule", "batch_size")
    schedule = Schedule(
        epochs=float(epochs), max_steps=max_steps, batch_size=batch_size,
        learning_rate=_num(s, "schedule", "learning_rate", where, 2e-5, lo=0, lo_open=True, hi=1),
        warmup=float(warmup), weight_decay=_num(s, "schedule", "weight_decay", where, 0.01, lo=0, hi=1),
        lr_scheduler=_str(s, "schedule", "lr_scheduler", where, "linear",
                          ("linear", "cosine", "constant", "constant_with_warmup")),
        gradient_accumulation_steps=_num(s, "schedule", "gradient_accumulation_steps", where, 1, integer=True, lo=1),
        eval_steps=eval_steps, save_steps=save_steps,
        save_total_limit=_num(s, "schedule", "save_total_limit", where, 2, integer=True, lo=1),
        logging_steps=_num(s, "schedule", "logging_steps", where, 10, integer=True, lo=1),
        precision=_str(s, "schedule", "precision", where, "auto", PRECISIONS), keep=keep,
        keep_checkpoints=_bool(s, "schedule", "keep_checkpoints", where, False),
        dataloader_workers=_num(s, "schedule", "dataloader_workers", where, 0, integer=True, lo=0),
    )

    c = _table(raw, "contamination", CONTAMINATION_KEYS, where)
    suites_raw = c.get("suites", [])
    if not isinstance(suites_raw, list):
        raise where.error("expected a list of suite paths", "contamination", "suites")
    c_suites = tuple(_suite_main(_path(x, base_dir, where, "contamination", "suites"), where, "contamination",
                                 "suites")[0] for x in suites_raw)
    data_raw = c.get("data", [])
    if not isinstance(data_raw, list) or not all(isinstance(x, dict) and "path" in x for x in data_raw):
        raise where.error("expected a list of {path = \"BEIR folder\", split = \"test\"}", "contamination", "data")
    c_data = tuple(DataSource("data", _path(x["path"], base_dir, where, "contamination", "data", folder=True),
                              str(x.get("split", "test"))) for x in data_raw)
    if not c_suites and suite_file is not None:
        c_suites = (suite_file,)
    contamination = ContaminationSettings(
        suites=c_suites, data=c_data,
        threshold=_num(c, "contamination", "threshold", where, 0.9, lo=0, lo_open=True, hi=1),
        ngram=_num(c, "contamination", "ngram", where, 5, integer=True, lo=1, hi=20),
    )
    if not (c_suites or c_data) and not allow:
        raise where.error("nothing to check the training data against: name the suite the candidate is for "
                          "(suite = \"...\"), list held-out sets under [contamination], or set "
                          "allow_contamination = true", None, "suite")

    return Recipe(name=name, path=path, description=description, base=dict(base), train=train, dev=dev,
                  mining=mining, loss=loss, schedule=schedule, output=output, seed=seed, suite=suite_file,
                  allow_contamination=allow, contamination=contamination, raw=raw, text=text)
