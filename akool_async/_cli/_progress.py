"""How a bulk run reports while it works: a rich progress display on a terminal, a plain
line every few seconds otherwise, nothing with --quiet."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import AsyncIterator

import anyio

from ..bulk import BulkStats

PLAIN_EVERY = 10.0


def _line(stats: BulkStats, total: int | None) -> str:
    elapsed = time.monotonic() - stats.started
    finished = stats.items_done + stats.skipped + stats.uncertain
    rate = finished / elapsed if elapsed > 0 else 0.0
    remaining = (total - stats.invalid - finished) if total else None
    eta = f"{remaining / rate:.0f}s" if remaining is not None and rate > 0 else "?"
    return (
        f"submitted {stats.submitted} | running {stats.running} | finished {stats.finished}"
        f" | failed {stats.failed} | downloaded {stats.downloaded} | credits {stats.credits:g}"
        f" | {rate:.2f} requests/s | eta {eta}"
    )


@contextlib.asynccontextmanager
async def progress(stats: BulkStats, *, total: int | None, quiet: bool) -> AsyncIterator[None]:
    if quiet:
        yield
        return
    if sys.stderr.isatty():
        async with _rich(stats, total):
            yield
        return
    async with anyio.create_task_group() as tg:
        tg.start_soon(_plain, stats, total)
        yield
        tg.cancel_scope.cancel()
    print(_line(stats, total), file=sys.stderr, flush=True)


async def _plain(stats: BulkStats, total: int | None) -> None:
    while True:
        await anyio.sleep(PLAIN_EVERY)
        print(_line(stats, total), file=sys.stderr, flush=True)


@contextlib.asynccontextmanager
async def _rich(stats: BulkStats, total: int | None) -> AsyncIterator[None]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("starting", total=total or None)

        async def refresh() -> None:
            while True:
                done = stats.items_done + stats.skipped + stats.uncertain + stats.invalid
                bar.update(task, completed=done, description=_line(stats, total))
                await anyio.sleep(0.5)

        async with anyio.create_task_group() as tg:
            tg.start_soon(refresh)
            yield
            tg.cancel_scope.cancel()
