"""The claims table of ``benchmarks/README.md`` from the JSON lines of labelled runs.

Each figure's stated range is the one every round of every run given fell inside, widened
by 5% and rounded outward to three significant digits: a later figure outside it is news.

    python benchmarks/_claims.py quiet=/tmp/quiet.jsonl hogs=/tmp/hogs.jsonl ...
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from typing import Any

WIDEN = 0.05


def _round(value: float, direction: int) -> float:
    """``value`` to three significant digits, rounded down (-1) or up (+1)."""
    if value == 0 or not math.isfinite(value):
        return value
    scale = 10 ** (math.floor(math.log10(abs(value))) - 2)
    step = math.floor if direction < 0 else math.ceil
    return step(value / scale) * scale


def _show(value: float, unit: str) -> str:
    text = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"x{text}" if unit == "x" else text


def _span(values: list[float], unit: str) -> str:
    return f"{_show(min(values), unit)}-{_show(max(values), unit)}"


def table(runs: dict[str, list[dict[str, Any]]]) -> str:
    figures: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(dict)
    units: dict[tuple[str, str], str] = {}
    for label, lines in runs.items():
        for line in lines:
            key = (line["script"], line["figure"])
            values = [v for v in line["values"] if v is not None and math.isfinite(v)]
            if values:
                figures[key].setdefault(label, []).extend(values)
                units[key] = line.get("unit", "")
    labels = list(runs)
    rows = [f"| figure (script) | stated range | {' | '.join(labels)} |",
            f"|---|---|{'---|' * len(labels)}"]  # fmt: skip
    for (script, figure), by_run in figures.items():
        unit = units[(script, figure)]
        every = [v for values in by_run.values() for v in values]
        low = _round(min(every) * (1 - WIDEN) if min(every) > 0 else min(every) * (1 + WIDEN), -1)
        high = _round(max(every) * (1 + WIDEN) if max(every) > 0 else max(every) * (1 - WIDEN), 1)
        cells = [_span(by_run[label], unit) if label in by_run else "—" for label in labels]
        stated = f"**{_show(low, unit)} - {_show(high, unit)}**"
        rows.append(f"| {figure} (`{script}`) | {stated} | {' | '.join(cells)} |")
    return "\n".join(rows)


def main() -> None:
    runs: dict[str, list[dict[str, Any]]] = {}
    for argument in sys.argv[1:]:
        label, _, path = argument.partition("=")
        with open(path) as file:
            runs[label] = [json.loads(line) for line in file if line.strip()]
    print(table(runs))


if __name__ == "__main__":
    main()
