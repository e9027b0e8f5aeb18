"""No collapse: the request rate the client sustains with 10,000 jobs waiting at once.

Against the emulator on its own core (real clock, hour-long jobs so they stay waiting,
no rate limit), 10,000 jobs are created, then polled three ways in one run:

- raw httpx: ``--workers`` (4) workers polling back to back over one ``httpx.AsyncClient``
  (the ceiling this client builds on; 4 is httpx's best concurrency here, see
  ``overhead.py``: a calibration among 1-8 on a busy machine picked by noise);
- akool: ``client.as_completed(all 10,000)`` with a poll policy that keeps every job due,
  so the scheduler polls as fast as its senders can (the worst case for its bookkeeping);
- naive gather: a task per job polling every 3 s over one default ``httpx.AsyncClient``
  (what users write today), its failures counted; once, after the rounds.

raw httpx and akool run in interleaved rounds on windows of the same length, the order
rotated each round; their ratio is taken inside each round.
Goal (issue 7): akool at least 90% of raw httpx's best.

    python benchmarks/waiting.py [--jobs 10000] [--seconds 4] [--workers 4] [--rounds 3]
                                 [--json PATH]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable

import anyio
import httpx
from _common import EmulatorProcess, emulator_process, pin_client  # benchmarks/ is on sys.path
from _rounds import Figures, interleave_async, parser, ratios

from akool_async import AkoolClient, PollPolicy

PATH = "/api/open/v3/content/image/infobymodelid"
ALWAYS_DUE = PollPolicy(expected_seconds=0.001, min_interval=0.001, max_interval=0.001,
                        probes=0, jitter=0.0)  # fmt: skip


async def create_jobs(server: EmulatorProcess, count: int) -> list[str]:
    async with AkoolClient(api_key=server.api_key, base_url=server.base_url,
                           rate_limit=None) as client:  # fmt: skip
        ids: list[str] = []

        async def batch(n: int) -> None:
            jobs = await client.create_by_source_prompt(prompt=f"fox {n}", batch_quantity=4)
            ids.extend(job.id for job in jobs)

        async with anyio.create_task_group() as tasks:
            for n in range(count // 4):
                tasks.start_soon(batch, n)
        return ids


async def for_a_while(seconds: float, run: Callable[[], Awaitable[None]]) -> None:
    with anyio.move_on_after(seconds):
        await run()


async def raw_httpx(server: EmulatorProcess, ids: list[str], workers: int, seconds: float) -> float:
    done = 0
    headers = {"x-api-key": server.api_key}
    limits = httpx.Limits(max_connections=workers)
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits) as http:

        async def worker(offset: int) -> None:
            nonlocal done
            for n in range(offset, 10**9, workers):
                job_id = ids[n % len(ids)]
                response = await http.get(PATH, params={"image_model_id": job_id}, headers=headers)
                response.raise_for_status()
                done += 1

        async def run() -> None:
            async with anyio.create_task_group() as tasks:
                for offset in range(workers):
                    tasks.start_soon(worker, offset)

        await for_a_while(seconds, run)
    return done / seconds


async def akool(server: EmulatorProcess, ids: list[str], seconds: float) -> float:
    async with AkoolClient(api_key=server.api_key, base_url=server.base_url, rate_limit=None,
                           poll_policy=ALWAYS_DUE) as client:  # fmt: skip

        async def run() -> None:
            async for _ in client.as_completed(ids):
                pass

        await for_a_while(seconds, run)
        return client.poll_stats.polls / seconds


async def naive_gather(
    server: EmulatorProcess, ids: list[str], seconds: float
) -> tuple[float, int]:
    """In a child process: 10,000 tasks stuck in httpx's pool take minutes to cancel, so
    the child reports after the window and exits without cleaning up."""
    with tempfile.NamedTemporaryFile("w", suffix=".ids") as listing:
        listing.write("\n".join(ids))
        listing.flush()
        child = [sys.executable, __file__, "--naive", server.base_url, server.api_key,
                 listing.name, str(seconds)]  # fmt: skip
        with anyio.fail_after(600):
            out = await anyio.run_process(child)
    rate, failed = out.stdout.decode().split()
    return float(rate), int(failed)


async def naive_child(base_url: str, key: str, ids: list[str], seconds: float) -> None:
    done = failed = 0
    headers = {"x-api-key": key}

    def report() -> None:  # from a thread: the event loop itself is swamped
        print(f"{done / seconds} {failed}", flush=True)
        os._exit(0)

    threading.Timer(seconds, report).start()

    async with httpx.AsyncClient(base_url=base_url) as http:

        async def follow(job_id: str) -> None:
            nonlocal done, failed
            while True:
                try:
                    response = await http.get(PATH, params={"image_model_id": job_id},
                                              headers=headers)  # fmt: skip
                    response.raise_for_status()
                    done += 1
                except httpx.HTTPError:
                    failed += 1
                await anyio.sleep(3)

        async with anyio.create_task_group() as tasks:
            for job_id in ids:
                tasks.start_soon(follow, job_id)


async def main() -> None:
    arguments = parser(__doc__, rounds=3)
    arguments.add_argument("--jobs", type=int, default=10_000)
    arguments.add_argument("--seconds", type=float, default=4.0, help="each window")
    arguments.add_argument("--workers", type=int, default=4, help="raw httpx's workers")
    arguments.add_argument("--naive", nargs=4, help=argparse.SUPPRESS)
    args = arguments.parse_args()
    if args.naive:
        base_url, key, listing, seconds = args.naive
        ids = (await anyio.Path(listing).read_text()).split()
        await naive_child(base_url, key, ids, float(seconds))
        return
    report = Figures(__file__, args, f"{args.jobs} jobs waiting, windows of {args.seconds} s, "
                     f"emulator; {pin_client()}")  # fmt: skip
    # Hour-long jobs: nothing finishes, so every contender meets the same server state.
    emulator_args = ("--seed", "3", "--image-max-side", "16", "--median-seconds", "3600")
    with emulator_process(*emulator_args) as server:
        started = time.perf_counter()
        ids = await create_jobs(server, args.jobs)
        print(f"{len(ids)} jobs created in {time.perf_counter() - started:.1f} s")
        workers = args.workers
        runs = await interleave_async(
            args.rounds,
            {
                f"raw httpx, {workers} workers": functools.partial(
                    raw_httpx, server, ids, workers, args.seconds
                ),
                f"akool, {len(ids)} jobs in as_completed": functools.partial(
                    akool, server, ids, args.seconds
                ),
            },
        )
        naive, failed = await naive_gather(server, ids, args.seconds)
    (base_name, base), (ours_name, ours) = runs.items()
    report.add(f"{base_name} requests/s", base, "requests/s")
    report.add(f"{ours_name} requests/s", ours, "requests/s")
    report.add("akool / raw httpx requests/s", ratios(ours, base), "x", "(goal >= 0.90)")
    report.add(f"naive gather of {len(ids)} loops requests/s", [naive], "requests/s",
               f"({failed} failed; once, after the rounds)")  # fmt: skip
    report.close()


if __name__ == "__main__":
    anyio.run(main)
