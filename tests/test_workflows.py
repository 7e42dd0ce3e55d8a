"""The CI pipelines users copy: valid GitHub workflow schema, no security findings, and the nox sessions they call."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def _tool(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(path).exists():
        pytest.fail(f"{name} is a test dependency (pip install -e '.[test]')")
    return path


def test_workflows_match_the_github_schema():
    assert {p.name for p in WORKFLOWS} >= {"gate.yml", "train.yml"}
    proc = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                           *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflows_have_no_security_findings():
    proc = subprocess.run([_tool("zizmor"), "--offline", str(REPO / ".github" / "workflows")], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflows_call_nox_sessions_that_exist():
    import nox._options  # noqa: F401  (nox is a test dependency)

    proc = subprocess.run([sys.executable, "-m", "nox", "--list", "-f", str(REPO / "noxfile.py")],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    sessions = {line.split()[1] for line in proc.stdout.splitlines() if line[:2] in ("* ", "- ")}
    called = set()
    for wf in WORKFLOWS:
        for line in wf.read_text().splitlines():
            if "nox -s " in line:
                called.add(line.split("nox -s ")[1].split()[0])
    assert called == {"gate", "train"} and called <= sessions, (called, sessions)
