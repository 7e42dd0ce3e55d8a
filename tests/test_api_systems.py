"""The ``api`` system kind against an httpx mock transport (no network): each vendor's SDK, or for Voyage its REST
endpoint, answered by a fake server that records every request."""
from __future__ import annotations

import hashlib
import json
import logging
import sys
import threading
import time

import httpx
import numpy as np
import pytest

from embedgate.harness.encode import EmbeddingCache, encode_texts
from embedgate.harness.errors import ConfigError, EmbedgateError
from embedgate.harness.schema import ApiSystem
from embedgate.harness.systems import api
from embedgate.harness.systems.api import ApiEncoder, ApiError, BudgetExceeded, check_api_system, estimate_tokens

PROVIDERS = ["openai", "voyage", "cohere"]
KEY_VAR = {"openai": "OPENAI_API_KEY", "voyage": "VOYAGE_API_KEY", "cohere": "CO_API_KEY"}
SDK = {"openai": "openai", "voyage": "voyageai", "cohere": "cohere"}
MODEL = {"openai": "text-embedding-3-small", "voyage": "voyage-3.5", "cohere": "embed-v4.0"}
URL = {"openai": "https://api.openai.com/v1/embeddings", "voyage": "https://api.voyageai.com/v1/embeddings",
       "cohere": "https://api.cohere.com/v2/embed"}
FAKE_KEY = "sk-EMBEDGATE-fake-key-7f3a9c21d4e8b6"
DIM = 16
TEXTS = [f"document number {i}: a clause about payment terms" for i in range(10)]


