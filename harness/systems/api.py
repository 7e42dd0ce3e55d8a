"""The ``api`` system kind: embeddings from a vendor's API (OpenAI, Voyage AI, Cohere) through the vendor's SDK.

How each provider is driven:

* openai: ``openai.OpenAI(...).embeddings.create(encoding_format="float")``; an injected ``httpx.Client`` is passed
  as ``http_client`` (the SDK takes a legacy ``httpx`` client as well as its own ``httpx2`` one).
* cohere: ``cohere.ClientV2(...).embed(embedding_types=["float"])``; the client goes in as ``httpx_client``.
* voyage: the ``voyageai`` SDK sends its requests through ``requests`` (sync) or ``aiohttp`` (async) and takes no
  HTTP client, only a process-wide ``voyageai.requestssession`` that its thread-local sessions capture once. So we
  ``POST {base}/embeddings`` (the SDK's REST endpoint, same body) through our own or the injected ``httpx.Client``
  and use the SDK for its base-URL rule (``voyageai.util.get_default_base_url``: MongoDB Atlas keys, ``al-...``,
  go to another host). Its ``count_tokens`` needs the model's tokenizer from the Hugging Face hub, so we do not
  rely on it.

Rules:

* Key: read from the variable the SDK reads (OPENAI_API_KEY; VOYAGE_API_KEY or VOYAGE_API_KEY_PATH; CO_API_KEY or
  COHERE_API_KEY) and handed to the client; never logged, printed, put in a message, ``describe()`` or the cache.
* Batching: at most ``batch_size`` texts per request (the provider's limit when unset: openai 2048, voyage 1000,
  cohere 96) and, for openai and voyage, at most an estimated 300k / 120k tokens per request (voyage's limit
  depends on the model; 120k is the smallest). ``chunk_size`` = batch size x concurrency texts per ``embed()``
  call, whose requests run on ``concurrency`` threads; results keep the input order.
* Retries: each request is tried at most ``1 + max_retries`` times, retrying 408, 409, 429, 5xx, timeouts and
  connection errors, after ``backoff_base_s * 2**attempt`` seconds with jitter (half fixed, half random), at
  least the server's Retry-After, at most ``backoff_max_s``. The SDKs' own retries are switched off (max_retries=0)
  so that the bound is exact, the same for all three, counted in ``describe()`` and testable without sleeping
  (openai's and cohere's delays are module constants, and cohere's does not retry read timeouts). Other 4xx and
  malformed bodies fail at once. A failure is an ``ApiError`` that names provider, model, status and how many
  texts this run already embedded (those are in the cache: a rerun resumes).
* Budget: one price table, ``PRICES`` (USD per 1M input tokens). Tokens are estimated as ceil(UTF-8 bytes / 3) per
  text (over the ~4 bytes per token of English text; ``tiktoken`` is not a dependency, would be exact only for
  openai, and fetches its BPE file on first use). An ``embed()`` call starts only if the estimate of all its texts
  fits in what is left, since its vectors are cached only when all of it succeeds: so the budget never discards
  paid-for vectors. Each request then reserves its estimate (so concurrent requests cannot overshoot together)
  and, once answered, costs the tokens the provider reports (openai ``usage.total_tokens``, voyage
  ``usage.total_tokens``, cohere ``meta.billed_units.input_tokens``), or the estimate when it reports none. Not
  fitting raises ``BudgetExceeded``. Failed requests are taken to cost nothing.
* Normalisation: float32 rows divided by their L2 norm (retrieval is inner product); a row that is empty, not
  numeric, not finite, all zeros or of the wrong width makes the response malformed.
"""
from __future__ import annotations

import importlib
import json
import logging
import math
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Mapping

import httpx
import numpy as np

from ..encode import ROLES
from ..errors import ConfigError, EmbedgateError
from ..schema import ApiSystem

__all__ = ["ApiEncoder", "ApiError", "BudgetExceeded", "PRICES", "PRICES_CHECKED", "check_api_system"]

log = logging.getLogger(__name__)

