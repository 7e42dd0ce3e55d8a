"""`embedgate generate` with an LLM: the real anthropic client against an httpx2 mock transport serving Messages
API answers of the real shape. Retries (429 with retry-after, 529, 500), malformed answers, a crash and a resume,
the budget cap, the dry run and the API key's secrecy. Nothing touches the network; the SDK's sleeps are recorded
instead of slept."""
from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

import pytest

import httpx2
from embedgate.harness.errors import ConfigError
from test_generate_support import Crash, FakeAPI, error, fake_queries, vocabulary_texts, write_docs
from embedgate.trainers.generate.journal import LOG_NAME
from embedgate.trainers.generate.llm import (Budget, FatalAPIError, LLMSettings, RateLimiter, load_templates,
                                   parse_answer)
from embedgate.trainers.generate.pipeline import GenerateOptions, generate
from embedgate.trainers.generate.pricing import price_for

KEY = "sk-ant-api03-test-" + secrets.token_hex(8)
SUITE_FILES = ["corpus.jsonl", "queries.jsonl", "chunks.jsonl", "pairs.jsonl", "train_pairs.jsonl",
               "qrels/train.tsv", "qrels/test.tsv"]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("gen-model") / "m", vocabulary_texts(), max_seq_length=128)


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    return write_docs(tmp_path_factory.mktemp("gen-docs") / "docs", n_docs=12, paragraphs=3)


@pytest.fixture
def sdk_sleeps(monkeypatch) -> list[float]:
    """The SDK sleeps between retries with time.sleep: record the waits instead of waiting."""
    import anthropic._base_client as base

    sleeps: list[float] = []
    monkeypatch.setattr(base.time, "sleep", sleeps.append)
    return sleeps


def options(docs: Path, out: Path, model: Path, **kw) -> GenerateOptions:
    llm = LLMSettings(concurrency=kw.pop("concurrency", 3), max_retries=kw.pop("max_retries", 3),
                      requests_per_minute=1e6, parse_retries=kw.pop("parse_retries", 1))
    return GenerateOptions(docs=docs, out=out, base_model=str(model), llm=llm, measure=False, chunk_tokens=64,
                           overlap=16, **kw)


def run(opts: GenerateOptions, api: FakeAPI, messages: list | None = None):
    sink = messages if messages is not None else []
    return generate(opts, api_key=KEY, say=sink.append, warn=sink.append, http_client=api.client(),
                    limiter=RateLimiter(1e9))


def corpus(out: Path) -> dict[str, str]:
    return {r["_id"]: r["text"] for r in map(json.loads, (out / "corpus.jsonl").read_text().splitlines())}


def queries(out: Path) -> dict[str, str]:
    return {r["_id"]: r["text"] for r in map(json.loads, (out / "queries.jsonl").read_text().splitlines())}


def qrels(out: Path) -> dict[str, dict[str, str]]:
    """split -> {query id: chunk id}"""
    found = {}
    for path in sorted((out / "qrels").glob("*.tsv")):
        lines = path.read_text().splitlines()
        assert lines[0] == "query-id\tcorpus-id\tscore"
        found[path.stem] = {q: d for q, d, s in (line.split("\t") for line in lines[1:])}
    return found


def log_entries(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / LOG_NAME).read_text().splitlines()]