def raw_vector(text: str) -> list[float]:
    """What the fake server answers for a text: deterministic, not unit length."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return (np.random.default_rng(seed).normal(size=DIM) * 3.0).round(6).tolist()


def expected(texts: list[str]) -> np.ndarray:
    arr = np.asarray([raw_vector(t) for t in texts], dtype=np.float64)
    return (arr / np.linalg.norm(arr, axis=1, keepdims=True)).astype(np.float32)


class FakeServer:
    """An httpx MockTransport handler speaking one provider's embedding API. ``fail(n, texts)`` may return a
    Response, raise an httpx error, or return None to answer normally; n counts requests from 1."""

    def __init__(self, provider: str, fail=None, tokens_per_text: int | None = 7, delay_s: float = 0.0):
        self.provider, self.fail, self.tokens_per_text, self.delay_s = provider, fail, tokens_per_text, delay_s
        self.bodies: list[dict] = []
        self.auth: set[str] = set()
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()

    @property
    def sent_texts(self) -> list[str]:
        return [t for b in self.bodies for t in b["texts" if self.provider == "cohere" else "input"]]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == URL[self.provider]
        body = json.loads(request.content)
        texts = body["texts" if self.provider == "cohere" else "input"]
        with self.lock:
            self.bodies.append(body)
            self.auth.add(request.headers.get("authorization", ""))
            n = len(self.bodies)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            if self.fail is not None:
                answer = self.fail(n, texts)
                if answer is not None:
                    return answer
            return httpx.Response(200, json=success_body(self.provider, texts, self.tokens_per_text))
        finally:
            with self.lock:
                self.in_flight -= 1


def success_body(provider: str, texts: list[str], tokens_per_text: int | None) -> dict:
    vectors = [raw_vector(t) for t in texts]
    tokens = None if tokens_per_text is None else tokens_per_text * len(texts)
    if provider == "cohere":
        body = {"id": "e-1", "response_type": "embeddings_by_type", "embeddings": {"float": vectors}, "texts": texts}
        if tokens is not None:
            body["meta"] = {"billed_units": {"input_tokens": float(tokens)}}  # Cohere reports a float
        return body
    # openai and voyage carry an index: answer in reverse order to prove the client sorts by it
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in reversed(list(enumerate(vectors)))]
    body = {"object": "list", "data": data, "model": MODEL[provider]}
    if tokens is not None:
        body["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens} if provider == "openai" else \
            {"total_tokens": tokens}
    return body


def make_spec(provider: str, **overrides) -> ApiSystem:
    fields = {"kind": "api", "provider": provider, "model": MODEL[provider], "dimensions": DIM, "batch_size": 2,
              "concurrency": 1, "max_retries": 2, "timeout_s": 5.0}
    return ApiSystem(**{**fields, **overrides})


def make_encoder(provider: str, server: FakeServer, **overrides) -> ApiEncoder:
    enc = ApiEncoder(make_spec(provider, **overrides), http_client=httpx.Client(transport=httpx.MockTransport(server)),
                     environ={KEY_VAR[provider]: FAKE_KEY})
    enc.backoff_base_s = 0.0
    enc.sleeps = []
    enc.sleep = enc.sleeps.append  # record the delays instead of sleeping
    return enc


def cost(provider: str, tokens: int) -> float:
    return tokens * api.PRICES[provider][MODEL[provider]] / 1e6


# ------------------------------------------------------------------------------------------------ success


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("role", ["query", "document"])
def test_success_vectors_order_and_request_bodies(provider, role):
    server = FakeServer(provider)
    enc = make_encoder(provider, server, batch_size=2, concurrency=2)
    texts = TEXTS[:5]
    out = enc.embed(texts, role, False)

    assert out.dtype == np.float32 and out.shape == (5, DIM)
    np.testing.assert_allclose(out, expected(texts), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)
    assert sorted(len(b["texts" if provider == "cohere" else "input"]) for b in server.bodies) == [1, 2, 2]
    assert sorted(server.sent_texts) == sorted(texts)
    assert server.auth == {f"Bearer {FAKE_KEY}"}

    body = server.bodies[0]
    if provider == "openai":
        assert set(body) == {"model", "input", "dimensions", "encoding_format"}
        assert (body["model"], body["dimensions"], body["encoding_format"]) == (MODEL[provider], DIM, "float")
    elif provider == "voyage":
        assert set(body) == {"model", "input", "input_type", "output_dimension", "output_dtype"}
        assert (body["model"], body["output_dimension"], body["output_dtype"]) == (MODEL[provider], DIM, "float")
        assert body["input_type"] == role
    else:
        assert set(body) == {"model", "texts", "input_type", "output_dimension", "embedding_types"}
        assert (body["model"], body["output_dimension"], body["embedding_types"]) == (MODEL[provider], DIM, ["float"])
        assert body["input_type"] == f"search_{role}"

    info = enc.describe()
    assert (info["requests"], info["retries"], info["tokens"], info["tokens_estimated"]) == (3, 0, 35, 0)
    assert info["cost_usd"] == pytest.approx(cost(provider, 35))
    assert info["price_per_1m_tokens_usd"] == api.PRICES[provider][MODEL[provider]]
    assert info["prices_checked"] == api.PRICES_CHECKED == "2026-12-01"
    assert (info["provider"], info["model"], info["dimensions"], info["dimension"]) == (provider, MODEL[provider],
                                                                                        DIM, DIM)
    assert enc.name == f"{provider}:{MODEL[provider]}@{DIM}"
    assert enc.chunk_size == 4


@pytest.mark.parametrize("provider", PROVIDERS)
def test_input_types_and_cache_keys(provider):
    on = make_encoder(provider, FakeServer(provider))
    off = make_encoder(provider, FakeServer(provider), input_type=False)
    sent = {"openai": (None, None), "voyage": ("query", "document"), "cohere": ("search_query", "search_document")}
    sent_off = {"openai": (None, None), "voyage": (None, None), "cohere": ("search_document", "search_document")}
    assert (on.cache_key("query")["input_type"], on.cache_key("document")["input_type"]) == sent[provider]
    assert (off.cache_key("query")["input_type"], off.cache_key("document")["input_type"]) == sent_off[provider]
    assert on.cache_key("query") == {"kind": "api", "provider": provider, "model": MODEL[provider],
                                     "dimensions": DIM, "input_type": sent[provider][0],
                                     "normalisation": api.NORMALISATION}
    # the same vectors for both roles exactly when the same input type is sent
    assert (on.cache_key("query") == on.cache_key("document")) == (provider == "openai")
    assert off.cache_key("query") == off.cache_key("document")

    server = FakeServer(provider)
    make_encoder(provider, server, input_type=False).embed(TEXTS[:1], "query", False)
    if provider == "voyage":
        assert "input_type" not in server.bodies[0]
    elif provider == "cohere":
        assert server.bodies[0]["input_type"] == "search_document"  # Cohere's v2 embed requires one


@pytest.mark.parametrize("provider", ["openai", "voyage"])
def test_batches_respect_the_token_limit_per_request(provider):
    server = FakeServer(provider)
    enc = make_encoder(provider, server, batch_size=None, dimensions=None, budget_usd=1.0)
    big = ["x" * 200_000 + str(i) for i in range(3)]  # ~66.7k estimated tokens each
    out = enc.embed(big + ["short"], "document", False)
    per_request = [len(b["input"]) for b in server.bodies]
    if provider == "voyage":  # 120k per request: one big text each, the short one joins the last
        assert per_request == [1, 1, 2]
    else:  # 300k per request: all four fit
        assert per_request == [4]
    assert "dimensions" not in server.bodies[0] and "output_dimension" not in server.bodies[0]
    np.testing.assert_allclose(out, expected(big + ["short"]), rtol=1e-6, atol=1e-7)
    assert enc.batch_size == {"openai": 2048, "voyage": 1000}[provider]


def test_concurrency_is_bounded_and_used():
    server = FakeServer("openai", delay_s=0.05)
    enc = make_encoder("openai", server, batch_size=1, concurrency=3)
    texts = TEXTS[:9]
    out = enc.embed(texts, "document", False)
    assert len(server.bodies) == 9
    assert server.max_in_flight == 3
    np.testing.assert_allclose(out, expected(texts), rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------------------------------------ retries


def status(code: int, headers: dict | None = None, **body) -> httpx.Response:
    return httpx.Response(code, json=body or {"message": f"status {code}"}, headers=headers or {})


@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_then_success_honours_retry_after(provider):
    server = FakeServer(provider, fail=lambda n, texts: status(429, {"retry-after": "3"}) if n == 1 else None)
    enc = make_encoder(provider, server)
    out = enc.embed(TEXTS[:2], "query", False)
    np.testing.assert_allclose(out, expected(TEXTS[:2]), rtol=1e-6, atol=1e-7)
    assert len(server.bodies) == 2 and server.bodies[0] == server.bodies[1]
    assert enc.sleeps == [3.0]
    info = enc.describe()
    assert (info["requests"], info["retries"], info["tokens"]) == (2, 1, 14)  # the refused request cost nothing


@pytest.mark.parametrize("provider", PROVIDERS)
def test_5xx_exhausted_is_an_api_error(provider):
    server = FakeServer(provider, fail=lambda n, texts: status(503 if n % 2 else 500))
    enc = make_encoder(provider, server, max_retries=2)
    with pytest.raises(ApiError) as err:
        enc.embed(TEXTS[:2], "query", False)
    assert not isinstance(err.value, BudgetExceeded) and isinstance(err.value, EmbedgateError)
    assert len(server.bodies) == 3  # 1 + max_retries, not more: the SDK's own retries are off
    msg = str(err.value)
    assert f"{provider}:{MODEL[provider]}" in msg and "HTTP 503" in msg and "3 attempts" in msg
    assert "2 of the 2 texts of this step not embedded" in msg and "0 texts embedded earlier" in msg
    assert err.value.status == 503
    assert "Traceback" not in msg and err.value.__cause__ is None and err.value.__suppress_context__
    assert len(enc.sleeps) == 2
    assert enc.describe()["cost_usd"] == 0


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.ConnectError])
def test_timeout_or_connection_error_then_success(provider, error):
    def fail(n, texts):
        if n <= 2:
            raise error("simulated", request=httpx.Request("POST", URL[provider]))

    server = FakeServer(provider, fail=fail)
    enc = make_encoder(provider, server, max_retries=2)
    out = enc.embed(TEXTS[:3], "document", False)
    np.testing.assert_allclose(out, expected(TEXTS[:3]), rtol=1e-6, atol=1e-7)
    assert enc.describe()["retries"] == 2 and enc.describe()["requests"] == 4


def test_backoff_is_exponential_with_jitter_and_capped():
    server = FakeServer("openai", fail=lambda n, texts: status(500))
    enc = make_encoder("openai", server, max_retries=5)
    enc.backoff_base_s, enc.backoff_max_s = 1.0, 10.0
    with pytest.raises(ApiError):
        enc.embed(TEXTS[:1], "query", False)
    assert len(enc.sleeps) == 5
    for attempt, delay in enumerate(enc.sleeps):
        full = min(10.0, 2.0 ** attempt)
        assert full / 2 <= delay <= full
    assert enc.sleeps[-1] <= 10.0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_other_client_errors_are_not_retried(provider):
    server = FakeServer(provider, fail=lambda n, texts: status(400, message="output_dimension 16 is not supported"))
    enc = make_encoder(provider, server)
    with pytest.raises(ApiError, match="HTTP 400: output_dimension 16 is not supported") as err:
        enc.embed(TEXTS[:2], "query", False)
    assert len(server.bodies) == 1 and err.value.status == 400


# ------------------------------------------------------------------------------------------------ malformed


def malformed(provider: str, kind: str, texts: list[str]) -> httpx.Response:
    if kind == "not json":
        return httpx.Response(200, content=b"<html>gateway</html>", headers={"content-type": "application/json"})
    body = success_body(provider, texts, 7)
    vectors = body["embeddings"]["float"] if provider == "cohere" else body["data"]
    if kind == "missing data":
        body.pop("embeddings" if provider == "cohere" else "data")
    elif kind == "wrong count":
        del vectors[0]
    elif kind == "non-numeric":
        if provider == "cohere":
            vectors[0] = ["a"] * DIM
        else:
            vectors[0]["embedding"] = ["a"] * DIM
    elif kind == "wrong width":
        if provider == "cohere":
            vectors[0] = vectors[0][:-1]
        else:
            vectors[0]["embedding"] = vectors[0]["embedding"][:-1]
    elif kind == "zero vector":
        if provider == "cohere":
            vectors[0] = [0.0] * DIM
        else:
            vectors[0]["embedding"] = [0.0] * DIM
    return httpx.Response(200, json=body)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("kind", ["not json", "missing data", "wrong count", "non-numeric", "wrong width",
                                  "zero vector"])
def test_malformed_body_is_an_api_error(provider, kind):
    server = FakeServer(provider, fail=lambda n, texts: malformed(provider, kind, texts))
    enc = make_encoder(provider, server)
    with pytest.raises(ApiError, match="malformed response") as err:
        enc.embed(TEXTS[:2], "query", False)
    assert f"{provider}:{MODEL[provider]}" in str(err.value)
    assert len(server.bodies) == 1  # not retried
    assert enc.describe()["cost_usd"] == 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_missing_usage_falls_back_to_the_estimate(provider):
    server = FakeServer(provider, tokens_per_text=None)
    enc = make_encoder(provider, server)
    enc.embed(TEXTS[:2], "query", False)
    est = sum(estimate_tokens(t) for t in TEXTS[:2])
    info = enc.describe()
    assert info["tokens"] == info["tokens_estimated"] == est
    assert info["cost_usd"] == pytest.approx(cost(provider, est))


def test_token_estimate_is_bytes_over_three():
    assert estimate_tokens("abcdef") == 2 and estimate_tokens("abcdefg") == 3
    assert estimate_tokens("é") == 1 and estimate_tokens("日本語") == 3 and estimate_tokens("") == 1


# ------------------------------------------------------------------------------------------------ budget, cache


@pytest.mark.parametrize("provider", PROVIDERS)
def test_budget_exceeded_mid_corpus_keeps_the_paid_chunks(provider, tmp_path):
    per_text = estimate_tokens(TEXTS[0])
    assert all(estimate_tokens(t) == per_text for t in TEXTS)
    # the server reports exactly the estimate, so three requests of two texts fit and the fourth does not
    budget = cost(provider, 6 * per_text) * 1.0001
    server = FakeServer(provider, tokens_per_text=per_text)
    enc = make_encoder(provider, server, batch_size=2, concurrency=1, budget_usd=budget)
    cache = EmbeddingCache(tmp_path)
    with pytest.raises(BudgetExceeded) as err:
        encode_texts(enc, TEXTS, "document", cache)
    assert len(server.bodies) == 3 and server.sent_texts == TEXTS[:6]
    msg = str(err.value)
    assert f"budget_usd {budget:g}" in msg and f"spent ${cost(provider, 6 * per_text):.6f}" in msg
    assert "2 of the 2 texts of this step not embedded" in msg and "6 texts embedded earlier" in msg
    assert enc.describe()["cost_usd"] <= budget

    rerun = FakeServer(provider, tokens_per_text=per_text)
    vecs, stats = encode_texts(make_encoder(provider, rerun), TEXTS, "document", cache)
    assert sorted(rerun.sent_texts) == sorted(TEXTS[6:])  # only what the first run did not pay for
    assert (stats.cached, stats.encoded) == (6, 4)
    np.testing.assert_allclose(vecs, expected(TEXTS), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_step_that_cannot_fit_the_budget_sends_nothing(provider):
    server = FakeServer(provider)
    enc = make_encoder(provider, server, budget_usd=cost(provider, 10))
    with pytest.raises(BudgetExceeded, match="the next 4 texts are estimated"):
        enc.embed(TEXTS[:4], "query", False)
    assert server.bodies == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_crash_mid_corpus_then_resume(provider, tmp_path):
    # healthy for two requests, then 500 forever
    server = FakeServer(provider, fail=lambda n, texts: status(500) if n > 2 else None)
    cache = EmbeddingCache(tmp_path)
    enc = make_encoder(provider, server, batch_size=2, concurrency=1, max_retries=1)
    with pytest.raises(ApiError, match="4 texts embedded earlier"):
        encode_texts(enc, TEXTS, "query", cache)
    assert len(server.bodies) == 4  # two good requests, one failing request tried twice

    rerun = FakeServer(provider)
    enc2 = make_encoder(provider, rerun, batch_size=3, concurrency=2)
    vecs, stats = encode_texts(enc2, TEXTS, "query", cache)
    assert sorted(rerun.sent_texts) == sorted(TEXTS[4:])  # only the missing ones (2 requests at once: any order)
    assert (stats.cached, stats.encoded) == (4, 6)
    np.testing.assert_allclose(vecs, expected(TEXTS), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cache_hit_on_rerun_costs_nothing(provider, tmp_path):
    cache = EmbeddingCache(tmp_path)
    first, _ = encode_texts(make_encoder(provider, FakeServer(provider)), TEXTS, "document", cache)
    server = FakeServer(provider)
    enc = make_encoder(provider, server)
    again, stats = encode_texts(enc, TEXTS, "document", EmbeddingCache(tmp_path))  # a fresh process's cache
    assert server.bodies == [] and (stats.cached, stats.encoded) == (10, 0)
    assert (enc.describe()["requests"], enc.describe()["cost_usd"]) == (0, 0)
    np.testing.assert_array_equal(first, again)
    if provider != "openai":  # the other role is another input type: another namespace, embedded anew
        encode_texts(enc, TEXTS[:2], "query", cache)
        assert len(server.bodies) == 1


# ------------------------------------------------------------------------------------------------ config checks


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("environ", [{}, {"OPENAI_API_KEY": "", "VOYAGE_API_KEY": " ", "CO_API_KEY": ""}])
def test_missing_key_is_a_config_error_naming_the_variable(provider, environ):
    with pytest.raises(ConfigError, match=KEY_VAR[provider]):
        check_api_system(make_spec(provider), environ)
    with pytest.raises(ConfigError, match=KEY_VAR[provider]):
        ApiEncoder(make_spec(provider), environ=environ)


def test_keys_the_sdks_also_read():
    check_api_system(make_spec("cohere"), {"COHERE_API_KEY": FAKE_KEY})  # Cohere's undocumented alternative


def test_voyage_key_file_and_mongodb_host(tmp_path):
    key_file = tmp_path / "voyage.key"
    key_file.write_text("al-atlas-key-123\n")
    seen = []

    def handler(request):
        seen.append((str(request.url), request.headers["authorization"]))
        return httpx.Response(200, json=success_body("voyage", json.loads(request.content)["input"], 7))

    enc = ApiEncoder(make_spec("voyage"), http_client=httpx.Client(transport=httpx.MockTransport(handler)),
                     environ={"VOYAGE_API_KEY_PATH": str(key_file), "VOYAGE_API_KEY": "ignored"})
    enc.embed(["one"], "query", False)
    # the SDK's rule: a MongoDB Atlas key (al-) goes to Atlas's endpoint
    assert seen == [("https://ai.mongodb.com/v1/embeddings", "Bearer al-atlas-key-123")]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sdk_missing_is_a_config_error_naming_the_extra(provider, monkeypatch):
    monkeypatch.setitem(sys.modules, SDK[provider], None)  # makes `import <sdk>` fail
    with pytest.raises(ConfigError) as err:
        check_api_system(make_spec(provider), {KEY_VAR[provider]: FAKE_KEY})
    assert "pip install 'embedgate[api]'" in str(err.value) and f"pip install {SDK[provider]}" in str(err.value)
    with pytest.raises(ConfigError, match=r"embedgate\[api\]"):
        ApiEncoder(make_spec(provider), environ={KEY_VAR[provider]: FAKE_KEY})


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unknown_model_or_oversized_batch_is_a_config_error(provider):
    env = {KEY_VAR[provider]: FAKE_KEY}
    with pytest.raises(ConfigError) as err:
        check_api_system(make_spec(provider, model="future-embedder-9"), env)
    assert "no price is known" in str(err.value) and all(m in str(err.value) for m in api.PRICES[provider])
    limit = {"openai": 2048, "voyage": 1000, "cohere": 96}[provider]
    with pytest.raises(ConfigError, match=f"limit of {limit} texts"):
        check_api_system(make_spec(provider, batch_size=limit + 1), env)
    check_api_system(make_spec(provider, batch_size=limit), env)


# ------------------------------------------------------------------------------------------------ the key


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_key_never_leaks(provider, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []

    def fail(n, batch):
        if n == 1:
            return status(429)  # a retry, logged as a warning
        if batch[0] == "refused":  # a server that echoes the key it was sent
            return status(401, message=f"Incorrect API key provided: {FAKE_KEY}")
        if batch[0] == "broken":
            return status(500, message=f"internal error for key {FAKE_KEY}")
        return None

    server = FakeServer(provider, fail=fail)
    cache_dir = tmp_path / "cache"
    enc = make_encoder(provider, server, max_retries=1)
    encode_texts(enc, TEXTS, "document", EmbeddingCache(cache_dir))
    encode_texts(enc, TEXTS[:3], "query", EmbeddingCache(cache_dir))
    for bad in ("refused", "broken"):
        with pytest.raises(ApiError) as err:
            encode_texts(enc, [bad], "query", EmbeddingCache(cache_dir))
        texts += [str(err.value), repr(err.value), err.value.message]
    assert "the API key was refused" in texts[0] and KEY_VAR[provider] in texts[0]
    assert "internal error for key ***" in texts[3]
    with pytest.raises(BudgetExceeded) as err:
        make_encoder(provider, server, budget_usd=1e-12).embed(["x"], "query", False)
    texts += [str(err.value)]
    with pytest.raises(ConfigError) as err:
        check_api_system(make_spec(provider, model="nope"), {KEY_VAR[provider]: FAKE_KEY})
    texts += [str(err.value)]

    assert server.auth == {f"Bearer {FAKE_KEY}"}  # it was sent, so the checks below are not vacuous
    out = capsys.readouterr()
    texts += [out.out, out.err, caplog.text, json.dumps(enc.describe()), json.dumps(enc.cache_key("query")),
              enc.name]
    texts += [r.getMessage() for r in caplog.records]
    assert any("retry 1 of 1" in r.getMessage() for r in caplog.records)
    for text in texts:
        assert FAKE_KEY not in text
    files = [p for p in cache_dir.rglob("*") if p.is_file()]
    assert len(files) >= 3  # meta.json and shards of both roles' namespaces
    for path in files:
        assert FAKE_KEY.encode() not in path.read_bytes(), path
        assert FAKE_KEY not in str(path)


@pytest.mark.parametrize("provider", ["openai", "cohere"])
def test_an_api_reference_in_a_suite_is_scored_costed_and_cached(provider, small_beir, tiny_model, tmp_path,
                                                                  monkeypatch):
    """End to end through run_suite: the API system is a reference like any other; its dollars and tokens are in
    the result; a second gate run costs nothing (every vector from the cache)."""
    from embedgate.harness.suite import run_suite
    from suite_helpers import write_tiny_suite

    server = FakeServer(provider)

    class Mocked(api.ApiEncoder):
        def __init__(self, spec, **kwargs):
            super().__init__(spec, http_client=httpx.Client(transport=httpx.MockTransport(server)))

    monkeypatch.setattr(api, "ApiEncoder", Mocked)
    monkeypatch.setenv(KEY_VAR[provider], FAKE_KEY)
    table = (f'[references.vendor]\nkind = "api"\nprovider = "{provider}"\nmodel = "{MODEL[provider]}"\n'
             f'dimensions = {DIM}\nbudget_usd = 0.5\n\n'
             '[[gates]]\nkind = "non_inferiority"\nagainst = "vendor"\nmetric = "ndcg@10"\nmargin = 1.0\n')
    folder = write_tiny_suite(tmp_path / "s", str(tiny_model), small_beir, table)
    first = run_suite(folder, str(tiny_model), cache=tmp_path / "cache")
    vendor = first.datasets["main"].systems["vendor"]
    sent = len(server.sent_texts)
    assert vendor.kind == "api" and sent == first.datasets["main"].data["n_documents"] + len(
        first.datasets["main"].queries)
    assert vendor.cost_usd == pytest.approx(cost(provider, 7 * sent))
    assert vendor.latency["measured"] is False and "costs money" in vendor.latency["why"]
    assert first.gates[0].against == "vendor" and first.gates[0].status == "pass"
    assert FAKE_KEY not in json.dumps(first.to_json_dict())
    again = run_suite(folder, str(tiny_model), cache=tmp_path / "cache")
    assert len(server.sent_texts) == sent  # nothing sent the second time
    assert not again.datasets["main"].systems["vendor"].cost_usd
    assert again.datasets["main"].metrics["vendor"] == first.datasets["main"].metrics["vendor"]
