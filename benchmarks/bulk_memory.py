"""Bulk: ``akool-async bulk`` as users run it, and its peak RSS as the input grows.

Prompts cycle through batches of 1, 2, 3 and 4 images; the emulator (its own process,
jobs of ~30 ms, its default 512-pixel PNGs, downloaded and saved) answers. Each run is a
fresh ``akool-async bulk`` process with progress on, whose peak RSS and CPU come from the
OS. In interleaved rounds:

- defaults: ``--concurrency 16 --rate 10`` (the defaults) on ``--prompts`` prompts: the
  rate binds, so the figure is API requests/s over the rate (its baseline: 1.00 means the
  run kept the rate fully used), with prompts/s, peak RSS and CPU per prompt;
- scale: the same command with ``--rate 1000`` on each of ``--sizes`` prompts: peak RSS
  and prompts/s of the largest over the smallest, in the same round (flat is x1.00).
  Here the emulator drawing each job's PNG, not the client, sets the pace: compare the
  client's CPU per prompt.

    python benchmarks/bulk_memory.py [--prompts 60] [--sizes 200,800] [--rounds 2]
                                     [--json PATH]
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emulator_process, pin_client  # benchmarks/ is on sys.path
from _rounds import Figures, interleave, parser, ratios

_MEASURE = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL,
                      stderr=subprocess.PIPE).returncode
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(code, usage.ru_maxrss, usage.ru_utime + usage.ru_stime)
"""


def write_prompts(path: Path, count: int) -> None:
    with path.open("w") as file:
        for n in range(count):
            line = {"id": f"p{n}", "prompt": f"a red fox, take {n}", "batch_quantity": 1 + n % 4}
            file.write(json.dumps(line) + "\n")


def run(size: int, rate: float, folder: Path) -> dict[str, float]:
    """One ``akool-async bulk`` run of ``size`` prompts at ``rate``, on a fresh emulator."""
    source = folder / f"prompts-{size}.jsonl"
    if not source.exists():
        write_prompts(source, size)
    with emulator_process("--time-scale", "1000", "--credits", "1e9") as server:
        env = {**os.environ, "AKOOL_API_KEY": server.api_key, "AKOOL_BASE_URL": server.base_url}
        with tempfile.TemporaryDirectory(dir=folder) as out:
            command = [sys.executable, "-m", "akool_async", "bulk", str(source), "--out", out,
                       "--rate", str(rate)]  # fmt: skip
            started = time.monotonic()
            measured = subprocess.run([sys.executable, "-c", _MEASURE, *command], env=env,
                                      capture_output=True, text=True, check=True)  # fmt: skip
            seconds = time.monotonic() - started
        counters = server.counters()
    code, peak_kb, cpu = measured.stdout.split()
    if int(code) != 0:
        raise RuntimeError(f"akool-async bulk exited {code}")
    api = sum(counters["requests"].values()) - counters["requests"].get("image", 0)
    return {"peak MB": int(peak_kb) / 1024, "prompts/s": size / seconds,
            "API requests/s": api / seconds, "cpu ms/prompt": 1000 * float(cpu) / size}  # fmt: skip


def main() -> None:
    arguments = parser(__doc__, rounds=2)
    arguments.add_argument("--prompts", type=int, default=60, help="prompts at the defaults")
    arguments.add_argument("--sizes", default="200,800", help="prompts at --rate 1000")
    args = arguments.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    report = Figures(__file__, args, f"akool-async bulk, batches of 1-4, 512 px images; "
                     f"{pin_client()}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        contenders = {f"defaults, {args.prompts} prompts":
                      functools.partial(run, args.prompts, 10.0, Path(folder))}  # fmt: skip
        for size in sizes:
            contenders[f"--rate 1000, {size} prompts"] = functools.partial(
                run, size, 1000.0, Path(folder)
            )
        runs = interleave(args.rounds, contenders)
    for name, rounds in runs.items():
        for figure in rounds[0]:
            report.add(f"{name}: {figure}", [r[figure] for r in rounds], "")
    defaults = runs[f"defaults, {args.prompts} prompts"]
    report.add("defaults: API requests/s over the rate (10/s)",
               [r["API requests/s"] / 10.0 for r in defaults], "x")  # fmt: skip
    if len(sizes) > 1:
        small = runs[f"--rate 1000, {sizes[0]} prompts"]
        large = runs[f"--rate 1000, {sizes[-1]} prompts"]
        for figure in ("peak MB", "prompts/s"):
            grown = ratios([r[figure] for r in large], [r[figure] for r in small])
            report.add(f"{sizes[-1]} / {sizes[0]} prompts: {figure}", grown, "x")
    report.close()


if __name__ == "__main__":
    main()
