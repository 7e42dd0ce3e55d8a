"""The ``embedgate`` command. A thin shell: it parses options, calls the library, prints, and maps errors to
exit codes (0 ok, 1 gate failed, 2 bad input)."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from ..errors import EmbedgateError


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"cut-offs must be positive integers, got {text!r}")
    return sorted(set(values))


def _model_spec(args) -> dict:
    spec = {"name": args.model, "dtype": args.dtype, "batch_size": args.batch_size}
    for key in ("query_prompt", "document_prompt", "max_seq_length"):
        if getattr(args, key) is not None:
            spec[key] = getattr(args, key)
    if args.trust_remote_code:
        spec["trust_remote_code"] = True
    for key in ("truncate_dim", "precision", "rescore", "backend"):
        if getattr(args, key, None) is not None:
            spec[key] = getattr(args, key)
    if getattr(args, "processes", 1) != 1:
        spec["processes"] = args.processes
    return spec


def _add_model_options(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--model", required=required, help="model folder or hub id")
    p.add_argument("--query-prompt", default=None, help="text put before each query (e.g. 'query: ')")
    p.add_argument("--document-prompt", default=None, help="text put before each document (e.g. 'passage: ')")
    p.add_argument("--max-seq-length", type=int, default=None,
                   help="truncate texts to this many tokens (default: the model's own setting)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                   help="weights' precision while encoding (pinned: 'auto' could silently change scores)")
    p.add_argument("--batch-size", type=int, default=32, help="texts per encode batch")
    p.add_argument("--processes", type=int, default=1,
                   help="encoding processes (sentence-transformers' multi-process pool: one per GPU, or CPU workers "
                        "sharing the cores); the vectors do not depend on it")
    p.add_argument("--trust-remote-code", action="store_true", help="run code shipped with the model (off by default)")
    p.add_argument("--truncate-dim", type=int, default=None,
                   help="keep the first N dimensions (Matryoshka), renormalised; from the cached full vectors")
    p.add_argument("--precision", default=None, choices=["float32", "float16", "int8", "uint8", "binary", "ubinary"],
                   help="storage precision of the document vectors (int8 ranges calibrated on the corpus; binary "
                        "searched by Hamming distance)")
    p.add_argument("--rescore", type=int, default=None,
                   help="re-score the top N of a quantized search with the float query")
    p.add_argument("--backend", default=None, choices=["torch", "onnx", "openvino"],
                   help="what computes the vectors (onnx: a folder written by `embedgate export`)")


def format_table(metrics: dict[str, float]) -> str:
    from ..metrics import parse_metric

    families: dict[str, dict[int, float]] = {}
    for name, value in metrics.items():
        fam, k = parse_metric(name)
        families.setdefault(fam, {})[k] = value
    ks = sorted({k for by_k in families.values() for k in by_k})
    head = f"{'metric':<10}" + "".join(f"{'@' + str(k):>9}" for k in ks)
    rows = [head, "-" * len(head)]
    for fam, by_k in families.items():
        rows.append(f"{fam:<10}" + "".join(f"{by_k[k]:>9.4f}" if k in by_k else f"{'':>9}" for k in ks))
    return "\n".join(rows)


def cmd_eval(args) -> int:
    from ..evaluate import evaluate
    from ..metrics import metric_grid, DEFAULT_FAMILIES

    from ..encode import encode_share, sharded_encoding

    metrics = metric_grid(DEFAULT_FAMILIES, args.k)
    cache = False if args.no_cache else args.cache_dir
    with sharded_encoding() as rank:  # under torchrun: every rank encodes its share, rank 0 reports (docs/scale.md)
        if rank > 0:
            stats = encode_share(args.data, _model_spec(args), args.split, cache)
            print(f"rank {rank}: encoded {sum(s.encoded for s in stats.values())} texts into the shared cache",
                  file=sys.stderr)
            return 0
        result = evaluate(args.data, _model_spec(args), split=args.split, ks=args.k, metrics=metrics, cache=cache,
                          index=args.index, ignore_identical_ids=args.ignore_identical_ids)
    d = result.data
    print(f"{d['name']} [{d['split']}]: {d['n_queries']} queries, {d['n_documents']} documents"
          + (f", {len(d['excluded_queries'])} queries without a positive judgment left out"
             if d["excluded_queries"] else ""))
    enc = result.timings["encode"]
    print(f"model {result.model['name']} ({result.model['source']}, fingerprint {result.model['fingerprint'][:12]}); "
          f"encoded {enc['documents']['encoded'] + enc['queries']['encoded']}, "
          f"from cache {enc['documents']['cached'] + enc['queries']['cached']}; {result.timings['total_s']:.1f} s")
    tied = result.conventions["queries_with_tied_scores"]
    if tied:
        print(f"{tied} of {d['n_queries']} rankings hold tied scores (e.g. documents that agree on their first "
              f"{result.model['max_seq_length']} tokens); ties follow trec_eval's order (document id descending)")
    rec = result.conventions.get("index_recall")
    if rec:
        params = ", ".join(f"{k} {v}" for k, v in rec["params"].items())
        print(f"APPROXIMATE search ({rec['index']}: {params}): recall@{rec['k']} {rec['recall']:.4f} against exact "
              f"search on {rec['sample_queries']} of {rec['of_queries']} queries (seed {rec['seed']}); the metrics "
              "below are of the approximate ranking")
    print(format_table(result.metrics))
    if args.out:
        print(f"result: {result.write(args.out)}")
    if args.save_run:
        print(f"run: {result.save_run(args.save_run, run_name=Path(result.model['name']).name)}")
    return 0


# The other subcommands, each registered by its own module (imported only when that subcommand is built).
SUBCOMMANDS = {"gate": "embedgate.harness.shells.gate", "init": "embedgate.harness.shells.init",
               "report": "embedgate.reports.cli", "train": "embedgate.trainers.cli",
               "generate": "embedgate.trainers.generate.cli", "export": "embedgate.harness.shells.export"}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or (``only``) just the subcommand about to run: a warm `embedgate eval` should not
    import what `generate` or `report` need for their defaults and help."""
    parser = argparse.ArgumentParser(prog="embedgate", description="Evaluate and gate fine-tuned embedding models.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is loaded and cached (INFO)")
    sub = parser.add_subparsers(dest="command", required=True)

    if only in (None, "eval"):
        _add_eval(sub)
    for name, module in SUBCOMMANDS.items():
        if only in (None, name):
            importlib.import_module(module).add_parser(sub)
    return parser


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate one model on one retrieval set")
    p.add_argument("data", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) or saved HF dataset")
    _add_model_options(p)
    p.add_argument("--split", default="test", help="which qrels/<split>.tsv to evaluate on")
    p.add_argument("--k", type=_int_list, default=[1, 3, 5, 10, 100], help="cut-offs, e.g. 1,3,5,10,100")
    p.add_argument("--out", help="write the JSON result here")
    p.add_argument("--save-run", help="write the ranking in TREC run format here")
    p.add_argument("--cache-dir", default=None, help="embedding cache (default $EMBEDGATE_CACHE or ~/.cache/embedgate)")
    p.add_argument("--no-cache", action="store_true", help="encode everything again and store nothing")
    p.add_argument("--index", default="exact", choices=["exact", "hnsw", "ivf"],
                   help="exact search, or faiss HNSW or IVF (approximate, its recall against exact search measured "
                        "on 1000 sampled queries) for very large corpora")
    p.add_argument("--ignore-identical-ids", action="store_true",
                   help="drop a hit whose id equals the query id (BEIR's default; off here unless asked)")
    p.set_defaults(func=cmd_eval)


def _command(argv: list[str]) -> str | None:
    """The subcommand named on the command line, if it is a known one (else the full parser reports the error)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg == "eval" or arg in SUBCOMMANDS else None
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except EmbedgateError as exc:
        print(f"embedgate: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("embedgate: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
