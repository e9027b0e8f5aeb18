"""A worker process for the queue's process tests: ``python -m tests.pg_claimer MODE URL
BACKEND``. ``drain`` takes items until none is left, recording an intent, a created job
and the end of each, and prints each key it took; ``hold`` takes two items, records an
intent for the first only, prints both and waits to be killed."""

from __future__ import annotations

import sys

import anyio

from akool_async import _journal_protocol as jp
from akool_async._models import ImageJob, ImageStatus
from akool_async.workers import PostgresQueue


def say(line: str) -> None:
    print(line, flush=True)


async def drain(url: str) -> None:
    async with PostgresQueue(url) as queue:
        while (item := await queue.claim_next(lease=120)) is not None:
            await queue.write(item.claim, [jp.CreateIntent(item.request or {}, ())])
            say(f"took {item.claim.key}")
            created = ImageJob(id=f"job-{item.claim.key}", status=ImageStatus.QUEUEING)
            await queue.write(item.claim, [jp.CreateSettled((created,))])
            await queue.write(item.claim, [jp.TreeSettled("done", None)])
            await queue.release(item.claim)


async def hold(url: str) -> None:
    async with PostgresQueue(url) as queue:
        sent = await queue.claim_next(lease=2)
        claimed = await queue.claim_next(lease=2)
        assert sent is not None
        assert claimed is not None
        await queue.write(sent.claim, [jp.CreateIntent(sent.request or {}, ())])
        say(f"sent {sent.claim.key}")
        say(f"claimed {claimed.claim.key}")
        await anyio.sleep_forever()


if __name__ == "__main__":
    mode, url, backend = sys.argv[1:4]
    anyio.run({"drain": drain, "hold": hold}[mode], url, backend=backend)
