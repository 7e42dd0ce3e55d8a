"""Gates: each kind is one class in one module of this package. Its fields are its parameters (validated when
suite.toml is read); its methods give its default name, its requirement in words, and ``evaluate(ctx)``, which turns
the measured numbers into a verdict that a reader grasps at once. Every shell and report asks the class (through
``gate_class`` / ``gate_kinds``); none keeps its own table of kinds. A module added here is found by itself: adding a
kind is one module plus its tests (docs/gates.md).

Statuses: ``pass``; ``fail`` (the evidence says no); ``inconclusive`` (shown as NOT SHOWN: the data cannot show the
asked-for effect); ``error`` (the gate could not be computed). Only ``pass`` lets a candidate through.

One decision rule: a gate that compares base and candidate decides on the paired interval it shows, the inversion
of the paired t-test whose p-value it shows (``harness.compare``), so the two can never disagree.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

from pydantic import Field

from ..compare import PairedComparison
from ..schema import ERROR, FAIL, INCONCLUSIVE, PASS, GateConfig, GateResult, MetricName, QueryRow, Reference

__all__ = ["Gate", "MetricGate", "ComparativeGate", "GateContext", "GateResult", "gate_class", "gate_kinds", "run_gate", "error_result",
           "PASS", "FAIL", "INCONCLUSIVE", "ERROR"]

_KINDS: dict[str, type["Gate"]] = {}


@dataclass
class GateContext:
    """What a gate may look at for its data set."""

    dataset_label: str  # e.g. "acord test, 57 queries"
    queries: Mapping[str, str]
    base_per_query: Mapping[str, Mapping[str, float]]  # metric -> qid -> value
    candidate_per_query: Mapping[str, Mapping[str, float]]
    base_rankings: Mapping[str, list]
    candidate_rankings: Mapping[str, list]
    compare: Callable[[str], PairedComparison]  # metric -> paired comparison (memoised by the caller)
    system: str = "candidate"  # the names of the two sides, for the words a gate prints
    against: str = "base"
    latency: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # system -> p50/p95 at batch 1


class Gate(GateConfig):
    """The base of every gate kind. A subclass sets ``kind: Literal["..."] = "..."``, its parameter fields, a
    ``summary`` (one sentence for docs and ``--markers``), and implements rule(), requirement() and evaluate()."""

    summary: ClassVar[str] = ""
    example: ClassVar[dict[str, Any]] = {}  # the parameters of a typical gate of this kind (docs and tests use it)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        field = cls.model_fields.get("kind")
        if field is not None and isinstance(field.default, str) and field.default:
            _KINDS[field.default] = cls

    # ---- what a kind implements
    def rule(self) -> str:
        """The gate's default name, before the data set it runs on (e.g. "ndcg@10 >= 0.6")."""
        raise NotImplementedError

    def requirement(self, confidence: float) -> str:
        """What the gate asks for, in one short line (shown in the terminal, the report and the step summary)."""
        raise NotImplementedError

    def evaluate(self, ctx: GateContext) -> GateResult:
        raise NotImplementedError

    # ---- what a kind may override
    def default_name(self) -> str:
        against = getattr(self, "against", "base")
        rule = self.rule()
        return (("" if self.system == "candidate" else f"{self.system}: ") + rule
                + ("" if against == "base" or rule.endswith(f" {against}") else f" vs {against}")
                + ("" if self.data == "main" else f" on {self.data}"))

    def sides(self) -> tuple[str, str]:
        """(the system judged, the system it is compared with)."""
        return self.system, getattr(self, "against", "base")

    def metrics(self) -> set[str]:
        """Metrics this gate reads (they get the suite's full number of resamples)."""
        metric = getattr(self, "metric", None)
        return {metric} if metric else set()

    def depth(self) -> int:
        """How deep rankings must go for this gate (0: the suite's cut-offs suffice)."""
        return 0

    def shown_queries(self) -> set[str]:
        """Queries whose rankings the result must keep for this gate's report."""
        return set()

    def toml(self, comment: str = "") -> str:
        """This gate as a ``[[gates]]`` table (for suite writers)."""
        import json

        lines = ["[[gates]]", f'kind = "{self.kind}"' + (f"    # {comment}" if comment else "")]
        for key, value in self.model_dump(exclude={"kind", "line"}, exclude_defaults=True).items():
            lines.append(f"{key} = {json.dumps(value)}")
        return "\n".join(lines)

    @property
    def label(self) -> str:
        return self.name or self.default_name()

    # ---- shared helpers for kinds
    def result(self, ctx_label: str, status: str, lines: list[str], **fields: Any) -> GateResult:
        verdict = fields.pop("verdict", None) or {PASS: "PASS", FAIL: "FAIL"}.get(status, status.upper())
        head = f"{self.label}: {verdict} on {ctx_label}"
        system, against = self.sides()
        return GateResult(name=self.label, kind=self.kind, data=self.data, metric=getattr(self, "metric", None),
                          status=status, message="\n".join([head, *filter(None, lines)]), system=system,
                          against=against, **fields)


