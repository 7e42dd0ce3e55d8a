"""The schema: every typed thing embedgate reads or writes, in one module at the bottom of the house.

Configs (a model spec, a suite, its evaluation options, the base class of a gate's parameters) are validated once,
at their boundary, by ``validate_config``: a defect becomes a ConfigError naming the TOML file, the line and the
field (``gates[2].min``), with "did you mean" for a mistyped key. Results (a suite result, a gate result, a paired
comparison, an eval result) are what every shell and report reads; their JSON Schema is generated from these models
(``python -m embedgate.harness.schema``) and committed under ``docs/schemas/``. The recipe and the training
manifest are typed here as well; ``trainers.recipe`` holds only what reading a recipe needs beyond the types
(finding a suite's data folder). This module imports only ``errors`` and ``io`` from the harness.
"""
from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal, Mapping

from pydantic import Strict as PydanticStrict
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, NonNegativeInt, PositiveInt, SerializeAsAny,
                      ValidationError, ValidationInfo, field_validator, model_validator)

from .errors import ConfigError, DataError

SUITE_RESULT_SCHEMA = "embedgate.suite-result/2"
PREVIOUS_SUITE_RESULT_SCHEMAS = ("embedgate.suite-result/1",)
EVAL_RESULT_SCHEMA = "embedgate.eval-result/1"
MANIFEST_SCHEMA = "embedgate.training-manifest/1"

Status = Literal["pass", "fail", "inconclusive", "error"]
Verdict = Literal["pass", "fail", "error"]
PASS, FAIL, INCONCLUSIVE, ERROR = "pass", "fail", "inconclusive", "error"
STATUS_LABELS: dict[str, str] = {PASS: "PASS", FAIL: "FAIL", INCONCLUSIVE: "NOT SHOWN", ERROR: "ERROR"}
DTYPES = ("float32", "float16", "bfloat16")
PRECISIONS = ("float32", "float16", "int8", "uint8", "binary", "ubinary")
DATA_ROLES = ("domain", "guard")


class Strict(BaseModel):
    """A config table: unknown keys are errors, values are checked, instances are immutable."""

    # defer_build: a model's validator is built when first used, so a process that reads one kind of file does not
    # pay for all of them at import (a warm `embedgate eval` is about a second in all).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Record(BaseModel):
    """A result record: typed where the shape is fixed, open to fields a newer writer adds."""

    model_config = ConfigDict(extra="allow", defer_build=True)


# ------------------------------------------------------------------------------------------------ errors


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str) -> str:
    """``${VAR}`` and ``${VAR:-default}`` in a path; a missing variable without a default is an error."""

    def sub(m: re.Match) -> str:
        value = os.environ.get(m.group(1))
        if value is None:
            if m.group(2) is None:
                raise ValueError(f"environment variable {m.group(1)} is not set and has no default")
            return m.group(2)
        return value

    return _ENV_RE.sub(sub, text)


def config_path(value: Any, base_dir: str | Path | None) -> Path:
    """A path written in a config file: variables expanded, relative to the file's folder ``base_dir``. A value
    that is not a path, or names an unset variable without a default, is a ValueError."""
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a path, got {value!r}")
    p = Path(expand_env(value)).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = (Path(base_dir) / p).resolve()
    return p


def resolve_path(value: Any, info: ValidationInfo) -> Path:
    """``config_path`` inside a validator: the file's folder comes as ``context["base_dir"]``."""
    return config_path(value, (info.context or {}).get("base_dir"))


_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?")


def toml_line(text: str, loc: Iterable[Any]) -> int | None:
    """The line of a validation error's location in a TOML text (tomllib keeps no positions): the deepest table
    header that is a prefix of ``loc`` (``[[gates]]`` counted by index), then the next key inside that table."""
    loc = tuple(loc)
    lines = text.splitlines()
    headers: list[tuple[int, tuple]] = [(0, ())]
    counts: dict[tuple, int] = {}
    for i, line in enumerate(lines, start=1):
        m = _HEADER_RE.match(line)
        if not m:
            continue
        parts = tuple(p.strip().strip('"') for p in m.group(2).split("."))
        if m.group(1) == "[[":
            n = counts.get(parts, 0)
            counts[parts] = n + 1
            parts = parts + (n,)
        headers.append((i, parts))
    best = max((h for h in headers if loc[:len(h[1])] == h[1]), key=lambda h: len(h[1]))
    start, prefix = best
    if len(loc) == len(prefix):
        return start or None
    key = str(loc[len(prefix)])
    pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
    for i in range(start, len(lines)):  # lines[start] is the line after the header
        if _HEADER_RE.match(lines[i]):
            break
        if pattern.match(lines[i]):
            return i + 1
    return start or None


