"""``akool-async bulk PROMPTS --out DIR``: a file of prompts to images on disk.

Exit codes: 0 all done, 1 some failed or uncertain, 2 usage error, 130 interrupted.
Ctrl-C stops submitting, lets creates already sent be recorded, and exits 130 with a
journal that ``--resume`` continues; a second Ctrl-C exits at once (the journal is a
SQLite database in WAL mode: it is consistent whenever the process dies).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from .._exceptions import AkoolError, ValidationError
from .._models import Button
from .._requests import ButtonRequest
from ..bulk import BulkRun, BulkStats, read_items, run_bulk
from ..bulk._input import count_lines
from ._connect import connect
from ._progress import progress

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "bulk",
        help="generate images for every prompt of a JSONL or CSV file",
        description="Generate images for every line of PROMPTS (JSONL objects with a prompt "
        "and any v4 field, an optional id and follow_ups; or CSV with a prompt column), "
        "concurrently, resumably, downloading each image into --out.",
    )
    parser.add_argument("prompts", type=Path, help="a .jsonl or .csv file")
    parser.add_argument("--out", type=Path, default=Path("images"), help="output folder")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--rate", type=float, default=10.0, help="API requests per second")
    parser.add_argument("--transport", choices=("httpx", "aiohttp"), default="httpx",
                        help="HTTP library (aiohttp: less CPU per request)")  # fmt: skip
    parser.add_argument("--follow-ups", default="", metavar="U1,V2",
                        help="buttons to press on each image (a line's own win)")  # fmt: skip
    parser.add_argument("--budget", type=float, default=None, metavar="CREDITS",
                        help="submit nothing that would spend more credits in all")  # fmt: skip
    parser.add_argument("--journal", type=Path, default=None,
                        help="the resumable journal (default: OUT/journal.sqlite)")  # fmt: skip
    parser.add_argument("--resume", action="store_true", help="continue an existing journal")
    parser.add_argument("--resubmit-uncertain", action="store_true",
                        help="submit again what may already exist (may pay twice)")  # fmt: skip
    parser.add_argument("--save-grid", action="store_true",
                        help="also save each grid job's 2x2 grid (NAME-grid.png) beside its "
                        "four images (NAME-1.png ... NAME-4.png)")  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    journal = args.journal or args.out / "journal.sqlite"
    problem = _usage_problem(args, journal)
    if problem:
        print(f"usage error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        follow_ups = _buttons(args.follow_ups)
    except ValidationError as exc:
        print(f"usage error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return anyio.run(_bulk, args, journal, follow_ups, backend=args.backend)
    except AkoolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _usage_problem(args: argparse.Namespace, journal: Path) -> str | None:
    if not args.prompts.is_file():
        return f"{args.prompts} is not a file"
    if args.concurrency < 1 or args.rate <= 0:
        return "--concurrency and --rate must be positive"
    if journal.exists() and not args.resume:
        return f"{journal} exists: pass --resume to continue it, or choose another --out"
    return None


def _buttons(text: str) -> tuple[Button, ...]:
    names = [name for name in text.replace(",", " ").split() if name]
    return tuple(ButtonRequest(job_id="check", button=name).button for name in names)


async def _bulk(args: argparse.Namespace, journal: Path, follow_ups: tuple[Button, ...]) -> int:
    stats = BulkStats()
    running: list[BulkRun] = []
    async with anyio.create_task_group() as signals:
        # Listening before anything is submitted: a Ctrl-C is never the default handler's.
        await signals.start(_interrupts, running)
        total = await anyio.to_thread.run_sync(count_lines, args.prompts)
        async with connect(rate_limit=args.rate, transport=args.transport) as connection:
            items = read_items(args.prompts, follow_ups)
            async with run_bulk(
                connection.client, items, out_dir=args.out, journal=journal,
                concurrency=args.concurrency, budget=args.budget,
                resubmit_uncertain=args.resubmit_uncertain, stats=stats,
                save_grid=args.save_grid,
            ) as bulk:  # fmt: skip
                running.append(bulk)
                async with progress(stats, total=total, quiet=args.quiet):
                    async for result in bulk:
                        if result.state in ("invalid", "failed") and not args.quiet:
                            line = f"line {result.line}: {result.state}: {result.error}"
                            print(line, file=sys.stderr)
        signals.cancel_scope.cancel()
    assert bulk.summary is not None
    if not args.quiet or bulk.summary.images_failed or bulk.summary.uncertain:
        for line in bulk.summary.lines():
            print(line)
        print(f"manifest: {bulk.manifest_path}")
    if bulk.interrupted:
        print(f"interrupted: run again with --resume to continue ({journal})", file=sys.stderr)
        return EXIT_INTERRUPTED
    summary = bulk.summary
    bad = summary.images_failed or summary.items_failed or summary.uncertain or summary.invalid
    return EXIT_FAILED if bad else EXIT_OK


async def _interrupts(running: list[BulkRun], *, task_status: anyio.abc.TaskStatus[None]) -> None:
    """First Ctrl-C: stop, record, exit 130. Second (or one before the run): exit at once."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for _ in signals:
            if not running or running[0].stopping:
                sys.stderr.flush()
                os._exit(EXIT_INTERRUPTED)  # the journal is consistent whenever we die
            print("stopping: recording what is in flight (Ctrl-C again to quit at once)",
                  file=sys.stderr, flush=True)  # fmt: skip
            running[0].stop(cancel_in_flight=True)
