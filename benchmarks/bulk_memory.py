"""Bulk memory: the peak RSS of ``akool-async bulk`` must not grow with the input.

Runs the command on 10,000 and 100,000 generated prompts (batch 1, no follow-ups)
against an emulator process (jobs of ~30 ms, tiny images), each run in a fresh process
whose peak RSS is read from the OS, and reports peak RSS, wall time and requests per
second, and the 100k/10k ratio of peak RSS (goal: flat, about 1.0).

    python benchmarks/bulk_memory.py [--sizes 10000,100000] [--concurrency 500]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emulator_process, pin_client  # benchmarks/ is on sys.path

_MEASURE = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def write_prompts(path: Path, count: int) -> None:
    with path.open("w") as file:
        for n in range(count):
            file.write(json.dumps({"id": f"p{n}", "prompt": f"a red fox, take {n}"}) + "\n")


def run(size: int, args: argparse.Namespace, folder: Path) -> tuple[float, float, int]:
    source = folder / f"prompts-{size}.jsonl"
    write_prompts(source, size)
    with emulator_process(
        "--time-scale", "1000", "--image-max-side", "8", "--credits", "1e9"
    ) as server:
        env = {**os.environ, "AKOOL_API_KEY": server.api_key, "AKOOL_BASE_URL": server.base_url}
        out = folder / f"out-{size}"
        command = [sys.executable, "-m", "akool_async", "bulk", str(source), "--out", str(out),
                   "--concurrency", str(args.concurrency), "--rate", "5000", "--quiet"]  # fmt: skip
        started = time.monotonic()
        measured = subprocess.run([sys.executable, "-c", _MEASURE, *command], env=env,
                                  capture_output=True, text=True, check=True)  # fmt: skip
        seconds = time.monotonic() - started
    code, peak_kb = measured.stdout.split()
    return int(peak_kb) / 1024, seconds, int(code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--concurrency", type=int, default=500)
    args = parser.parse_args()
    print(pin_client())
    sizes = [int(size) for size in args.sizes.split(",")]
    peaks = {}
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            peak, seconds, code = run(size, args, Path(folder))
            peaks[size] = peak
            print(f"{size:>7} prompts: peak RSS {peak:6.1f} MB | wall {seconds:6.1f} s | "
                  f"{size / seconds:6.1f} prompts/s | exit {code}")  # fmt: skip
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        print(f"peak RSS {large}/{small}: x{peaks[large] / peaks[small]:.2f} (flat is x1.00)")


if __name__ == "__main__":
    main()
