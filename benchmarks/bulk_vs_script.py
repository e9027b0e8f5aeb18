"""Bulk vs a plain script: ``akool-async bulk`` against what a user would write without it.

Side by side in interleaved rounds, each run a fresh process on a fresh emulator (its own
process, ``--time-scale 1000``, real HTTP, no rate limit), the same prompts (batches of
1-4), the same concurrency (16), the same rate (out of the way) and the same poll floor
(``--poll-floor``; the script's ``PollPolicy.min_interval``):

- bulk: ``akool-async bulk PROMPTS --out DIR --quiet`` (journal, manifest, gallery);
- script: ``_plain_bulk.py``, one ``asyncio.gather`` over an ``AkoolClient``: create,
  ``wait``, ``download_images`` to disk.

Both run with ``akool_async``'s bytecode compiled beforehand, as an installed package has
it (``bytecode_cached``: not compiled again by each process, as ``PYTHONDONTWRITEBYTECODE``
would have it; the script itself, run as ``__main__``, is compiled by each run, 49 lines).

Per run: wall seconds, prompts/s, the client process's CPU per prompt (user + system, from
``os.wait4``: the emulator's is not counted; and user alone, the part the file system's
state does not swing), its voluntary context switches per prompt,
API requests per prompt (the emulator's count: both should poll alike) and, for bulk,
the seconds spent in ``write_manifest``. Ratios are bulk over script, round by round
(issue 12's goals: CPU per prompt at most x1.10, wall at most x1.05). With
``--attribute``, a third contender splits bulk's extra cost: bulk with its journal's work
per item left out (claims made up, nothing journalled, the images still saved: a
diagnostic, not a way to run).

Every run's output stays on disk until the benchmark ends (see ``run``). Leave five
minutes after deleting many files (a test suite's, another benchmark's) before running
it: an ext4 without a journal passes over recently freed inodes, and both contenders'
system time grows with them.

Then the manifest alone: a journal of N rows (one image per row, done) built through the
journal's own API, and ``write_manifest`` timed on it, per row (flat is the goal).

    python benchmarks/bulk_vs_script.py [--sizes 1000] [--rounds 2] [--floor 0.05]
        [--image-side 64] [--manifest-rows 10000,100000] [--manifest-rounds 1] [--unpinned]
        [--attribute] [--json PATH]

(about 4 minutes; issue 12's sizes, about 15: ``--sizes 1000,5000 --manifest-rows
10000,100000,200000 --manifest-rounds 2``)
"""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from _common import NO_PIN, emulator_process, pin_client  # benchmarks/ is on sys.path
from _rounds import Figures, interleave, parser, ratios

import akool_async
from akool_async import ImageJob, ImageStatus
from akool_async.bulk._journal import Journal
from akool_async.bulk._manifest import write_manifest
from akool_async.bulk._states import ItemState

CONCURRENCY, RATE = 16, 100_000.0
UNJOURNALLED = "bulk without its journal"  # ``--attribute``'s contender
HERE = Path(__file__).parent

# ``akool-async bulk`` with its ``write_manifest`` timed (seconds appended to MANIFEST_TIMES)
_TIMED_BULK = """
import os, sys, time
from akool_async.bulk import _runner
from akool_async._cli import main
real = getattr(_runner, "write_manifest", None)
if real is not None:
    async def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return await real(*args, **kwargs)
        finally:
            with open(os.environ["MANIFEST_TIMES"], "a") as out:
                out.write(f"{time.perf_counter() - started}\\n")
    _runner.write_manifest = timed
sys.exit(main(sys.argv[1:]))
"""

# ``--attribute``: the same, with the journal's work per item left out (a diagnostic, never
# a way to run: an item's claim is made up, and its intent, ids, statuses and saved files
# are never recorded, though the images are saved, so nothing could be resumed). Bulk over
# it is what the journal costs (and the manifest and gallery rows, empty here); it over the
# script, what the rest of the runner costs (its tree driver, follow machine, workers).
_UNJOURNALLED = """
import math
import anyio.lowlevel
from akool_async import _journal_protocol as jp
from akool_async.bulk import _journal, _journal_follow

async def claim_and_intend(self, key, intent, **_):
    await anyio.lowlevel.checkpoint()
    return jp.Claim(key, 1, math.inf), None

async def nothing(self, *args, **kwargs):
    return None

async def all_kept(self, claims, **_):  # no claim is lost: none was written
    return set()

_journal_follow.BulkJournal.claim_and_intend = claim_and_intend
_journal_follow.BulkJournal.write = nothing
_journal_follow.BulkJournal.release = nothing
_journal_follow.BulkJournal.renew_all = all_kept
_journal.Journal.committed = nothing
"""


