"""Developer sessions: ``nox -s tests lint typecheck``; ``nox -s coverage``, ``bench`` and
``demo``."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite; every async test runs on both anyio backends (asyncio and trio)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def coverage(session: nox.Session) -> None:
    """The suite with branch coverage, per module and per package (subprocesses included)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "--cov", "--cov-report=term", *session.posargs)


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
    """Every benchmark script (or those named: ``nox -s bench -- polling waiting``), each
    printing min / median / max over interleaved rounds and appending one JSON line per
    figure to ``bench-results.jsonl`` (``BENCH_JSON`` to choose another file)."""
    from pathlib import Path

    session.install("-e", ".[all]")
    output = os.environ.get("BENCH_JSON") or str(Path("bench-results.jsonl").resolve())
    chosen = set(session.posargs)
    for script in sorted(Path("benchmarks").glob("*.py")):
        if not script.name.startswith("_") and (not chosen or script.stem in chosen):
            session.run("python", str(script), env={"BENCH_JSON": output})
    session.log(f"figures appended to {output}")
