"""``latency``: the judged system answers fast enough, one query at a time (p95 of the suite's latency probe, on
the machine that runs the gate)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..schema import ERROR, FAIL, PASS, GateResult, Reference
from . import Gate, GateContext


class Latency(Gate):
    summary = ("the judged system's p95 query latency at batch 1 is at most max_p95_ms, and/or at most max_ratio "
               "times the other system's p95 (measured where the gate runs: evaluation.latency_queries)")
    example = {"max_ratio": 1.5}

    kind: Literal["latency"] = "latency"
    against: str = Field("base", description="the system whose p95 max_ratio multiplies")
    max_p95_ms: float | None = Field(None, gt=0)
    max_ratio: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _a_limit(self) -> "Latency":
        if self.max_p95_ms is None and self.max_ratio is None:
            raise ValueError("give max_p95_ms, max_ratio, or both")
        return self

    def rule(self) -> str:
        parts = ([f"<= {self.max_p95_ms:g} ms"] if self.max_p95_ms else []) + \
            ([f"<= {self.max_ratio:g}x {self.against}"] if self.max_ratio else [])
        return "p95 latency " + " and ".join(parts)

    def default_name(self) -> str:
        return (("" if self.system == "candidate" else f"{self.system}: ") + self.rule()
                + ("" if self.data == "main" else f" on {self.data}"))

    def requirement(self, confidence: float) -> str:
        return f"{self.system} {self.rule()} (batch 1, this machine)"

    def evaluate(self, ctx: GateContext) -> GateResult:
        mine, theirs = ctx.latency.get(ctx.system, {}), ctx.latency.get(ctx.against, {})
        if not mine.get("measured") or (self.max_ratio and not theirs.get("measured")):
            return self.result(ctx.dataset_label, ERROR, ["  latency was not measured (evaluation.latency_queries "
                                                          "= 0, or an API system)"],
                               requirement=self.requirement(0.95))
        p95 = mine["p95_ms"]
        limits = []
        if self.max_p95_ms:
            limits.append(self.max_p95_ms)
        if self.max_ratio:
            limits.append(self.max_ratio * theirs["p95_ms"])
        limit = min(limits)
        ok = p95 <= limit
        line = (f"  {ctx.system} p95 {p95:.1f} ms (p50 {mine['p50_ms']:.1f}) over {mine['queries']} queries at batch "
                f"1" + (f"; {ctx.against} p95 {theirs['p95_ms']:.1f} ms" if theirs.get("measured") else "")
                + f"; limit {limit:.1f} ms")
        return self.result(ctx.dataset_label, PASS if ok else FAIL, [line], requirement=self.requirement(0.95),
                           observed=f"p95 {p95:.1f} ms (limit {limit:.1f})", decided_by="value",
                           reference=Reference(value=limit, label="limit (ms)"),
                           threshold={"max_p95_ms": self.max_p95_ms, "max_ratio": self.max_ratio},
                           details={"latency": dict(mine), "against_latency": dict(theirs)})
