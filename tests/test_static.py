"""The code stays mypy --strict and ruff clean (CI runs only the test command)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


def test_mypy_strict_is_clean() -> None:
    """mypy --strict finds nothing in the package."""
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean() -> None:
    """ruff finds nothing in the package, tests and benchmarks, and formatting holds."""
    ruff = str(Path(sys.executable).parent / "ruff")  # installed by the [test] extra
    targets = ("akool_async", "tests", "benchmarks", "examples", "noxfile.py")
    check = _run(ruff, "check", *targets)
    assert check.returncode == 0, check.stdout + check.stderr
    form = _run(ruff, "format", "--check", *targets)
    assert form.returncode == 0, form.stdout + form.stderr
