"""documents -> chunks -> queries (LLM, or offline generators) -> filters -> split by document -> suite folder.

``generate(options)`` does the work; the CLI is a thin shell over it. Order matters for money and for data:
the cost estimate is printed and checked against the budget before any request; LLM answers go to the
append-only log as they arrive, so a crash or a budget stop loses nothing; the suite files are rebuilt from the
log every time, atomically, so a re-run always leaves a consistent folder.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from embedgate.harness.errors import ConfigError, DataError

from . import offline as offline_mod
from .chunk import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP, Chunk, chunk_documents, load_tokenizer
from .documents import read_documents
from .filters import Candidate, FilterSettings, apply_filters, drop_near_duplicates_of_test
from .journal import LOG_NAME, FolderLock, Journal, read_log, result_key
from .llm import (Budget, LLMSettings, QueryGenerator, RateLimiter, build_client, estimate, load_templates)
from .pricing import price_for
from .split import DEFAULT_FRACTIONS, SPLITS, assign
from .writer import SUITE_KS, check_out_folder, suite_toml, write_beir, write_report

log = logging.getLogger(__name__)

DEFAULT_BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MEASURED_METRICS = ["ndcg@10", "mrr@10", "recall@10", "recall@100"]


@dataclass
class GenerateOptions:
    docs: Path
    out: Path
    name: str | None = None
    offline: bool = False  # force the offline generators even with an API key
    offline_generators: tuple[str, ...] = offline_mod.GENERATORS
    dry_run: bool = False
    base_model: str = DEFAULT_BASE_MODEL
    tokenizer: str | None = None  # default: the base model's
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS
    overlap: int = DEFAULT_OVERLAP
    max_documents: int | None = None
    llm: LLMSettings = field(default_factory=LLMSettings)
    system_prompt: Path | None = None
    user_prompt: Path | None = None
    price: tuple[float, float] | None = None
    budget_usd: float | None = 5.0
    budget_tokens: int | None = None
    split_fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
    seed: int = 0
    min_query_words: int | None = None  # default 3 for LLM queries, 2 for offline ones (headings are short)
    max_copy_ratio: float = 0.75
    measure: bool = True
    absolute_margin: float = 0.02
    improvement: float = 0.02
    cache: Any = None  # embedding cache for the measurement (None: $EMBEDGATE_CACHE)
    guard: Path | None = None  # another domain's BEIR folder for a forgetting gate
    guard_corpus_size: int | None = 2000


@dataclass
class Outcome:
    exit_code: int
    report: dict[str, Any]
    out: Path | None  # None for a dry run


def _reason_category(reason: str) -> str:
    return reason.split(" (")[0].split(";")[0]


def _llm_summary(chunks: list[Chunk], done: dict, key_of) -> tuple[list[Candidate], dict[str, Any]]:
    cands: list[Candidate] = []
    chunk_reasons: Counter = Counter()
    item_reasons: Counter = Counter()
    examples: list[dict] = []
    answered = dropped = missing = 0
    for chunk in chunks:
        entry = done.get(key_of(chunk))
        if entry is None:
            missing += 1
            continue
        for item in entry.get("dropped_items", []):
            item_reasons[item["reason"]] += 1
        if entry["status"] != "ok":
            dropped += 1
            chunk_reasons[_reason_category(entry.get("reason") or "unknown")] += 1
            if len(examples) < 10:
                excerpt = next((a.get("excerpt") for a in reversed(entry.get("answers", [])) if a.get("excerpt")), "")
                examples.append({"chunk_id": chunk.id, "reason": entry.get("reason"), "answer_excerpt": excerpt})
            continue
        answered += 1
        for i, q in enumerate(entry["queries"]):
            cands.append(Candidate(query=q, chunk_id=chunk.id, doc_id=chunk.doc_id, generator="llm",
                                   key=f"{chunk.id}:q{i}"))
    info = {"chunks_with_queries": answered, "chunks_dropped": dropped, "chunks_missing": missing,
            "dropped_chunk_reasons": dict(chunk_reasons), "dropped_item_reasons": dict(item_reasons),
            "dropped_examples": examples, "queries_parsed": len(cands)}
    return cands, info


def generate(opts: GenerateOptions, *, api_key: str | None = None, say: Callable[[str], None] = print,
             warn: Callable[[str], None] = print, http_client=None, limiter: RateLimiter | None = None) -> Outcome:
    out = Path(opts.out)
    if not opts.dry_run:
        check_out_folder(out)
    if opts.guard is not None:
        from embedgate.harness import data as data_mod

        guard_set = data_mod.load(opts.guard, "test")  # a bad guard is an error now, not after paying for queries
        say(f"forgetting guard: {guard_set.name} test ({len(guard_set.queries)} queries)")
    docs, read_report = read_documents(opts.docs, max_documents=opts.max_documents, exclude=out)
    skipped = len(read_report.empty) + len(read_report.duplicates)
    say(f"read {len(docs)} documents from {read_report.files} files in {opts.docs}"
        + (f" ({len(read_report.empty)} empty and {len(read_report.duplicates)} duplicate skipped)" if skipped else ""))
    tokenizer = load_tokenizer(opts.tokenizer or opts.base_model)
    mode = "offline" if opts.offline or not api_key else "llm"
    anchors: list[offline_mod.Anchor] = []
    if mode == "offline":
        why = "--offline given" if opts.offline else "ANTHROPIC_API_KEY is not set"
        warn(f"WARNING ({why}): {offline_mod.WARNING}")
        docs, anchors = offline_mod.extract(docs, opts.offline_generators, lead_gap_chars=4 * opts.chunk_tokens)
    chunks, chunk_stats = chunk_documents(docs, tokenizer, size=opts.chunk_tokens, overlap=opts.overlap)
    if not chunks:
        raise DataError("no chunks: every document is shorter than the minimum chunk", path=opts.docs)
    say(f"{len(chunks)} chunks of up to {opts.chunk_tokens} tokens ({opts.overlap} overlap, tokenizer of "
        f"{tokenizer.name})")
    plan = None
    if mode == "llm":
        # the estimate and the budget check come before anything is sent or written
        plan = _plan_llm(opts, chunks, out, say, warn)
        if plan.problem and not opts.dry_run:
            raise ConfigError(f"{plan.problem}; nothing was sent. Raise --budget-usd/--budget-tokens, or ask for "
                              "less (--max-documents, --queries-per-chunk)", field="budget")
    if opts.dry_run:
        if mode == "offline":
            say(f"offline generators would give {len(offline_mod.candidates(anchors, chunks))} candidate queries "
                "(before filters)")
        say("dry run: nothing was sent and nothing was written")
        return Outcome(0, {}, None)

    with FolderLock(out):
        if mode == "llm":
            cands, gen_info, exit_code = _run_llm(opts, plan, chunks, out, api_key, say, warn, http_client, limiter)
        else:
            cands = offline_mod.candidates(anchors, chunks)
            gen_info = {"mode": "offline", "generators": list(opts.offline_generators),
                        "candidates_by_generator": dict(Counter(c.generator for c in cands)),
                        "warning": offline_mod.WARNING}
            exit_code = 0
        report = _assemble(opts, out, docs, read_report, chunks, chunk_stats, cands, gen_info, mode, say, warn)
    return Outcome(exit_code, report, out)


@dataclass
class _Plan:
    templates: Any
    price: Any
    budget: Budget
    key_of: Callable[[Chunk], tuple]
    estimate: Any
    problem: str | None


def _plan_llm(opts: GenerateOptions, chunks: list[Chunk], out: Path, say, warn) -> _Plan:
    """Templates, price, budget, and the estimate for the chunks the log does not answer yet. Reads only."""
    templates = load_templates(opts.system_prompt, opts.user_prompt)
    price = price_for(opts.llm.model, opts.price)
    budget = Budget(price, max_usd=opts.budget_usd, max_tokens=opts.budget_tokens)

    def key_of(c: Chunk) -> tuple:
        return result_key(c.id, c.sha256, opts.llm.model, opts.llm.queries_per_chunk, templates.sha256)

    done = read_log(out / LOG_NAME, repair=False).by_key()
    todo = [c for c in chunks if key_of(c) not in done]
    est = estimate(todo, templates, opts.llm, price)
    say(f"{len(chunks) - len(todo)} chunks already answered in {out / LOG_NAME}; {len(todo)} to ask")
    say("estimate: " + est.describe())
    problem = budget.would_exceed(est)
    if problem and opts.dry_run:
        warn(f"a real run would stop here: {problem}")
    return _Plan(templates, price, budget, key_of, est, problem)


def _run_llm(opts, plan: _Plan, chunks, out, api_key, say, warn, http_client, limiter):
    templates, price, budget, key_of, est = plan.templates, plan.price, plan.budget, plan.key_of, plan.estimate
    log_path = out / LOG_NAME
    contents = read_log(log_path, repair=True)  # under the folder lock: cut a torn last line before appending
    if contents.torn_bytes:
        warn(f"the log ended in a line cut off by a crash ({contents.torn_bytes} bytes, kept in "
             f"{log_path.name}.torn); that chunk is asked again")
    done = contents.by_key()
    todo = [c for c in chunks if key_of(c) not in done]
    stats = None
    if todo:
        say(f"asking {opts.llm.model} for {opts.llm.queries_per_chunk} queries per chunk: {len(todo)} requests, "
            f"{opts.llm.concurrency} at a time, at most {opts.llm.requests_per_minute:g} per minute")
        client = build_client(api_key, opts.llm, http_client=http_client)
        try:
            with Journal(log_path) as journal:
                gen = QueryGenerator(client, opts.llm, templates, budget, journal, limiter=limiter,
                                     api_key=api_key, progress=say)
                stats = gen.run(todo)
        finally:
            client.close()
        say(f"got {stats.logged} answers ({stats.retries} "
            f"HTTP retries), {stats.input_tokens:,} input + {stats.output_tokens:,} output tokens, "
            f"${stats.usd:.4f}")
        contents = read_log(log_path, repair=False)
    done = contents.by_key()
    cands, summary = _llm_summary(chunks, done, key_of)
    exit_code = 0
    if stats is not None and stats.stopped:
        warn(f"stopped early: {stats.stopped}")
    if stats is not None and stats.failed:
        warn(f"{len(stats.failed)} chunks failed after the SDK's retries (e.g. "
             f"{next(iter(stats.failed.values()))}); they are not in the log: run the same command again to "
             "ask for them")
        exit_code = 1
    if summary["chunks_missing"]:
        warn(f"{summary['chunks_missing']} of {len(chunks)} chunks have no queries yet: the suite below is "
             "partial; run the same command again (with budget) to complete it")
        exit_code = exit_code or 1
    if summary["chunks_dropped"]:
        warn(f"{summary['chunks_dropped']} chunks gave unusable answers: "
             + ", ".join(f"{k} {v}" for k, v in summary["dropped_chunk_reasons"].items()))
    info = {"mode": "llm", "model": opts.llm.model, "queries_per_chunk": opts.llm.queries_per_chunk,
            "structured_output": opts.llm.uses_schema, "max_tokens": opts.llm.answer_tokens,
            "system_prompt": templates.system_path, "user_prompt": templates.user_path,
            "prompt_sha256": templates.sha256, "price_per_mtok": [price.input_per_mtok, price.output_per_mtok],
            "budget": {"usd": opts.budget_usd, "tokens": opts.budget_tokens}, "estimate_before_run": est.as_dict(),
            "this_run": stats.as_dict() if stats is not None else None, "total_usage": contents.usage(),
            "settings": {k: v for k, v in asdict(opts.llm).items()}, **summary}
    return cands, info, exit_code


def _measure(opts, out: Path, say) -> dict[str, Any] | None:
    from embedgate.harness.evaluate import evaluate

    say(f"measuring the base model {opts.base_model} on the test split")
    res = evaluate(out, {"name": opts.base_model}, split="test", ks=SUITE_KS, metrics=MEASURED_METRICS,
                   cache=opts.cache)
    return {"model": opts.base_model, "fingerprint": res.model["fingerprint"],
            "max_seq_length": res.model["max_seq_length"], "n_queries": res.data["n_queries"],
            "n_documents": res.data["n_documents"], "metrics": {m: round(v, 6) for m, v in res.metrics.items()},
            "seconds": res.timings["total_s"]}


def _validate(out: Path, splits: list[str]) -> dict[str, Any]:
    """Load the folder the way `pytest <out>` and the trainer will: the suite file and every split."""
    from embedgate.harness import data as data_mod

    checked: dict[str, Any] = {"splits": {}}
    for split in splits:
        ds = data_mod.load(out, split)
        checked["splits"][split] = {"queries": len(ds.queries), "content_hash": ds.content_hash}
    try:
        from embedgate.harness.suite import load_suite
    except ImportError:
        checked["suite"] = "embedgate.harness.suite.load_suite not available: only the data was checked"
        return checked
    suite = load_suite(out)
    checked["suite"] = {"name": suite.name, "gates": [g.name for g in suite.gates]}
    return checked


def _assemble(opts, out, docs, read_report, chunks, chunk_stats, cands, gen_info, mode, say, warn):
    min_words = opts.min_query_words if opts.min_query_words is not None else (3 if mode == "llm" else 2)
    fsettings = FilterSettings(min_words=min_words, max_copy_ratio=opts.max_copy_ratio)
    pairs, freport = apply_filters(cands, {c.id: c.text for c in chunks}, fsettings)
    doc_ids = list(dict.fromkeys(c.doc_id for c in chunks))
    split_of_doc, method = assign(doc_ids, opts.split_fractions, opts.seed)
    pairs = drop_near_duplicates_of_test(pairs, split_of_doc, freport)
    say(f"filters: {freport.candidates} candidate queries, {freport.kept} kept; dropped "
        + ", ".join(f"{k} {v}" for k, v in freport.as_dict()["dropped"].items())
        + (f"; {freport.merged} merged into multi-positive queries" if freport.merged else ""))
    queries_in = Counter(split_of_doc[p.doc_id] for p in pairs)
    if not queries_in["test"] or not queries_in["train"]:
        empty = "test" if not queries_in["test"] else "train"
        raise DataError(f"the {empty} split has no queries ({len(doc_ids)} documents, {len(pairs)} queries kept): "
                        "give more documents or change --split; nothing was written"
                        + (" (the LLM answers are kept in the log)" if mode == "llm" else ""), path=opts.docs)
    sources = {d.id: d.source for d in docs}
    counts = write_beir(out, chunks, sources, pairs, split_of_doc, corpus_titles=(mode == "llm"))
    say("splits by document: " + "; ".join(f"{s} {v['documents']} docs, {v['queries']} queries"
                                             for s, v in counts.items()))
    measured = _measure(opts, out, say) if opts.measure else None
    if measured:
        say("base model on test: " + ", ".join(f"{m} {v:.4f}" for m, v in measured["metrics"].items()))
    name = opts.name or out.resolve().name
    if mode == "llm":
        made = f"{gen_info['model']} queries ({gen_info['queries_per_chunk']} per chunk)"
    else:
        made = "offline queries (titles, headings, first sentences; weaker than LLM queries)"
    description = (f"Generated suite: {made} over {len(docs)} documents of {Path(opts.docs).resolve().name}; "
                   "the test split is held out by document.")
    from embedgate.harness.io import atomic_write_text

    guard = None
    if opts.guard is not None:
        guard = os.path.relpath(Path(opts.guard).resolve(), out.resolve())
    else:
        warn("no forgetting guard in the suite (--guard <another domain's BEIR folder> adds one): it will not "
             "notice a candidate that gets worse elsewhere")
    atomic_write_text(out / "suite.toml", suite_toml(
        name, description, opts.base_model, measured["max_seq_length"] if measured else None, measured,
        absolute_margin=opts.absolute_margin, improvement=opts.improvement, guard=guard,
        guard_corpus_size=opts.guard_corpus_size))
    splits_written = [s for s in SPLITS if counts[s]["queries"]]
    validation = _validate(out, splits_written)
    info = {
        "schema": "embedgate.generation-report/1",
        "name": name,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "documents": {"folder": str(Path(opts.docs).resolve()), **read_report.as_dict()},
        "chunking": chunk_stats,
        "generation": gen_info,
        "filters": {**freport.as_dict(), "settings": asdict(fsettings)},
        "split_seed": opts.seed, "split_fractions": list(opts.split_fractions), "split_method": method,
        "splits": counts,
        "base_measurement": measured,
        "validation": validation,
    }
    write_report(out, info)
    say(f"wrote {out}: suite.toml loads ({len(validation['splits'])} splits checked); run it with "
        f"`pytest {out} --candidate <model folder>`")
    return info
