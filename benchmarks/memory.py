"""Memory: resident set size per waiting job and per request in flight.

Each figure comes from a fresh process (so one does not inherit another's heap):

- waiting: a client follows N jobs (``as_completed``) that are not due for a long while;
  RSS after they are all registered, minus RSS before, over N (N = 1,000, 10,000 and
  100,000; the job ids exist before the first reading: they are the caller's data);
- in flight: K ``info_by_model_id`` calls (a task each, the caller's) held open by a
  server that never answers, with ``max_in_flight=K``: the RSS they add, over K; on the
  default transport (httpx) and on ``transport="aiohttp"``.

Goals (issue 7): at most 8 KB per waiting job, 30 KB per job with a request in flight.
Queued prompts are ``bulk_memory.py``'s figure.

    python benchmarks/memory.py [--inflight 500]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import anyio
from _common import fast_server  # benchmarks/ is on sys.path

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


async def in_flight(count: int, transport: str = "httpx") -> float:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inflight", type=int, default=500)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, count = args.child[0], int(args.child[1])
        if kind == "waiting":
            figure = anyio.run(waiting, count)
        else:  # in-flight-httpx, in-flight-aiohttp
            figure = anyio.run(in_flight, count, kind.removeprefix("in-flight-"))
        print(f"{figure:.2f}")
        return
    for kind, count in [("waiting", 1_000), ("waiting", 10_000), ("waiting", 100_000),
                        ("in-flight-httpx", args.inflight),
                        ("in-flight-aiohttp", args.inflight)]:  # fmt: skip
        child = [sys.executable, __file__, "--child", kind, str(count)]
        figure = float(subprocess.run(child, capture_output=True, text=True, check=True).stdout)
        goal = 8 if kind == "waiting" else 30
        print(f"{kind:>17} x {count:>7,}: {figure:6.2f} KB each (goal <= {goal} KB: "
              f"x{figure / goal:.2f} of it)")  # fmt: skip


if __name__ == "__main__":
    main()
