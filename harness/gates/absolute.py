"""``absolute``: the candidate's mean reaches a fixed bar (e.g. NDCG@10 >= 0.60)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..schema import FAIL, PASS, GateResult
from . import GateContext, MetricGate, f4, worst_queries, worst_text


class Absolute(MetricGate):
    summary = "the candidate's mean metric is at least `min` (a floor; no interval is involved)"
    example = {"metric": "ndcg@10", "min": 0.5}

    kind: Literal["absolute"] = "absolute"
    min: float = Field(ge=0, le=1)

    def rule(self) -> str:
        return f"{self.metric} >= {self.min}"

    def requirement(self, confidence: float) -> str:
        return f"{self.system} {self.metric} >= {self.min:.4f}"

    def evaluate(self, ctx: GateContext) -> GateResult:
        cmp = ctx.compare(self.metric)
        ok = cmp.candidate >= self.min
        worst = worst_queries(ctx, self.metric)
        lines = [f"  {ctx.system} {self.metric} = {f4(cmp.candidate)}, required >= {f4(self.min)} "
                 f"({ctx.against} {f4(cmp.base)})"]
        if not ok:
            lines.append(worst_text(worst))
        return self.result(ctx.dataset_label, PASS if ok else FAIL, lines,
                           requirement=self.requirement(cmp.confidence),
                           observed=f"{ctx.system} {f4(cmp.candidate)}", decided_by="value",
                           base=cmp.base, candidate=cmp.candidate, difference=cmp.difference,
                           relative_difference=cmp.relative_difference, n_queries=cmp.n,
                           threshold={"min": self.min}, worst_queries=worst)