def test_llm_queries_become_a_suite_split_by_document(docs, model, tmp_path):
    api = FakeAPI()
    out = tmp_path / "suite"
    outcome = run(options(docs, out, model), api)
    assert outcome.exit_code == 0
    texts = corpus(out)
    # one request per chunk, each with the real Messages API parameters
    assert sorted(api.attempts.values()) == [1] * len(texts)
    assert api.api_keys == {KEY}
    req = api.requests[0]
    assert req["model"] == "claude-haiku-4-5" and req["max_tokens"] == 64 * 3 + 128
    assert "search queries" in req["system"] and req["messages"][0]["role"] == "user"
    # Haiku 4.5 has structured outputs: the answer is constrained to {"queries": [str]}
    schema = req["output_config"]["format"]
    assert schema["type"] == "json_schema" and schema["schema"]["required"] == ["queries"]
    # every query the fake model wrote for a passage is there, judged against that passage, in one split
    expected = {q: cid for cid, text in texts.items() for q in fake_queries(text, 3)}
    got = queries(out)
    assert sorted(got.values()) == sorted(expected)
    judged = {qid: (split, cid) for split, rels in qrels(out).items() for qid, cid in rels.items()}
    assert set(judged) == set(got)
    for qid, (split, cid) in judged.items():
        assert expected[got[qid]] == cid
    chunk_split = {r["id"]: r["split"] for r in map(json.loads, (out / "chunks.jsonl").read_text().splitlines())}
    doc_split: dict[str, set] = {}
    for cid, split in chunk_split.items():
        doc_split.setdefault(cid.split("#")[0], set()).add(split)
    assert all(len(s) == 1 for s in doc_split.values())  # never split inside a document
    assert {split for split, _ in judged.values()} >= {"train", "test"}
    # the report counts what the fake API billed
    entries = log_entries(out)
    report = json.loads((out / "generation_report.json").read_text())
    assert report["generation"]["total_usage"]["input_tokens"] == sum(e["usage"]["input_tokens"] for e in entries)
    assert report["generation"]["this_run"]["logged"] == len(texts)
    assert report["generation"]["total_usage"]["usd"] == pytest.approx(sum(
        (e["usage"]["input_tokens"] * 1 + e["usage"]["output_tokens"] * 5) / 1e6 for e in entries), rel=1e-6)
    # the written folder loads as the suite and as every split
    from embedgate.harness import data as data_mod
    from embedgate.harness.suite import load_suite

    assert len(data_mod.load(out, "test").queries) == sum(1 for s, _ in judged.values() if s == "test")
    assert load_suite(out).data["main"].path == out.resolve()


def test_429_retry_after_529_and_500_use_the_sdk_retries(docs, model, tmp_path, sdk_sleeps):
    roles: dict[str, int] = {}

    def plan(passage, attempt, served):
        role = roles.setdefault(passage, len(roles))  # the first three chunks asked meet trouble
        if role == 0 and attempt == 0:
            return error(429, "rate_limit_error", "Number of requests has exceeded your rate limit",
                         {"retry-after": "7"})
        if role == 1 and attempt == 0:
            return error(529, "overloaded_error", "Overloaded")
        if role == 2 and attempt < 2:
            return error(500, "api_error", "Internal server error")
        return None

    api = FakeAPI(plan)
    out = tmp_path / "suite"
    outcome = run(options(docs, out, model, concurrency=1, max_retries=3), api)
    assert outcome.exit_code == 0
    # retry-after honoured to the second; 529 and 500 backed off exponentially (0.5 s, then 1 s, less jitter)
    assert sdk_sleeps[0] == 7.0
    assert 0.375 <= sdk_sleeps[1] <= 0.5
    assert 0.375 <= sdk_sleeps[2] <= 0.5 and 0.75 <= sdk_sleeps[3] <= 1.0
    assert len(sdk_sleeps) == 4
    entries = log_entries(out)
    assert len(entries) == len(corpus(out)) and all(e["status"] == "ok" for e in entries)
    assert sorted(e["http_retries"] for e in entries if e["http_retries"]) == [1, 1, 2]
    assert outcome.report["generation"]["this_run"]["http_retries"] == 4


def test_retries_exhausted_leave_the_chunk_for_the_next_run(docs, model, tmp_path, sdk_sleeps):
    doomed = {}

    def plan(passage, attempt, served):
        doomed.setdefault("passage", passage)
        if passage == doomed["passage"]:
            return error(529, "overloaded_error", "Overloaded")
        return None

    out = tmp_path / "suite"
    messages: list[str] = []
    first = run(options(docs, out, model, max_retries=2), FakeAPI(plan), messages)
    assert first.exit_code == 1
    assert any("1 chunks failed after the SDK's retries" in m and "OverloadedError" in m for m in messages)
    n_chunks = len(corpus(out))
    assert len(log_entries(out)) == n_chunks - 1  # the failed chunk is not recorded as done
    assert first.report["generation"]["chunks_missing"] == 1
    healthy = FakeAPI()
    second = run(options(docs, out, model), healthy)
    assert second.exit_code == 0
    assert list(healthy.attempts) == [doomed["passage"]]  # only the missing chunk is asked
    assert len(log_entries(out)) == n_chunks