# USD per 1M input tokens, from the vendors' pricing pages as recorded on PRICES_CHECKED.
PRICES_CHECKED = "2026-12-01"
PRICES: dict[str, dict[str, float]] = {
    "openai": {"text-embedding-3-small": 0.02, "text-embedding-3-large": 0.13, "text-embedding-ada-002": 0.10},
    "voyage": {"voyage-3.5": 0.06, "voyage-3.5-lite": 0.02, "voyage-3-large": 0.18},
    "cohere": {"embed-v4.0": 0.12, "embed-english-v3.0": 0.10},
}

# Bump when the post-processing of returned vectors changes: it is part of every cache key.
NORMALISATION = "l2-float32-v1"
RETRY_STATUSES = frozenset({408, 409, 429})
# Explicit, so that the process environment cannot redirect a client built from an injected `environ`.
OPENAI_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class _Provider:
    sdk: str                              # import name, also the pip name
    key_vars: tuple[str, ...]             # the variables the SDK reads, the documented one first
    max_batch: int                        # texts per request
    max_request_tokens: int | None        # tokens per request, where the API has a total limit
    input_types: tuple[str, str] | None   # what it calls (query, document)
    default_input_type: str | None        # sent for both roles when input_type = false


PROVIDERS = {
    "openai": _Provider("openai", ("OPENAI_API_KEY",), 2048, 300_000, None, None),
    "voyage": _Provider("voyageai", ("VOYAGE_API_KEY", "VOYAGE_API_KEY_PATH"), 1000, 120_000,
                        ("query", "document"), None),
    # Cohere's v2 embed requires an input type: without asymmetric types, both roles are embedded as documents.
    "cohere": _Provider("cohere", ("CO_API_KEY", "COHERE_API_KEY"), 96, None,
                        ("search_query", "search_document"), "search_document"),
}


class ApiError(EmbedgateError):
    """An embedding API request that failed for good (after its retries) or answered something unusable."""

    def __init__(self, message: str, *, status: int | None = None):
        self.status = status
        super().__init__(message)


class BudgetExceeded(ApiError):
    """The next request would take the run past ``budget_usd``."""


class _Transient(Exception):
    """A failure worth retrying: 408/409/429/5xx, a timeout, a dropped connection."""

    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None):
        self.reason, self.status, self.retry_after = reason, status, retry_after
        super().__init__(reason)


# ------------------------------------------------------------------------------------------------ checks


def _find_key(provider: str, environ: Mapping[str, str]) -> str | None:
    path = environ.get("VOYAGE_API_KEY_PATH", "").strip() if provider == "voyage" else ""
    if path:  # voyage's key file wins over VOYAGE_API_KEY, as in the SDK
        try:
            with open(os.path.expanduser(path), encoding="utf-8") as fh:
                return fh.read().strip() or None
        except (OSError, UnicodeDecodeError):
            return None
    for var in PROVIDERS[provider].key_vars:
        value = environ.get(var, "").strip()
        if value and not var.endswith("_PATH"):
            return value
    return None


def check_api_system(spec: ApiSystem, environ: Mapping[str, str] | None = None) -> None:
    """Everything that can fail before a cent is spent: the SDK, the price, the batch size, the key (by name)."""
    environ = os.environ if environ is None else environ
    info = PROVIDERS[spec.provider]
    try:
        importlib.import_module(info.sdk)
    except ImportError:
        raise ConfigError(f"the {spec.provider} API system needs the `{info.sdk}` package: "
                          f"pip install 'embedgate[api]' (or pip install {info.sdk})") from None
    known = PRICES[spec.provider]
    if spec.model not in known:
        raise ConfigError(f"no price is known for {spec.provider} model {spec.model!r}, so budget_usd cannot be "
                          f"enforced; known {spec.provider} models: {', '.join(known)}")
    if spec.batch_size is not None and spec.batch_size > info.max_batch:
        raise ConfigError(f"batch_size {spec.batch_size} is over {spec.provider}'s limit of {info.max_batch} texts "
                          "per request")
    if _find_key(spec.provider, environ) is None:
        names = " or ".join(info.key_vars)
        raise ConfigError(f"the {spec.provider} API key is not set: set {names} (the variable the {info.sdk} SDK "
                          "reads)")


