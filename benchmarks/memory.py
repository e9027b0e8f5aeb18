"""Memory: resident set size per waiting job and per request in flight.

Each figure comes from a fresh process (so one does not inherit another's heap):

- waiting: a client follows N jobs (``as_completed``) that are not due for a long while;
  RSS after they are all registered, minus RSS before, over N (N = 1,000, 10,000 and
  100,000; the job ids exist before the first reading: they are the caller's data);
- in flight: K ``info_by_model_id`` calls (a task each, the caller's) held open by a
  server that never answers, with ``max_in_flight=K``: the RSS they add, over K; on the
  default transport (httpx) and on ``transport="aiohttp"``.

Baselines, in the same run: for waiting, 10,000 naive per-job loops (a task each, parked
in its sleep between polls, as users write them); in flight, K raw ``httpx.AsyncClient.get``
and K raw ``aiohttp.ClientSession.get`` (limits raised to K), each a task. Every kind runs
once per round, in interleaved rounds; ratios are taken inside each round.
Goals (issue 7): at most 8 KB per waiting job, 30 KB per job with a request in flight.
Queued prompts are ``bulk_memory.py``'s figure.

    python benchmarks/memory.py [--inflight 500] [--rounds 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import subprocess
import sys
from collections.abc import Callable
from typing import Any, Literal

import aiohttp
import anyio
import httpx
from _common import fast_server  # benchmarks/ is on sys.path
from _rounds import Figures, interleave, parser, ratios

from akool_async import AkoolClient, PollPolicy

KEY = "sk-bench-0123456789abcdef0123456789abcdef"
NOT_DUE = PollPolicy(expected_seconds=3600.0, max_interval=3600.0, probes=0)


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


async def waiting(count: int) -> float:
    ids = [f"{n:024x}" for n in range(count)]
    async with AkoolClient(api_key=KEY, base_url="http://127.0.0.1:9", rate_limit=None,
                           poll_policy=NOT_DUE) as client:  # fmt: skip
        before = rss_kb()
        async with anyio.create_task_group() as tasks:

            async def follow() -> None:
                async for _ in client.as_completed(ids):
                    pass

            tasks.start_soon(follow)
            await anyio.wait_all_tasks_blocked()
            assert client._scheduler.watching == count
            after = rss_kb()
            tasks.cancel_scope.cancel()
    return (after - before) / count


async def naive_waiting(count: int) -> float:
    """``count`` per-job loops parked in their sleep between two polls."""
    ids = [f"{n:024x}" for n in range(count)]
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as http:
        before = rss_kb()
        async with anyio.create_task_group() as tasks:

            async def follow(job_id: str) -> None:
                while True:
                    await anyio.sleep(3600)
                    await http.get("/", params={"image_model_id": job_id})

            for job_id in ids:
                tasks.start_soon(follow, job_id)
            await anyio.wait_all_tasks_blocked()
            after = rss_kb()
            tasks.cancel_scope.cancel()
    return (after - before) / count


async def raw_in_flight(count: int, library: str) -> float:
    """``count`` raw GETs, a task each, held open by a server that never answers."""
    path = "/api/open/v3/content/image/infobymodelid"
    with fast_server("--hold") as base_url:
        async with contextlib.AsyncExitStack() as stack:
            if library == "httpx":
                limits = httpx.Limits(max_connections=count)
                http = await stack.enter_async_context(
                    httpx.AsyncClient(base_url=base_url, limits=limits, timeout=600)
                )
                get: Callable[..., Any] = functools.partial(http.get, path)
            else:
                connector = aiohttp.TCPConnector(limit=count)
                session = await stack.enter_async_context(
                    aiohttp.ClientSession(base_url, connector=connector)
                )
                get = functools.partial(session.get, path)
            await anyio.sleep(0.1)
            before = rss_kb()
            async with anyio.create_task_group() as tasks:
                for n in range(count):
                    tasks.start_soon(functools.partial(get, params={"image_model_id": f"{n:024x}"},
                                                       headers={"x-api-key": KEY}))  # fmt: skip
                await anyio.wait_all_tasks_blocked()  # each request sent, awaiting its answer
                after = rss_kb()
                tasks.cancel_scope.cancel()
    return (after - before) / count


async def in_flight(count: int, transport: Literal["httpx", "aiohttp"] = "httpx") -> float:
    with fast_server("--hold") as base_url:
        async with AkoolClient(api_key=KEY, base_url=base_url, rate_limit=None, transport=transport,
                               max_in_flight=count, timeout=600) as client:  # fmt: skip
            await anyio.sleep(0.1)
            before = rss_kb()
            async with anyio.create_task_group() as tasks:
                for n in range(count):
                    tasks.start_soon(client.info_by_model_id, f"{n:024x}")
                await anyio.wait_all_tasks_blocked()  # each request sent, awaiting its answer
                assert client._requester.in_flight.busy == count
                after = rss_kb()
                tasks.cancel_scope.cancel()
    return (after - before) / count


def child(kind: str, count: int) -> float:
    command = [sys.executable, __file__, "--child", kind, str(count)]
    return float(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def main() -> None:
    arguments = parser(__doc__, rounds=3)
    arguments.add_argument("--inflight", type=int, default=500)
    arguments.add_argument("--child", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = arguments.parse_args()
    if args.child:
        kind, count = args.child[0], int(args.child[1])
        if kind == "waiting":
            figure = anyio.run(waiting, count)
        elif kind == "naive-waiting":
            figure = anyio.run(naive_waiting, count)
        elif kind.startswith("raw-"):
            figure = anyio.run(raw_in_flight, count, kind.removeprefix("raw-"))
        else:  # in-flight-httpx, in-flight-aiohttp
            on_aiohttp = kind == "in-flight-aiohttp"
            figure = anyio.run(in_flight, count, "aiohttp" if on_aiohttp else "httpx")
        print(f"{figure:.2f}")
        return
    report = Figures(__file__, args, f"RSS per job, each figure from a fresh process, "
                     f"{args.inflight} in flight")  # fmt: skip
    kinds = {
        "akool waiting x 1,000": ("waiting", 1_000),
        "akool waiting x 10,000": ("waiting", 10_000),
        "akool waiting x 100,000": ("waiting", 100_000),
        "naive loops waiting x 10,000": ("naive-waiting", 10_000),
        f"akool httpx in flight x {args.inflight}": ("in-flight-httpx", args.inflight),
        f"raw httpx in flight x {args.inflight}": ("raw-httpx", args.inflight),
        f"akool aiohttp in flight x {args.inflight}": ("in-flight-aiohttp", args.inflight),
        f"raw aiohttp in flight x {args.inflight}": ("raw-aiohttp", args.inflight),
    }
    runs = interleave(args.rounds, {name: functools.partial(child, *kind)
                                    for name, kind in kinds.items()})  # fmt: skip
    for name, values in runs.items():
        report.add(name, values, "KB/job")
    n = args.inflight
    for ours, theirs in [
        ("akool waiting x 10,000", "naive loops waiting x 10,000"),
        (f"akool httpx in flight x {n}", f"raw httpx in flight x {n}"),
        (f"akool aiohttp in flight x {n}", f"raw aiohttp in flight x {n}"),
        (f"akool aiohttp in flight x {n}", f"raw httpx in flight x {n}"),
    ]:
        report.add(f"{ours} / {theirs}", ratios(runs[ours], runs[theirs]), "x")
    report.close()


if __name__ == "__main__":
    main()
