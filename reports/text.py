"""The terminal's systems table (after the gate table of `pytest suites/<name>` and `embedgate gate`): plain
ASCII, one line a system, read from the same view as the HTML and the step summary."""
from __future__ import annotations

from typing import Any

from embedgate.harness.schema import SuiteResult

from .format import is_number, ms
from .load import as_data
from .systems import systems_view
from .view import ordered_datasets, primary_metric, suite_metrics


def _signed(x: Any) -> str:
    return f"{x:+.4f}" if is_number(x) else "n/a"


def _versus_text(row: dict[str, Any]) -> str:
    if row["judged"]:
        return "(judged)"
    cmp = row["versus"]
    if not cmp:
        return "not compared"
    ci = cmp["ci"]
    return f"d {_signed(cmp['difference'])}" + (f" [{_signed(ci[0])}, {_signed(ci[1])}]" if ci else "")


def _latency_text(row: dict[str, Any]) -> str:
    lat = row["latency"]
    return f"p50 {ms(lat['p50'])} ms" if lat["measured"] else "latency not measured"


def systems_lines(result: "SuiteResult | dict[str, Any]") -> list[str]:
    """Per data set that describes its systems: kind, the primary metric's mean, the candidate's paired difference
    against each system with its interval, and the p50 latency."""
    result = as_data(result)
    lines: list[str] = []
    for dname, section in ordered_datasets(result):
        metric = primary_metric(result, dname, section)
        view = systems_view(section, suite_metrics(result, section), metric)
        if not view or not metric:
            continue
        rows = view["rows"]
        lines.append(f"  systems on {dname} ({metric}; d = candidate - system, paired, {view['confidence']}; "
                     f"latency at {view['latency_label']}):")
        width = max(len(r["name"]) for r in rows)
        kind_width = max(len(r["kind"]) for r in rows)
        cells = [(r, _versus_text(r)) for r in rows]
        versus_width = max(len(v) for _, v in cells)
        for r, versus in cells:
            mean = f"{r['primary_mean']:.4f}" if is_number(r["primary_mean"]) else "n/a"
            lines.append(f"    {r['name']:<{width}}  {r['kind']:<{kind_width}}  {mean:>6}  {versus:<{versus_width}}  "
                         f"{_latency_text(r)}")
        if view["n_variants"]:
            lines.append(f"    and {view['n_variants']} variants of {' and '.join(view['variant_parents'])} "
                         f"(truncated or quantized): in the HTML report")
    return lines
