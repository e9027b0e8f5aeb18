"""A worker process for the shared-budget tests: ``python _budget_worker.py MODE URL ACCOUNT
BACKEND [SECONDS]``.

- ``ask``: print ``ready``, wait for a line on stdin (so that all workers start together),
  then ask the GCRA (50/s, burst 5) without waiting, as fast as it can, for SECONDS;
  print one JSON line: ``[[admitted, server_time], ...]``.
- ``lease``: take one of the account's jobs in flight (max_jobs=1, lease_ttl=SECONDS),
  print ``held``, and hold it until killed.
"""

from __future__ import annotations

import json
import sys
import time

import anyio

from akool_async.redis_budget import RedisBudget

RATE, BURST = 50.0, 5


async def ask(url: str, account: str, seconds: float) -> None:
    asks: list[tuple[bool, float]] = []
    async with RedisBudget.from_url(url, account=account, rate=RATE, burst=BURST) as budget:
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            admission = await budget.try_acquire()
            asks.append((admission.admitted, admission.server_time))
    print(json.dumps(asks))


async def lease(url: str, account: str, seconds: float) -> None:
    budget = RedisBudget.from_url(url, account=account, max_jobs=1, lease_ttl=seconds)
    async with budget, budget.job_lease():
        print("held", flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    mode, url, account, backend, seconds = sys.argv[1:6]
    anyio.run({"ask": ask, "lease": lease}[mode], url, account, float(seconds), backend=backend)
