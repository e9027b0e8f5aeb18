"""Rounds and figures, the same way in every benchmark.

Contenders run in interleaved rounds (each round runs every contender once, on the same
window or the same work, the order rotated from round to round), so a burst of load from a
neighbour lands on all of them, not on one. A figure is reported as min / median / max over
the rounds; a ratio is taken inside each round (ours over the baseline measured next to
it) before the min / median / max. The machine's load average is printed at the start and
the end, and with ``--json PATH`` (or ``BENCH_JSON``) each figure is appended there as one
JSON line, to compare across commits.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

T = TypeVar("T")


def parser(doc: str | None, *, rounds: int) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark shares."""
    made = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    made.add_argument("--rounds", type=int, default=rounds, help="interleaved rounds")
    made.add_argument("--json", default=os.environ.get("BENCH_JSON"),
                      help="append one JSON line per figure to this file")  # fmt: skip
    return made


def _order(names: Sequence[str], round_: int) -> list[str]:
    shift = round_ % len(names)
    return [*names[shift:], *names[:shift]]


def interleave(rounds: int, contenders: Mapping[str, Callable[[], T]]) -> dict[str, list[T]]:
    """Every contender once per round, the order rotated each round."""
    results: dict[str, list[T]] = {name: [] for name in contenders}
    for round_ in range(rounds):
        for name in _order(list(contenders), round_):
            results[name].append(contenders[name]())
    return results


async def interleave_async(
    rounds: int, contenders: Mapping[str, Callable[[], Awaitable[T]]]
) -> dict[str, list[T]]:
    results: dict[str, list[T]] = {name: [] for name in contenders}
    for round_ in range(rounds):
        for name in _order(list(contenders), round_):
            results[name].append(await contenders[name]())
        print(f"  round {round_ + 1}/{rounds} done", flush=True)
    return results


def ratios(ours: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """Ours over the baseline, round by round."""
    return [a / b if b else float("nan") for a, b in zip(ours, baseline, strict=True)]


def _load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=os.path.dirname(__file__), check=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


class Figures:
    """Collects a script's figures; prints each, and the load average at start and end."""

    def __init__(self, script: str, args: argparse.Namespace, conditions: str) -> None:
        self.script = os.path.basename(script)
        self.json_path: str | None = args.json
        self.conditions = conditions
        self.load_start = _load()
        self._rows: list[dict[str, object]] = []
        print(f"{self.script}: {conditions}")
        print(f"load average at start: {' '.join(map(str, self.load_start))} "
              f"({os.cpu_count()} cores)", flush=True)  # fmt: skip

    def add(self, name: str, values: Sequence[float], unit: str, note: str = "") -> None:
        finite = [v for v in values if v == v]  # NaN (a round with no baseline) left out
        low, mid, high = (
            (min(finite), statistics.median(finite), max(finite)) if finite else (float("nan"),) * 3
        )
        shown = " / ".join(_show(v, unit) for v in (low, mid, high))
        suffix = "" if unit == "x" else f" {unit}"
        note = f" {note}" if note else ""
        print(f"{name}: {shown}{suffix} (min / median / max of {len(values)}){note}", flush=True)
        self._rows.append({"figure": name, "unit": unit, "min": low, "median": mid, "max": high,
                           "values": list(values), "rounds": len(values)})  # fmt: skip

    def close(self) -> None:
        load_end = _load()
        print(f"load average at end: {' '.join(map(str, load_end))}", flush=True)
        if not self.json_path:
            return
        common = {
            "script": self.script, "conditions": self.conditions, "commit": _commit(),
            "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(), "cores": os.cpu_count(),
            "load_start": self.load_start, "load_end": load_end, "argv": sys.argv[1:],
        }  # fmt: skip
        with open(self.json_path, "a") as out:
            for row in self._rows:
                out.write(json.dumps({**common, **row}) + "\n")


def _show(value: float, unit: str) -> str:
    if unit == "x":
        return f"x{value:.2f}"
    return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