def bytecode_cached() -> None:
    """Run both as an installed package runs: ``akool_async``'s modules compiled once
    (pip compiles them at install; the standard library and the dependencies have theirs),
    not afresh by every process, as ``PYTHONDONTWRITEBYTECODE`` (this machine's setting)
    with an editable install would have it. The bytecode goes to the package's
    ``__pycache__`` folders, as Python's own would (git ignores them)."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    package = Path(akool_async.__file__).parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def write_prompts(path: Path, count: int) -> None:
    with path.open("w") as file:
        for n in range(count):
            line = {"id": f"p{n}", "prompt": f"a red fox, take {n}", "batch_quantity": 1 + n % 4}
            file.write(json.dumps(line) + "\n")


def measured(command: list[str], env: dict[str, str]) -> tuple[float, Any]:
    """Run ``command``; its wall seconds and resource usage (its own, from ``wait4``)."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            tail = errors.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{command[:3]} exited {process.returncode}: {tail}")
    return seconds, usage


def run(kind: str, size: int, folder: Path, floor: float, side: int) -> dict[str, float]:
    """One run of ``kind`` (bulk, script, or ``UNJOURNALLED``) on ``size`` prompts, on a
    fresh emulator."""
    source = folder / f"prompts-{size}.jsonl"
    if not source.exists():
        write_prompts(source, size)
    arguments = ("--time-scale", "1000", "--credits", "1e12", "--image-max-side", str(side))
    # Kept until the whole benchmark ends: a run must not pay for another's deletions (an
    # ext4 without a journal, as this machine's, passes over the inodes freed in the last
    # five minutes when it allocates: deleting each run's 3,500 files made the script's
    # system time grow 1.1 -> 3.2 s over four runs in a row; kept, 1.1-1.3 s).
    out = tempfile.mkdtemp(dir=folder, prefix=f"{kind}-")
    with emulator_process(*arguments) as server:
        env = {**os.environ, "AKOOL_API_KEY": server.api_key, "AKOOL_BASE_URL": server.base_url,
               "MANIFEST_TIMES": str(Path(out) / "manifest-times")}  # fmt: skip
        if kind in ("bulk", UNJOURNALLED):
            code = _TIMED_BULK if kind == "bulk" else _UNJOURNALLED + _TIMED_BULK
            command = [sys.executable, "-c", code, "bulk", str(source), "--out", out,
                       "--quiet", "--concurrency", str(CONCURRENCY), "--rate", str(RATE),
                       "--poll-floor", str(floor)]  # fmt: skip
        else:
            command = [sys.executable, str(HERE / "_plain_bulk.py"), str(source), out,
                       str(CONCURRENCY), str(RATE), str(floor)]  # fmt: skip
        seconds, usage = measured(command, env)
        times = Path(out) / "manifest-times"
        manifest = sum(map(float, times.read_text().split())) if times.exists() else math.nan
        images = sum(1 for _ in Path(out).rglob("*.png"))
        counters = server.counters()
    requests = sum(counters["requests"].values()) - counters["requests"].get("image", 0)
    if images != sum(1 + n % 4 for n in range(size)):
        raise RuntimeError(f"{kind}: {images} images saved for {size} prompts")
    return {"wall s": seconds, "prompts/s": size / seconds,
            "cpu ms/prompt": 1000 * (usage.ru_utime + usage.ru_stime) / size,
            "user cpu ms/prompt": 1000 * usage.ru_utime / size,
            "voluntary switches/prompt": usage.ru_nvcsw / size,
            "API requests/prompt": requests / size, "manifest s": manifest}  # fmt: skip


# -- the manifest alone ----------------------------------------------------------------


async def build_journal(path: Path, rows: int) -> None:
    """A journal of ``rows`` done items of one image each, through the journal's API (many
    items at once, as a run writes them, so its group commits apply)."""
    async with Journal(path) as journal:

        async def item(n: int) -> None:
            key, job_id = f"id:p{n}", f"job{n:07d}"
            await journal.intent(key, n + 1, f"p{n}", {"prompt": f"a red fox, take {n}"}, ())
            job = ImageJob(id=job_id, status=ImageStatus.QUEUEING, deduction_credit=1,
                           create_time=1_700_000_000_000)  # fmt: skip
            await journal.submitted(key, [job])
            url = f"https://example.invalid/{job_id}.png"
            done = ImageJob(id=job_id, status=ImageStatus.COMPLETED, image=url)
            await journal.job_ended(done)
            await journal.job_images(job_id, [(1, "image", url)], parts_missing=False)
            await journal.image_saved(job_id, 1, str(path.parent / f"p{n}" / "1.png"),
                                      "0" * 64, size=1000, near_expiry=False)  # fmt: skip
            await journal.item_state(key, ItemState.DONE)

        for start in range(0, rows, 2000):
            async with anyio.create_task_group() as tasks:
                for n in range(start, min(rows, start + 2000)):
                    tasks.start_soon(item, n)


