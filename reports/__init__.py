"""Reports: the HTML page people decide from, and the markdown CI step summary, both read from a result JSON
(schema ``embedgate.suite-result/2``). Reports only read results; they never recompute a number.

    reports.load_result(path)                  read and validate a result JSON
    reports.render_html(results, history)      one run, or several side by side -> HTML text
    reports.write_report(result, json_path)    the HTML next to the JSON (same stem), with the trend of the folder
    reports.render_markdown(result)            the GitHub step summary
    reports.text.systems_lines(result)         the systems table the terminal summary prints
"""
from __future__ import annotations

import importlib

# Imported on first use (PEP 562): `embedgate eval` and `embedgate gate` register the `report` subcommand through
# this package, and jinja2 with the templates should not cost them an import when they write no report.
_EXPORTS = {"render_html": "html", "write_report": "html", "report_path": "html", "render_markdown": "markdown",
            "load_result": "load", "validate_result": "load", "KNOWN_SCHEMAS": "load"}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