def field_name(loc: Iterable[Any]) -> str:
    """('gates', 2, 'min') -> 'gates[2].min'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys a table at ``loc`` accepts, for "did you mean"."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        fields = getattr(current, "model_fields", None)
        if not fields:
            return []
        f = fields.get(part)
        if f is None:
            return []
        ann = f.annotation
        current = _model_in(ann)
    fields = getattr(current, "model_fields", None) or {}
    return sorted(fields)


def _model_in(ann: Any) -> Any:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    for meta in getattr(ann, "__metadata__", ()) or ():
        found = _model_in(meta)
        if found is not None:
            return found
    return None


def _message(err: Mapping[str, Any], model: type[BaseModel], known: Mapping[tuple, list[str]] | None) -> str:
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        keys = (known or {}).get(loc[:-1]) or _known_keys(model, loc)
        close = difflib.get_close_matches(str(loc[-1]), keys, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown key {str(loc[-1])!r}{hint} (known: {', '.join(keys)})"
    if kind == "missing":
        return "missing key"
    ctx = err.get("ctx") or {}
    value = err.get("input")
    bounds = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"), "less_than_equal": ("<=", "le"),
              "less_than": ("<", "lt")}
    if kind in bounds:
        op, key = bounds[kind]
        bound = ctx.get(key)
        return f"{value!r} is out of range (must be {op} {bound:g})" if isinstance(bound, (int, float)) else \
            f"{value!r} is out of range (must be {op} {bound})"
    if kind in ("float_parsing", "float_type", "int_type", "int_parsing", "int_from_float"):
        what = "an integer" if kind.startswith("int") else "a number"
        return f"expected {what}, got {value!r}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {value!r}"
    if kind in ("string_type", "string_too_short"):
        return f"expected a non-empty string, got {value!r}"
    if kind == "literal_error":
        return f"must be one of {str(ctx.get('expected')).replace(' or ', ', ')}, got {value!r}"
    if kind == "string_pattern_mismatch":
        return f"use letters, digits, '-', '_' and '.' (it names the output folder), got {value!r}"
    if kind == "too_short" and isinstance(value, (list, dict)) and not value:
        return "must not be empty"
    if kind in ("dict_type", "model_type"):
        return f"expected a table, got {type(value).__name__}"
    if kind == "list_type":
        return f"expected a list, got {type(value).__name__}"
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    return msg


def config_error(exc: ValidationError, model: type[BaseModel], *, path: str | Path | None = None, text: str = "",
                 prefix: tuple = (), known: Mapping[tuple, list[str]] | None = None) -> ConfigError:
    """The first error of a validation as a ConfigError with file, line and field."""
    err = exc.errors(include_url=False)[0]
    loc = tuple(err["loc"])
    located = (err.get("ctx") or {}).get("error")
    if isinstance(located, _LocatedError):  # a check that knows its field better than where it ran
        loc = loc + located.loc if located.relative else located.loc
    loc = prefix + loc
    line = toml_line(text, loc) if text else None
    return ConfigError(_message({**err, "loc": loc}, model, known), path=path, line=line, field=field_name(loc) or None)


def validate_config(model: type[BaseModel], raw: Any, *, path: str | Path | None = None, text: str = "",
                    context: dict[str, Any] | None = None, prefix: tuple = (),
                    known: Mapping[tuple, list[str]] | None = None):
    """``model.model_validate(raw)``; the first error becomes a ConfigError with file, line and field."""
    try:
        return model.model_validate(raw, context=context)
    except ValidationError as exc:
        raise config_error(exc, model, path=path, text=text, prefix=prefix, known=known) from None


# ------------------------------------------------------------------------------------------------ models


PROMPT_PRESETS: list[tuple[str, str, str]] = [
    ("intfloat/multilingual-e5-", "query: ", "passage: "),
    ("intfloat/e5-", "query: ", "passage: "),
    ("BAAI/bge-", "Represent this sentence for searching relevant passages: ", ""),
]


class ModelSpec(Strict):
    """Everything that decides the embeddings a model produces. ``model`` is accepted for ``name``."""

    name: str = Field(min_length=1, description="a model folder or a hub id")
    query_prompt: str | None = None
    document_prompt: str | None = None
    max_seq_length: PositiveInt | None = None
    normalize: bool = True
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    revision: str | None = None
    trust_remote_code: bool = False
    batch_size: PositiveInt = 32
    processes: PositiveInt = Field(1, description="encoding processes (sentence-transformers' multi-process pool); "
                                                  "the vectors do not depend on it")
    # --- how the vectors are served (derived from the cached float32 encoding: trying more costs no encoding)
    truncate_dim: PositiveInt | None = Field(None, description="keep the first N dimensions (Matryoshka), "
                                                                "renormalised when the spec normalises")
    precision: Literal[PRECISIONS] = Field("float32", description="how document vectors are stored")  # type: ignore
    rescore: PositiveInt | None = Field(None, description="re-score the top N of a quantized search with the "
                                                          "float query against the quantized documents")
    # --- what computes them (part of the fingerprint: a backend's vectors may differ)
    backend: Literal["torch", "onnx", "openvino"] = "torch"
    onnx_file: str = Field("onnx/model.onnx", description="the graph `embedgate export` wrote, in the folder")

    def __init__(self, name: str | None = None, /, **data: Any):
        if name is not None:
            data["name"] = name
        super().__init__(**data)

    @model_validator(mode="before")
    @classmethod
    def _model_is_name(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "model" in data and "name" not in data:
            data = dict(data)
            data["name"] = data.pop("model")
        return data

    @classmethod
    def parse(cls, spec: "str | Path | Mapping | ModelSpec") -> "ModelSpec":
        """From a name, a folder, a table (as in suite.toml's [base]) or a spec; a defect is a ModelError."""
        from .errors import ModelError

        if isinstance(spec, ModelSpec):
            return spec
        if isinstance(spec, (str, Path)):
            spec = {"name": str(spec)}
        if not isinstance(spec, Mapping):
            raise ModelError(f"cannot read a model spec from {type(spec).__name__}")
        try:
            return cls.model_validate(spec)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            loc = tuple(err["loc"]) or ("model",)
            raise ModelError(_message({**err, "loc": loc}, cls, None), field=field_name(loc)) from None

    @field_validator("name", mode="before")
    @classmethod
    def _env(cls, value: Any) -> Any:
        return expand_env(value) if isinstance(value, str) and "${" in value else value

    @model_validator(mode="after")
    def _serving(self) -> "ModelSpec":
        if self.rescore is not None and self.precision in ("float32", "float16"):
            raise _at(("rescore",), f"rescore re-scores a quantized search; precision {self.precision!r} is not "
                      "quantized (use int8, uint8, binary or ubinary)", relative=True)
        return self

    def serving(self) -> dict[str, Any]:
        """The options that change how stored vectors are searched, not how they are computed."""
        return {"truncate_dim": self.truncate_dim, "precision": self.precision, "rescore": self.rescore}

    def prompts(self) -> tuple[str, str]:
        """(query prompt, document prompt) after presets."""
        q, d = self.query_prompt, self.document_prompt
        if q is None and d is None:
            for prefix, pq, pd in PROMPT_PRESETS:
                if self.name.startswith(prefix):
                    return pq, pd
        return q or "", d or ""

    def settings(self) -> dict[str, Any]:
        q, d = self.prompts()
        return self.model_dump() | {"query_prompt": q, "document_prompt": d}


# ------------------------------------------------------------------------------------------------ systems
# A suite compares systems: the base, the candidate and any number of references. The bi-encoder is ModelSpec
# (kind "bi-encoder", the default); the others name what a team could deploy instead.

SYSTEM_KINDS = ("bi-encoder", "bm25", "hybrid", "rerank", "api")
RESERVED_SYSTEMS = ("base", "candidate")


class BM25System(Strict):
    """Lexical retrieval with bm25s over title + text. Its index is cached by corpus content and these settings."""

    kind: Literal["bm25"]
    k1: float = Field(1.5, gt=0, le=10)
    b: float = Field(0.75, ge=0, le=1)
    delta: float = Field(0.5, ge=0, le=5, description="used by bm25l and bm25+ only")
    method: Literal["lucene", "robertson", "atire", "bm25l", "bm25+"] = "lucene"
    stemmer: str | None = Field("english", description="a PyStemmer algorithm, or none")
    stopwords: str | None = Field("en", description="a bm25s stopword list, or none")
    lower: bool = True

    @field_validator("stemmer", "stopwords", mode="before")
    @classmethod
    def _none_word(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip().lower() in ("", "none", "false") else value


# ranx.fuse's names: CombSUM is "sum", CombMNZ "mnz", and so on
FUSION_METHODS = ("rrf", "wsum", "sum", "mnz", "max", "med", "anz", "isr", "log_isr")
FUSION_NORMS = ("min-max", "max", "sum", "zmuv", "rank", "borda")


class HybridSystem(Strict):
    """Fuses the rankings of two or more named systems with ranx.fuse. Score-based methods (wsum, sum, mnz...) need a
    stated normalisation. Weights are given, or tuned on a dev split with ranx.optimize_fusion (never on the
    gated split)."""

    kind: Literal["hybrid"]
    systems: list[str] = Field(min_length=2, description="names of other systems of the suite, or model folders")
    method: Literal[FUSION_METHODS] = "rrf"  # type: ignore[valid-type]
    norm: Literal[FUSION_NORMS] | None = None  # type: ignore[valid-type]
    weights: list[float] | None = None
    rrf_k: PositiveInt = Field(60, description="rrf's constant k")
    tune_split: str | None = Field(None, description="a split of the same data folder to tune weights on")
    tune_metric: str = "ndcg@10"
    depth: PositiveInt = Field(100, description="how many documents each member contributes")

    @model_validator(mode="after")
    def _coherent(self) -> "HybridSystem":
        if len(set(self.systems)) != len(self.systems):
            raise _at(("systems",), f"a system is fused with itself: {self.systems}", relative=True)
        if self.method not in ("rrf", "isr", "log_isr") and self.norm is None:
            raise _at(("norm",), f"method {self.method!r} adds scores from different systems: state a "
                      f"normalisation (one of {', '.join(FUSION_NORMS)})", relative=True)
        if self.weights is not None and len(self.weights) != len(self.systems):
            raise _at(("weights",), f"{len(self.weights)} weights for {len(self.systems)} systems", relative=True)
        if self.weights is not None and self.tune_split is not None:
            raise _at(("tune_split",), "give weights or tune them, not both", relative=True)
        if self.tune_split is not None and self.method == "rrf":
            raise _at(("tune_split",), "rrf has no weights to tune; use wsum with a norm", relative=True)
        return self


class RerankSystem(Strict):
    """A sentence-transformers CrossEncoder rescoring the top ``k`` of a first-stage system."""

    kind: Literal["rerank"]
    model: str = Field(min_length=1, description="a cross-encoder folder or hub id")
    first_stage: str = Field(min_length=1, description="the name of the system whose top k is rescored")
    k: PositiveInt = 100
    batch_size: PositiveInt = 32
    max_length: PositiveInt | None = 512
    revision: str | None = None


API_PROVIDERS = ("openai", "voyage", "cohere")


class ApiSystem(Strict):
    """An embedding API through its vendor's SDK; the key comes from the variable the SDK reads."""

    kind: Literal["api"]
    provider: Literal["openai", "voyage", "cohere"]
    model: str = Field(min_length=1)
    dimensions: PositiveInt | None = None
    input_type: bool = Field(True, description="send the provider's query/document input types (voyage, cohere)")
    budget_usd: float = Field(1.0, gt=0, description="the most this system may spend in one run")
    batch_size: PositiveInt | None = Field(None, description="texts per request (the provider's limit if unset)")
    concurrency: PositiveInt = Field(4, le=32)
    max_retries: NonNegativeInt = 5
    timeout_s: float = Field(60.0, gt=0)


def _system_kind(value: Any) -> Any:
    if isinstance(value, Mapping):
        kind = value.get("kind", "bi-encoder")
        if kind not in SYSTEM_KINDS:
            close = difflib.get_close_matches(str(kind), SYSTEM_KINDS, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise _LocatedError(("kind",), f"unknown system kind {kind!r}{hint} (known: {', '.join(SYSTEM_KINDS)})",
                                relative=True)
        if kind == "bi-encoder":
            return ModelSpec.model_validate({k: v for k, v in value.items() if k != "kind"})
        return {"bm25": BM25System, "hybrid": HybridSystem, "rerank": RerankSystem, "api": ApiSystem}[kind] \
            .model_validate(value)
    return value


SystemSpec = Annotated[ModelSpec | BM25System | HybridSystem | RerankSystem | ApiSystem,
                       BeforeValidator(_system_kind)]


def system_kind(spec: Any) -> str:
    return "bi-encoder" if isinstance(spec, ModelSpec) else spec.kind


def system_members(spec: Any) -> list[str]:
    """The systems a composite reads from."""
    if isinstance(spec, HybridSystem):
        return list(spec.systems)
    if isinstance(spec, RerankSystem):
        return [spec.first_stage]
    return []


# ------------------------------------------------------------------------------------------------ suites


class DataRef(Strict):
    """One data set of a suite: ``[data.<name>]``."""

    name: str = ""
    path: Path
    split: str = "test"
    role: Literal["domain", "guard"] = "domain"
    max_queries: PositiveInt | None = None
    corpus_size: PositiveInt | None = None
    seed: NonNegativeInt = 0

    @field_validator("path", mode="before")
    @classmethod
    def _path(cls, value: Any, info: ValidationInfo) -> str:
        return str(resolve_path(value, info))  # a str: pydantic makes the Path, in JSON mode too


class EvaluationOptions(Strict):
    """``[evaluation]``: what is scored and how differences are judged."""

    metrics: list[str] = Field(default_factory=lambda: ["ndcg@10", "recall@100", "mrr@10"], min_length=1)
    ks: list[PositiveInt] = Field(default_factory=lambda: [1, 3, 5, 10, 20, 100], min_length=1)
    confidence: float = Field(0.95, ge=0.5, le=0.999)
    resamples: int = Field(10_000, ge=100, le=1_000_000)
    seed: NonNegativeInt = 0
    latency_queries: NonNegativeInt = Field(20, le=10_000, description="queries of the first domain set timed one "
                                                                       "at a time per system (0: do not measure)")

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: list[str]) -> list[str]:
        from .metrics import normalize_metrics

        return normalize_metrics(value)

    @field_validator("ks")
    @classmethod
    def _ks(cls, value: list[int]) -> list[int]:
        return sorted(set(value))


def _metric_name(value: Any) -> str:
    from .metrics import normalize_metrics

    if not isinstance(value, str):
        raise ValueError(f"expected a metric name such as \"ndcg@10\", got {value!r}")
    try:
        return normalize_metrics([value])[0]
    except ConfigError as exc:
        raise ValueError(exc.message) from None


MetricName = Annotated[str, BeforeValidator(_metric_name)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class GateConfig(Strict):
    """The parameters every gate shares. A gate kind subclasses this in its own module under ``harness/gates/``
    (see docs/gates.md): its fields are its parameters, and its methods decide and explain."""

    kind: str
    name: str | None = Field(None, description="shown in reports and as the test id; defaults to the rule in words")
    data: str = "main"
    system: str = Field("candidate", description="the system judged: the candidate, or a named reference built on "
                                                 "it (e.g. a hybrid of BM25 and the candidate)")

    #: set by the loader: the line of the [[gates]] table, for messages
    line: int | None = Field(None, exclude=True)


def _dispatch_gate(value: Any) -> Any:
    if isinstance(value, GateConfig) or not isinstance(value, Mapping):
        return value
    from .gates import gate_class, gate_kinds

    kind = value.get("kind")
    cls = gate_class(kind) if isinstance(kind, str) else None
    if cls is None:
        close = difflib.get_close_matches(str(kind), gate_kinds(), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise _LocatedError(("kind",), f"unknown gate kind {kind!r}{hint} (known: {', '.join(gate_kinds())})",
                            relative=True)
    return cls.model_validate(value)


AnyGate = SerializeAsAny[Annotated[GateConfig, BeforeValidator(_dispatch_gate)]]


class Variants(Strict):
    """``[variants]``: the same bi-encoders served other ways, each a system of its own (``candidate-128d``,
    ``candidate-128d-int8``, ``candidate-binary``), derived from the cached float32 vectors."""

    of: list[Literal["base", "candidate"]] = Field(default_factory=lambda: ["candidate"], min_length=1)
    truncate_dim: list[PositiveInt] = Field(default_factory=list)
    precision: list[Literal[PRECISIONS]] = Field(default_factory=list)  # type: ignore[valid-type]
    rescore: PositiveInt | None = Field(None, description="for the quantized variants")

    def names(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """variant name -> (the system it derives from, the spec fields it changes)."""
        dims = [None, *self.truncate_dim] if self.precision and self.truncate_dim else \
            (self.truncate_dim or [None])
        precisions = ["float32", *[p for p in self.precision if p != "float32"]] if self.precision else ["float32"]
        out = {}
        for of in self.of:
            for dim in dims:
                for prec in precisions:
                    if dim is None and prec == "float32":
                        continue  # that is the system itself
                    name = of + (f"-{dim}d" if dim else "") + ("" if prec == "float32" else f"-{prec}")
                    change: dict[str, Any] = {"truncate_dim": dim, "precision": prec}
                    if self.rescore and prec not in ("float32", "float16"):
                        change["rescore"] = self.rescore
                    out[name] = (of, change)
        return out


class SuiteConfig(Strict):
    """``suite.toml``: the data, the base model and the gates."""

    name: str = Field(min_length=1)
    description: str = ""
    base: ModelSpec
    references: dict[str, SystemSpec] = Field(default_factory=dict, description="what could be deployed instead")
    variants: Variants | None = None
    data: dict[str, DataRef] = Field(min_length=1)
    evaluation: EvaluationOptions = Field(default_factory=EvaluationOptions)
    gates: list[AnyGate] = Field(min_length=1, description="a suite without gates would always pass")
    path: Path = Field(Path("suite.toml"), exclude=True)
    sha256: str = Field("", exclude=True)

    @field_validator("data", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: ({**v, "name": k} if isinstance(v, Mapping) else v) for k, v in value.items()}
        return value

    def system_names(self) -> list[str]:
        return [*RESERVED_SYSTEMS, *self.references, *(self.variants.names() if self.variants else {})]

    @model_validator(mode="after")
    def _systems_fit(self) -> "SuiteConfig":
        known = self.system_names()
        clash = set(self.references) & set(self.variants.names() if self.variants else {})
        if clash:
            raise _at(("references", sorted(clash)[0]), "a reference has the name of a variant; rename it")
        for name, spec in self.references.items():
            if name in RESERVED_SYSTEMS:
                raise _at(("references", name), f"{name!r} is the name of the suite's own {name}; give the "
                          "reference another name")
            field = "systems" if isinstance(spec, HybridSystem) else "first_stage"
            for member in system_members(spec):
                if member == name:
                    raise _at(("references", name, field), f"reference {name!r} names itself")
                if member not in known:
                    close = difflib.get_close_matches(member, known, n=1, cutoff=0.6)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise _at(("references", name, field), f"unknown system {member!r}{hint} (systems: "
                              f"{', '.join(known)})")
            if isinstance(spec, HybridSystem) and spec.tune_split is not None:
                for dname, ref in self.data.items():
                    if spec.tune_split == ref.split:
                        raise _at(("references", name, "tune_split"), f"tuning on {spec.tune_split!r} would tune "
                                  f"on the split data.{dname} gates; name a dev split")
        return self

    @model_validator(mode="after")
    def _gates_fit(self) -> "SuiteConfig":
        names: set[str] = set()
        named = []
        systems = self.system_names()
        for i, g in enumerate(self.gates):
            if g.data not in self.data:
                raise _at(("gates", i, "data"), f"unknown data set {g.data!r}; defined: {', '.join(self.data)}")
            for key, value in zip(("system", "against"), g.sides()):
                if value not in systems:
                    close = difflib.get_close_matches(value, systems, n=1, cutoff=0.6)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise _at(("gates", i, key), f"unknown system {value!r}{hint} (systems: {', '.join(systems)})")
            if g.sides()[0] == g.sides()[1] and hasattr(g, "against"):
                raise _at(("gates", i, "against"), f"the gate compares {g.system!r} with itself")
            gname = g.name or g.default_name()
            if gname in names:
                raise _at(("gates", i, "name"), f"duplicate gate name {gname!r}")
            names.add(gname)
            named.append(g if g.name else g.model_copy(update={"name": gname}))
        object.__setattr__(self, "gates", named)  # every gate carries its name from here on
        return self

    # what the rest of the harness reads
    @property
    def metrics(self) -> list[str]:
        return self.evaluation.metrics

    @property
    def ks(self) -> list[int]:
        return self.evaluation.ks

    @property
    def confidence(self) -> float:
        return self.evaluation.confidence

    @property
    def resamples(self) -> int:
        return self.evaluation.resamples

    @property
    def seed(self) -> int:
        return self.evaluation.seed


class _LocatedError(ValueError):
    """A check that knows which field it is about: ``loc`` absolute, or relative to where pydantic raised it."""

    def __init__(self, loc: tuple, message: str, relative: bool = False):
        super().__init__(message)
        self.loc = loc
        self.relative = relative


def _at(loc: tuple, message: str, relative: bool = False) -> _LocatedError:
    return _LocatedError(loc, message, relative)


def load_suite_config(path: str | Path) -> SuiteConfig:
    """Read and validate ``suite.toml`` (or a folder holding one)."""
    import hashlib

    from .io import read_toml

    path = Path(path)
    if path.is_dir():
        path = path / "suite.toml"
    if not path.is_file():
        raise ConfigError("suite file not found (expected suite.toml)", path=path)
    raw, text = read_toml(path)
    if not isinstance(raw.get("base"), dict):
        raise ConfigError("a [base] table with `model = ...` is required", path=path, field="base.model")
    if not isinstance(raw.get("data"), dict) or not raw["data"]:
        raise ConfigError("at least one [data.<name>] table is required (the domain set is [data.main])", path=path,
                          field="data")
    gates = raw.get("gates")
    if not isinstance(gates, list) or not gates:
        raise ConfigError("at least one [[gates]] entry is required: a suite without gates would always pass",
                          path=path, field="gates")
    raw = dict(raw)
    raw.setdefault("name", path.parent.name)
    if isinstance(gates, list):
        # the line of each [[gates]] table rides along for messages
        raw["gates"] = [({**g, "line": toml_line(text, ("gates", i))} if isinstance(g, dict) else g)
                        for i, g in enumerate(gates)]
    raw["path"] = path
    raw["sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    known = {("gates", i): sorted(set(_gate_fields(g)) - {"line"}) for i, g in enumerate(gates or [])
             if isinstance(g, dict)}
    return validate_config(SuiteConfig, raw, path=path, text=text, context={"base_dir": path.parent}, known=known)


def _gate_fields(table: Mapping) -> list[str]:
    from .gates import gate_class

    cls = gate_class(table.get("kind")) if isinstance(table.get("kind"), str) else None
    return list(cls.model_fields) if cls else list(GateConfig.model_fields)


# ------------------------------------------------------------------------------------------------ recipes
# The tables of a training recipe (docs/training.md). Each default is written once, here; ``trainers.recipe``
# resolves paths and the rules that join tables (the dev set of a training split, the checkpoint kept).


class LogColumns(Strict):
    """``[train.log_columns]``: which columns of a click log hold what (docs/training.md, "Pairs from a click
    log"). Optional columns named by their default may be absent from the log; a name given here must be there."""

    query: str = "query"
    document_id: str = Field("doc_id", description="document ids, resolved in [train] corpus")
    document: str | None = Field(None, description="document text instead of ids (then no corpus)")
    clicked: str = Field("clicked", description="bool or 0/1; absent: every row is a click")
    dwell_s: str = "dwell_s"
    position: str = Field("position", description="rank shown, 1 = top")
    timestamp: str = Field("timestamp", description="ISO 8601 or epoch seconds")
    session: str = Field("session", description="what was shown together; absent: same query and timestamp")


def _iso_time(value: Any) -> Any:
    """``before``: an ISO 8601 date or time as a string (a bare TOML date would not survive the recipe's JSON)."""
    import datetime as dt

    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        raise ValueError(f"write the time in quotes, as a string: \"{value.isoformat()}\"")
    if isinstance(value, str):
        try:
            dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"expected an ISO 8601 date or time (e.g. \"2026-06-01\"), got {value!r}") from None
        return value.strip()
    return value


class LogRules(Strict):
    """``[train.log_rules]``: which clicks become pairs and which skipped results become negatives."""

    min_dwell_s: float = Field(10.0, ge=0, description="a click is a positive only with this dwell (when logged)")
    skip_above: bool = Field(True, description="negatives: unclicked results shown above a click (same "
                                                "impression)")
    max_negatives: PositiveInt = 3
    before: Annotated[str | None, BeforeValidator(_iso_time)] = Field(
        None, description="time cut: only rows strictly before it")
    min_clicks: PositiveInt = Field(1, description="qualifying clicks a (query, document) needs")


class TrainTable(Strict):
    """``[train]``: one of suite, data, pairs or log, and how pairs are drawn."""

    suite: str | None = None
    data: str | None = None
    pairs: str | None = None
    log: str | None = Field(None, description="a click log (csv, tsv, jsonl, parquet)")
    corpus: str | None = Field(None, description="log: where document ids resolve (a suite or a BEIR folder)")
    log_columns: LogColumns | None = None
    log_rules: LogRules | None = None
    split: str = "train"
    min_relevance: int = Field(1, ge=1)
    max_pairs: PositiveInt | None = None
    max_per_query: PositiveInt | None = None
    max_seq_length: PositiveInt | None = Field(None, description="training-time truncation; the saved model keeps "
                                                                 "the base's")


class DevTable(Strict):
    """``[dev]``: the queries the best checkpoint is chosen on."""

    enabled: bool = True
    suite: str | None = None
    data: str | None = None
    split: str | None = None
    holdout: PositiveInt | None = Field(None, description="queries held out of the training split as the dev set")
    max_queries: PositiveInt | None = None
    corpus_size: PositiveInt | None = None
    seed: NonNegativeInt = 0
    metrics: list[MetricName] = Field(default_factory=lambda: ["ndcg@10", "mrr@10", "recall@100"], min_length=1)
    metric: MetricName | None = None


class MiningSettings(Strict):
    """``[hard_negatives]``: sentence-transformers' mine_hard_negatives, through the harness cache."""

    enabled: bool = Field(True, exclude=True)
    num_negatives: PositiveInt = Field(10, description="candidates kept per query")
    per_pair: PositiveInt = Field(1, description="negative columns per training row")
    relative_margin: float | None = Field(0.05, ge=0, le=1)
    absolute_margin: float | None = Field(None, ge=0, le=2)
    range_min: NonNegativeInt = 0
    range_max: int | None = None
    max_score: float | None = Field(None, ge=-1, le=1)
    sampling: Literal["top", "random"] = "top"
    margin_reference: Literal["pair", "query"] = Field("pair", description="pair: each pair's own positive score; "
                                                                           "query: its weakest positive (ST)")
    batch_size: PositiveInt = 32

    @model_validator(mode="after")
    def _window(self) -> "MiningSettings":
        if self.per_pair > self.num_negatives:
            raise _at(("per_pair",), f"{self.per_pair} is out of range (must be <= num_negatives, "
                                     f"{self.num_negatives})", relative=True)
        if self.range_max is not None and self.range_max < self.range_min + self.num_negatives:
            raise _at(("range_max",), f"{self.range_max} is out of range (must be >= range_min + num_negatives, "
                                      f"{self.range_min + self.num_negatives})", relative=True)
        return self


LOSSES = ("mnrl", "cached_mnrl", "gist", "cached_gist")


class LossSettings(Strict):
    """``[loss]``: one loss and its own settings."""

    name: Literal["mnrl", "cached_mnrl", "gist", "cached_gist"] = "mnrl"
    scale: float = Field(20.0, gt=0, description="MNRL: similarity scale (1 / temperature)")
    temperature: float = Field(0.01, gt=0, le=10, description="GIST")
    mini_batch_size: PositiveInt = 32
    guide_model: dict[str, Any] | None = None
    margin_strategy: Literal["absolute", "relative"] = "absolute"
    margin: float = Field(0.0, ge=0, le=1)
    matryoshka_dims: tuple[int, ...] = ()
    matryoshka_weights: tuple[float, ...] = ()

    @field_validator("guide_model", mode="before")
    @classmethod
    def _guide(cls, value: Any) -> Any:
        if value is None:
            return None
        from .errors import EmbedgateError

        try:
            return ModelSpec.parse({"name": value} if isinstance(value, str) else value).settings()
        except EmbedgateError as exc:
            raise ValueError(exc.message) from None

    @field_validator("matryoshka_dims", mode="before")
    @classmethod
    def _dims(cls, value: Any) -> Any:
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in value):
            raise ValueError("expected a list of positive integers, e.g. [384, 256, 128, 64]")
        if len(set(value)) != len(value):
            raise ValueError("dimensions repeat")
        return tuple(value)

    @model_validator(mode="after")
    def _belongs(self) -> "LossSettings":
        # a setting "given" is one that differs from its default: a dump read back must validate the same
        given = {k for k, f in type(self).model_fields.items() if getattr(self, k) != f.get_default(
            call_default_factory=True)}
        gist = self.name in ("gist", "cached_gist")
        if gist and self.guide_model is None:
            raise _at(("guide_model",), f"the {self.name} loss needs a guide model (guide_model = \"name or "
                                        f"folder\")", relative=True)
        if not gist and "guide_model" in given:
            raise _at(("guide_model",), f"guide_model is only used by the gist losses, not {self.name}",
                      relative=True)
        for key in ("margin", "margin_strategy", "temperature"):
            if not gist and key in given:
                raise _at((key,), f"{key} belongs to the gist losses, not {self.name} (which uses scale)",
                          relative=True)
        if gist and "scale" in given:
            raise _at(("scale",), "the gist losses take temperature, not scale", relative=True)
        if not self.name.startswith("cached") and "mini_batch_size" in given:
            raise _at(("mini_batch_size",), f"mini_batch_size belongs to the cached losses, not {self.name}",
                      relative=True)
        w = self.matryoshka_weights
        if w and (len(w) != len(self.matryoshka_dims) or not all(x > 0 for x in w)):
            raise _at(("matryoshka_weights",), "expected one positive weight per dimension", relative=True)
        return self


class Schedule(Strict):
    """``[schedule]``: the Trainer's arguments that a recipe sets."""

    epochs: float = Field(1.0, gt=0, le=1000)
    max_steps: PositiveInt | None = None
    batch_size: PositiveInt = 32
    learning_rate: float = Field(2e-5, gt=0, le=1)
    warmup: float = Field(0.1, ge=0, description="a fraction of the steps (< 1) or a number of steps (>= 1)")
    weight_decay: float = Field(0.01, ge=0, le=1)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    gradient_accumulation_steps: PositiveInt = 1
    eval_steps: PositiveInt | None = Field(None, description="None: once per epoch")
    save_steps: PositiveInt | None = Field(None, description="None: with every evaluation")
    save_total_limit: PositiveInt = 2
    logging_steps: PositiveInt = 10
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    keep: Literal["best", "last"] | None = Field(None, description="best on the dev metric (the default with a dev "
                                                                   "set), or the last")
    keep_checkpoints: bool = False
    dataloader_workers: NonNegativeInt = 0

    @field_validator("warmup")
    @classmethod
    def _warmup(cls, value: float) -> float:
        if value >= 1 and not float(value).is_integer():
            raise ValueError("warmup is a fraction of the steps (< 1) or a whole number of steps")
        return float(value)


class ContaminationData(Strict):
    path: str
    split: str = "test"


class ContaminationTable(Strict):
    """``[contamination]``: what the training pairs are checked against (the recipe's suite by default)."""

    suites: list[str] = Field(default_factory=list)
    data: list[ContaminationData] = Field(default_factory=list)
    threshold: float = Field(0.9, gt=0, le=1)
    ngram: int = Field(5, ge=1, le=20)


class RecipeFile(Strict):
    """A training recipe as written (``trainers/recipes/*.toml``), before its paths are resolved."""

    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                             description="names the output folder: letters, digits, '-', '_' and '.'")
    description: str = ""
    suite: str | None = None
    output: str | None = None
    seed: NonNegativeInt = 0
    allow_contamination: bool = False
    base: ModelSpec
    train: TrainTable
    dev: DevTable = Field(default_factory=DevTable)
    hard_negatives: MiningSettings | None = None
    loss: LossSettings = Field(default_factory=LossSettings)
    schedule: Schedule = Field(default_factory=Schedule)
    contamination: ContaminationTable = Field(default_factory=ContaminationTable)


# ------------------------------------------------------------------------------------------------ results

# Results are read back from files: a number must be a number there, not a string that looks like one.
Num = Annotated[float, PydanticStrict()]
Int = Annotated[int, PydanticStrict()]


class Comparison(Record):
    """A paired comparison of candidate and base on the same queries (``harness.compare.PairedComparison``)."""

    n: Int
    base: Num
    candidate: Num
    difference: Num
    relative_difference: Num | None = None
    ci: tuple[Num, Num]
    confidence: Num
    p_value: Num = Field(description="of the bootstrap that made ci: p < 1 - confidence exactly when ci "
                                       "excludes 0")
    p_value_t: Num | None = Field(None, description="paired t-test, for reference only")
    p_value_randomization: Num | None = Field(None, description="sign-flip test, for reference only")
    interval_method: str | None = None
    mde: Num
    sd_difference: Num
    wins: Int
    ties: Int
    losses: Int
    resamples: Int
    seed: Int


class QueryRow(Record):
    query_id: str
    text: str = ""
    base: Num | None = None
    candidate: Num | None = None
    difference: Num | None = None


class Reference(Record):
    """A line the report draws beside the gate's interval (the required gain, the margin)."""

    value: Num
    label: str


class GateResult(Record):
    """One gate's verdict, with the numbers it was decided on and what the reader is shown."""

    name: str
    kind: str
    data: str = "main"
    metric: str | None = None
    system: str = Field("candidate", description="the system judged")
    against: str | None = Field("base", description="the system it was compared with")
    status: Status
    passed: bool = False
    message: str = ""
    requirement: str = Field("", description="what the gate asks for, in one short line (from the gate class)")
    observed: str = Field("", description="what was measured against it, where the interval is not the test")
    decided_by: Literal["interval", "value", "fraction", "pairs", "none"] = "none"
    reference: Reference | None = None
    base: Num | None = None
    candidate: Num | None = None
    difference: Num | None = None
    relative_difference: Num | None = None
    ci: tuple[Num, Num] | None = None
    confidence: Num | None = None
    p_value: Num | None = None
    test: str | None = None
    threshold: dict[str, Any] = Field(default_factory=dict)
    mde: Num | None = None
    n_queries: Int | None = None
    worst_queries: list[QueryRow] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _passed(self) -> "GateResult":
        self.passed = self.status == PASS
        return self


Side = Literal["base", "candidate"]


class DatasetSection(Record):
    """What a report needs of one data set: means, comparisons, per-query values, the kept rankings."""

    role: Literal["domain", "guard"] = "domain"
    data: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, dict[str, Num]] = Field(default_factory=dict)
    comparisons: dict[str, Comparison] = Field(default_factory=dict)
    queries: dict[str, str] = Field(default_factory=dict)
    per_query: dict[str, dict[str, dict[str, Num]]] = Field(default_factory=dict,
                                                               description="side -> query id -> metric -> value")
    shown_queries: list[str] = Field(default_factory=list)
    rankings: dict[str, dict[str, list[tuple[str, Num]]]] = Field(default_factory=dict)
    qrels: dict[str, dict[str, Int]] = Field(default_factory=dict)
    relevant_ranks: dict[str, dict[str, dict[str, Int | None]]] = Field(default_factory=dict)
    documents: dict[str, str] = Field(default_factory=dict)
    conventions: dict[str, Any] = Field(default_factory=dict)
    tied_rankings: dict[str, Int | None] = Field(default_factory=dict)
    systems: dict[str, "SystemSummary"] = Field(default_factory=dict, description="every system scored on this set")
    versus: dict[str, dict[str, Comparison]] = Field(
        default_factory=dict, description="'<system> vs <other>' -> metric -> paired comparison (the suite's "
                                          "metrics; comparisons a gate asks for are in the gates)")


class SystemSummary(Record):
    """One system on one data set: what it is, and what it costs to serve."""

    kind: str
    info: dict[str, Any] = Field(default_factory=dict)
    index_bytes: Int | None = Field(None, description="the searchable index of this corpus")
    index_bytes_per_million: Int | None = None
    latency: dict[str, Any] = Field(default_factory=dict, description="p50/p95 ms at batch 1, on this machine")
    cost_usd: Num | None = None
    timings: dict[str, Any] = Field(default_factory=dict)


class SuiteInfo(Record):
    name: str = Field(min_length=1)
    path: str = ""
    description: str = ""
    sha256: str = ""


class SeedResult(Record):
    """One candidate of a recipe gated over seeds."""

    candidate: str
    verdict: Verdict
    summary: str = ""
    gates: list[GateResult] = Field(default_factory=list)
    metrics: dict[str, dict[str, Num]] = Field(default_factory=dict, description="data set -> metric -> mean")
    model: dict[str, Any] = Field(default_factory=dict)


class SuiteResult(Record):
    """The result of one gate run (``embedgate.suite-result/2``): everything a report or a later comparison needs,
    so reading it never needs the models again."""

    schema_: Literal["embedgate.suite-result/2"] = Field(alias="schema")
    created_at: str
    suite: SuiteInfo
    verdict: Verdict
    summary: str = ""
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)
    gates: list[GateResult]
    datasets: dict[str, DatasetSection] | None = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, Any] = Field(default_factory=dict)
    timings: dict[str, Any] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)
    error: str | None = None
    seeds: list["SeedResult"] = Field(default_factory=list, description="when several candidates of one recipe "
                                      "were gated: each one's own gates (the top-level gates decide on the recipe)")
    pooling: dict[str, Any] | None = None

    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=False)


