"""Reading and validating a result JSON (schema ``embedgate.suite-result/1``) before anything renders it.

A file that is not a result, or one whose shape would make the report lie or crash, is refused with a DataError
naming the file and the field. Optional parts (comparisons, guard sets, a whole `datasets` block of a run that
errored) may be absent: the report says what is missing instead.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from embedgate.harness.errors import DataError

KNOWN_SCHEMAS = ("embedgate.suite-result/1",)
VERDICTS = ("pass", "fail", "error")
STATUSES = ("pass", "fail", "inconclusive", "error")
_GATE_NUMBERS = ("base", "candidate", "difference", "relative_difference", "confidence", "p_value", "mde",
                 "n_queries")


def load_result(path: str | Path) -> dict[str, Any]:
    """Read a result JSON and check it is one this version can render."""
    path = Path(path)
    if not path.is_file():
        raise DataError("result file not found", path=path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not valid UTF-8 ({exc.reason})", path=path) from None
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", path=path) from None
    try:
        result = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg} (column {exc.colno})", path=path, line=exc.lineno) from None
    validate_result(result, path)
    return result


def _fail(message: str, path, field: str | None):
    raise DataError(message, path=path, field=field)


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


_KIND_NAMES = {dict: "an object", list: "a list", str: "a string"}


def _expect(value: Any, kind: type, where, field: str) -> None:
    if not isinstance(value, kind):
        _fail(f"expected {_KIND_NAMES[kind]}, got {type(value).__name__}", where, field)


def validate_result(result: Any, path: str | Path | None = None) -> None:
    """Raise DataError (naming ``path`` and the field) when ``result`` is not a renderable suite result."""
    where = path if path is not None else "<result>"
    if not isinstance(result, dict):
        _fail(f"not an embedgate result: the top level is a {type(result).__name__}, not an object", where, None)
    schema = result.get("schema")
    if schema not in KNOWN_SCHEMAS:
        _fail(f"unknown result schema {schema!r}; this version of embedgate reads {', '.join(KNOWN_SCHEMAS)}",
              where, "schema")
    suite = result.get("suite")
    _expect(suite, dict, where, "suite")
    if not isinstance(suite.get("name"), str) or not suite["name"]:
        _fail("missing suite name", where, "suite.name")
    if result.get("verdict") not in VERDICTS:
        _fail(f"verdict must be one of {', '.join(VERDICTS)}, got {result.get('verdict')!r}", where, "verdict")
    for key in ("created_at", "summary"):
        if key in result and not isinstance(result[key], str):
            _fail("expected a string", where, key)
    gates = result.get("gates")
    _expect(gates, list, where, "gates")
    for i, gate in enumerate(gates):
        _validate_gate(gate, where, f"gates[{i}]")
    for key in ("models", "options", "environment", "timings"):
        if key in result and result[key] is not None and not isinstance(result[key], dict):
            _fail("expected an object", where, key)
    datasets = result.get("datasets", {})
    if datasets is None:
        return
    _expect(datasets, dict, where, "datasets")
    for name, section in datasets.items():
        _validate_dataset(section, where, f"datasets.{name}")


def _validate_gate(gate: Any, where, field: str) -> None:
    _expect(gate, dict, where, field)
    if not isinstance(gate.get("name"), str):
        _fail("missing gate name", where, f"{field}.name")
    if gate.get("status") not in STATUSES:
        _fail(f"status must be one of {', '.join(STATUSES)}, got {gate.get('status')!r}", where, f"{field}.status")
    for key in _GATE_NUMBERS:
        if gate.get(key) is not None and not _is_num(gate[key]):
            _fail(f"expected a number or null, got {gate[key]!r}", where, f"{field}.{key}")
    ci = gate.get("ci")
    if ci is not None and not (isinstance(ci, list) and len(ci) == 2 and all(_is_num(v) for v in ci)):
        _fail(f"expected [low, high] or null, got {ci!r}", where, f"{field}.ci")
    for key in ("threshold", "details"):
        if gate.get(key) is not None and not isinstance(gate[key], dict):
            _fail("expected an object", where, f"{field}.{key}")
    worst = gate.get("worst_queries")
    if worst is not None:
        _expect(worst, list, where, f"{field}.worst_queries")
        for j, row in enumerate(worst):
            _expect(row, dict, where, f"{field}.worst_queries[{j}]")


def _validate_dataset(section: Any, where, field: str) -> None:
    _expect(section, dict, where, field)
    for key in ("data", "metrics", "comparisons", "queries", "per_query", "rankings", "qrels", "relevant_ranks",
                "documents"):
        if key in section and not isinstance(section[key], dict):
            _fail("expected an object", where, f"{field}.{key}")
    for side_key in ("metrics", "per_query", "rankings", "relevant_ranks"):
        block = section.get(side_key) or {}
        for side, values in block.items():
            if not isinstance(values, dict):
                _fail("expected an object", where, f"{field}.{side_key}.{side}")
    per_query = section.get("per_query") or {}
    for side, rows in per_query.items():
        for qid, metrics in rows.items():
            if not isinstance(metrics, dict) or not all(_is_num(v) for v in metrics.values()):
                _fail("expected {metric: number}", where, f"{field}.per_query.{side}.{qid}")
    for side, by_query in (section.get("rankings") or {}).items():
        for qid, ranking in by_query.items():
            if not isinstance(ranking, list) or not all(
                    isinstance(hit, (list, tuple)) and len(hit) == 2 and isinstance(hit[0], str) and _is_num(hit[1])
                    for hit in ranking):
                _fail("expected a list of [document id, score]", where, f"{field}.rankings.{side}.{qid}")
    for name, cmp in (section.get("comparisons") or {}).items():
        if not isinstance(cmp, dict):
            _fail("expected an object", where, f"{field}.comparisons.{name}")
        ci = cmp.get("ci")
        if ci is not None and not (isinstance(ci, list) and len(ci) == 2 and all(_is_num(v) for v in ci)):
            _fail(f"expected [low, high], got {ci!r}", where, f"{field}.comparisons.{name}.ci")
