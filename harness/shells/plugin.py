"""pytest plugin: `pytest suites/legal --candidate PATH` runs each gate of suite.toml as a test item.

The suite is evaluated once per file, on the first gate that runs; every gate then reports its own verdict. A
missing candidate, bad data or a gate that cannot be computed fails the items: nothing is ever skipped or passed
silently. Registered through the `pytest11` entry point; imports stay light until a suite is collected.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..schema import SuiteResult

_RESULTS_KEY = pytest.StashKey[list]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("embedgate", "embedgate regression gate")
    group.addoption("--candidate", action="append", default=None, metavar="MODEL",
                    help="candidate model folder or hub id to gate, or a system .toml "
                         "(default: $EMBEDGATE_CANDIDATE); repeat it for one recipe's seeds")
    group.addoption("--baseline", default=None, metavar="MODEL", help="override the suite's base model")
    group.addoption("--embedgate-results", default=None, metavar="DIR",
                    help="where result JSON and HTML reports go (default: $EMBEDGATE_RESULTS or embedgate-results/)")
    group.addoption("--embedgate-cache", default=None, metavar="DIR",
                    help="embedding cache (default: $EMBEDGATE_CACHE or ~/.cache/embedgate)")
    group.addoption("--embedgate-no-cache", action="store_true", default=False, help="do not use the cache")


def pytest_configure(config: pytest.Config) -> None:
    from ..gates import gate_class, gate_kinds

    config.addinivalue_line("markers", "embedgate: a gate of an embedgate suite (suite.toml)")
    for kind in gate_kinds():
        config.addinivalue_line("markers", f"gate_{kind}: an embedgate {kind} gate: {gate_class(kind).summary}")
    config.stash[_RESULTS_KEY] = []


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path.name == "suite.toml":
        return SuiteFile.from_parent(parent, path=file_path)
    return None


class GateNotPassed(Exception):
    """A gate that did not pass; its message is the whole report."""


class SuiteFile(pytest.File):
    def collect(self):
        from ..errors import EmbedgateError
        from ..suite import load_suite

        try:
            self.suite = load_suite(self.path)
        except EmbedgateError as exc:
            raise SuiteConfigError(str(exc)) from None
        self._result: SuiteResult | None = None
        self._error: str | None = None
        for spec in self.suite.gates:
            item = GateItem.from_parent(self, name=spec.name, spec=spec)
            item.add_marker("embedgate")
            item.add_marker(f"gate_{spec.kind}")
            yield item

    def repr_failure(self, excinfo, style=None):
        if excinfo.errisinstance(SuiteConfigError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def result(self) -> tuple["SuiteResult | None", str | None]:
        """Run the suite once (on the first gate that needs it)."""
        if self._result is None and self._error is None:
            self._run()
        return self._result, self._error

    def _progress(self):
        """Stage lines (which set, which system, texts cached / encoded) while the suite runs: a gate of several
        minutes must not look hung. Silent under -q."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or self.config.get_verbosity() < 0:
            return None

        def say(message: str) -> None:
            reporter.ensure_newline()
            reporter.write_line(f"embedgate: {message}")

        return say

    def _run(self) -> None:
        from ..errors import EmbedgateError
        from .publish import candidate_option, out_dir, publish
        from ..suite import error_run_result, run_suite, write_result

        opt = self.config.getoption
        results_dir = out_dir(opt("--embedgate-results"))
        try:
            result = run_suite(self.suite, candidate_option(opt("--candidate")), baseline=opt("--baseline"),
                               cache=False if opt("--embedgate-no-cache") else opt("--embedgate-cache"),
                               out_dir=results_dir, progress=self._progress())
        except EmbedgateError as exc:
            self._error = str(exc)
            result = error_run_result(self.suite, self._error)
            result.files = {"json": str(write_result(result, results_dir))}
        except Exception as exc:  # never a silent pass: an unexpected failure fails every gate
            self._error = f"{type(exc).__name__}: {exc}"
            result = error_run_result(self.suite, self._error)
            result.files = {"json": str(write_result(result, results_dir))}
        try:
            result.files.update(publish(result, Path(result.files["json"])))
        except Exception as exc:
            result.files["report_error"] = f"{type(exc).__name__}: {exc}"
        self._result = result
        self.config.stash[_RESULTS_KEY].append(result)


class SuiteConfigError(Exception):
    """suite.toml is not valid: reported as a collection error without a traceback."""


class GateItem(pytest.Item):
    def __init__(self, *, spec, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec

    def runtest(self) -> None:
        result, error = self.parent.result()
        if error is not None:
            raise GateNotPassed(f"{self.spec.name}: ERROR: {error}")
        gate = next(g for g in result.gates if g.name == self.spec.name)
        for key in ("status", "requirement", "observed", "base", "candidate", "difference", "p_value", "mde",
                    "n_queries"):
            value = getattr(gate, key)
            if value not in (None, ""):
                self.user_properties.append((f"embedgate.{key}", value))
        if gate.ci is not None:
            self.user_properties.append(("embedgate.ci", f"[{gate.ci[0]:.6f}, {gate.ci[1]:.6f}]"))
        if gate.status != "pass":
            raise GateNotPassed(gate.message)

    def repr_failure(self, excinfo, style=None):
        if excinfo.errisinstance(GateNotPassed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, (self.spec.line or 1) - 1, f"{self.parent.suite.name}: {self.spec.name}"


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    results = config.stash.get(_RESULTS_KEY, [])
    if not results:
        return
    from .publish import gate_table, seed_lines, systems_table

    terminalreporter.section("embedgate")
    for result in results:
        terminalreporter.write_line(f"suite {result.suite.name}: {result.verdict.upper()}: {result.summary}")
        terminalreporter.write_line(gate_table(result))
        if result.seeds:
            terminalreporter.write_line(seed_lines(result))
        if result.datasets and (systems := systems_table(result)):
            terminalreporter.write_line(systems)
        for key in ("json", "html", "step_summary", "report_error"):
            if key in result.files:
                terminalreporter.write_line(f"  {key}: {result.files[key]}")
