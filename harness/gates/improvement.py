"""``improvement``: the candidate is better than the base by at least a required gain, and the paired interval
shows it."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..compare import queries_needed
from ..schema import FAIL, INCONCLUSIVE, PASS, GateResult, Reference
from . import (ComparativeGate, GateContext, conf_label, f4, interval_fields, measured_line, worst_queries,
               worst_text)


class Improvement(ComparativeGate):
    summary = ("the mean gain reaches the required size (min_relative x base, min_absolute) and the paired "
               "interval lies above 0; it fails when the interval rules the required gain out, and is NOT SHOWN "
               "in between")
    example = {"metric": "ndcg@10", "min_relative": 0.05}

    kind: Literal["improvement"] = "improvement"
    min_relative: float | None = Field(None, ge=0, le=10)
    min_absolute: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _any_gain(self) -> "Improvement":
        if self.min_relative is None and self.min_absolute is None:
            object.__setattr__(self, "min_absolute", 0.0)
        return self

    def rule(self) -> str:
        parts = []
        if self.min_relative is not None:
            parts.append(f"{100 * self.min_relative:g}%")
        if self.min_absolute:
            parts.append(f"+{self.min_absolute:g}")
        return f"{self.metric} improves" + (f" by {' and '.join(parts)}" if parts else "")

    def required_difference(self, base: float) -> float:
        req = 0.0
        if self.min_absolute is not None:
            req = max(req, self.min_absolute)
        if self.min_relative is not None:
            req = max(req, self.min_relative * base)
        return req

    def _asked(self) -> str:
        asked = []
        if self.min_relative is not None:
            asked.append(f"{100 * self.min_relative:.1f}% relative")
        if self.min_absolute is not None and (self.min_absolute > 0 or self.min_relative is None):
            asked.append(f"{self.min_absolute:+.4f} absolute")
        return " and ".join(asked) or "any gain"

    def requirement(self, confidence: float, required: float | None = None) -> str:
        if not self.min_relative and not self.min_absolute:
            return f"{conf_label(confidence)} above 0"
        gain = f"mean gain >= {required:+.4f} ({self._asked()})" if required is not None else \
            f"mean gain >= {self._asked()}"
        return f"{gain} and {conf_label(confidence)} above 0"

    def evaluate(self, ctx: GateContext) -> GateResult:
        """Shown (pass) when the mean gain reaches the required size and the interval lies above 0. Failed when the
        interval rules the required gain out (its upper end lies below it). Anything between is NOT SHOWN: the
        interval still holds the required gain, so calling it a failure would be deciding on noise; it blocks
        promotion all the same, and says how many queries it would take."""
        cmp = ctx.compare(self.metric)
        req = self.required_difference(cmp.base)
        significant = cmp.ci[0] > 0
        big_enough = cmp.difference >= req and cmp.difference > 0
        ruled_out = cmp.ci[1] < req or cmp.ci[1] <= 0
        if big_enough and significant:
            status, verdict = PASS, "PASS (improvement shown)"
        elif ruled_out:
            status, verdict = FAIL, (f"FAIL ({ctx.system} is worse than {ctx.against}; the interval rules out the "
                                     "required gain)"
                                     if cmp.difference < 0 else
                                     "FAIL (the interval rules out a gain of the required size)")
        elif big_enough:
            status, verdict = INCONCLUSIVE, "NOT SHOWN (gain of the asked size, but the interval reaches 0)"
        else:
            status, verdict = INCONCLUSIVE, ("NOT SHOWN (measured gain below the required size, but the interval "
                                             "cannot rule the required gain out)" if cmp.difference > 0 else
                                             "NOT SHOWN (no gain measured, but the interval cannot rule the "
                                             "required gain out)")
        requirement = self.requirement(cmp.confidence, req)
        lines = [measured_line(cmp, ctx=ctx), f"  required: {requirement}"]
        underpowered = cmp.mde > max(req, 1e-12)
        needed = queries_needed(cmp.sd_difference, req, cmp.confidence) if underpowered else None
        # more queries can only settle an open question: a gain the interval rules out stays ruled out
        too_small = status == INCONCLUSIVE and underpowered
        if too_small:
            more = f"about {needed:,} queries with this spread would" if needed else "more queries would"
            lines.append(f"  the suite is too small to show this: minimum detectable effect {f4(cmp.mde)} "
                         f"(80% power, {cmp.n} queries, sd of differences {f4(cmp.sd_difference)}) > required "
                         f"{f4(req)}; {more} detect it, or ask for a larger effect")
        worst = worst_queries(ctx, self.metric)
        if status != PASS:
            lines.append(worst_text(worst))
        threshold = {k: v for k, v in (("min_relative", self.min_relative), ("min_absolute", self.min_absolute))
                     if v is not None} | {"required_difference": req}
        return self.result(ctx.dataset_label, status, lines, verdict=verdict, requirement=requirement,
                           reference=Reference(value=req, label="required gain") if req > 0 else None,
                           **interval_fields(cmp), worst_queries=worst, threshold=threshold,
                           details={"underpowered": underpowered, "too_small": too_small,
                                    "significant": significant, "queries_needed": needed})
