"""`embedgate export MODEL --to onnx [--quantize int8] --output DIR`: the serving artifact, to be gated."""
from __future__ import annotations


def cmd_export(args) -> int:
    from ..backends import OPENVINO_CONFLICT, export_onnx
    from ..errors import ConfigError

    if args.to == "openvino":
        raise ConfigError(OPENVINO_CONFLICT, field="to")
    m = export_onnx(args.model, args.output, quantize=args.quantize, overwrite=args.overwrite)
    p = m["probe"]
    print(f"exported {args.model} -> {args.output}/{m['graph']} ({m['graph_bytes'] / 1e6:.1f} MB"
          + (f", {m['quantize']}" if m["quantize"] else "") + f") in {m['seconds']:.0f} s")
    print(f"probe: largest difference from the torch vectors {p['max_abs_difference']:.2e}, lowest cosine "
          f"{p['min_cosine_to_torch']:.4f} ({p['texts']} texts); gate it to know what it costs on your data:")
    print(f"  embedgate gate SUITE --candidate {args.output}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="write a model as an ONNX graph (optionally int8) to gate and serve",
                       description="Export a sentence-transformers model for serving: its transformer as an ONNX "
                                   "graph run by onnxruntime, with the folder's tokenizer and pooling; --quantize "
                                   "int8 applies onnxruntime's dynamic quantization. The output folder is a "
                                   "candidate (backend onnx, detected). Exit 2 on bad input.")
    p.add_argument("model", help="model folder or hub id")
    p.add_argument("--to", choices=["onnx", "openvino"], default="onnx", help="the serving format")
    p.add_argument("--quantize", choices=["int8"], default=None, help="dynamic int8 weights (onnxruntime)")
    p.add_argument("--output", required=True, help="the folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    p.set_defaults(func=cmd_export)
