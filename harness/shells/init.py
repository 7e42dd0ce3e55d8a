"""`embedgate init DATA --out suites/<name>`: a team's own judged data -> a suite that `pytest suites/<name>
--candidate M` runs as it is (the logic is ``harness.init``; this shell parses, prints and maps errors)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _open_fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return value


def _correlation(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {text}")
    return value


def add_parser(sub) -> None:
    from ..init import DEFAULT_BASE, DEFAULT_CORRELATION, DEFAULT_SEED, DEFAULT_TEST_FRACTION

    p = sub.add_parser(
        "init", help="make a suite from your own judged data (BEIR folder, table or saved HF dataset); exit 2 on bad "
        "input",
        description="Read your judged data (a BEIR folder; a csv / tsv / jsonl / parquet table or a saved Hugging Face "
        "dataset with one (query, document) judgment per row), validate it, make a seeded held-out split when it has "
        "none (by query, or by document group), measure the base model and BM25 on the held-out queries, and write a "
        "suite folder (suite.toml with gates the suite can decide, README.md with the measured numbers and the minimum "
        "detectable effect, and data/ when the data was built here) that `pytest <out> --candidate MODEL` runs as it "
        "is. Exit status 0, or 2 on bad input (one line naming the file, line or row, and column); nothing is written "
        "then, and an existing suite is never overwritten without --force.")
    p.add_argument("data", type=Path, help="a BEIR folder, a .csv/.tsv/.jsonl/.parquet table, or a saved HF dataset "
                   "folder")
    p.add_argument("--out", type=Path, required=True, help="the suite folder to write, e.g. suites/mydomain")
    p.add_argument("--name", default=None, help="the suite's name (default: the --out folder's name)")
    p.add_argument("--base", default=DEFAULT_BASE, help=f"the base model, a folder or hub id (default {DEFAULT_BASE})")
    p.add_argument("--max-seq-length", type=_positive, default=None,
                   help="the base's max_seq_length (default: the model's own setting)")
    p.add_argument("--split", default="test",
                   help="the held-out split: used as it is when the data has it, else the name of the one made here "
                        "(default test)")

    g = p.add_argument_group("the split made when the data has none")
    g.add_argument("--test-fraction", type=_open_fraction, default=None,
                   help=f"share of queries (or of document-group units) held out (default {DEFAULT_TEST_FRACTION})")
    g.add_argument("--seed", type=_seed, default=None, help=f"seed of the split and of any subset (default "
                   f"{DEFAULT_SEED})")
    g.add_argument("--group-col", default=None,
                   help="a document group (e.g. the source file a chunk came from): one group's queries never "
                        "straddle train and test; in a BEIR folder a corpus field (metadata.source reaches inside)")

    g = p.add_argument_group("columns of a table or saved dataset (one row = one (query, document) judgment)")
    g.add_argument("--query-col", default=None, help="the query text (default 'query')")
    g.add_argument("--doc-col", default=None, help="the document text (default 'document')")
    g.add_argument("--title-col", default=None, help="a document title, encoded before the text (optional)")
    g.add_argument("--doc-id-col", default=None, help="document ids (default: a stable hash of title and text)")
    g.add_argument("--query-id-col", default=None, help="query ids (default: a stable hash of the query text)")
    g.add_argument("--relevance-col", default=None, help="integer grades, <= 0 judged not relevant (default: 1 "
                   "for every row)")

    g = p.add_argument_group("measuring")
    g.add_argument("--max-queries", type=_positive, default=None,
                   help="a seeded sample of the held-out queries (written to [data.main], so the suite runs the same)")
    g.add_argument("--corpus-size", type=_positive, default=None,
                   help="a seeded corpus subset: judged documents + random distractors (written to [data.main])")
    g.add_argument("--assumed-correlation", type=_correlation, default=DEFAULT_CORRELATION,
                   help="assumed correlation of base and candidate per-query scores, for the minimum detectable "
                        f"effect before a candidate exists (default {DEFAULT_CORRELATION})")
    g.add_argument("--cache-dir", default=None, help="embedding cache (default $EMBEDGATE_CACHE or "
                   "~/.cache/embedgate)")
    g.add_argument("--no-cache", action="store_true", help="encode everything again and store nothing")
    p.add_argument("--force", action="store_true", help="overwrite the suite.toml, README.md and data/ files of an "
                   "existing suite folder")
    p.set_defaults(func=cmd_init)


def cmd_init(args) -> int:
    from ..init import Columns, InitOptions, init_suite

    opts = InitOptions(
        data=args.data, out=args.out, name=args.name, base=args.base, max_seq_length=args.max_seq_length,
        split=args.split, test_fraction=args.test_fraction, seed=args.seed,
        columns=Columns(query=args.query_col, document=args.doc_col, doc_id=args.doc_id_col,
                        query_id=args.query_id_col, relevance=args.relevance_col, title=args.title_col,
                        group=args.group_col),
        max_queries=args.max_queries, corpus_size=args.corpus_size, correlation=args.assumed_correlation,
        cache=False if args.no_cache else args.cache_dir, force=args.force)
    p = init_suite(opts, say=lambda m: print(m, file=sys.stderr))
    m, ds = p.measured, p.measured.dataset
    print(f"data: {p.counts['source']} ({p.counts['format']}): {p.counts['summary']}")
    print(p.data_note)
    print(f"base {opts.base} on {ds.split} ({len(ds.queries):,} queries, {len(ds.corpus):,} documents): "
          + ", ".join(f"{k} {m.base[k]:.4f}" for k in m.base) + f"; BM25 ndcg@10 {m.bm25['ndcg@10']:.4f}")
    print(p.mde_sentence[0].upper() + p.mde_sentence[1:] + ".")
    print("gates:")
    for gate, _, _ in p.gates:
        print(f"  {gate.label}")
    for note in p.notes:
        print(note)
    written = ["suite.toml", "README.md"] + ([f"data/{rel}" for rel in p.data_files] if p.data_files else [])
    print(f"wrote {opts.out}: {', '.join(written)}")
    print(f"next: pytest {opts.out} --candidate PATH")
    return 0
