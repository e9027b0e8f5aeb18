"""``akool-async worker --queue URL [--limits URL] --out DIR``: one worker of a fleet on a
shared PostgreSQL queue (``akool-async enqueue`` fills it), generating each item it claims
through the follow machine and saving its images under its own ``--out``.

``--limits`` puts the account's budget on Redis (``RedisBudget``): requests per second for
every worker together, and with ``--max-jobs`` the jobs in flight. URLs come from the
options or ``AKOOL_QUEUE_URL`` / ``AKOOL_LIMITS_URL`` and are shown with their password as
``***``. The first SIGINT/SIGTERM stops claiming, lets creates on their way answer (their
ids recorded) and releases every claim: exit 130 / 143; a second one exits at once (the
leases then run out and the reaper hands the items on).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from .._defaults import DEFAULT_BULK_CONCURRENCY, DEFAULT_BURST, DEFAULT_RATE, WORKER_LEASE
from .._exceptions import (
    AkoolError,
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    SharedBudgetUnavailableError,
)
from ._checks import output_folder, poll_floor
from ._connect import connect, has_credentials, require_emulator
from ._errors import AUTH_HINT, CLIError, Exit, install_hint, leaf
from ._parsing import add_backend, add_poll_floor, subcommand
from ._queue import add_queue_option, queue_url

LIMITS_ENV = "AKOOL_LIMITS_URL"
EXAMPLES = """  export AKOOL_QUEUE_URL=postgresql://akool@db/akool  # password: ~/.pgpass
  export AKOOL_LIMITS_URL=redis://cache:6379/0
  akool-async worker --out /data/images --rate 20 --max-jobs 4 --account acme --wait"""
_SIGNALS = {signal.SIGINT: Exit.INTERRUPTED, signal.SIGTERM: Exit.TERMINATED}


def add_parser(commands: Any) -> None:
    parser = subcommand(
        commands, "worker", help="generate the items of a shared queue, as one of many workers",
        description="Claim items from the PostgreSQL queue (put there with 'akool-async "
        "enqueue') and generate each (its follow-ups too), saving the images under --out; "
        "the queue records every image's host, path and SHA-256. Any number of workers on "
        "any number of machines share a queue; a create is never sent twice. With --limits, "
        "every worker of the account shares one request rate and one cap on jobs in flight "
        "on Redis. Ends when the queue has nothing left for it (or, with --wait, on "
        "SIGINT/SIGTERM).",
        examples=EXAMPLES,
    )  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="this worker's folder for the images")  # fmt: skip
    add_queue_option(parser)
    parser.add_argument("--limits", default=None, metavar="URL",
                        help=f"redis://host:port/db: the account's budget shared by "
                        f"every worker (default: ${LIMITS_ENV}; none: this worker's own "
                        "--rate)")  # fmt: skip
    parser.add_argument("--account", default="default", metavar="NAME",
                        help="with --limits: the budget's name, the same for every worker "
                        "of one Akool account")  # fmt: skip
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, metavar="R",
                        help="requests per second (the account's, with --limits)")  # fmt: skip
    parser.add_argument("--burst", type=int, default=DEFAULT_BURST, metavar="N",
                        help="requests that may go at once beyond --rate (with --limits: "
                        "the account's; keep it under the server's)")  # fmt: skip
    parser.add_argument("--max-jobs", type=int, default=None, metavar="N",
                        help="with --limits: the account's jobs in flight at once, across "
                        "every worker (what its plan allows)")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=DEFAULT_BULK_CONCURRENCY,
                        metavar="N", help="items this worker works on at once")  # fmt: skip
    parser.add_argument("--lease", type=float, default=WORKER_LEASE, metavar="SECONDS",
                        help="how long a claim holds without word from this worker (others "
                        "take a dead worker's items over after it)")  # fmt: skip
    parser.add_argument("--wait", action="store_true",
                        help="keep waiting for new items when the queue is empty")  # fmt: skip
    add_poll_floor(parser)
    parser.add_argument("--save-grid", action="store_true",
                        help="also save each batch's 2x2 grid")  # fmt: skip
    parser.add_argument("--transport", choices=("httpx", "aiohttp"), default="httpx",
                        help="the HTTP library (aiohttp: asyncio only)")  # fmt: skip
    add_backend(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    poll_floor(args.poll_floor)
    for name in ("rate", "lease"):
        if not getattr(args, name) > 0:
            raise CLIError(f"--{name} must be a positive number,"
                           f" not {getattr(args, name):g}")  # fmt: skip
    if args.concurrency < 1:
        raise CLIError(f"--concurrency must be 1 or more, not {args.concurrency}")
    if args.burst < 1:
        raise CLIError(f"--burst must be 1 or more, not {args.burst}")
    if args.max_jobs is not None and args.max_jobs < 1:
        raise CLIError(f"--max-jobs must be 1 or more, not {args.max_jobs}")
    limits = args.limits or os.environ.get(LIMITS_ENV) or None
    if args.max_jobs is not None and limits is None:
        raise CLIError(f"--max-jobs needs --limits redis://... (or {LIMITS_ENV}): the cap is "
                       "the account's, kept on Redis")  # fmt: skip
    url = queue_url(args)
    budget = _budget(args, limits) if limits else None
    if not has_credentials():
        require_emulator()
    output_folder(args.out)
    return int(anyio.run(_main, args, url, budget, backend=args.backend))


def _budget(args: argparse.Namespace, url: str) -> Any:
    try:
        from ..redis_budget import RedisBudget
    except ImportError:
        raise install_hint("redis", "--limits") from None
    try:
        return RedisBudget.from_url(url, account=args.account, rate=args.rate,
                                    burst=args.burst, max_jobs=args.max_jobs)  # fmt: skip
    except ConfigurationError as exc:
        raise CLIError(f"--limits: {exc.message}") from None
    except AkoolError as exc:  # a bad --account: ValidationError
        raise CLIError(f"--account: {exc}") from None


async def _main(args: argparse.Namespace, url: str, budget: Any) -> int:
    from ..workers import Worker, WorkerSettings

    settings = WorkerSettings(lease=args.lease, concurrency=args.concurrency,
                              until_empty=not args.wait)  # fmt: skip
    received: list[Exit] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            if budget is not None:
                await stack.enter_async_context(budget)
            connection = await stack.enter_async_context(connect(
                rate_limit=args.rate,  # the local front gate; the shared one after it
                transport=args.transport, quiet=args.quiet, poll_floor=args.poll_floor,
                shared_budget=budget, rate_burst=args.burst,
            ))  # fmt: skip
            worker = await stack.enter_async_context(
                Worker(
                    connection.client,
                    url,
                    out_dir=args.out,
                    shared_budget=budget,
                    settings=settings,
                    save_grid=args.save_grid,
                )
            )
            async with _signals(worker, received):
                report = await worker.run()
    except BaseException as exc:
        raise _explained(exc, url) from None
    items = ", ".join(f"{n} {state}" for state, n in sorted(report.items.items())) or "none"
    if not args.quiet or report.bad:
        print(f"worker: items {items}; lost to other workers {report.stats.lost}; driver "
              f"failures {report.stats.failed}; requests {report.requests}")  # fmt: skip
    if received:
        print("stopped: claims released, the rest is left to the other workers",
              file=sys.stderr)  # fmt: skip
        return received[0]
    return Exit.FAILED if report.bad else Exit.OK


@contextlib.asynccontextmanager
async def _signals(worker: Any, received: list[Exit]) -> AsyncIterator[None]:
    """First SIGINT/SIGTERM: stop cleanly (the code it means is kept); second: exit."""

    async def listen(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        with anyio.open_signal_receiver(*_SIGNALS) as signals:
            task_status.started()
            async for number in signals:
                if received:
                    sys.stderr.flush()
                    os._exit(_SIGNALS[signal.Signals(number)])  # leases hand the rest on
                received.append(_SIGNALS[signal.Signals(number)])
                print("stopping: recording what is in flight, releasing claims (again to "
                      "quit at once)", file=sys.stderr, flush=True)  # fmt: skip
                worker.stop()

    async with anyio.create_task_group() as tasks:
        await tasks.start(listen)
        yield
        tasks.cancel_scope.cancel()


def _explained(exc: BaseException, url: str) -> BaseException:
    """A failure as the one line the user sees (queue and Redis unreachable: exit 5)."""
    from ..workers import QueueUnavailableError, redact_url

    error = leaf(exc)
    if isinstance(error, QueueUnavailableError):
        return CLIError(f"cannot reach the queue: {error}", Exit.UNREACHABLE)
    if isinstance(error, SharedBudgetUnavailableError):
        return CLIError(f"cannot reach the shared budget (--limits): {error}", Exit.UNREACHABLE)
    if isinstance(error, AuthenticationError):
        return CLIError(f"authentication failed: {error.message}; {AUTH_HINT}; the items "
                        f"this worker held are released (queue {redact_url(url)})",
                        Exit.AUTH)  # fmt: skip
    if isinstance(error, ConnectError):
        where = os.environ.get("AKOOL_BASE_URL") or "https://openapi.akool.com"
        return CLIError(f"cannot reach {where}: {error.message}; check the network and "
                        "AKOOL_BASE_URL", Exit.UNREACHABLE)  # fmt: skip
    return exc