def _discover() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def gate_kinds() -> list[str]:
    if not _KINDS:
        _discover()
    return list(_KINDS)


def gate_class(kind: str) -> type[Gate] | None:
    if not _KINDS:
        _discover()
    return _KINDS.get(kind)


class MetricGate(Gate):
    """A gate on one metric of the suite (every kind but golden)."""

    metric: MetricName


class ComparativeGate(MetricGate):
    """A gate that judges the system against another one: the base by default, or any reference of the suite
    (``against = "bm25"``), on the same queries."""

    against: str = Field("base", description="the system the judged one is compared with")


# ------------------------------------------------------------------------------------------------ helpers


def f4(x: float | None, digits: int = 4, sign: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:+.1f}%"


def conf_label(confidence: float) -> str:
    return f"{100 * confidence:g}% CI"


INTERVAL_TEST = ("paired t-test over {n} queries; the {conf} is its inversion (p < {alpha:g} exactly when the "
                 "interval excludes 0)")


def worst_queries(ctx: GateContext, metric: str, n: int = 5, threshold: float = 0.0) -> list[QueryRow]:
    b, c = ctx.base_per_query[metric], ctx.candidate_per_query[metric]
    diffs = sorted(((c[q] - b[q], q) for q in b), key=lambda t: (t[0], t[1]))
    out = []
    for d, q in diffs[:n]:
        if d >= -threshold:
            break
        out.append(QueryRow(query_id=q, text=ctx.queries.get(q, ""), base=b[q], candidate=c[q], difference=d))
    return out


def worst_text(rows: list[QueryRow], limit: int = 3) -> str:
    """The worst regressions in one line (values: compared-with -> judged)."""
    if not rows:
        return ""
    parts = [f"\"{r.text[:70]}\" {r.base:.2f} -> {r.candidate:.2f}" for r in rows[:limit]]
    return "  worst regressions: " + "; ".join(parts)


def interval_fields(cmp: PairedComparison) -> dict[str, Any]:
    """The numbers of a gate that decides on the paired interval."""
    return dict(base=cmp.base, candidate=cmp.candidate, difference=cmp.difference,
                relative_difference=cmp.relative_difference, ci=tuple(cmp.ci), confidence=cmp.confidence,
                p_value=cmp.p_value, mde=cmp.mde, n_queries=cmp.n, decided_by="interval",
                test=INTERVAL_TEST.format(n=cmp.n, alpha=round(1 - cmp.confidence, 6),
                                          conf=conf_label(cmp.confidence)))


def measured_line(cmp: PairedComparison, with_p: bool = True, ctx: GateContext | None = None) -> str:
    p = f", p = {cmp.p_value:.3g}" if with_p else ""
    system, against = (ctx.system, ctx.against) if ctx is not None else ("candidate", "base")
    return (f"  {against} {f4(cmp.base)} -> {system} {f4(cmp.candidate)}: {f4(cmp.difference, sign=True)} "
            f"({pct(cmp.relative_difference)}), {conf_label(cmp.confidence)} [{f4(cmp.ci[0], sign=True)}, "
            f"{f4(cmp.ci[1], sign=True)}]{p}, {cmp.wins} queries up / {cmp.losses} down")


def run_gate(gate: Gate, ctx: GateContext) -> GateResult:
    try:
        return gate.evaluate(ctx)
    except (KeyError, ValueError, FloatingPointError) as exc:
        return error_result(gate, f"the gate could not be computed: {exc}")


def error_result(gate: Gate, reason: str, confidence: float = 0.95) -> GateResult:
    system, against = gate.sides()
    return GateResult(name=gate.label, kind=gate.kind, data=gate.data, metric=getattr(gate, "metric", None),
                      system=system, against=against, status=ERROR, message=f"{gate.label}: ERROR: {reason}",
                      requirement=gate.requirement(confidence))


__all__ += ["Reference", "QueryRow", "worst_queries", "worst_text", "interval_fields", "measured_line", "f4", "pct",
            "conf_label"]
