"""The client's CPU per request against raw httpx, and the aiohttp transport's throughput.

Against the minimal fast server (``_fastserver.py``, its own core) that answers every
request with a completed job's envelope, four contenders each make the same requests from
the same number of long-lived workers (default 4: httpx's best concurrency), the same
number of requests each, in interleaved rounds (the order rotated each round):

- raw httpx: ``httpx.AsyncClient.get`` + ``json.loads`` (the baseline of issue 7);
- akool httpx: ``client.info_by_model_id`` (request building, auth, rate limiting, the
  envelope, cattrs structuring, logging) on the default transport;
- raw aiohttp: ``session.get`` + ``read`` + ``json.loads``;
- akool aiohttp: ``client.info_by_model_id`` on ``transport="aiohttp"``.

Ratios are taken inside each round. CPU per request is the figure to compare: requests/s
is wall-clock, so it stands for CPU only while the client has its core to itself (with
neighbours on the machine it also measures how much of the core the client was given).
Goals (issue 7): akool httpx's CPU per call at most 1.10x raw httpx's; akool aiohttp at
least 4x akool httpx's requests/s.

    python benchmarks/overhead.py [--requests 5000] [--workers 4] [--rounds 5] [--json PATH]
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable

import aiohttp
import anyio
import httpx
from _common import fast_server, pin_client  # benchmarks/ is on sys.path
from _rounds import Figures, interleave_async, parser, ratios

from akool_async import AkoolClient

JOB_ID = "6650a1b2c3d4e5f6a7b8c9d0"
PATH = "/api/open/v3/content/image/infobymodelid"
KEY = "sk-bench-0123456789abcdef0123456789abcdef"
Call = Callable[[], Awaitable[object]]
UNBOUND = 1e9  # the rate limiter runs (its cost is counted) but never waits


async def timed(call: Call, requests: int, workers: int) -> tuple[float, float]:
    """(requests/s, CPU µs per request) of ``requests`` calls from ``workers`` tasks."""
    per_worker = requests // workers

    async def worker() -> None:
        for _ in range(per_worker):
            await call()

    wall, cpu = time.perf_counter(), time.process_time()
    async with anyio.create_task_group() as tasks:
        for _ in range(workers):
            tasks.start_soon(worker)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done = per_worker * workers
    return done / wall, 1e6 * cpu / done


async def main() -> None:
    arguments = parser(__doc__, rounds=5)
    arguments.add_argument("--requests", type=int, default=5000)
    arguments.add_argument("--workers", type=int, default=4)
    args = arguments.parse_args()
    report = Figures(__file__, args, f"{args.requests} GETs per contender per round, "
                     f"{args.workers} workers, fast server; {pin_client()}")  # fmt: skip
    with fast_server() as base_url:
        limits = httpx.Limits(max_connections=args.workers)
        async with (
            httpx.AsyncClient(base_url=base_url, limits=limits) as raw_httpx,
            aiohttp.ClientSession(base_url) as raw_aiohttp,
            AkoolClient(api_key=KEY, base_url=base_url, rate_limit=UNBOUND) as akool_httpx,
            AkoolClient(
                api_key=KEY, base_url=base_url, rate_limit=UNBOUND, transport="aiohttp"
            ) as akool_aiohttp,
        ):
            params = {"image_model_id": JOB_ID}
            headers = {"x-api-key": KEY}

            async def httpx_get() -> object:
                response = await raw_httpx.get(PATH, params=params, headers=headers)
                return json.loads(response.content)

            async def aiohttp_get() -> object:
                async with raw_aiohttp.get(PATH, params=params, headers=headers) as response:
                    return json.loads(await response.read())

            contenders: dict[str, Call] = {
                "raw httpx": httpx_get,
                "akool httpx": lambda: akool_httpx.info_by_model_id(JOB_ID),
                "raw aiohttp": aiohttp_get,
                "akool aiohttp": lambda: akool_aiohttp.info_by_model_id(JOB_ID),
            }
            for call in contenders.values():  # warm up: connections, caches, imports
                await timed(call, 200, args.workers)
            runs = await interleave_async(
                args.rounds,
                {
                    name: functools.partial(timed, call, args.requests, args.workers)
                    for name, call in contenders.items()
                },
            )
    rate = {name: [r for r, _ in got] for name, got in runs.items()}
    cpu = {name: [c for _, c in got] for name, got in runs.items()}
    for name in runs:
        report.add(f"{name} requests/s", rate[name], "requests/s")
        report.add(f"{name} CPU/request", cpu[name], "µs")
    report.add("akool httpx / raw httpx CPU/request", ratios(cpu["akool httpx"], cpu["raw httpx"]),
               "x", "(goal <= 1.10)")  # fmt: skip
    report.add("akool aiohttp / raw aiohttp CPU/request",
               ratios(cpu["akool aiohttp"], cpu["raw aiohttp"]), "x")  # fmt: skip
    report.add("akool httpx / akool aiohttp CPU/request",
               ratios(cpu["akool httpx"], cpu["akool aiohttp"]), "x")  # fmt: skip
    report.add("akool aiohttp / akool httpx requests/s",
               ratios(rate["akool aiohttp"], rate["akool httpx"]), "x", "(goal >= 4)")  # fmt: skip
    report.add("raw aiohttp / raw httpx requests/s",
               ratios(rate["raw aiohttp"], rate["raw httpx"]), "x")  # fmt: skip
    report.close()


if __name__ == "__main__":
    anyio.run(main)