def check_result_schema(obj: Any, where: str | Path) -> None:
    """A clear word for a file of another schema version, before field-by-field validation."""
    if not isinstance(obj, dict):
        raise DataError(f"not an embedgate result: the top level is a {type(obj).__name__}, not an object",
                        path=where)
    schema = obj.get("schema")
    if schema in PREVIOUS_SUITE_RESULT_SCHEMAS:
        raise DataError(f"this result was written by an earlier embedgate (schema {schema}); this version reads "
                        f"{SUITE_RESULT_SCHEMA}, whose gates state their requirement and decide on the interval they "
                        f"show. Run the gate again to get a result of this version", path=where, field="schema")
    if schema != SUITE_RESULT_SCHEMA:
        raise DataError(f"unknown result schema {schema!r}; this version of embedgate reads {SUITE_RESULT_SCHEMA}",
                        path=where, field="schema")


def parse_suite_result(obj: Any, where: str | Path = "<result>") -> SuiteResult:
    """A result dict -> SuiteResult; a defect is a DataError naming the file and the field."""
    check_result_schema(obj, where)
    try:
        return SuiteResult.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise DataError(_message(err, SuiteResult, None), path=where, field=field_name(err["loc"]) or None) \
            from None


class EvalResultFile(Record):
    """What ``embedgate eval --out`` writes (``embedgate.eval-result/1``)."""

    schema_: Literal["embedgate.eval-result/1"] = Field(alias="schema")
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]] = Field(description="query id -> metric -> value")
    data: dict[str, Any]
    model: dict[str, Any]
    conventions: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, Any] = Field(default_factory=dict)
    timings: dict[str, Any] = Field(default_factory=dict)

    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)


