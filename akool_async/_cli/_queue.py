"""``akool-async enqueue PROMPTS --queue URL`` and ``akool-async status --queue URL``: a
prompts file put on a shared PostgreSQL queue, and the progress of every worker on it.

The queue's URL comes from ``--queue`` or ``AKOOL_QUEUE_URL`` (better: a command line is
visible to every user of the machine); it is shown only with its password as ``***``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio

from .._defaults import WORKER_ALIVE_WITHIN
from .._exceptions import ConfigurationError
from ._bulk import _buttons, _records
from ._checks import input_file
from ._errors import CLIError, Exit, install_hint, leaf
from ._parsing import add_backend, subcommand

QUEUE_ENV = "AKOOL_QUEUE_URL"
_SHOWN_PROBLEMS = 20

ENQUEUE_EXAMPLES = """  export AKOOL_QUEUE_URL=postgresql://akool@db/akool  # password: ~/.pgpass
  akool-async enqueue prompts.jsonl
  akool-async enqueue prompts.csv --follow-ups U1 --queue postgresql://akool@db/akool
  akool-async enqueue prompts.jsonl --retry-refused   # after a Redis outage, say"""
STATUS_EXAMPLES = """  akool-async status
  akool-async status --json
  akool-async status --manifest manifest.jsonl    # every item and image, as one file"""


def add_parsers(commands: Any) -> None:
    enqueue = subcommand(
        commands, "enqueue", help="put a prompts file on a shared PostgreSQL queue",
        description="Put every request of PROMPTS (JSONL or CSV, as for bulk) on the queue "
        "for workers to generate. An item is known by its request: enqueueing the same file "
        "again adds nothing, a changed line is a new item, a moved line is the same item. "
        "Invalid lines are listed and left out (exit 1).",
        examples=ENQUEUE_EXAMPLES,
    )  # fmt: skip
    enqueue.add_argument("prompts", type=Path, help="a .jsonl or .csv file")
    enqueue.add_argument("--follow-ups", default="", metavar="U1,V2",
                         help="buttons to press on each image, for lines that name "
                         "no follow_ups of their own")  # fmt: skip
    status = subcommand(
        commands, "status", help="progress of a shared queue across all its workers",
        description="Print the queue's items by state, the credits spent, the request rate "
        "of the workers alive and how many are alive; with --manifest, also write the "
        "manifest of every item and image (JSON lines) to a file.",
        examples=STATUS_EXAMPLES,
    )  # fmt: skip
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.add_argument("--manifest", type=Path, default=None, metavar="FILE",
                        help="write the manifest to FILE")  # fmt: skip
    status.add_argument("--alive-within", type=float, default=WORKER_ALIVE_WITHIN,
                        metavar="SECONDS",
                        help="a worker whose last heartbeat is older is not alive")  # fmt: skip
    enqueue.add_argument("--retry-refused", action="store_true",
                         help="put the file's items the queue holds as refused (provably "
                         "never sent: the shared budget out of reach, a request the API "
                         "turned away) back for workers to claim again")  # fmt: skip
    for parser in (enqueue, status):
        add_queue_option(parser)
        add_backend(parser)
    enqueue.set_defaults(run=run_enqueue)
    status.set_defaults(run=run_status)


def add_queue_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue", default=None, metavar="URL",
                        help=f"postgresql://user@host/db (default: ${QUEUE_ENV})")  # fmt: skip


def queue_url(args: argparse.Namespace) -> str:
    """The queue's URL (option, else environment), checked, the driver installed."""
    url = args.queue or os.environ.get(QUEUE_ENV)
    if not url:
        raise CLIError(f"no queue: pass --queue postgresql://... or set {QUEUE_ENV}")
    from ..workers._pg_database import check_url

    try:
        check_url(url, "--queue")
    except ConfigurationError as exc:
        raise CLIError(exc.message) from None
    try:
        import psycopg  # noqa: F401 - only whether it is there
    except ImportError:
        raise install_hint("postgres", "the PostgreSQL queue") from None
    return url


def _unreachable(run: Any) -> Any:
    """``run``, with a queue that cannot be reached as exit 5 (its one line as is)."""
    from ..workers import QueueUnavailableError

    try:
        return run()
    except BaseException as exc:  # a task group's failure wraps it
        error = leaf(exc)
        if isinstance(error, QueueUnavailableError):
            raise CLIError(f"cannot reach the queue: {error}", Exit.UNREACHABLE) from None
        raise


def run_enqueue(args: argparse.Namespace) -> int:
    input_file(args.prompts)
    follow_ups = _buttons(args.follow_ups)
    _records(args.prompts)  # a file that cannot be read as text is refused before connecting
    url = queue_url(args)
    return int(_unreachable(lambda: anyio.run(_enqueue, args, url, follow_ups,
                                              backend=args.backend)))  # fmt: skip


async def _enqueue(args: argparse.Namespace, url: str, follow_ups: Any) -> Exit:
    from ..workers import PostgresQueue

    async with PostgresQueue(url) as queue:
        report = await queue.enqueue_file(args.prompts, follow_ups,
                                          retry_refused=args.retry_refused)  # fmt: skip
    for problem in report.invalid[:_SHOWN_PROBLEMS]:
        print(f"{args.prompts}:{problem.line}: {problem.reason}", file=sys.stderr)
    if len(report.invalid) > _SHOWN_PROBLEMS:
        print(f"... and {len(report.invalid) - _SHOWN_PROBLEMS} more invalid lines",
              file=sys.stderr)  # fmt: skip
    invalid = f"; {len(report.invalid)} invalid lines left out" if report.invalid else ""
    retried = f", {report.retried} refused put back" if args.retry_refused else ""
    print(f"queued {report.added} new requests from {args.prompts}"
          f" ({report.already} already on the queue{retried}){invalid}")  # fmt: skip
    if report.changed and not args.quiet:
        print(f"{report.changed} of them change the request of an id already queued: the"
              " earlier request stays on the queue", file=sys.stderr)  # fmt: skip
    return Exit.FAILED if report.invalid else Exit.OK


def run_status(args: argparse.Namespace) -> int:
    if args.alive_within <= 0:
        raise CLIError(f"--alive-within must be a positive number of seconds,"
                       f" not {args.alive_within:g}")  # fmt: skip
    url = queue_url(args)
    return int(_unreachable(lambda: anyio.run(_status, args, url, backend=args.backend)))


async def _status(args: argparse.Namespace, url: str) -> Exit:
    from ..workers import PostgresQueue, export_manifest, queue_status

    async with PostgresQueue(url, create=False) as queue:
        status = await queue_status(queue, alive_within=args.alive_within)
        rows = None if args.manifest is None else await export_manifest(queue, args.manifest)
    if args.json:
        print(json.dumps({**status.as_dict(), "manifest_rows": rows}))
    else:
        for line in status.lines():
            print(line)
        if rows is not None and not args.quiet:
            print(f"manifest: {rows} rows in {args.manifest}")
    return Exit.OK
