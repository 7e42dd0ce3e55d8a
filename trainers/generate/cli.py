"""`embedgate generate DOCS --out suites/<name>`: a folder of documents -> training pairs and a new suite."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _fraction_list(text: str):
    from .split import parse_fractions
    from embedgate.harness.errors import ConfigError

    try:
        return parse_fractions(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _price(text: str) -> tuple[float, float]:
    try:
        a, b = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected IN,OUT dollars per million tokens (e.g. 1,5), got {text!r}") \
            from None
    return a, b


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse


def _generators(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def add_parser(sub) -> None:
    from .chunk import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP
    from .llm import DEFAULT_MODEL, LLMSettings
    from .offline import GENERATORS
    from .pipeline import DEFAULT_BASE_MODEL

    d = LLMSettings()
    p = sub.add_parser(
        "generate", help="make training pairs and a held-out suite from a folder of documents",
        description="Chunk a folder of documents (.txt, .md, .jsonl; .pdf with pypdf) with the base model's "
                    "tokenizer, ask Claude for queries per chunk (or, without ANTHROPIC_API_KEY, use the weaker "
                    "offline generators), filter them, split by document into train/dev/test and write a BEIR "
                    "folder with a suite.toml. Re-running the same command resumes: chunks already answered are "
                    "not asked again.")
    p.add_argument("docs", type=Path, help="folder of documents (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="suite folder to write, e.g. suites/mydomain")
    p.add_argument("--name", default=None, help="suite name (default: the --out folder's name)")
    p.add_argument("--dry-run", action="store_true", help="chunk, estimate the cost and stop: nothing sent or written")
    p.add_argument("--max-documents", type=_count(1), default=None, help="use only the first N documents (by path)")

    g = p.add_argument_group("chunking")
    g.add_argument("--chunk-tokens", type=_count(1), default=DEFAULT_CHUNK_TOKENS)
    g.add_argument("--overlap", type=_count(0), default=DEFAULT_OVERLAP, help="tokens shared by neighbouring chunks")
    g.add_argument("--tokenizer", default=None, help="model whose tokenizer counts tokens (default: --base-model)")

    g = p.add_argument_group("LLM queries (needs ANTHROPIC_API_KEY in the environment)")
    g.add_argument("--model", default=DEFAULT_MODEL, help=f"Claude model (default {DEFAULT_MODEL})")
    g.add_argument("--queries-per-chunk", type=_count(1), default=d.queries_per_chunk)
    g.add_argument("--max-tokens", type=_count(1), default=None, help="answer length cap (default 64 per query + 128)")
    g.add_argument("--structured-output", action=argparse.BooleanOptionalAction, default=None,
                   help="constrain answers to the JSON schema (output_config.format); default: on for the models "
                        "known to support it")
    g.add_argument("--concurrency", type=_count(1), default=d.concurrency, help="requests in flight at once")
    g.add_argument("--rpm", type=float, default=d.requests_per_minute, help="requests per minute at most")
    g.add_argument("--max-retries", type=_count(0), default=d.max_retries,
                   help="retries per request on 429/5xx/529/connection errors (the SDK's backoff, retry-after)")
    g.add_argument("--system-prompt", type=Path, default=None, help="system prompt template file")
    g.add_argument("--prompt", type=Path, default=None,
                   help="user prompt template file ($passage, $n, $title, $section, $doc_id)")
    g.add_argument("--budget-usd", type=float, default=5.0,
                   help="stop before this run could spend more (default 5); 0 for no dollar cap")
    g.add_argument("--budget-tokens", type=_count(1), default=None, help="cap on input + output tokens for this run")
    g.add_argument("--price", type=_price, default=None, metavar="IN,OUT",
                   help="dollars per million input/output tokens, for a model not in the price table")

    g = p.add_argument_group("offline generators (used without ANTHROPIC_API_KEY)")
    g.add_argument("--offline", action="store_true", help="use the offline generators even with an API key")
    g.add_argument("--offline-generators", type=_generators, default=GENERATORS,
                   help=f"comma-separated subset of {','.join(GENERATORS)}")

    g = p.add_argument_group("filters and splits")
    g.add_argument("--min-query-words", type=_count(1), default=None, help="default 3 (LLM) or 2 (offline)")
    g.add_argument("--max-copy-ratio", type=float, default=0.75,
                   help="drop a query whose longest run of words shared with its passage covers this fraction")
    g.add_argument("--split", type=_fraction_list, default=(0.7, 0.1, 0.2), metavar="TRAIN,DEV,TEST",
                   help="fractions of documents (default 0.7,0.1,0.2)")
    g.add_argument("--seed", type=_count(0), default=0, help="seed of the document split")

    g = p.add_argument_group("the suite")
    g.add_argument("--base-model", default=DEFAULT_BASE_MODEL, help=f"base model (default {DEFAULT_BASE_MODEL})")
    g.add_argument("--no-measure", action="store_true", help="do not measure the base model (no absolute gates)")
    g.add_argument("--absolute-margin", type=float, default=0.02,
                   help="absolute gates: candidate >= measured base - margin")
    g.add_argument("--improvement", type=float, default=0.02,
                   help="improvement gate: relative gain the paired CI must clear (0: any significant gain)")
    g.add_argument("--guard", type=Path, default=None,
                   help="another domain's BEIR folder: adds a forgetting gate (no worse elsewhere)")
    g.add_argument("--guard-corpus-size", type=_count(0), default=2000,
                   help="seeded corpus subset of the guard (judged documents + distractors); 0 for all")
    g.add_argument("--cache-dir", default=None, help="embedding cache for the measurement")
    p.set_defaults(func=cmd_generate)


def cmd_generate(args) -> int:
    from .llm import LLMSettings
    from .pipeline import GenerateOptions, generate

    settings = LLMSettings(model=args.model, queries_per_chunk=args.queries_per_chunk, max_tokens=args.max_tokens,
                           structured_output=args.structured_output, concurrency=args.concurrency,
                           requests_per_minute=args.rpm, max_retries=args.max_retries)
    opts = GenerateOptions(
        docs=args.docs, out=args.out, name=args.name, offline=args.offline,
        offline_generators=args.offline_generators, dry_run=args.dry_run, base_model=args.base_model,
        tokenizer=args.tokenizer, chunk_tokens=args.chunk_tokens, overlap=args.overlap,
        max_documents=args.max_documents, llm=settings, system_prompt=args.system_prompt,
        user_prompt=args.prompt, price=args.price, budget_usd=args.budget_usd or None,
        budget_tokens=args.budget_tokens, split_fractions=args.split, seed=args.seed,
        min_query_words=args.min_query_words, max_copy_ratio=args.max_copy_ratio, measure=not args.no_measure,
        absolute_margin=args.absolute_margin, improvement=args.improvement, cache=args.cache_dir,
        guard=args.guard, guard_corpus_size=args.guard_corpus_size or None)
    api_key = os.environ.get("ANTHROPIC_API_KEY") or None
    outcome = generate(opts, api_key=api_key, say=print, warn=lambda m: print(m, file=sys.stderr))
    return outcome.exit_code
