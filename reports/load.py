"""Reading a result JSON before anything renders it: the file is parsed into the typed ``SuiteResult``
(``harness.schema``, schema ``embedgate.suite-result/2``), so a file that is not a result, one of another version, or
one whose shape would make the report lie or crash, is refused with a DataError naming the file and the field.
Optional parts (comparisons, guard sets, the whole ``datasets`` block of a run that errored) may be absent: the
report says what is missing instead."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from embedgate.harness.errors import DataError
from embedgate.harness.schema import SUITE_RESULT_SCHEMA, SuiteResult, parse_suite_result

KNOWN_SCHEMAS = (SUITE_RESULT_SCHEMA,)


def load_result(path: str | Path) -> dict[str, Any]:
    """Read a result JSON and check it is one this version can render; returns the file's data as it is."""
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
        reason = exc.msg[:-3] if exc.msg.endswith(" at") else exc.msg
        raise DataError(f"not valid JSON at column {exc.colno}: {reason}", path=path, line=exc.lineno) from None
    parse_suite_result(result, path)
    return result


def as_data(result: "SuiteResult | dict[str, Any]", where: str | Path = "<result>") -> dict[str, Any]:
    """A SuiteResult, or a result dict validated into one, as the plain JSON data the views read."""
    if isinstance(result, SuiteResult):
        return result.to_json_dict()
    return parse_suite_result(result, where).to_json_dict()


def validate_result(result: Any, path: str | Path | None = None) -> None:
    """Raise DataError (naming ``path`` and the field) when ``result`` is not a renderable suite result."""
    if not isinstance(result, SuiteResult):
        parse_suite_result(result, path if path is not None else "<result>")
