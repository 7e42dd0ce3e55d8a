"""CI sessions. `nox -s tests` is what contributors run; `gate` and `train` are what the workflows call."""
from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "workflows"]
nox.options.reuse_existing_virtualenvs = True


def _install(session: nox.Session, extras: str) -> None:
    # GitHub's hosted runners would take a multi-GB CUDA torch from PyPI: the workflows point this at the
    # CPU wheel index. Locally, pip finds the pinned CPU build on its own.
    index = os.environ.get("EMBEDGATE_TORCH_INDEX")
    if index and "cpu" in extras:
        session.install("torch==2.13.0", "--index-url", index)
    session.install("-e", f".[{extras}]")


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (the README's test command, inside a fresh venv)."""
    _install(session, "cpu,test")
    session.run("pytest", *(session.posargs or ["-n", "2"]))


@nox.session
def gate(session: nox.Session) -> None:
    """`nox -s gate -- suites/legal [--candidate PATH]`: the regression gate; fails when a gate does not pass."""
    if not session.posargs:
        session.error("usage: nox -s gate -- SUITE [--candidate MODEL] [embedgate gate options]")
    _install(session, "cpu,offline-model")
    session.run("embedgate", "gate", *session.posargs)


@nox.session
def train(session: nox.Session) -> None:
    """`nox -s train -- RECIPE [--output DIR]`: fine-tune on whatever torch the runner has (CUDA on GPU runners)."""
    if not session.posargs:
        session.error("usage: nox -s train -- RECIPE.toml [--output DIR]")
    _install(session, "offline-model")
    session.run("embedgate", "train", *session.posargs)


@nox.session
def workflows(session: nox.Session) -> None:
    """Schema-check and security-lint the GitHub workflows, offline."""
    session.install("check-jsonschema", "zizmor")
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *_workflow_files())
    session.run("zizmor", "--offline", ".github/workflows")


@nox.session
def bench(session: nox.Session) -> None:
    """Side-by-side speed benchmarks; they write BENCHMARKS.md."""
    _install(session, "cpu,test")
    session.run("python", "bench/bench_eval.py", *session.posargs)


def _workflow_files() -> list[str]:
    import glob

    return sorted(glob.glob(".github/workflows/*.yml"))
