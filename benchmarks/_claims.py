"""The claims table of ``benchmarks/README.md`` from the JSON lines of labelled runs
(``nox -s bench`` with ``BENCH_JSON``): the figures of ``CLAIMS``, one column per run.

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

# The figures claimed, as (script, figure as the script names it, what the table says).
CLAIMS: list[tuple[str, str, str]] = [
    ("decode.py", "info (1 job): envelope+structure / json.loads",
     "info answer: envelope + cattrs over `json.loads` alone"),
    ("decode.py", "v4 batch (4 jobs): envelope+structure / json.loads",
     "batch-of-4 answer: envelope + cattrs over `json.loads` alone"),
    ("overhead.py", "akool httpx / raw httpx CPU/request",
     "CPU per request, akool on httpx over raw httpx (goal <= x1.10)"),
    ("overhead.py", "akool aiohttp / raw aiohttp CPU/request",
     "CPU per request, akool on aiohttp over raw aiohttp"),
    ("overhead.py", "akool httpx / akool aiohttp CPU/request",
     "CPU per request, akool on httpx over akool on aiohttp (aiohttp's saving)"),
    ("overhead.py", "akool aiohttp / akool httpx requests/s",
     "requests/s, akool on aiohttp over akool on httpx (wall clock: see below)"),
    ("waiting.py", "akool / raw httpx requests/s",
     "requests/s with 10,000 jobs waiting, akool over raw httpx (4 workers) (goal >= x0.90)"),
    ("waiting.py", "naive gather of 10000 loops requests/s",
     "requests/s of a gather of 10,000 naive loops on one default httpx client"),
    ("memory.py", "akool waiting x 10,000", "RSS per waiting job, 10,000 jobs, KB"),
    ("memory.py", "akool waiting x 100,000", "RSS per waiting job, 100,000 jobs, KB"),
    ("memory.py", "akool waiting x 10,000 / naive loops waiting x 10,000",
     "RSS per waiting job, akool over a naive loop per job (10,000)"),
    ("memory.py", "akool httpx in flight x 500",
     "RSS per request in flight, akool on httpx, KB (goal <= 30 KB: not met)"),
    ("memory.py", "raw httpx in flight x 500", "RSS per request in flight, raw httpx, KB"),
    ("memory.py", "akool aiohttp in flight x 500",
     "RSS per request in flight, akool on aiohttp, KB"),
    ("memory.py", "raw aiohttp in flight x 500", "RSS per request in flight, raw aiohttp, KB"),
    ("memory.py", "akool httpx in flight x 500 / raw httpx in flight x 500",
     "RSS per request in flight, akool on httpx over raw httpx"),
    ("memory.py", "akool aiohttp in flight x 500 / raw aiohttp in flight x 500",
     "RSS per request in flight, akool on aiohttp over raw aiohttp"),
    ("memory.py", "akool aiohttp in flight x 500 / raw httpx in flight x 500",
     "RSS per request in flight, akool on aiohttp over raw httpx"),
    ("polling.py", "spare/scheduler: polls/job",
     "spare rate: the scheduler's polls per job (target 1.5)"),
    ("polling.py", "spare: scheduler/naive 3 s polls/job",
     "spare rate: polls per job, scheduler over a 3 s loop"),
    ("polling.py", "spare: scheduler/naive 3 s cpu ms/job",
     "spare rate: client CPU per job, scheduler over a 3 s loop"),
    ("polling.py", "spare: scheduler/fixed 0.5 s cpu ms/job",
     "spare rate: client CPU per job, scheduler over a 0.5 s loop"),
    ("polling.py", "spare/scheduler: median delay s",
     "spare rate: the scheduler's median notice delay (emulated s)"),
    ("polling.py", "spare/naive 3 s: median delay s",
     "spare rate: a 3 s loop's median notice delay (emulated s)"),
    ("polling.py", "rate-bound/scheduler: makespan/bound",
     "rate-bound: the scheduler's makespan over the rate's bound"),
    ("polling.py", "rate-bound: scheduler/naive 3 s polls/job",
     "rate-bound: polls per job, scheduler over a 3 s loop"),
    ("polling.py", "spare/webhook: median delay s",
     "webhooks, spare rate: median notice delay (emulated s)"),
    ("polling.py", "rate-bound/webhook: median delay s",
     "webhooks, rate-bound: median notice delay (emulated s)"),
    ("polling.py", "spare/webhook: median delay, sealed to accepted s",
     "webhooks: sealed to accepted (emulated s)"),
    ("polling.py", "spare/webhook: median delay, accepted to noticed s",
     "webhooks: accepted to noticed, the client's handling (emulated s)"),
    ("polling.py", "spare/webhook: polls/job", "webhooks: polls per job"),
    ("bulk_memory.py", "defaults: API requests/s over the rate (10/s)",
     "bulk at the defaults: API requests/s over `--rate 10`"),
    ("bulk_memory.py", "defaults, 60 prompts: peak MB",
     "bulk at the defaults, 60 prompts: peak RSS (MB)"),
    ("bulk_memory.py", "800 / 200 prompts: peak MB",
     "bulk `--rate 1000`: peak RSS, 800 prompts over 200"),
    ("bulk_memory.py", "800 / 200 prompts: prompts/s",
     "bulk `--rate 1000`: prompts/s, 800 prompts over 200"),
    ("bulk_vs_script.py", "1000 prompts: cpu ms/prompt, bulk over script",
     "bulk vs script, 1,000 prompts: client CPU per prompt, bulk over script (goal <= x1.10)"),
    ("bulk_vs_script.py", "1000 prompts: wall s, bulk over script",
     "bulk vs script, 1,000 prompts: wall, bulk over script (goal <= x1.05)"),
    ("bulk_vs_script.py", "1000 prompts: voluntary switches/prompt, bulk over script",
     "bulk vs script, 1,000 prompts: voluntary context switches, bulk over script"),
    ("bulk_vs_script.py", "1000 prompts: API requests/prompt, bulk over script",
     "bulk vs script, 1,000 prompts: API requests, bulk over script"),
    ("bulk_vs_script.py", "5000 prompts: cpu ms/prompt, bulk over script",
     "bulk vs script, 5,000 prompts: client CPU per prompt, bulk over script (goal <= x1.10)"),
    ("bulk_vs_script.py", "5000 prompts: wall s, bulk over script",
     "bulk vs script, 5,000 prompts: wall, bulk over script (goal <= x1.05)"),
    ("bulk_vs_script.py", "1000 prompts, bulk: manifest s",
     "bulk vs script, 1,000 prompts: bulk's `write_manifest` (s)"),
    ("bulk_vs_script.py", "manifest, 10,000 rows: cpu us/row",
     "manifest: CPU us per row at 10,000 rows"),
    ("bulk_vs_script.py", "manifest, 100,000 rows: cpu us/row",
     "manifest: CPU us per row at 100,000 rows"),
    ("bulk_vs_script.py", "manifest: wall us/row at 100,000 rows over 10,000",
     "manifest: wall us per row, 100,000 rows over 10,000 (goal x1.00, flat)"),
    *[("scale_out.py", f"limited, {n} workers: API requests/s over the limit (20/s)",
       f"scale-out, {n} worker{'s' * (n > 1)}: API requests/s over the limit (20/s)")
      for n in (1, 2, 4)],
    *[("scale_out.py", f"limited, {n} workers: {what}",
       f"scale-out, {n} worker{'s' * (n > 1)}: {what}")
      for n in (1, 2, 4) for what in ("1005 rejections", "duplicate creates")],
    *[("scale_out.py", f"unlimited, {n} workers: prompts/s over 1 worker's",
       f"scale-out, limit out of the way: prompts/s, {n} workers over 1")
      for n in (2, 4)],
]  # fmt: skip


def _round(value: float, direction: int) -> float:
    """``value`` to three significant digits, rounded down (-1) or up (+1)."""
    if value == 0 or not math.isfinite(value):
        return value
    scale = 10 ** (math.floor(math.log10(abs(value))) - 2)
    step = math.floor if direction < 0 else math.ceil
    return step(value / scale) * scale


def _show(value: float, unit: str) -> str:
    if value == 0:
        text = "0"
    else:
        text = f"{value:#.3g}".rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"
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
    for script, figure, label in CLAIMS:
        by_run = figures.get((script, figure))
        if not by_run:
            continue
        unit = units[(script, figure)]
        every = [v for values in by_run.values() for v in values]
        low = _round(min(every) * (1 - WIDEN) if min(every) > 0 else min(every) * (1 + WIDEN), -1)
        high = _round(max(every) * (1 + WIDEN) if max(every) > 0 else max(every) * (1 - WIDEN), 1)
        cells = [_span(by_run[label], unit) if label in by_run else "—" for label in labels]
        stated = f"**{_show(low, unit)} - {_show(high, unit)}**"
        rows.append(f"| {label} (`{script}`) | {stated} | {' | '.join(cells)} |")
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
