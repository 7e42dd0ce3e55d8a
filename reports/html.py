"""The HTML report: one self-contained file (inline CSS, SVG and a little JS) rendered with jinja2, autoescape on."""
from __future__ import annotations

from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

import jinja2
from markupsafe import Markup, escape

from embedgate.harness.errors import DataError
from embedgate.harness.schema import SuiteResult
from embedgate.harness.io import atomic_write_text

from . import format as fmt
from .history import find_history
from .load import as_data
from .view import comparison_view, run_view


def _rank(value: Any, depth: Any = None) -> str:
    if fmt.is_number(value):
        return f"#{int(value)}"
    return f">{depth}" if fmt.is_number(depth) else "\u2014"


def _thousands(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "n/a"


def _breakable(text: Any) -> Markup:
    """Text that may wrap after '/', '_', '.' and ',' (paths, snake_case keys, long settings) rather than at an
    arbitrary character: escaped first, then a <wbr> after each."""
    out = str(escape("" if text is None else text))
    for ch in ("/", "_", ",", "."):
        out = out.replace(ch, ch + "<wbr>")
    return Markup(out)


def _sign_class(value: Any) -> str:
    if not fmt.is_number(value) or round(value, 4) == 0:
        return "flat"
    return "up" if value > 0 else "down"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    # autoescape on for every template: query and document texts come from users' data and must stay inert text.
    # The default (lenient) Undefined: an optional key a writer left out renders as nothing rather than failing;
    # tests render with every optional key removed in turn.
    env = jinja2.Environment(loader=jinja2.PackageLoader("embedgate.reports", "templates"), autoescape=True)
    env.filters.update({
        "num": fmt.num, "signed": fmt.signed, "pct": fmt.pct, "pval": fmt.p_value, "interval": fmt.interval,
        "bytes": fmt.human_bytes, "ms": fmt.ms, "usd": fmt.usd,
        "when": fmt.when, "short_hash": fmt.short_hash, "thousands": _thousands, "sign_class": _sign_class,
        "rank": _rank, "breakable": _breakable, "status_label": lambda s: fmt.STATUS_LABELS.get(s, str(s).upper()),
        "clip": lambda text, n: text if not isinstance(text, str) or len(text) <= n else text[: n - 1] + "\u2026",
    })
    return env


def _version() -> str:
    try:
        return metadata.version("embedgate")
    except metadata.PackageNotFoundError:
        return "dev"


def render_html(results: "dict[str, Any] | list[dict[str, Any]]", history: list[dict[str, Any]] | None = None, *,
                sources: Iterable[str | Path] = ()) -> str:
    """One result (with the trend of ``history``, earlier results of the same suite), or several results side by
    side. Results are validated first: a malformed one raises DataError rather than rendering a misleading page."""
    if not isinstance(results, (list, tuple)):
        results = [results]
    results = list(results)
    if not results:
        raise DataError("no result to render")
    sources = [str(s) for s in sources]
    results = [as_data(r, sources[i] if i < len(sources) else f"<result {i + 1}>") for i, r in enumerate(results)]
    if len(results) == 1:
        runs = [run_view(results[0], history)]
        comparison = None
        title = f"{fmt.VERDICT_LABELS.get(runs[0]['verdict'], '?')} \u00b7 {runs[0]['suite']} \u00b7 embedgate report"
    else:
        runs = [run_view(r, None, prefix=f"run{i + 1}-") for i, r in enumerate(results)]
        comparison = comparison_view(results)
        title = f"embedgate: {len(results)} runs compared"
    return environment().get_template("report.html.j2").render(
        runs=runs, comparison=comparison, title=title, version=_version(), sources=sources)


def report_path(json_path: str | Path) -> Path:
    return Path(json_path).with_suffix(".html")


def write_report(result: "SuiteResult | dict[str, Any]", json_path: str | Path,
                 history: list[dict[str, Any]] | None = None) -> Path:
    """Write the HTML report next to the result JSON (same stem, ``.html``), atomically, and return its path. With
    ``history`` None, earlier results of the same suite in the same folder make the trend."""
    json_path = Path(json_path)
    result = as_data(result, json_path)
    if history is None:
        history = find_history(json_path, result)
    html = render_html([result], history, sources=[json_path.name])
    return atomic_write_text(report_path(json_path), html)
