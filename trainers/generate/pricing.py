"""Prices per model, in one place, and the cost estimate made before any request is sent.

Prices are US dollars per million tokens (input, output), from Anthropic's public price list. A model not listed
here has no dollar estimate unless ``--price`` gives one; a token budget still works for it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from embedgate.harness.errors import ConfigError

PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-opus-4-5": (5.0, 25.0),
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "claude-3-haiku": (0.25, 1.25),
}
# Claude's tokenizer is not public; English prose runs at about 3.5-4 characters per token. The lower figure
# over-estimates input tokens a little, which is the safe side for a budget. The run re-calibrates this ratio
# from the real `usage` of the answers it gets.
CHARS_PER_TOKEN = 3.5
OUTPUT_TOKENS_PER_QUERY = 30
OUTPUT_TOKENS_OVERHEAD = 15


@dataclass(frozen=True)
class Price:
    model: str
    input_per_mtok: float | None
    output_per_mtok: float | None

    @property
    def known(self) -> bool:
        return self.input_per_mtok is not None and self.output_per_mtok is not None

    def cost(self, input_tokens: int, output_tokens: int) -> float | None:
        if not self.known:
            return None
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


def price_for(model: str, override: tuple[float, float] | None = None) -> Price:
    """The price of ``model``; dated ids (``claude-haiku-4-5-20251001``) match their family's entry."""
    if override is not None:
        if any(not math.isfinite(p) or p < 0 for p in override):
            raise ConfigError(f"prices must be non-negative numbers, got {override}", field="price")
        return Price(model, *override)
    best = max((name for name in PRICES_PER_MTOK if model == name or model.startswith(name + "-")), key=len,
               default=None)
    if best is None:
        return Price(model, None, None)
    return Price(model, *PRICES_PER_MTOK[best])


def estimate_input_tokens(text: str) -> int:
    return int(math.ceil(len(text) / CHARS_PER_TOKEN))


def expected_output_tokens(queries_per_chunk: int) -> int:
    return OUTPUT_TOKENS_PER_QUERY * queries_per_chunk + OUTPUT_TOKENS_OVERHEAD


@dataclass
class Estimate:
    requests: int
    input_tokens: int
    output_tokens: int  # expected
    output_tokens_worst: int  # every answer at max_tokens
    price: Price

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def usd(self) -> float | None:
        return self.price.cost(self.input_tokens, self.output_tokens)

    @property
    def usd_worst(self) -> float | None:
        return self.price.cost(self.input_tokens, self.output_tokens_worst)

    def describe(self) -> str:
        head = (f"{self.requests} requests to {self.price.model}: about {self.input_tokens:,} input + "
                f"{self.output_tokens:,} output tokens")
        if self.usd is None:
            return head + " (no price known for this model: pass --price IN,OUT for a dollar estimate)"
        return head + f", about ${self.usd:.2f} (at most ${self.usd_worst:.2f} if every answer ran to max_tokens)"

    def as_dict(self) -> dict:
        return {"requests": self.requests, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "output_tokens_worst": self.output_tokens_worst, "usd": self.usd, "usd_worst": self.usd_worst,
                "price_per_mtok": [self.price.input_per_mtok, self.price.output_per_mtok],
                "chars_per_token_assumed": CHARS_PER_TOKEN}
