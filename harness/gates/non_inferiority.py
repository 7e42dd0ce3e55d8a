"""``non_inferiority`` and ``forgetting``: the candidate is no worse than the base by more than a margin, on the
domain or on another domain's set (the forgetting guard)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..schema import FAIL, INCONCLUSIVE, PASS, GateResult, Reference
from . import (ComparativeGate, GateContext, conf_label, f4, interval_fields, measured_line, worst_queries,
               worst_text)


class NonInferiority(ComparativeGate):
    summary = "the paired interval's lower end lies above -margin: no loss beyond the margin"
    example = {"metric": "recall@10", "margin": 0.01}

    kind: Literal["non_inferiority"] = "non_inferiority"
    margin: float = Field(ge=0, le=1)

    def rule(self) -> str:
        label = "no forgetting" if self.kind == "forgetting" else "non-inferior"
        return f"{label}: {self.metric} within {self.margin:g} of {self.against}"

    def requirement(self, confidence: float) -> str:
        return f"{conf_label(confidence)} lower end > {-self.margin:+.4f}"

    def evaluate(self, ctx: GateContext) -> GateResult:
        cmp = ctx.compare(self.metric)
        underpowered = cmp.mde > self.margin
        if cmp.ci[0] > -self.margin:
            status, verdict = PASS, f"PASS (no worse than {ctx.against} within the margin)"
        elif cmp.difference > -self.margin and underpowered:
            status, verdict = INCONCLUSIVE, "NOT SHOWN (interval too wide to rule out a loss beyond the margin)"
        else:
            status, verdict = FAIL, f"FAIL ({ctx.system} may be worse than {ctx.against} by more than the margin)"
        what = "forgetting guard" if self.kind == "forgetting" else "non-inferiority"
        requirement = self.requirement(cmp.confidence)
        lines = [measured_line(cmp, with_p=False, ctx=ctx), f"  required ({what}): {requirement}"]
        # more queries could change the verdict only while the interval still reaches past the margin
        too_small = status != PASS and underpowered and cmp.ci[1] > -self.margin
        if too_small:
            lines.append(f"  minimum detectable effect {f4(cmp.mde)} with {cmp.n} queries exceeds the margin "
                         f"{f4(self.margin)}")
        worst = worst_queries(ctx, self.metric)
        if status != PASS:
            lines.append(worst_text(worst))
        fields = interval_fields(cmp) | {"p_value": None}  # p tests a zero difference; this gate tests the margin
        return self.result(ctx.dataset_label, status, lines, verdict=verdict, requirement=requirement,
                           reference=Reference(value=-self.margin, label="margin"), **fields,
                           threshold={"margin": self.margin}, worst_queries=worst,
                           details={"underpowered": underpowered, "too_small": too_small})


class Forgetting(NonInferiority):
    summary = "non-inferiority on another domain's set: the candidate did not forget what the base could do"
    example = {"metric": "ndcg@10", "margin": 0.02, "data": "guard"}

    kind: Literal["forgetting"] = "forgetting"  # type: ignore[assignment]
