"""`embedgate report RESULT.json [RESULT2.json ...]`: render a result's HTML report again, or compare runs."""
from __future__ import annotations

from pathlib import Path


def default_output(paths: list[Path]) -> Path:
    """One result: beside it, same stem. Several: beside the first, named after it as a comparison."""
    if len(paths) == 1:
        return paths[0].with_suffix(".html")
    return paths[0].with_name(f"{paths[0].stem}.compare-{len(paths)}.html")


def cmd_report(args) -> int:
    from embedgate.harness.errors import ConfigError
    from embedgate.harness.io import atomic_write_text

    from .history import find_history
    from .html import render_html
    from .load import load_result
    from .markdown import render_markdown

    paths = [Path(p) for p in args.results]
    results = [load_result(p) for p in paths]
    out = Path(args.out) if args.out else default_output(paths)
    if out.resolve() in {p.resolve() for p in paths}:
        raise ConfigError("--out would overwrite a result file", path=out, field="--out")
    if out.suffix.lower() not in (".html", ".htm"):
        raise ConfigError("the report is HTML: give --out a .html file name", path=out, field="--out")
    history = None
    if len(results) == 1 and not args.no_history:
        history = find_history(paths[0], results[0])
    html = render_html(results, history, sources=[p.name for p in paths])
    print(f"report: {atomic_write_text(out, html)}")
    if args.markdown:
        text = "\n---\n\n".join(render_markdown(r) for r in results)
        print(f"markdown: {atomic_write_text(args.markdown, text)}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="render the HTML report of a result JSON again, or compare several runs",
                       description="Render the HTML report of one gate result (with the trend of earlier runs of "
                                   "the same suite in its folder), or put several results side by side.")
    p.add_argument("results", nargs="+", metavar="RESULT.json", help="result file(s) written by a gate run")
    p.add_argument("--out", default=None, metavar="FILE.html",
                   help="where the HTML goes (default: next to the first result, same stem)")
    p.add_argument("--markdown", default=None, metavar="FILE.md", help="also write the markdown step summary here")
    p.add_argument("--no-history", action="store_true", help="leave out the trend of earlier runs")
    p.set_defaults(func=cmd_report)