def test_malformed_answers_are_retried_once_then_recorded_as_dropped(docs, model, tmp_path):
    roles: dict[str, str] = {}

    def plan(passage, attempt, served):
        role = roles.setdefault(passage, ["prose", "shape", "items", "fenced", "cut"][len(roles)]
                                if len(roles) < 5 else "ok")
        if role == "prose" and attempt == 0:
            return api.ok_response(passage, 3, "Sure! Here are three queries:\n1. ...")
        if role == "shape":
            return api.ok_response(passage, 3, json.dumps({"queries": "lease termination notice"}))
        if role == "items":
            good = fake_queries(passage, 5)
            return api.ok_response(passage, 3, json.dumps({"queries": [good[0], 17, "  ", good[1], good[2],
                                                                       good[3]]}))
        if role == "fenced":
            return api.ok_response(passage, 3, "```json\n" + json.dumps({"queries": fake_queries(passage, 3)})
                                   + "\n```")
        if role == "cut":
            return api.ok_response(passage, 3, '{"queries": ["how are', stop_reason="max_tokens")
        return None

    api = FakeAPI(plan)
    out = tmp_path / "suite"
    outcome = run(options(docs, out, model, concurrency=1), api)
    by_role = {roles[p]: e for e in log_entries(out) for p in roles if e["chunk_sha256"] and
               e["chunk_id"] in {cid for cid, text in corpus(out).items() if text == p}}
    assert by_role["prose"]["status"] == "ok" and by_role["prose"]["attempts"] == 2
    assert by_role["prose"]["answers"][0]["excerpt"].startswith("Sure! Here are")
    assert by_role["shape"]["status"] == "dropped" and by_role["shape"]["attempts"] == 2
    assert by_role["shape"]["reason"].startswith("unexpected JSON shape")
    assert by_role["items"]["status"] == "ok" and len(by_role["items"]["queries"]) == 3
    assert [d["reason"] for d in by_role["items"]["dropped_items"]] == ["not a string", "empty",
                                                                         "more than the 3 asked for"]
    assert by_role["fenced"]["status"] == "ok" and len(by_role["fenced"]["queries"]) == 3
    assert by_role["cut"]["status"] == "dropped" and by_role["cut"]["reason"] == "answer cut off at max_tokens"
    gen = outcome.report["generation"]
    assert gen["dropped_chunk_reasons"] == {"unexpected JSON shape": 1, "answer cut off at max_tokens": 1}
    assert gen["dropped_item_reasons"] == {"not a string": 1, "empty": 1, "more than the 3 asked for": 1}
    assert gen["this_run"]["parse_retries"] == 3  # prose, shape and cut each asked twice
    # a dropped chunk is a result: a re-run does not pay for it again
    again = FakeAPI(forbid=True)
    assert run(options(docs, out, model), again).exit_code == 0


@pytest.mark.parametrize("failure", ["crash", "network_down"])
def test_crash_then_resume_gives_the_same_suite_as_an_uninterrupted_run(docs, model, tmp_path, sdk_sleeps, failure):
    whole = tmp_path / "whole"
    assert run(options(docs, whole, model), FakeAPI()).exit_code == 0
    n_chunks = len(corpus(whole))

    def fail_from_ten(passage, attempt, served):
        if served == 10 and failure == "crash":
            raise Crash("killed")  # the process dies: nothing after this point runs
        if served >= 10 and failure == "network_down":
            raise httpx2.ConnectError("network unreachable")  # the SDK retries, then gives up on each chunk
        return None

    out = tmp_path / "resumed"
    messages: list[str] = []
    if failure == "crash":
        with pytest.raises(Crash):
            run(options(docs, out, model), FakeAPI(fail_from_ten))
        assert not (out / "suite.toml").exists()
    else:
        first = run(options(docs, out, model), FakeAPI(fail_from_ten), messages)
        assert first.exit_code == 1 and any("requests in a row failed" in m for m in messages)
    survived = len(log_entries(out))
    assert 9 <= survived <= 11  # the answers that arrived before the failure (and those in flight with it)
    with open(out / LOG_NAME, "ab") as fh:  # and the crash tore the line being written
        fh.write(b'{"chunk_id": "doc03#2", "chunk_sha2')
    messages.clear()
    resume = FakeAPI()
    assert run(options(docs, out, model), resume, messages).exit_code == 0
    assert len(resume.requests) == n_chunks - survived  # nothing asked twice, nothing lost
    assert any("cut off by a crash" in m for m in messages)
    assert (out / (LOG_NAME + ".torn")).read_bytes().startswith(b'{"chunk_id": "doc03#2"')
    for name in SUITE_FILES:
        assert (out / name).read_bytes() == (whole / name).read_bytes(), name


