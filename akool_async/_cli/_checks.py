"""Checks of what the user named on the command line, before anything is sent."""

from __future__ import annotations

import math
import os
from pathlib import Path

from ._errors import CLIError


def output_folder(path: Path, option: str = "--out") -> Path:
    """``path`` as a folder we can write in, created if missing; else a usage error."""
    if path.exists() and not path.is_dir():
        raise CLIError(f"{option} {path} is a file, not a folder: choose another {option}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"cannot create {option} {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CLIError(f"cannot write in {option} {path}: permission denied")
    return path


def input_file(path: Path) -> Path:
    if not path.is_file():
        raise CLIError(f"{path} is not a file (a .jsonl or .csv of prompts)")
    if not os.access(path, os.R_OK):
        raise CLIError(f"cannot read {path}: permission denied")
    return path


def poll_floor(seconds: float | None) -> None:
    """``--poll-floor``: none, or seconds above 0; else a usage error."""
    if seconds is not None and not 0 < seconds < math.inf:
        raise CLIError(f"--poll-floor must be a number of seconds above 0, not {seconds}")
