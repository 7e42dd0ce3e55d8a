"""Inference backends other than torch, and the export that makes their artifact.

- ``onnx``: the transformer exported to an ONNX graph (``embedgate export MODEL --to onnx [--quantize int8]``: the
  TorchScript exporter, optionally onnxruntime's dynamic int8 quantization) and run with ``onnxruntime`` directly,
  with the folder's own tokenizer, pooling and normalisation. sentence-transformers' ``backend="onnx"`` needs
  ``optimum-onnx``, which cannot be installed beside sentence-transformers 6.2 (optimum-onnx 0.1.0 pins
  transformers < 4.58; sentence-transformers 6.2 needs >= 5): onnxruntime alone has no such conflict.
- ``openvino``: sentence-transformers' ``backend="openvino"`` when ``optimum-intel`` is importable. With the pinned
  stack it is not installable without replacing the CPU torch (docs/backends.md has the exact conflict); asking for
  it then is a ConfigError that says so, before any encoding.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
import warnings
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, ModelError
from .io import write_json

OPENVINO_CONFLICT = ("backend \"openvino\" needs optimum-intel (pip install 'optimum-intel[openvino]'), which with "
                     "sentence-transformers 6.2 resolves to optimum-intel 2.2.0 and replaces the CPU torch 2.13 pin "
                     "with torch 2.14 and CUDA wheels through torchvision (docs/backends.md); use backend = \"onnx\" "
                     "with `embedgate export MODEL --to onnx`, or install optimum-intel in an environment without "
                     "the pin")
ONNX_MISSING = "backend \"onnx\" needs onnxruntime: pip install 'embedgate[onnx]' (or onnxruntime)"


def check_backend(spec, folder: Path | None = None) -> None:
    """A backend whose packages or artifact are missing is a ConfigError naming what to install or export."""
    import importlib.util

    if spec.backend == "onnx":
        if importlib.util.find_spec("onnxruntime") is None:
            raise ConfigError(ONNX_MISSING, field="backend")
        if folder is not None and not (folder / spec.onnx_file).is_file():
            raise ConfigError(f"no ONNX graph at {folder / spec.onnx_file}: make one with `embedgate export "
                              f"{folder} --to onnx --output DIR` and gate DIR", field="onnx_file")
    elif spec.backend == "openvino":
        if importlib.util.find_spec("optimum") is None or importlib.util.find_spec("optimum.intel") is None:
            raise ConfigError(OPENVINO_CONFLICT, field="backend")


def _pooling(folder: Path) -> tuple[str, bool]:
    """(pooling mode, whether a Normalize module follows) from the sentence-transformers folder."""
    modules = json.loads((folder / "modules.json").read_text(encoding="utf-8")) if (
        folder / "modules.json").is_file() else []
    mode, normalize = "mean_tokens", False
    for m in modules:
        kind = m.get("type", "")
        if kind.endswith("Pooling"):
            cfg = json.loads((folder / m["path"] / "config.json").read_text(encoding="utf-8"))
            # sentence-transformers 6 writes pooling_mode = "mean" | "cls" | "max" | "lasttoken"; 5 wrote flags
            mode = {"mean": "mean_tokens", "cls": "cls_token", "max": "max_tokens"}.get(
                cfg.get("pooling_mode"), cfg.get("pooling_mode") or mode)
            for name in ("cls_token", "mean_tokens", "max_tokens", "lasttoken"):
                if cfg.get(f"pooling_mode_{name}"):
                    mode = name
                    break
            if mode not in ("cls_token", "mean_tokens", "max_tokens", "lasttoken"):
                raise ConfigError(f"the ONNX backend does not implement pooling {mode!r}", field="backend")
        if kind.endswith("Normalize"):
            normalize = True
    return mode, normalize


class OnnxSentenceEncoder:
    """The part of SentenceTransformer's interface the harness uses (``encode``, ``max_seq_length``,
    ``get_embedding_dimension``), over an onnxruntime session."""

    def __init__(self, folder: str | Path, onnx_file: str, max_seq_length: int | None):
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.folder = Path(folder)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.folder / onnx_file), sess_options=opts,
                                            providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.pooling, self.has_normalize = _pooling(self.folder)
        self.max_seq_length = max_seq_length or int(getattr(self.tokenizer, "model_max_length", 512) or 512)
        self.device = "cpu"

    def _batch(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_seq_length,
                             return_tensors="np")
        feed = {k: enc[k].astype(np.int64) for k in self.inputs if k in enc}
        if "token_type_ids" in self.inputs and "token_type_ids" not in feed:
            feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        hidden = self.session.run(None, feed)[0].astype(np.float32)
        mask = enc["attention_mask"].astype(np.float32)[..., None]
        if self.pooling == "cls_token":
            return hidden[:, 0]
        if self.pooling == "max_tokens":
            return np.where(mask > 0, hidden, -1e9).max(axis=1)
        if self.pooling == "lasttoken":
            last = enc["attention_mask"].sum(axis=1) - 1
            return hidden[np.arange(len(texts)), last]
        return (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)

    def encode(self, texts, prompt=None, batch_size: int = 32, convert_to_numpy: bool = True,
               normalize_embeddings: bool = False, show_progress_bar: bool = False, **_: Any) -> np.ndarray:
        texts = [(prompt or "") + t for t in texts]
        order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths share a batch (less padding)
        out = np.empty((len(texts), self.get_embedding_dimension()), dtype=np.float32)
        for lo in range(0, len(texts), batch_size):
            idx = order[lo:lo + batch_size]
            out[idx] = self._batch([texts[i] for i in idx])
        if normalize_embeddings or self.has_normalize:
            out /= np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)
        return out

    def get_embedding_dimension(self) -> int:
        shape = self.session.get_outputs()[0].shape
        if isinstance(shape[-1], int):
            return shape[-1]
        return int(self._batch(["dimension probe"]).shape[1])


def load_backend(path: str, spec, device: str):
    """The model object for a non-torch backend."""
    check_backend(spec, Path(path))
    if spec.backend == "onnx":
        return OnnxSentenceEncoder(path, spec.onnx_file, spec.max_seq_length)
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device=device, backend="openvino", local_files_only=True)


PROBE = ["What are the capital requirements for an authorised firm?", "termination for convenience on notice",
         "Protein folding depends on chaperones.", "x"]


def export_onnx(model_path: str, output: str | Path, *, quantize: str | None = None, opset: int = 17,
                overwrite: bool = False) -> dict[str, Any]:
    """Write ``output``: the model's tokenizer and module configs, ``onnx/model.onnx`` (int8-quantized when asked)
    and ``export_manifest.json`` (the source fingerprint, settings, and the largest difference from the torch
    vectors on probe texts). The folder is a candidate with ``backend = "onnx"``."""
    import torch
    from sentence_transformers import SentenceTransformer

    from .models import _check_no_pickle, quiet_loading, resolve_model_path, weights_fingerprint

    quiet_loading()
    t0 = time.perf_counter()
    src, _ = resolve_model_path(model_path)
    src_dir = Path(src)
    _check_no_pickle(src_dir)
    out = Path(output)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(f"{out} exists and is not empty; pass --overwrite to replace it", field="output")
        shutil.rmtree(out)
    tmp = out.with_name(out.name + ".tmp-export")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src_dir, tmp, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "onnx", "openvino",
                                                                "checkpoint-*", ".*", "training_manifest.json"))
    st = SentenceTransformer(str(src_dir), device="cpu", local_files_only=True)
    transformer = st[0].auto_model.eval()
    tok = st.tokenizer
    sample = tok(PROBE[:2], padding=True, return_tensors="pt")
    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in sample]

    class _Hidden(torch.nn.Module):  # keyword arguments: transformers 5 reorders positional ones
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, *args):
            return self.m(**dict(zip(names, args))).last_hidden_state

    (tmp / "onnx").mkdir(exist_ok=True)
    graph = tmp / "onnx" / "model.onnx"
    axes = {k: {0: "batch", 1: "tokens"} for k in names} | {"last_hidden_state": {0: "batch", 1: "tokens"}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on data-dependent branches it folded (shapes are dynamic)
        torch.onnx.export(_Hidden(transformer), tuple(sample[k] for k in names), str(graph), input_names=names,
                          output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=opset, dynamo=False)
    if quantize == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        fp32 = graph.with_name("model_fp32.onnx")
        graph.rename(fp32)
        root = logging.getLogger()
        level, root.level = root.level, logging.ERROR  # onnxruntime logs a pre-processing hint on the root logger
        try:
            quantize_dynamic(str(fp32), str(graph), weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        fp32.unlink()
    elif quantize is not None:
        raise ConfigError(f"unknown quantization {quantize!r} (known: int8)", field="quantize")
    reference = st.encode(PROBE, normalize_embeddings=True, convert_to_numpy=True)
    exported = OnnxSentenceEncoder(tmp, "onnx/model.onnx", st.max_seq_length).encode(
        PROBE, normalize_embeddings=True)
    cos = (reference * exported).sum(axis=1)
    manifest = {
        "schema": "embedgate.export/1", "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": {"path": str(src_dir), "weights_fingerprint": weights_fingerprint(src_dir)},
        "to": "onnx", "quantize": quantize, "opset": opset, "graph": "onnx/model.onnx",
        "graph_bytes": graph.stat().st_size, "max_seq_length": st.max_seq_length,
        "probe": {"texts": len(PROBE), "max_abs_difference": float(np.abs(reference - exported).max()),
                  "min_cosine_to_torch": float(cos.min())},
        "versions": {p: _version(p) for p in ("torch", "onnx", "onnxruntime", "transformers")},
        "seconds": round(time.perf_counter() - t0, 1),
        "use": 'gate it as a candidate with backend = "onnx" (the folder is a sentence-transformers folder with '
               "an ONNX graph and no torch weights)",
    }
    write_json(tmp / "export_manifest.json", manifest)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return manifest


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def cannot_load(path: str, exc: Exception) -> ModelError:
    return ModelError(f"cannot load the ONNX graph: {exc}", path=path)
