"""``regression_budget``: at most a fraction of the queries may lose more than a given amount."""
from __future__ import annotations

from typing import Literal

from ..schema import FAIL, PASS, Fraction, GateResult
from . import ComparativeGate, GateContext, worst_queries, worst_text


class RegressionBudget(ComparativeGate):
    summary = "at most max_fraction of the queries lose more than max_drop (counted per query; no interval)"
    example = {"metric": "ndcg@10", "max_drop": 0.3, "max_fraction": 0.1}

    kind: Literal["regression_budget"] = "regression_budget"
    max_drop: Fraction
    max_fraction: Fraction

    def rule(self) -> str:
        return f"at most {100 * self.max_fraction:g}% of queries lose > {self.max_drop:g} {self.metric}"

    def requirement(self, confidence: float) -> str:
        return f"<= {100 * self.max_fraction:g}% of queries lose > {self.max_drop:g}"

    def evaluate(self, ctx: GateContext) -> GateResult:
        cmp = ctx.compare(self.metric)
        b, c = ctx.base_per_query[self.metric], ctx.candidate_per_query[self.metric]
        regressed = sorted((q for q in b if b[q] - c[q] > self.max_drop), key=lambda q: (c[q] - b[q], q))
        fraction = len(regressed) / len(b)
        ok = fraction <= self.max_fraction
        worst = worst_queries(ctx, self.metric, n=10, threshold=self.max_drop)
        lines = [f"  {len(regressed)} of {len(b)} queries ({100 * fraction:.1f}%) lose more than {self.max_drop:g} "
                 f"{self.metric}; budget {100 * self.max_fraction:.1f}%"]
        if not ok:
            lines.append(worst_text(worst))
        return self.result(ctx.dataset_label, PASS if ok else FAIL, lines,
                           requirement=self.requirement(cmp.confidence),
                           observed=f"{100 * fraction:.1f}% regressed ({len(regressed)} of {len(b)})",
                           decided_by="fraction", base=cmp.base, candidate=cmp.candidate, difference=cmp.difference,
                           relative_difference=cmp.relative_difference, n_queries=cmp.n,
                           threshold={"max_drop": self.max_drop, "max_fraction": self.max_fraction},
                           worst_queries=worst, details={"regressed": len(regressed), "fraction": fraction,
                                                         "regressed_queries": regressed[:50]})
