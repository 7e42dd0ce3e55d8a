"""The CI step summary (GitHub-flavoured markdown): verdict, gates, why the failing ones failed, worst queries.

Built from the same view as the HTML, so both say the same numbers. Short by design: a step summary is read in
passing; the HTML report holds the rest. Every text from the data is escaped (GitHub renders inline HTML).
"""
from __future__ import annotations

import html
import re
from typing import Any

from embedgate.harness.schema import SuiteResult

from . import format as fmt
from .load import as_data
from .systems import systems_view, variants_view
from .view import gate_columns, gate_view, models_view, ordered_datasets, per_query_differences, primary_metric, \
    seeds_view, suite_metrics, training_line

WORST_ROWS = 5
MESSAGE_LINES = 12
ICONS = {"pass": "\u2705", "fail": "\u274c", "inconclusive": "\u26a0\ufe0f", "error": "\U0001f6d1"}
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def cell(text: Any, limit: int = 120) -> str:
    """Text safe inside a markdown table cell: one line, no HTML, no markdown syntax, pipes escaped."""
    text = " ".join(str(text if text is not None else "").split())
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    text = html.escape(text, quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text)


def code_block(text: str) -> str:
    """A fenced block that the text cannot close early."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def render_markdown(result: "SuiteResult | dict[str, Any]") -> str:
    result = as_data(result)
    verdict = result.get("verdict", "error")
    seeds = seeds_view(result)
    gates = [gate_view(g, names=seeds["names"] if seeds else None) for g in result.get("gates") or []]
    models = models_view(result)
    suite = (result.get("suite") or {}).get("name", "?")
    passed = sum(1 for g in gates if g["status"] == "pass")
    lines = [f"### {ICONS.get(verdict, '')} embedgate `{cell(suite, 60)}`: "
             f"{fmt.VERDICT_LABELS.get(verdict, verdict.upper())} ({passed} of {len(gates)} gates passed)",
             "", cell(result.get("summary", ""), 400), ""]
    lines.append(f"candidate **{cell(models['candidate_short'], 80)}** (`{fmt.short_hash(models['candidate_fp'])}`) "
                 f"vs base **{cell(models['base_short'], 80)}** (`{fmt.short_hash(models['base_fp'])}`) \u00b7 "
                 f"{fmt.when(result.get('created_at'))}")
    trained = training_line(result)
    if trained:
        lines += ["", training_text(trained)]
    if result.get("error"):
        lines += ["", f"**error:** {cell(result['error'], 400)}"]
    against, judged = gate_columns(gates)
    lines += ["", f"| | gate | {against} | {judged} | \u0394 (rel.) | CI | p | requirement |",
              "|---|---|---:|---:|---:|---|---:|---|"]
    for g in gates:
        label = f"{ICONS.get(g['status'], '')} {g['label']}"
        name = cell(g["name"], 80) + ("" if g["default_pair"] else f" ({cell(g['pair'], 60)})")
        if g["seeds"]:  # a recipe's gate: pooled, or held seed by seed
            name += (" \u00b7 pooled; seeds " if g["pooled"] else " \u00b7 every seed: ") + \
                " ".join(ICONS.get(sd["status"], "") for sd in g["seeds"])
        diff = fmt.signed(g["difference"])
        if fmt.is_number(g["relative"]):
            diff += f" ({fmt.pct(g['relative'])})"
        req = g["requirement"] + (f"; {g['observed']}" if g["observed"] else "")
        lines.append(f"| {label} | {name} | {fmt.num(g['base'])} | {fmt.num(g['candidate'])} | "
                     f"{diff} | {fmt.interval(g['ci'])} | {fmt.p_value(g['p_value'])} | {cell(req, 90)} |")
    if seeds:
        lines += seeds_table(seeds)
    blocking = [g for g in gates if g["status"] != "pass"]
    if blocking:
        text = "\n\n".join("\n".join(g["message"].splitlines()[:MESSAGE_LINES]) for g in blocking)
        lines += ["", "<details><summary>Why the gates did not pass</summary>", "", code_block(text), "",
                  "</details>"]
    for dname, section in ordered_datasets(result):
        lines += systems_table(result, dname, section)
        lines += variants_table(result, dname, section)
    for dname, section in ordered_datasets(result):
        metric = primary_metric(result, dname, section)
        worst = [(d, q) for d, q in per_query_differences(section, metric) if d < 0][:WORST_ROWS] if metric else []
        if not worst:
            continue
        data = section.get("data") or {}
        label = f"{data.get('name', dname)} {data.get('split', '')}".strip()
        pq = section.get("per_query") or {}
        lines += ["", f"**Most regressed queries** on {cell(dname, 40)} ({cell(label, 60)}), by {cell(metric, 30)}",
                  "", "| query | id | base | candidate | \u0394 |", "|---|---|---:|---:|---:|"]
        for d, qid in worst:
            text = (section.get("queries") or {}).get(qid, "")
            lines.append(f"| {cell(text, 100)} | {cell(qid, 40)} | {fmt.num(pq['base'][qid][metric], 3)} | "
                         f"{fmt.num(pq['candidate'][qid][metric], 3)} | {fmt.signed(d, 3)} |")
    return "\n".join(lines) + "\n"


def systems_table(result: dict[str, Any], dname: str, section: dict[str, Any]) -> list[str]:
    """Each system of a set on its primary metric, the candidate's paired difference against it with the interval,
    and its p50 latency; nothing for a set of base and candidate only (an older result)."""
    metric = primary_metric(result, dname, section)
    view = systems_view(section, suite_metrics(result, section), metric) if metric else None
    if not view:
        return []
    data = section.get("data") or {}
    label = f"{data.get('name', dname)} {data.get('split', '')}".strip()
    lines = ["", f"**Systems** on {cell(dname, 40)} ({cell(label, 60)}), by {cell(metric, 30)}, paired on the same "
                 f"queries",
             "", f"| system | kind | {cell(metric, 30)} | \u0394 candidate \u2212 system ({view['confidence']}) | "
                 f"p50 ms ({view['latency_label']}) |", "|---|---|---:|---|---:|"]
    for row in view["rows"]:
        if row["judged"]:
            versus = "judged"
        elif row["versus"]:
            versus = f"{fmt.signed(row['versus']['difference'])} {fmt.interval(row['versus']['ci'])}"
        else:
            versus = "not compared"
        latency = fmt.ms(row["latency"]["p50"]) if row["latency"]["measured"] else "not measured"
        lines.append(f"| {cell(row['name'], 40)} | {cell(row['kind'], 20)} | {fmt.num(row['primary_mean'])} | "
                     f"{versus} | {latency} |")
    return lines


def variants_table(result: dict[str, Any], dname: str, section: dict[str, Any]) -> list[str]:
    """The candidate's variants (its deployment forms: truncated, quantized) on the primary metric, against the
    candidate and against base, with the index per 1M documents; the base's variants are counted (the HTML report
    draws them). Nothing for a set without variants."""
    metric = primary_metric(result, dname, section)
    view = variants_view(section, suite_metrics(result, section), metric, result.get("models")) if metric else None
    if not view:
        return []
    rows = [r for r in view["rows"] if not r["full"] and r["of"] != "base"]
    others = sum(1 for r in view["rows"] if not r["full"] and r["of"] == "base")
    lines = ["", f"**Variants** on {cell(dname, 40)}, by {cell(view['metric'], 30)} (paired \u0394 with its "
                 f"{view['confidence']})" + (f"; {others} variants of base in the HTML report" if others else "")]
    if rows:
        lines += ["", "| variant | dims | precision | mean | \u0394 vs candidate | \u0394 vs base | "
                      "index per 1M docs |", "|---|---:|---|---:|---|---|---:|"]
    for r in rows:
        vs = [f"{fmt.signed(c['difference'])} {fmt.interval(c['ci'])}" if c else "n/a"
              for c in (r["vs_full"], r["vs_base"])]
        prec = r["precision"] + (f", top {r['rescore']} re-scored" if r["rescore"] else "")
        lines.append(f"| {cell(r['name'], 40)} | {r['dims'] if r['dims'] is not None else 'n/a'} | {cell(prec, 40)} | "
                     f"{fmt.num(r['mean'])} | {vs[0]} | {vs[1]} | {fmt.human_bytes(r['index_per_million'])} |")
    return lines


def training_text(t: dict[str, Any]) -> str:
    """The candidate's training in one line, from its manifest: recipe, base model, pairs, steps, loss, seed(s),
    wall time."""
    seed = f"seeds {', '.join(str(x) for x in t['seeds'])}" if t["seeds"] else f"seed {t['seed']}"
    wall = " / ".join(t["walls"]) if t["walls"] else t["wall"]
    pairs = f"{t['pairs']:,}" if fmt.is_number(t["pairs"]) else "n/a"
    return (f"trained with recipe `{cell(t['recipe'], 60)}` from {cell(t['base_model'], 80)} on {pairs} pairs, "
            f"{t['steps'] if t['steps'] is not None else 'n/a'} steps, loss {cell(t['loss'], 60)}, {seed}, "
            f"wall time {wall}" + (f", contamination check {t['contamination']}" if t["contamination"] else ""))


def seeds_table(sd: dict[str, Any]) -> list[str]:
    """A recipe over seeds: each seed's verdict and its difference against base per data set, the pooled row the
    gates judged, and the spread."""
    head = " | ".join(f"\u0394 {cell(st['name'], 30)} {cell(st['metric'], 20)}" for st in sd["sets"])
    lines = ["", f"**Recipe over {sd['n']} seeds** ({sd['n_passed']} of {len(sd['rows'])} pass every gate on their "
                 f"own): the improvement gates judge the per-query mean over the seeds, every other gate must hold "
                 f"for each seed.", "", f"| seed | verdict | {head} |", "|---|---|" + "---:|" * len(sd["sets"])]
    for r in sd["rows"]:
        cells = " | ".join(f"{fmt.signed(c['difference'])} {fmt.interval(c['ci']) if c['ci'] else ''}".strip()
                           for c in r["cells"])
        name = cell(r["name"], 40) + (f" ({cell(r['short'], 60)})" if r["short"] != r["name"] else "")
        lines.append(f"| {name} | {ICONS.get(r['verdict'], '')} {r['verdict'].upper()} | {cells} |")
    pooled = " | ".join(f"{fmt.signed(st['pooled_difference'])} {fmt.interval(st['pooled_ci'])}" for st in sd["sets"])
    lines.append(f"| pooled | judged by the gates | {pooled} |")
    spread = "; ".join(f"{cell(st['name'], 30)} min {fmt.signed(st['spread']['min'])}, max "
                       f"{fmt.signed(st['spread']['max'])}, sd {fmt.num(st['spread']['sd'])}" for st in sd["sets"])
    return lines + ["", f"Spread of the seeds' \u0394: {spread}."]