class TrainingManifest(Record):
    """``training_manifest.json`` beside a trained model: what made it, written last (its presence marks a complete
    model folder)."""

    schema_: Literal["embedgate.training-manifest/1"] = Field(alias="schema")
    name: str
    description: str = ""
    created_at: str
    started_at: str | None = None
    wall_time_s: float
    seed: int
    recipe: dict[str, Any] = Field(description="path, sha256 of the resolved settings, the settings, the suite")
    base_model: dict[str, Any]
    candidate: dict[str, Any]
    data: dict[str, Any]
    contamination: dict[str, Any]
    hard_negatives: dict[str, Any] | None = None
    training: dict[str, Any]
    dev_metrics: list[dict[str, Any]] = Field(default_factory=list)
    dev_selection: dict[str, Any] | None = None
    timings: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, Any] = Field(default_factory=dict)

    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)


JSON_SCHEMAS: dict[str, type[BaseModel]] = {
    "suite-result.schema.json": SuiteResult,
    "eval-result.schema.json": EvalResultFile,
    "training-manifest.schema.json": TrainingManifest,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    return {name: model.model_json_schema(by_alias=True) for name, model in JSON_SCHEMAS.items()}


if __name__ == "__main__":  # python -m embedgate.harness.schema docs/schemas
    import json
    import sys

    from .io import atomic_write_text

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schemas")
    for fname, schema in json_schemas().items():
        print(atomic_write_text(out / fname, json.dumps(schema, indent=1, sort_keys=True) + "\n"))

