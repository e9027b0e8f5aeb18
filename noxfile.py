"""Developer sessions: ``nox -s tests lint typecheck``; ``nox -s bench`` and ``nox -s demo``."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite; every async test runs on both anyio backends (asyncio and trio)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "akool_async", "tests", "benchmarks", "examples", "noxfile.py")
    session.run(
        "ruff", "format", "--check", "akool_async", "tests", "benchmarks", "examples", "noxfile.py"
    )


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[test]", "mypy")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark script; each prints its figures as ratios to a baseline in the same run."""
    session.install("-e", ".[all]")
    for script in sorted(__import__("pathlib").Path("benchmarks").glob("*.py")):
        if not script.name.startswith("_"):
            session.run("python", str(script), *session.posargs)