def test_budget_cap_stops_the_run_before_it_is_crossed(docs, model, tmp_path):
    out = tmp_path / "suite"
    plan: list[str] = []
    run(options(docs, out, model, dry_run=True), FakeAPI(forbid=True), plan)
    estimated = next(m for m in plan if m.startswith("estimate:"))
    tin, tout = (int(x.split()[0].replace(",", "")) for x in estimated.split("about ")[1].split(" input + "))
    # the estimate fits the budget, but the answers run far longer than expected (300 tokens each)
    budget = tin + tout
    api = FakeAPI(output_tokens=300)
    messages: list[str] = []
    outcome = run(options(docs, out, model, concurrency=1, budget_tokens=budget, budget_usd=None), api, messages)
    entries = log_entries(out)
    used = sum(e["usage"]["input_tokens"] + e["usage"]["output_tokens"] for e in entries)
    assert 0 < len(api.requests) < len(corpus(out)) and len(entries) == len(api.requests)
    assert used <= budget
    # it stopped because the next request's worst case (prompt at 3.5 characters a token + 10% + 10, plus
    # max_tokens of answer) no longer fitted, not earlier
    templates = load_templates()
    worst = max(int(-(-len("".join(templates.render(c, 3))) // 3.5 * 1.1)) + 11 + 320
                for c in _chunks_of(out))
    assert budget - used < worst
    assert outcome.exit_code == 1 and any("budget reached" in m for m in messages)


def _chunks_of(out: Path):
    from embedgate.trainers.generate.chunk import Chunk

    texts = corpus(out)
    titles = {r["_id"]: r["title"] for r in map(json.loads, (out / "corpus.jsonl").read_text().splitlines())}
    for r in map(json.loads, (out / "chunks.jsonl").read_text().splitlines()):
        yield Chunk(id=r["id"], doc_id=r["doc_id"], n=r["n"], text=texts[r["id"]], title=titles[r["id"]],
                    section=r["section"], char_start=r["char_start"], char_end=r["char_end"],
                    token_start=r["token_start"], token_end=r["token_end"])


def test_estimate_over_the_budget_sends_and_writes_nothing(docs, model, tmp_path):
    out = tmp_path / "suite"
    with pytest.raises(ConfigError, match=r"exceeds the budget \$0.01; nothing was sent"):
        run(options(docs, out, model, budget_usd=0.01), FakeAPI(forbid=True))
    assert not out.exists()


def test_dry_run_sends_nothing_and_its_estimate_matches_the_run(docs, model, tmp_path):
    out = tmp_path / "suite"
    messages: list[str] = []
    outcome = run(options(docs, out, model, dry_run=True), FakeAPI(forbid=True), messages)
    assert outcome.exit_code == 0 and not out.exists()
    line = next(m for m in messages if m.startswith("estimate:"))
    n_requests = int(line.split()[1])
    api = FakeAPI()
    run(options(docs, out, model), api)
    assert len(api.requests) == n_requests
    # the input estimate errs on the high side of the real usage (3.5 characters per token against 4 here)
    est_input = int(line.split("about ")[1].split()[0].replace(",", ""))
    real_input = sum(e["usage"]["input_tokens"] for e in log_entries(out))
    assert real_input <= est_input <= 1.3 * real_input


def test_api_key_never_reaches_logs_files_errors_or_reprs(docs, model, tmp_path, sdk_sleeps, caplog, capsys):
    caplog.set_level(logging.DEBUG)

    def plan(passage, attempt, served):
        if served == 1:
            return error(429, "rate_limit_error", "slow down", {"retry-after": "1"})
        if served == 2:
            return FakeAPI.ok_response(None, passage, 3, "not json")
        if served in (4, 5, 6):
            return error(500, "api_error", "Internal server error")
        return None

    out = tmp_path / "suite"
    api = FakeAPI(plan)
    opts = options(docs, out, model, concurrency=1, max_retries=2)
    outcome = run(opts, api, None)
    assert api.api_keys == {KEY}  # the key was used...
    with pytest.raises(FatalAPIError) as err:  # ...and an authentication failure does not echo it
        run(options(docs, tmp_path / "other", model), FakeAPI(lambda p, a, s: error(
            401, "authentication_error", "invalid x-api-key")))
    from embedgate.harness.shells.cli import main

    rc = main(["generate", str(docs), "--out", str(tmp_path / "cli"), "--tokenizer", str(model), "--dry-run",
               "--chunk-tokens", "64", "--overlap", "16"])
    assert rc == 0
    texts = [caplog.text, str(err.value), repr(err.value), repr(opts), repr(outcome), *capsys.readouterr()]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    assert texts and not [t[:80] for t in texts if KEY in t]
    assert "authentication_error" in str(err.value)


def test_a_fatal_error_stops_the_run_at_once(docs, model, tmp_path):
    api = FakeAPI(lambda p, a, s: error(404, "not_found_error", "model: claude-nonexistent"))
    with pytest.raises(FatalAPIError, match="not_found_error"):
        run(options(docs, tmp_path / "suite", model, concurrency=2), api)
    assert len(api.requests) <= 2  # no request is started after the refusal is seen (two were in flight)


def test_parse_answer_is_strict():
    ok = parse_answer('{"queries": ["a b c", "d e f"]}', 3, "end_turn")
    assert ok.queries == ["a b c", "d e f"] and ok.error is None
    assert parse_answer('[ "a b c" ]', 3, "end_turn").error.startswith("unexpected JSON shape")
    assert parse_answer('{"queries": ["a b c"]} and more', 3, "end_turn").error.startswith("malformed JSON")
    assert parse_answer("", 3, "refusal").error == "the model refused"
    assert parse_answer("```json\n{\"queries\": [\"x y z\"]}\n```", 3, "end_turn").queries == ["x y z"]
    assert parse_answer("``` {\"queries\": [\"x y z\"]}", 3, "end_turn").error.startswith("malformed JSON")


def test_prices_and_budget_rules():
    assert price_for("claude-haiku-4-5-20251001").cost(1_000_000, 1_000_000) == pytest.approx(6.0)
    assert price_for("claude-haiku-4-5").cost(2_000, 300) == pytest.approx(0.002 + 0.0015)
    assert not price_for("some-future-model").known
    with pytest.raises(ConfigError, match="no price is known"):
        Budget(price_for("some-future-model"), max_usd=1.0)
    b = Budget(price_for("claude-haiku-4-5"), max_usd=0.01)
    r1 = b.reserve(2_000, 1_000)  # $0.007 worst case
    assert r1 is not None and b.reserve(2_000, 1_000) is None  # a second one would cross $0.01
    assert b.settle(r1, 1_500, 100, prompt_chars=6_000) == pytest.approx(0.002)
    assert b.reserve(2_000, 1_000) is not None  # the real cost freed the difference


def test_rate_limiter_spaces_requests():
    now = [100.0]
    slept: list[float] = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(120, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        limiter.wait()
    assert slept == [0.5, 0.5, 0.5]


def test_concurrency_cap_holds(docs, model, tmp_path):
    import threading

    state = {"now": 0, "max": 0}
    lock = threading.Lock()

    def plan(passage, attempt, served):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        threading.Event().wait(0.01)
        with lock:
            state["now"] -= 1
        return None

    run(options(docs, tmp_path / "suite", model, concurrency=2, max_documents=4), FakeAPI(plan))
    assert state["max"] == 2