async def time_manifest(path: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one ``write_manifest`` over the journal at ``path``."""
    async with Journal(path) as journal:
        wall, cpu = time.perf_counter(), time.process_time()
        await write_manifest(journal, path.parent, path.parent / "manifest.jsonl")
        return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    arguments = parser(__doc__, rounds=2)
    arguments.add_argument("--sizes", default="1000", help="prompts per run (issue 12: 1000,5000)")
    arguments.add_argument("--floor", type=float, default=0.05,
                           help="poll floor of both, seconds")  # fmt: skip
    arguments.add_argument("--image-side", type=int, default=64,
                           help="the emulator's image size, pixels")  # fmt: skip
    arguments.add_argument("--manifest-rows", default="10000,100000",
                           help="journal rows for the manifest figure (issue 12: "
                           "10000,100000,200000; '' to skip)")  # fmt: skip
    arguments.add_argument("--manifest-rounds", type=int, default=1)
    arguments.add_argument("--attribute", action="store_true",
                           help="a third contender: bulk with the journal's work per "
                           "item left out (a diagnostic: what the journal costs, and what "
                           "the rest does)")  # fmt: skip
    arguments.add_argument("--unpinned", action="store_true",
                           help="pin nothing: the client's threads and the emulator share "
                           "the cores, as a user's client runs (bulk's extra thread "
                           "hand-offs cost more so)")  # fmt: skip
    args = arguments.parse_args()
    if args.unpinned:
        os.environ[NO_PIN] = "1"
    sizes = [int(size) for size in args.sizes.split(",") if size]
    report = Figures(__file__, args, f"bulk vs a plain gather script, concurrency "
                     f"{CONCURRENCY}, poll floor {args.floor} s, time scale 1000, "
                     f"{args.image_side} px images; {pin_client()}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        bytecode_cached()
        for size in sizes:
            one = functools.partial(run, size=size, folder=Path(folder), floor=args.floor,
                                    side=args.image_side)  # fmt: skip
            kinds = ("bulk", "script") + ((UNJOURNALLED,) if args.attribute else ())
            runs = interleave(args.rounds, {kind: functools.partial(one, kind) for kind in kinds})
            for kind, rounds in runs.items():
                for figure in rounds[0]:
                    if not (kind != "bulk" and figure == "manifest s"):
                        report.add(f"{size} prompts, {kind}: {figure}",
                                   [r[figure] for r in rounds], "")  # fmt: skip
            pairs = [("bulk", "script")]
            if args.attribute:  # the journal's share, and the rest's
                pairs += [("bulk", UNJOURNALLED), (UNJOURNALLED, "script")]
            for figure in ("cpu ms/prompt", "user cpu ms/prompt", "wall s",
                           "voluntary switches/prompt", "API requests/prompt"):  # fmt: skip
                for top, bottom in pairs:
                    report.add(f"{size} prompts: {figure}, {top} over {bottom}",
                               ratios([r[figure] for r in runs[top]],
                                      [r[figure] for r in runs[bottom]]), "x")  # fmt: skip
        manifest_rows = [int(rows) for rows in args.manifest_rows.split(",") if rows]
        journals = {rows: Path(folder) / f"journal-{rows}" / "journal.sqlite"
                    for rows in manifest_rows}  # fmt: skip
        for rows, path in journals.items():
            started = time.perf_counter()
            anyio.run(build_journal, path, rows)
            print(f"  journal of {rows:,} rows built in {time.perf_counter() - started:.0f} s",
                  flush=True)  # fmt: skip
        timed = interleave(args.manifest_rounds, {
            str(rows): functools.partial(anyio.run, time_manifest, path)
            for rows, path in journals.items()
        }) if journals else {}  # fmt: skip
        timings = {rows: timed[str(rows)] for rows in manifest_rows}
        for rows, pairs in timings.items():
            report.add(f"manifest, {rows:,} rows: wall us/row",
                       [1e6 * wall / rows for wall, _ in pairs], "")  # fmt: skip
            report.add(f"manifest, {rows:,} rows: cpu us/row",
                       [1e6 * cpu / rows for _, cpu in pairs], "")  # fmt: skip
        if len(manifest_rows) > 1:
            small, large = manifest_rows[0], manifest_rows[-1]
            report.add(f"manifest: wall us/row at {large:,} rows over {small:,}",
                       ratios([w / large for w, _ in timings[large]],
                              [w / small for w, _ in timings[small]]), "x")  # fmt: skip
    report.close()


if __name__ == "__main__":
    main()
