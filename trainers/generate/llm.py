"""Queries from Claude through the `anthropic` SDK: prompt templates, strict answer parsing, a rate limit, a
concurrency cap and a budget cap around the SDK's own retries.

The SDK already retries 408/409/429/5xx (529 overloaded included) and connection errors with exponential backoff,
honouring ``retry-after`` / ``retry-after-ms``; we set its ``max_retries`` and add only what it lacks. The API key
goes to the client and nowhere else: it is never logged, written, or put in an error message.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import string
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from embedgate.harness.errors import ConfigError, EmbedgateError

from .chunk import Chunk
from .journal import Journal
from .pricing import CHARS_PER_TOKEN, Estimate, Price, estimate_input_tokens, expected_output_tokens

log = logging.getLogger(__name__)

DEFAULT_MODEL = "claude-haiku-4-5"
PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"
DEFAULT_SYSTEM_PROMPT = PROMPTS_DIR / "queries.system.txt"
DEFAULT_USER_PROMPT = PROMPTS_DIR / "queries.user.txt"
PLACEHOLDERS = {"passage", "n", "title", "section", "doc_id"}
MAX_QUERY_CHARS = 500
# Models with structured outputs (output_config.format, generally available): the answer is then constrained to
# ANSWER_SCHEMA. Other models get the same request without it; the strict parser checks every answer either way.
STRUCTURED_OUTPUT_MODELS = ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-sonnet-4-6", "claude-opus-4-5",
                            "claude-opus-4-6", "claude-opus-4-7")
ANSWER_SCHEMA = {"type": "object", "properties": {"queries": {"type": "array", "items": {"type": "string"}}},
                 "required": ["queries"], "additionalProperties": False}
EXCERPT_CHARS = 300


# ----------------------------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class PromptTemplates:
    system: str
    user: str
    system_path: str
    user_path: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(f"{self.system}\x1e{self.user}".encode("utf-8")).hexdigest()

    def render(self, chunk: Chunk, n: int) -> tuple[str, str]:
        values = {"passage": chunk.text, "n": str(n), "title": chunk.title or "(untitled)",
                  "section": chunk.section or "(none)", "doc_id": chunk.doc_id}
        return (string.Template(self.system).substitute(values), string.Template(self.user).substitute(values))


def _placeholders(text: str, path: Path) -> set[str]:
    found = set()
    for m in string.Template.pattern.finditer(text):
        if m.group("invalid") is not None:
            line = text[: m.start()].count("\n") + 1
            raise ConfigError("a lone `$` in a prompt template; write `$$` for a dollar sign", path=path, line=line)
        name = m.group("named") or m.group("braced")
        if name:
            if name not in PLACEHOLDERS:
                line = text[: m.start()].count("\n") + 1
                raise ConfigError(f"unknown placeholder ${name}; known: {', '.join('$' + p for p in sorted(PLACEHOLDERS))}",
                                  path=path, line=line)
            found.add(name)
    return found


def load_templates(system_path: str | Path | None = None, user_path: str | Path | None = None) -> PromptTemplates:
    sp, up = Path(system_path or DEFAULT_SYSTEM_PROMPT), Path(user_path or DEFAULT_USER_PROMPT)
    texts = []
    for p in (sp, up):
        if not p.is_file():
            raise ConfigError("prompt template not found", path=p)
        try:
            texts.append(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigError(f"not valid UTF-8 ({exc.reason})", path=p) from None
    _placeholders(texts[0], sp)
    missing = {"passage", "n"} - _placeholders(texts[1], up)
    if missing:
        raise ConfigError(f"the user prompt must contain {', '.join('$' + m for m in sorted(missing))}", path=up)
    return PromptTemplates(texts[0].strip(), texts[1].strip(), str(sp), str(up))


# ----------------------------------------------------------------------------------------------- parsing


@dataclass
class ParsedAnswer:
    queries: list[str]
    dropped: list[dict[str, str]]  # single items left out: {"text", "reason"}
    error: str | None = None  # the whole answer is unusable
    retryable: bool = False  # another sample might do better (malformed, truncated)


_FENCE_RE = re.compile(r"\A```(?:json)?[ \t]*\n(.*)\n```\Z", re.S)


def parse_answer(text: str, n: int, stop_reason: str | None) -> ParsedAnswer:
    """Strict: the answer must be one JSON object {"queries": [str, ...]} (a single ```json fence around it is
    tolerated). Items that are not non-empty strings, or beyond the n asked for, are dropped one by one."""
    if stop_reason == "refusal":
        return ParsedAnswer([], [], "the model refused", retryable=False)
    body = text.strip()
    m = _FENCE_RE.match(body)
    if m:
        body = m.group(1).strip()
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as exc:
        reason = ("answer cut off at max_tokens" if stop_reason == "max_tokens"
                  else f"malformed JSON ({exc.msg} at line {exc.lineno} column {exc.colno})")
        return ParsedAnswer([], [], reason, retryable=True)
    if not isinstance(obj, dict) or not isinstance(obj.get("queries"), list):
        return ParsedAnswer([], [], 'unexpected JSON shape (expected {"queries": [...]})', retryable=True)
    extra_keys = sorted(set(obj) - {"queries"})
    queries, dropped = [], []
    for item in obj["queries"]:
        if not isinstance(item, str):
            dropped.append({"text": json.dumps(item, ensure_ascii=False)[:EXCERPT_CHARS], "reason": "not a string"})
        elif not item.strip():
            dropped.append({"text": item, "reason": "empty"})
        elif len(item) > MAX_QUERY_CHARS:
            dropped.append({"text": item[:EXCERPT_CHARS], "reason": f"longer than {MAX_QUERY_CHARS} characters"})
        elif len(queries) >= n:
            dropped.append({"text": item, "reason": f"more than the {n} asked for"})
        else:
            queries.append(" ".join(item.split()))
    if extra_keys:
        log.debug("answer had extra keys %s (ignored)", extra_keys)
    return ParsedAnswer(queries, dropped)


# ----------------------------------------------------------------------------------------------- limits


class RateLimiter:
    """Spaces request starts at least 60/rpm seconds apart (a smooth limit: no bursts for the server to punish)."""

    def __init__(self, requests_per_minute: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if not requests_per_minute > 0:
            raise ConfigError(f"requests per minute must be positive, got {requests_per_minute}", field="rpm")
        self.interval = 60.0 / requests_per_minute
        self._clock, self._sleep = clock, sleep
        self._next = -math.inf
        self._lock = threading.Lock()

    def wait(self) -> float:
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        delay = start - now
        if delay > 0:
            self._sleep(delay)
        return delay


@dataclass
class Reservation:
    usd: float
    tokens: int


class Budget:
    """A hard cap for one run, in dollars and/or tokens. A request is sent only after its worst case (estimated
    input plus max_tokens of output) has been reserved; the real `usage` then replaces the reservation. So the
    run stops before a request could take it over the cap, not after."""

    def __init__(self, price: Price, *, max_usd: float | None = None, max_tokens: int | None = None):
        if max_usd is not None and not price.known:
            raise ConfigError(f"no price is known for {price.model}: give --price IN,OUT (dollars per million "
                              "tokens) or a token budget (--budget-tokens)", field="budget_usd")
        self.price, self.max_usd, self.max_tokens = price, max_usd, max_tokens
        self.spent_usd = 0.0
        self.spent_tokens = 0
        self._reserved_usd = 0.0
        self._reserved_tokens = 0
        self._lock = threading.Lock()
        self._chars_per_token = CHARS_PER_TOKEN
        self._calibration = [0, 0]  # characters and input tokens seen in real answers

    def input_tokens(self, prompt_chars: int) -> int:
        """Input tokens of a prompt, from the ratio seen so far (never assuming more than the default ratio)."""
        with self._lock:
            ratio = min(self._chars_per_token, CHARS_PER_TOKEN)
        return int(math.ceil(prompt_chars / ratio * 1.1)) + 10

    def reserve(self, input_tokens: int, output_tokens: int) -> Reservation | None:
        usd = self.price.cost(input_tokens, output_tokens) or 0.0
        tokens = input_tokens + output_tokens
        with self._lock:
            if self.max_usd is not None and self.spent_usd + self._reserved_usd + usd > self.max_usd:
                return None
            if self.max_tokens is not None and self.spent_tokens + self._reserved_tokens + tokens > self.max_tokens:
                return None
            self._reserved_usd += usd
            self._reserved_tokens += tokens
        return Reservation(usd, tokens)

    def settle(self, reservation: Reservation, input_tokens: int, output_tokens: int, prompt_chars: int = 0) -> float:
        """Replace a reservation by what was really used; returns the real cost in dollars (0 if unpriced)."""
        usd = self.price.cost(input_tokens, output_tokens) or 0.0
        with self._lock:
            self._reserved_usd -= reservation.usd
            self._reserved_tokens -= reservation.tokens
            self.spent_usd += usd
            self.spent_tokens += input_tokens + output_tokens
            if prompt_chars and input_tokens:
                self._calibration[0] += prompt_chars
                self._calibration[1] += input_tokens
                self._chars_per_token = self._calibration[0] / self._calibration[1]
        return usd

    def release(self, reservation: Reservation) -> None:
        with self._lock:
            self._reserved_usd -= reservation.usd
            self._reserved_tokens -= reservation.tokens

    def would_exceed(self, estimate: Estimate) -> str | None:
        if self.max_usd is not None and estimate.usd is not None and estimate.usd > self.max_usd:
            return f"the estimate ${estimate.usd:.2f} exceeds the budget ${self.max_usd:.2f}"
        if self.max_tokens is not None and estimate.tokens > self.max_tokens:
            return f"the estimate of {estimate.tokens:,} tokens exceeds the budget of {self.max_tokens:,} tokens"
        return None


# ----------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class LLMSettings:
    model: str = DEFAULT_MODEL
    queries_per_chunk: int = 3
    max_tokens: int | None = None  # default: enough for n queries with room to spare
    structured_output: bool | None = None  # None: on for the models known to support output_config.format
    concurrency: int = 4
    requests_per_minute: float = 50.0
    max_retries: int = 6
    timeout_s: float = 120.0
    parse_retries: int = 1
    max_consecutive_failures: int = 5

    def __post_init__(self):
        checks = [("queries_per_chunk", self.queries_per_chunk, 1, 50), ("concurrency", self.concurrency, 1, 64),
                  ("max_retries", self.max_retries, 0, 50), ("parse_retries", self.parse_retries, 0, 5)]
        for name, value, lo, hi in checks:
            if not isinstance(value, int) or not lo <= value <= hi:
                raise ConfigError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}", field=name)
        if self.max_tokens is not None and not (isinstance(self.max_tokens, int) and self.max_tokens >= 16):
            raise ConfigError(f"max_tokens must be an integer >= 16, got {self.max_tokens!r}", field="max_tokens")

    @property
    def uses_schema(self) -> bool:
        if self.structured_output is not None:
            return self.structured_output
        return any(self.model == m or self.model.startswith(m + "-") for m in STRUCTURED_OUTPUT_MODELS)

    @property
    def answer_tokens(self) -> int:
        return self.max_tokens or 64 * self.queries_per_chunk + 128


def estimate(chunks: list[Chunk], templates: PromptTemplates, settings: LLMSettings, price: Price) -> Estimate:
    input_tokens = 0
    for c in chunks:
        system, user = templates.render(c, settings.queries_per_chunk)
        input_tokens += estimate_input_tokens(system + user)
    return Estimate(requests=len(chunks), input_tokens=input_tokens,
                    output_tokens=len(chunks) * expected_output_tokens(settings.queries_per_chunk),
                    output_tokens_worst=len(chunks) * settings.answer_tokens, price=price)


# ----------------------------------------------------------------------------------------------- client


def redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "[redacted]") if secret else text


def build_client(api_key: str, settings: LLMSettings, *, http_client=None, base_url: str | None = None):
    """An `anthropic.Anthropic` client that retries with the SDK's own policy, ``settings.max_retries`` times."""
    import anthropic

    kwargs: dict[str, Any] = {"api_key": api_key, "max_retries": settings.max_retries, "timeout": settings.timeout_s}
    if http_client is not None:
        kwargs["http_client"] = http_client
    if base_url is not None:
        kwargs["base_url"] = base_url
    return anthropic.Anthropic(**kwargs)


class FatalAPIError(EmbedgateError):
    """An answer that no retry will change (bad key, unknown model, no permission): the run stops."""


@dataclass
class RunStats:
    sent: int = 0  # chunks whose request was sent
    logged: int = 0  # chunks with a result in the log (queries or a dropped record)
    failed: dict[str, str] = field(default_factory=dict)  # chunk id -> error, not logged: done again next run
    retries: int = 0  # HTTP retries the SDK made
    parse_retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    stopped: str | None = None  # why the run stopped early (budget, failures)
    skipped_for_budget: int = 0

    def as_dict(self) -> dict:
        return {"sent": self.sent, "logged": self.logged, "failed": len(self.failed),
                "failed_examples": dict(list(self.failed.items())[:10]), "http_retries": self.retries,
                "parse_retries": self.parse_retries, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "usd": round(self.usd, 6), "stopped": self.stopped,
                "chunks_left_for_budget": self.skipped_for_budget}


def _text_of(message) -> str:
    return "".join(getattr(b, "text", "") for b in message.content if getattr(b, "type", "") == "text")


class QueryGenerator:
    """Sends one request per chunk, at most ``concurrency`` at a time, spaced by the rate limiter, each only once
    the budget has room for its worst case; every result is appended to the journal as soon as it arrives."""

    def __init__(self, client, settings: LLMSettings, templates: PromptTemplates, budget: Budget,
                 journal: Journal, *, limiter: RateLimiter | None = None, api_key: str | None = None,
                 progress: Callable[[str], None] | None = None):
        self.client, self.settings, self.templates = client, settings, templates
        self.budget, self.journal = budget, journal
        self.limiter = limiter or RateLimiter(settings.requests_per_minute)
        self._secret = api_key
        self._say = progress or (lambda msg: None)
        self._lock = threading.Lock()
        self.stats = RunStats()

    # one chunk, in a worker thread
    def _ask(self, chunk: Chunk, reservation) -> dict[str, Any]:
        s = self.settings
        system, user = self.templates.render(chunk, s.queries_per_chunk)
        prompt_chars = len(system) + len(user)
        used_in = used_out = retries = 0
        cost = 0.0
        answers: list[dict[str, Any]] = []
        parsed: ParsedAnswer | None = None
        for attempt in range(1 + s.parse_retries):
            if attempt > 0:
                reservation = self.budget.reserve(self.budget.input_tokens(prompt_chars), s.answer_tokens)
                if reservation is None:
                    parsed.error += "; no budget left to ask again"
                    break
                with self._lock:
                    self.stats.parse_retries += 1
            try:
                extra = {"output_config": {"format": {"type": "json_schema", "schema": ANSWER_SCHEMA}}} \
                    if s.uses_schema else {}
                raw = self.client.messages.with_raw_response.create(
                    model=s.model, max_tokens=s.answer_tokens, system=system,
                    messages=[{"role": "user", "content": user}], **extra)
                message = raw.parse()
            except BaseException:
                self.budget.release(reservation)
                raise
            retries += raw.retries_taken
            usage = message.usage
            used_in += usage.input_tokens
            used_out += usage.output_tokens
            cost += self.budget.settle(reservation, usage.input_tokens, usage.output_tokens, prompt_chars)
            text = _text_of(message)
            parsed = parse_answer(text, s.queries_per_chunk, message.stop_reason)
            answers.append({"request_id": raw.headers.get("request-id"), "stop_reason": message.stop_reason,
                            "excerpt": text[:EXCERPT_CHARS] if parsed.error else None})
            if parsed.error is None or not parsed.retryable:
                break
        entry = {
            "chunk_id": chunk.id, "doc_id": chunk.doc_id, "chunk_sha256": chunk.sha256, "model": s.model,
            "queries_per_chunk": s.queries_per_chunk, "prompt_sha256": self.templates.sha256,
            "status": "ok" if parsed.error is None else "dropped",
            "queries": parsed.queries, "dropped_items": parsed.dropped, "reason": parsed.error,
            "attempts": len(answers), "answers": answers, "http_retries": retries,
            "usage": {"input_tokens": used_in, "output_tokens": used_out}, "cost_usd": round(cost, 8),
            "structured_output": s.uses_schema, "max_tokens": s.answer_tokens,
        }
        self.journal.append(entry)
        with self._lock:
            self.stats.logged += 1
            self.stats.retries += retries
            self.stats.input_tokens += used_in
            self.stats.output_tokens += used_out
            self.stats.usd += cost
        return entry

    def _classify(self, exc: BaseException) -> str:
        """'fatal' (stop the run), 'transient' (leave the chunk for the next run) or 'crash' (re-raise)."""
        import anthropic

        if isinstance(exc, (anthropic.AuthenticationError, anthropic.PermissionDeniedError,
                            anthropic.NotFoundError, anthropic.BadRequestError, anthropic.PaymentRequiredError)):
            return "fatal"
        if isinstance(exc, (anthropic.APIStatusError, anthropic.APIConnectionError)):
            return "transient"  # 429/5xx/connection errors the SDK's retries did not get past
        return "crash"  # anything else is a bug or an interruption: let it surface

    def run(self, chunks: list[Chunk]) -> RunStats:
        s = self.settings
        consecutive = 0
        fatal: BaseException | None = None
        pending: dict[Future, Chunk] = {}
        executor = ThreadPoolExecutor(max_workers=s.concurrency, thread_name_prefix="embedgate-llm")

        def collect(done) -> None:
            nonlocal consecutive, fatal
            for fut in done:
                chunk = pending.pop(fut)
                exc = fut.exception()
                if exc is None:
                    consecutive = 0
                    continue
                kind = self._classify(exc)
                if kind == "crash":
                    raise exc
                message = redact(f"{type(exc).__name__}: {exc}", self._secret)
                if kind == "fatal":
                    fatal = fatal or FatalAPIError(f"the API refused the request ({message}); nothing more is sent")
                    continue
                self.stats.failed[chunk.id] = message
                consecutive += 1
                log.warning("chunk %s failed after the SDK's retries: %s", chunk.id, message)

        try:
            for i, chunk in enumerate(chunks):
                while len(pending) >= s.concurrency:
                    collect(wait(pending, return_when=FIRST_COMPLETED).done)
                if fatal is not None:
                    break
                if consecutive >= s.max_consecutive_failures:
                    self.stats.stopped = (f"{consecutive} requests in a row failed after retries; stopped. "
                                          "Run the same command again to go on")
                    break
                system, user = self.templates.render(chunk, s.queries_per_chunk)
                reservation = self.budget.reserve(self.budget.input_tokens(len(system) + len(user)),
                                                  s.answer_tokens)
                if reservation is None:
                    self.stats.stopped = "budget reached: the next request could cross it"
                    self.stats.skipped_for_budget = len(chunks) - i
                    break
                self.limiter.wait()
                self.stats.sent += 1
                pending[executor.submit(self._ask, chunk, reservation)] = chunk
                if (i + 1) % 25 == 0:
                    self._say(f"  {i + 1}/{len(chunks)} requests sent, ${self.budget.spent_usd:.4f} spent")
            while pending:
                collect(wait(pending, return_when=FIRST_COMPLETED).done)
        except BaseException:
            executor.shutdown(wait=True, cancel_futures=True)  # in-flight answers still reach the log
            raise
        executor.shutdown(wait=True)
        if fatal is not None:
            raise fatal
        return self.stats
