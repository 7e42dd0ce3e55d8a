"""`embedgate gate SUITE --candidate MODEL`: the same gates as `pytest suites/<name>`, exit 0 (pass) or 1."""
from __future__ import annotations

import sys
from pathlib import Path

from .publish import candidate_option, gate_table, out_dir, publish, seed_lines, systems_table


def cmd_gate(args) -> int:
    from ..errors import ConfigError
    from ..suite import load_suite, run_suite

    suite = load_suite(args.suite)
    candidate = candidate_option(args.candidate)
    if candidate is None:
        raise ConfigError("no candidate model given (pass --candidate PATH or set EMBEDGATE_CANDIDATE)",
                          field="candidate")
    say = (lambda m: print(m, file=sys.stderr)) if not args.quiet else None
    result = run_suite(suite, candidate, baseline=args.baseline, cache=False if args.no_cache else args.cache_dir,
                       out_dir=out_dir(args.results_dir), progress=say)
    files = publish(result, Path(result.files["json"]))
    print(f"suite {suite.name}: {result.verdict.upper()}: {result.summary}")
    print(gate_table(result))
    if result.seeds:
        print(seed_lines(result))
    if result.datasets and (systems := systems_table(result)):
        print(systems)
    for g in result.gates:
        if g.status != "pass":
            print("\n" + g.message)
    print(f"\nresult: {files['json']}\nreport: {files['html']}")
    return 0 if result.verdict == "pass" else 1


def add_parser(sub) -> None:
    p = sub.add_parser("gate", help="run a suite's gates on a candidate; exit 0 when every gate passes, 1 when one "
                       "does not, 2 on bad input",
                       description="Run a suite's gates on a candidate (the same gates as `pytest suites/<name>`). "
                       "Exit status: 0 every gate passed; 1 a gate failed, was not shown or errored; 2 bad input "
                       "(suite file, data, model, options), reported in one line naming the file, line and field.")
    p.add_argument("suite", help="suite folder or suite.toml")
    p.add_argument("--candidate", action="append", default=None,
                   help="candidate model folder or hub id, or a system .toml (e.g. a hybrid of bm25 and a model "
                   "folder) ($EMBEDGATE_CANDIDATE); repeat it for the candidates of one recipe trained with "
                   "different seeds: the improvement is then judged on the pooled evidence, the guards per seed")
    p.add_argument("--baseline", default=None, help="override the suite's base model")
    p.add_argument("--results-dir", default=None, help="where result JSON and HTML go (default embedgate-results/)")
    p.add_argument("--cache-dir", default=None, help="embedding cache (default $EMBEDGATE_CACHE or ~/.cache/embedgate)")
    p.add_argument("--no-cache", action="store_true", help="encode everything again and store nothing")
    p.add_argument("-q", "--quiet", action="store_true", help="no stage lines on stderr; the verdict and table only")
    p.set_defaults(func=cmd_gate)
