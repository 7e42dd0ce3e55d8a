"""The joints of the house: imports run one way, and nothing of ours clashes with a user's own packages."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from suite_helpers import write_tiny_suite

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"harness": "embedgate.harness", "reports": "embedgate.reports", "trainers": "embedgate.trainers"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([PACKAGES.get(parts[0], parts[0]), *parts[1:]])  # tests/, bench/: plain script folders


def imported_names(path: Path) -> set[str]:
    """Every module a file imports, absolute: import statements (relative ones resolved, at any depth, lazy or
    not) and string arguments of importlib.import_module / __import__ (so no import hides from the rule)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            out |= {f"{target}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) and \
                isinstance(node.args[0].value, str):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            if name in ("import_module", "__import__"):
                out.add(node.args[0].value)
    return out


def _files(folder: str, exclude: str | None = None) -> list[Path]:
    files = sorted((REPO / folder).rglob("*.py"))
    return [f for f in files if not (exclude and f.is_relative_to(REPO / exclude))]


def _offenders(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for f in files:
        for name in sorted(imported_names(f)):
            if any(name == p or name.startswith(p + ".") for p in forbidden):
                bad.append(f"{f.relative_to(REPO)} imports {name}")
    return bad


SHELLS = "embedgate.harness.shells"


def test_the_core_imports_neither_trainers_nor_reports_nor_the_shells():
    core = _files("harness", exclude="harness/shells")
    assert len(core) > 10
    assert _offenders(core, ("embedgate.trainers", "embedgate.reports", SHELLS)) == []


def test_reports_and_trainers_stay_below_the_shells_and_apart():
    assert _offenders(_files("reports"), ("embedgate.trainers", SHELLS)) == []
    assert _offenders(_files("trainers"), ("embedgate.reports", SHELLS)) == []


def test_nothing_imports_our_folders_by_their_bare_names():
    """`import reports` would pick up a user's own reports/ package: every import goes through `embedgate.`."""
    files = _files("harness") + _files("reports") + _files("trainers") + _files("tests") + _files("bench")
    assert _offenders(files, ("harness", "reports", "trainers")) == []


def test_the_rule_sees_lazy_and_dynamic_imports(tmp_path):
    """The walk must catch what a quick grep would miss: an import inside a function, a relative import two levels
    up, and importlib with a string."""
    probe = REPO / "harness" / "_probe_for_test.py"
    probe.write_text("def f():\n    from ..reports import html\n    import importlib\n"
                     "    importlib.import_module('embedgate.trainers.train')\n")
    try:
        found = imported_names(probe)
    finally:
        probe.unlink()
    assert "embedgate.reports.html" in found and "embedgate.trainers.train" in found


# ------------------------------------------------------------------------------------------------ a user's repo


USER_PACKAGE = '"""A user\'s own {name} package: it knows nothing of embedgate."""\nOWNER = "user"\n'


@pytest.fixture
def user_repo(tmp_path, small_beir, tiny_model):
    """A repository with its own `reports`, `harness` and `trainers` packages and a root conftest.py that imports
    them, as a team's monorepo might have."""
    repo = tmp_path / "user-repo"
    for name in ("reports", "harness", "trainers"):
        (repo / name).mkdir(parents=True)
        (repo / name / "__init__.py").write_text(USER_PACKAGE.format(name=name))
    (repo / "conftest.py").write_text("import harness, reports, trainers  # the user's own\n"
                                      "assert reports.OWNER == 'user'\n")
    write_tiny_suite(repo / "suites" / "tiny", str(tiny_model), small_beir, """
[[gates]]
kind = "absolute"
metric = "ndcg@10"
min = 0.0
[[gates]]
kind = "non_inferiority"
metric = "ndcg@10"
margin = 0.05
""")
    return repo


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GITHUB_STEP_SUMMARY")}
    env["EMBEDGATE_NO_PROGRESS"] = "1"
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_gate_in_a_repo_with_its_own_reports_harness_and_trainers(user_repo, tiny_model, tmp_path):
    from embedgate.harness.suite import run_suite

    expected = run_suite(user_repo / "suites" / "tiny", str(tiny_model), cache=False)
    bindir = Path(sys.executable).parent
    runs = {
        "pytest": [str(bindir / "pytest"), "suites/tiny", "--candidate", str(tiny_model), "-p", "no:cacheprovider",
                   "--embedgate-no-cache", f"--embedgate-results={tmp_path / 'from-pytest'}"],
        "gate": [str(bindir / "embedgate"), "gate", "suites/tiny", "--candidate", str(tiny_model), "--no-cache",
                 "--results-dir", str(tmp_path / "from-gate")],
    }
    for label, cmd in runs.items():
        proc = _run(cmd, user_repo)
        assert proc.returncode == 0, (label, proc.stdout[-3000:], proc.stderr[-3000:])
        out_dir = tmp_path / f"from-{label}"
        [json_path] = out_dir.glob("tiny-*.json")
        html = json_path.with_suffix(".html")
        assert html.is_file(), (label, proc.stdout[-2000:])  # the report was written, not swallowed by a clash
        assert "report_error" not in proc.stdout
        written = json.loads(json_path.read_text())
        assert [g["status"] for g in written["gates"]] == ["pass", "pass"]
        for got, want in zip(written["gates"], expected.gates):
            assert got["candidate"] == pytest.approx(want.candidate) and got["base"] == pytest.approx(want.base)
        assert f"{expected.gates[0].candidate:.4f}" in html.read_text()


def test_eval_command_line_imports_no_other_subcommand():
    """`embedgate eval` builds only its own parser: the report, training and generation shells (jinja2, the LLM
    client) are not imported, which is a third of a warm run's time; `embedgate --help` still lists every command."""
    probe = ("import sys\n"
             "from embedgate.harness.shells.cli import build_parser, _command\n"
             "p = build_parser(_command(['-v', 'eval', 'data', '--model', 'm']))\n"
             "assert p.parse_args(['eval', 'data', '--model', 'm']).command == 'eval'\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jinja2', 'torch', 'anthropic')\n"
             "             or m.startswith(('embedgate.reports', 'embedgate.trainers'))))\n"
             "full = build_parser(None).format_help()\n"
             "print(all(c in full for c in ('eval', 'gate', 'init', 'report', 'train', 'generate', 'export')))\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported, full_help = proc.stdout.splitlines()
    assert imported == "[]"
    assert full_help == "True"
