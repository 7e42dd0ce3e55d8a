"""Reports: the HTML page people decide from, and the markdown CI step summary, both read from a result JSON
(schema ``embedgate.suite-result/2``). Reports only read results; they never recompute a number.

    reports.load_result(path)                  read and validate a result JSON
    reports.render_html(results, history)      one run, or several side by side -> HTML text
    reports.write_report(result, json_path)    the HTML next to the JSON (same stem), with the trend of the folder
    reports.render_markdown(result)            the GitHub step summary
    reports.text.systems_lines(result)         the systems table the terminal summary prints
"""
from __future__ import annotations

from .html import render_html, report_path, write_report
from .load import KNOWN_SCHEMAS, load_result, validate_result
from .markdown import render_markdown

__all__ = ["render_html", "write_report", "report_path", "render_markdown", "load_result", "validate_result",
           "KNOWN_SCHEMAS"]