# ------------------------------------------------------------------------------------------------ helpers


def estimate_tokens(text: str) -> int:
    """A deliberately high token count for budgeting: one token per 3 UTF-8 bytes, at least one."""
    return max(1, math.ceil(len(text.encode("utf-8")) / 3))


def _retry_after(headers: Any) -> float | None:
    try:
        value = float(headers.get("retry-after"))
    except (AttributeError, TypeError, ValueError):
        return None
    return value if value >= 0 else None


def _as_tokens(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return int(round(value))


class ApiEncoder:
    """An ``encode.Encoder`` backed by an embedding API. ``embed`` returns float32 rows of unit L2 norm (retrieval
    is inner product). Tests may set ``backoff_base_s`` to 0 and replace ``sleep``."""

    backoff_base_s = 1.0
    backoff_max_s = 60.0

    def __init__(self, spec: ApiSystem, *, http_client: httpx.Client | None = None,
                 environ: Mapping[str, str] | None = None):
        environ = os.environ if environ is None else environ
        check_api_system(spec, environ)
        self.spec = spec
        self._info = PROVIDERS[spec.provider]
        self._sdk = importlib.import_module(self._info.sdk)
        self._key = _find_key(spec.provider, environ)
        self.price_per_1m = PRICES[spec.provider][spec.model]
        self.batch_size = spec.batch_size or self._info.max_batch
        self.name = f"{spec.provider}:{spec.model}" + (f"@{spec.dimensions}" if spec.dimensions else "")
        self.chunk_size = self.batch_size * spec.concurrency
        self.sleep = time.sleep
        self._lock = threading.Lock()
        self._dim: int | None = spec.dimensions
        self.requests = self.retries = self.tokens = self.tokens_estimated = self.texts_embedded = 0
        self.spent_usd = 0.0
        self._reserved_usd = 0.0
        self._own_http: httpx.Client | None = None
        if spec.provider == "openai":
            self._client = self._sdk.OpenAI(api_key=self._key, base_url=environ.get("OPENAI_BASE_URL") or OPENAI_URL,
                                            max_retries=0, timeout=spec.timeout_s, http_client=http_client)
        elif spec.provider == "cohere":
            self._client = self._sdk.ClientV2(api_key=self._key, base_url=environ.get("CO_API_URL") or None,
                                              max_retries=0, timeout=spec.timeout_s, httpx_client=http_client,
                                              log_warning_experimental_features=False)
        else:
            base = importlib.import_module("voyageai.util").get_default_base_url(self._key)
            self._voyage_url = base.rstrip("/") + "/embeddings"
            if http_client is None:
                http_client = self._own_http = httpx.Client(timeout=spec.timeout_s)
            self._http = http_client

    def close(self) -> None:
        if self._own_http is not None:
            self._own_http.close()

    # ------------------------------------------------------------------------------------------ the protocol

    def input_type(self, role: str) -> str | None:
        """What is sent as the input type for ``role``; None: the provider has none (openai)."""
        if self._info.input_types is None:
            return None
        if not self.spec.input_type:
            return self._info.default_input_type
        return self._info.input_types[ROLES.index(role)]

    def cache_key(self, role: str) -> dict:
        return {"kind": "api", "provider": self.spec.provider, "model": self.spec.model,
                "dimensions": self.spec.dimensions, "input_type": self.input_type(role),
                "normalisation": NORMALISATION}

    def embed(self, texts: list[str], role: str, show_progress: bool) -> np.ndarray:
        """float32 (len(texts), dim) rows of unit L2 norm, in input order."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        batches = self._batches(texts)
        estimates = [sum(estimate_tokens(t) for t in texts[lo:hi]) for lo, hi in batches]
        results: list[np.ndarray | None] = [None] * len(batches)
        from tqdm import tqdm

        bar = tqdm(total=len(texts), desc=self.name, unit="text", disable=not show_progress)
        try:
            self._check_budget(sum(estimates), len(texts), reserve=False)
            with ThreadPoolExecutor(max_workers=min(self.spec.concurrency, len(batches))) as pool:
                futures = {pool.submit(self._request, texts[lo:hi], role, est): i
                           for i, ((lo, hi), est) in enumerate(zip(batches, estimates))}
                try:
                    for fut in as_completed(futures):
                        i = futures[fut]
                        results[i] = fut.result()
                        bar.update(batches[i][1] - batches[i][0])
                except ApiError:
                    for f in futures:  # requests not yet sent are not sent (nor paid for)
                        f.cancel()
                    raise
        except ApiError as exc:
            left = sum(hi - lo for (lo, hi), r in zip(batches, results) if r is None)
            raise type(exc)(f"{exc.message}; {left} of the {len(texts)} texts of this step not embedded; "
                            f"{self.texts_embedded} texts embedded earlier in this run are cached (with the cache on), "
                            "a rerun resumes after them", status=exc.status) from None
        finally:
            bar.close()
        with self._lock:
            self.texts_embedded += len(texts)
        return np.concatenate(results, axis=0)

    def describe(self) -> dict:
        return {
            "kind": "api", "name": self.name, "provider": self.spec.provider, "model": self.spec.model,
            "sdk": f"{self._info.sdk} {getattr(self._sdk, '__version__', getattr(self._sdk, 'VERSION', '?'))}",
            "dimensions": self.spec.dimensions, "dimension": self._dim,
            "input_types": {role: self.input_type(role) for role in ROLES},
            "batch_size": self.batch_size, "concurrency": self.spec.concurrency,
            "max_retries": self.spec.max_retries, "normalisation": NORMALISATION,
            "requests": self.requests, "retries": self.retries, "texts_embedded": self.texts_embedded,
            "tokens": self.tokens, "tokens_estimated": self.tokens_estimated,
            "cost_usd": round(self.spent_usd, 10), "budget_usd": self.spec.budget_usd,
            "price_per_1m_tokens_usd": self.price_per_1m, "prices_checked": PRICES_CHECKED,
        }

    # ------------------------------------------------------------------------------------------ batching, budget

    def _batches(self, texts: list[str]) -> list[tuple[int, int]]:
        cap = self._info.max_request_tokens
        out, lo, tokens = [], 0, 0
        for i, text in enumerate(texts):
            t = estimate_tokens(text)
            if i > lo and (i - lo >= self.batch_size or (cap is not None and tokens + t > cap)):
                out.append((lo, i))
                lo, tokens = i, 0
            tokens += t
        out.append((lo, len(texts)))
        return out

    def _cost(self, tokens: int) -> float:
        return tokens * self.price_per_1m / 1e6

    def _check_budget(self, tokens: int, n_texts: int, *, reserve: bool) -> float:
        cost = self._cost(tokens)
        with self._lock:
            committed = self.spent_usd + self._reserved_usd
            if committed + cost > self.spec.budget_usd * (1 + 1e-9):
                raise BudgetExceeded(
                    f"{self.name}: budget_usd {self.spec.budget_usd:g} reached: spent ${self.spent_usd:.6f}"
                    f"{f' (+${self._reserved_usd:.6f} in flight)' if self._reserved_usd else ''}, the next "
                    f"{n_texts} texts are estimated at ${cost:.6f} ({tokens} tokens at ${self.price_per_1m:g}/1M)")
            if reserve:
                self._reserved_usd += cost
        return cost

    def _request(self, texts: list[str], role: str, estimate: int) -> np.ndarray:
        reserved = self._check_budget(estimate, len(texts), reserve=True)
        try:
            vectors, reported = self._with_retries(texts, role)
        finally:
            with self._lock:
                self._reserved_usd -= reserved
        tokens = reported if reported is not None else estimate
        with self._lock:
            self.tokens += tokens
            self.tokens_estimated += 0 if reported is not None else tokens
            self.spent_usd += self._cost(tokens)
        return vectors

    # ------------------------------------------------------------------------------------------ retries

    def _with_retries(self, texts: list[str], role: str) -> tuple[np.ndarray, int | None]:
        attempts = self.spec.max_retries + 1
        for attempt in range(attempts):
            with self._lock:
                self.requests += 1
            log.debug("%s: request of %d texts (%s), attempt %d of %d", self.name, len(texts), role, attempt + 1,
                      attempts)
            try:
                rows, tokens = self._call(texts, role)
                return self._matrix(rows, len(texts)), tokens
            except _Transient as exc:
                if attempt + 1 == attempts:
                    raise ApiError(f"{self.name}: {exc.reason}, still after {attempts} attempt"
                                   f"{'s' if attempts > 1 else ''} (max_retries = {self.spec.max_retries})",
                                   status=exc.status) from None
                delay = self._backoff(attempt, exc.retry_after)
                with self._lock:
                    self.retries += 1
                log.warning("%s: %s; retry %d of %d in %.1f s", self.name, exc.reason, attempt + 1,
                            self.spec.max_retries, delay)
                self.sleep(delay)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        base = min(self.backoff_max_s, self.backoff_base_s * 2 ** attempt)
        delay = base / 2 + random.uniform(0, base / 2)  # jitter, so parallel requests do not retry in step
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self.backoff_max_s)

    def _failure(self, status: int | None, headers: Any, body: Any) -> Exception:
        """A status error as a retry (_Transient) or a final ApiError; never echoes credentials."""
        if status is not None and (status in RETRY_STATUSES or status >= 500):
            return _Transient(f"HTTP {status}{_detail(body, self._key)}", status, _retry_after(headers))
        if status in (401, 403):  # the body may quote part of the key: leave it out
            return ApiError(f"{self.name}: HTTP {status}, the API key was refused (check "
                            f"{self._info.key_vars[0]})", status=status)
        what = "request failed" if status is None else f"HTTP {status}"
        return ApiError(f"{self.name}: {what}{_detail(body, self._key)}", status=status)

    def _malformed(self, why: str) -> ApiError:
        return ApiError(f"{self.name}: malformed response: {why}")

    # ------------------------------------------------------------------------------------------ the providers

    def _call(self, texts: list[str], role: str) -> tuple[Any, int | None]:
        """(rows, reported tokens) of one request; raises _Transient or ApiError."""
        return {"openai": self._call_openai, "voyage": self._call_voyage,
                "cohere": self._call_cohere}[self.spec.provider](texts, role)

    def _call_openai(self, texts: list[str], role: str) -> tuple[Any, int | None]:
        sdk = self._sdk
        kwargs: dict[str, Any] = {"model": self.spec.model, "input": texts, "encoding_format": "float"}
        if self.spec.dimensions:
            kwargs["dimensions"] = self.spec.dimensions
        try:
            resp = self._client.embeddings.create(**kwargs)
        except sdk.APIStatusError as exc:
            raise self._failure(exc.status_code, exc.response.headers, exc.body) from None
        except sdk.APITimeoutError:
            raise _Transient("request timed out") from None
        except sdk.APIConnectionError:
            raise _Transient("connection failed") from None
        except sdk.APIError as exc:  # e.g. a response that fails validation
            raise self._malformed(type(exc).__name__) from None
        except ValueError:  # the body is not JSON
            raise self._malformed("the body is not JSON") from None
        data = getattr(resp, "data", None)
        if not isinstance(data, list):
            raise self._malformed("no 'data' list")
        try:
            items = sorted(data, key=lambda d: d.index)
            if [d.index for d in items] != list(range(len(texts))):
                raise ValueError
            rows = [d.embedding for d in items]
        except (AttributeError, TypeError, ValueError):
            raise self._malformed(f"{len(data)} items with indexes that are not 0..{len(texts) - 1}") from None
        return rows, _as_tokens(getattr(getattr(resp, "usage", None), "total_tokens", None))

    def _call_voyage(self, texts: list[str], role: str) -> tuple[Any, int | None]:
        body: dict[str, Any] = {"input": texts, "model": self.spec.model, "output_dtype": "float"}
        if self.input_type(role):
            body["input_type"] = self.input_type(role)
        if self.spec.dimensions:
            body["output_dimension"] = self.spec.dimensions
        try:
            resp = self._http.post(self._voyage_url, json=body, timeout=self.spec.timeout_s,
                                   headers={"Authorization": f"Bearer {self._key}"})
        except httpx.TimeoutException:
            raise _Transient("request timed out") from None
        except httpx.TransportError:
            raise _Transient("connection failed") from None
        try:
            payload = resp.json()
        except ValueError:
            payload = None
        if not 200 <= resp.status_code < 300:
            raise self._failure(resp.status_code, resp.headers, payload if payload is not None else resp.text)
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise self._malformed("the body is not JSON" if payload is None else "no 'data' list")
        data = payload["data"]
        try:
            items = sorted(data, key=lambda d: d["index"])
            if [d["index"] for d in items] != list(range(len(texts))):
                raise ValueError
            rows = [d["embedding"] for d in items]
        except (KeyError, TypeError, ValueError):
            raise self._malformed(f"{len(data)} items with indexes that are not 0..{len(texts) - 1}") from None
        usage = payload.get("usage")
        return rows, _as_tokens(usage.get("total_tokens") if isinstance(usage, dict) else None)

    def _call_cohere(self, texts: list[str], role: str) -> tuple[Any, int | None]:
        status_error = importlib.import_module("cohere.core.api_error").ApiError
        kwargs: dict[str, Any] = {"model": self.spec.model, "texts": texts, "input_type": self.input_type(role),
                                  "embedding_types": ["float"]}
        if self.spec.dimensions:
            kwargs["output_dimension"] = self.spec.dimensions
        try:
            resp = self._client.embed(**kwargs)
        except status_error as exc:
            if exc.status_code is not None and 200 <= exc.status_code < 300:  # the SDK's "body is not JSON"
                raise self._malformed("the body is not JSON") from None
            raise self._failure(exc.status_code, exc.headers or {}, exc.body) from None
        except httpx.TimeoutException:
            raise _Transient("request timed out") from None
        except httpx.TransportError:
            raise _Transient("connection failed") from None
        except (TypeError, ValueError):  # the SDK's parsing of an unexpected shape
            raise self._malformed("unexpected body") from None
        rows = getattr(getattr(resp, "embeddings", None), "float_", None)
        if not isinstance(rows, list):
            raise self._malformed("no 'embeddings.float' list")
        billed = getattr(getattr(resp, "meta", None), "billed_units", None)
        return rows, _as_tokens(getattr(billed, "input_tokens", None))

    # ------------------------------------------------------------------------------------------ vectors

    def _matrix(self, rows: Any, n: int) -> np.ndarray:
        try:
            arr = np.asarray(rows)
        except (TypeError, ValueError):  # ragged rows
            raise self._malformed("rows of different lengths") from None
        if arr.ndim != 2 or arr.shape[0] != n:
            raise self._malformed(f"{arr.shape[0] if arr.ndim else 0} vectors for {n} texts"
                                  if arr.ndim in (1, 2) else "not a list of vectors")
        if arr.dtype.kind not in "iuf" or arr.shape[1] == 0:
            raise self._malformed("vectors that are empty or not numeric")
        arr = arr.astype(np.float64)
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        if not np.isfinite(arr).all() or (norms == 0).any():
            raise self._malformed("non-finite or all-zero vectors")
        with self._lock:
            if self._dim is None:
                self._dim = arr.shape[1]
            dim = self._dim
        if arr.shape[1] != dim:
            raise self._malformed(f"vectors of width {arr.shape[1]}, expected {dim}")
        return (arr / norms).astype(np.float32)


def _detail(body: Any, key: str | None) -> str:
    """': <the server's message>', short, with the key (should a server echo it) masked."""
    if isinstance(body, dict):
        err = body.get("error")
        body = body.get("message") or body.get("detail") or (err.get("message") if isinstance(err, dict) else err) \
            or json.dumps(body)[:200]
    text = " ".join(str(body or "").split())[:200]
    if key:
        text = text.replace(key, "***")
    return f": {text}" if text else ""
