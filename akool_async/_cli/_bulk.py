"""``akool-async bulk PROMPTS --out DIR``: a file of prompts to images on disk.

Ctrl-C stops submitting, lets creates already sent be recorded, and exits 130 with a
journal that ``--resume`` continues; a second Ctrl-C exits at once (the journal is a
SQLite database in WAL mode: it is consistent whenever the process dies). Without a key,
the built-in emulator keeps its jobs in ``emulator-state.json`` beside the journal, so
such a run resumes too.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from .._defaults import BULK_LEASE, DEFAULT_BULK_CONCURRENCY, DEFAULT_RATE
from .._exceptions import AuthenticationError, ConnectError, ValidationError
from .._models import Button
from .._requests import parse_buttons
from ..bulk import BulkRun, BulkStats, ItemState, Summary, read_items, run_bulk
from ..bulk._folder import (
    FolderHasResultsError,
    JournalBusyError,
    JournalExistsError,
    JournalUnreadableError,
    check_folder,
)
from ..bulk._input import count_records
from ._checks import input_file, output_folder, poll_floor
from ._connect import connect, has_credentials, require_emulator
from ._dry_run import add_pricing, dry_run
from ._errors import AUTH_HINT, CLIError, Exit, leaf
from ._faults import fault_line, local_fault
from ._outcomes import Outcomes
from ._parsing import add_backend, add_poll_floor, subcommand
from ._progress import Display, Tally, stderr_display

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130  # kept for importers
EMULATOR_STATE = "emulator-state.json"
JOB_TIMEOUT = 3600.0  # jobs take a minute or two; one not done in an hour is stuck

EXAMPLES = """  akool-async bulk examples/prompts.jsonl --out images/
  akool-async bulk prompts.csv --out images/ --follow-ups U1 --budget 500
  akool-async bulk prompts.jsonl --out images/ --dry-run     # count, check, send nothing
  akool-async bulk prompts.jsonl --out images/ --resume      # after Ctrl-C or a crash"""


def add_parser(commands: Any) -> None:
    parser = subcommand(
        commands, "bulk",
        help="generate images for every prompt of a JSONL or CSV file",
        description="Generate images for every line of PROMPTS (JSONL objects with a prompt "
        "and any v4 field, an optional id and follow_ups; or CSV with a prompt column), "
        "concurrently and resumably, saving each image in --out with manifest.jsonl and an "
        "index.html gallery.",
        examples=EXAMPLES,
    )  # fmt: skip
    parser.add_argument("prompts", type=Path, help="a .jsonl or .csv file")
    parser.add_argument("--out", type=Path, default=Path("images"), metavar="DIR",
                        help="output folder: id-<id>/ or line-<n>/ folders of images, "
                        "manifest.jsonl, index.html, the journal")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=DEFAULT_BULK_CONCURRENCY, metavar="N",
                        help="requests followed at once")  # fmt: skip
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, metavar="R",
                        help="API requests per second, for everything")  # fmt: skip
    add_poll_floor(parser)
    parser.add_argument("--transport", choices=("httpx", "aiohttp"), default="httpx",
                        help="HTTP library (aiohttp: less CPU per request)")  # fmt: skip
    parser.add_argument("--follow-ups", default="", metavar="U1,V2",
                        help="buttons to press on each image, for lines that name "
                        "no follow_ups of their own")  # fmt: skip
    parser.add_argument("--budget", type=float, default=None, metavar="CREDITS",
                        help="submit nothing that would take the spending past this")  # fmt: skip
    parser.add_argument("--job-timeout", type=float, default=JOB_TIMEOUT, metavar="SECONDS",
                        help="stop following a job not finished after this long: it is "
                        "reported as timed out, and --resume follows it again "
                        "(default %(default)g, an hour)")  # fmt: skip
    parser.add_argument("--journal", type=Path, default=None, metavar="FILE",
                        help="the resumable journal (default: DIR/journal.sqlite)")  # fmt: skip
    parser.add_argument("--resume", action="store_true", help="continue an existing journal")
    parser.add_argument("--resubmit-uncertain", action="store_true",
                        help="submit again what may already exist (may pay twice)")  # fmt: skip
    parser.add_argument("--retry-failed", action="store_true",
                        help="with --resume, send failed requests again (their failed "
                        "jobs stay in the manifest; uncertain ones only with "
                        "--resubmit-uncertain)")  # fmt: skip
    parser.add_argument("--save-grid", action="store_true",
                        help="also save each grid job's 2x2 grid (NAME-grid.png) beside its "
                        "four images (NAME-1.png ... NAME-4.png)")  # fmt: skip
    parser.add_argument("--dry-run", action="store_true",
                        help="read and check the whole file, print the requests, images "
                        "and credits it would take and the lines it would refuse; "
                        "send nothing")  # fmt: skip
    parser.add_argument("--lease", type=float, default=BULK_LEASE, metavar="SECONDS",
                        help="how long an item stays claimed by this process without word "
                        "from it (processes sharing --out take over a killed one's items "
                        "after this)")  # fmt: skip
    add_pricing(parser)
    add_backend(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    journal: Path = args.journal or args.out / "journal.sqlite"
    input_file(args.prompts)
    if args.concurrency < 1 or args.rate <= 0 or args.lease <= 0:
        raise CLIError("--concurrency, --rate and --lease must be positive")
    poll_floor(args.poll_floor)
    if args.budget is not None and not 0 < args.budget < math.inf:
        raise CLIError(f"--budget must be a number of credits above 0, not {args.budget:g}")
    if not 0 < args.job_timeout < math.inf:
        raise CLIError(f"--job-timeout must be seconds above 0, not {args.job_timeout:g}")
    follow_ups = _buttons(args.follow_ups)
    total = _records(args.prompts)
    if args.dry_run:
        return anyio.run(dry_run, args, follow_ups, backend=args.backend)
    _belongs(args.out, journal, resume=args.resume)
    if not has_credentials():
        require_emulator()
    output_folder(args.out)
    output_folder(journal.parent, "--journal")
    try:
        return anyio.run(_bulk, args, journal, follow_ups, total, backend=args.backend)
    except BaseException as exc:  # a group holding a full disk's error, too
        fault = None if isinstance(leaf(exc), KeyboardInterrupt) else local_fault(exc)
        if fault is None:
            raise
        raise CLIError(fault_line(fault, journal), Exit.LOCAL) from None


def _belongs(out: Path, journal: Path, *, resume: bool) -> None:
    """The journal and the folder's results go together (``bulk._folder``), or exit 2,
    before anything starts (``run_bulk`` checks again, and cleans the folder up)."""
    try:
        check_folder(out, journal, resume=resume)
    except JournalExistsError:
        raise CLIError(
            f"{journal} exists: pass --resume to continue it, or choose another --out"
        ) from None
    except (FolderHasResultsError, JournalBusyError, JournalUnreadableError) as exc:
        raise CLIError(exc.message) from None


def _records(path: Path) -> int:
    """How many requests the file holds; a file that cannot be read as text is refused."""
    try:
        return count_records(path)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CLIError(f"{path} cannot be read as UTF-8 JSONL or CSV: {exc}") from None


def _buttons(text: str) -> tuple[Button, ...]:
    names = [name for name in text.replace(",", " ").split() if name]
    try:
        return parse_buttons(names, field="buttons")
    except ValidationError as exc:
        raise CLIError(f"--follow-ups: {exc.message}") from None


async def _bulk(args: argparse.Namespace, journal: Path, follow_ups: tuple[Button, ...],
                total: int) -> int:  # fmt: skip
    stats = BulkStats()
    running: list[BulkRun] = []
    last_words: list[Callable[[], None]] = []
    tally = Tally(total=total)
    outcomes = Outcomes()
    async with anyio.create_task_group() as signals:
        # Listening before anything is submitted: a Ctrl-C is never the default handler's.
        await signals.start(_interrupts, running, last_words)
        async with connect(
            rate_limit=args.rate, transport=args.transport, quiet=args.quiet,
            emulator_state=journal.parent / EMULATOR_STATE, resume_emulator=args.resume,
            poll_floor=args.poll_floor,
        ) as connection:  # fmt: skip
            last_words.append(connection.save_state)
            client = connection.client
            display = stderr_display(tally, lambda: client.requests_sent, quiet=args.quiet)
            async with display.shown():
                try:
                    async with run_bulk(
                        client, read_items(args.prompts, follow_ups), out_dir=args.out,
                        journal=journal, concurrency=args.concurrency, budget=args.budget,
                        resubmit_uncertain=args.resubmit_uncertain, stats=stats,
                        retry_failed=args.retry_failed,
                        resume=args.resume, save_grid=args.save_grid,
                        job_timeout=args.job_timeout,
                        lease=args.lease,
                    ) as bulk:  # fmt: skip
                        running.append(bulk)
                        await _follow(bulk, tally, display, outcomes, quiet=args.quiet)
                except (AuthenticationError, ConnectError) as exc:
                    raise _stopped(exc, journal) from None
                assert bulk.summary is not None
                display.final(_final_tally(bulk.summary, tally))
        signals.cancel_scope.cancel()
    return _report(args, bulk, journal, outcomes)


_COUNTED_FAILED = frozenset({ItemState.FAILED, ItemState.INVALID, ItemState.UNCERTAIN})


async def _follow(bulk: BulkRun, tally: Tally, display: Display, outcomes: Outcomes, *,
                  quiet: bool) -> None:  # fmt: skip
    """Count each result into the display's tally; name each line that failed."""
    async for result in bulk:
        outcomes.add(result)
        tally.done += 1
        tally.images += sum(1 for image in result.images if image.ok)
        tally.failed += result.state in _COUNTED_FAILED
        tally.credits = bulk.stats.credits
        stopping = bulk.error is not None  # a refused key: said once, in the error line
        if result.state in (ItemState.INVALID, ItemState.FAILED) and not (quiet or stopping):
            display.note(f"line {result.line}: {result.state}: {result.error}")


def _final_tally(summary: Summary, live: Tally) -> Tally:
    failed = summary.items_failed + summary.uncertain + summary.invalid
    return Tally(total=live.total, done=live.done, images=summary.images_done, failed=failed,
                 credits=summary.credits)  # fmt: skip


def _stopped(error: AuthenticationError | ConnectError, journal: Path) -> CLIError:
    resume = f"then run again with --resume (the journal is {journal})"
    if isinstance(error, AuthenticationError):
        return CLIError(f"authentication failed: {error.message}; {AUTH_HINT}; {resume}",
                        Exit.AUTH)  # fmt: skip
    where = os.environ.get("AKOOL_BASE_URL") or "https://openapi.akool.com"
    return CLIError(f"cannot reach {where}: {error.message}; check the network and "
                    f"AKOOL_BASE_URL; {resume}", Exit.UNREACHABLE)  # fmt: skip


def _report(args: argparse.Namespace, bulk: BulkRun, journal: Path, outcomes: Outcomes) -> int:
    summary = bulk.summary
    assert summary is not None
    bad = summary.images_failed or summary.items_failed or summary.uncertain or summary.invalid
    if args.quiet:  # no line was printed as it came: the reasons, before the summary
        for line in outcomes.invalid_lines():
            print(line, file=sys.stderr)
    if not args.quiet or bad or outcomes.held_back or outcomes.timed_out_count:
        for line in summary.lines() + outcomes.named_lines():
            print(line)
        print(f"manifest: {bulk.manifest_path}")
        print(f"gallery: {bulk.gallery_path}")
    if bulk.interrupted:
        print(f"interrupted: run again with --resume to continue ({journal})", file=sys.stderr)
        return Exit.INTERRUPTED
    if outcomes.held_back:
        print(outcomes.held_back_line(args.budget), file=sys.stderr)
    if bad:
        return Exit.FAILED
    if outcomes.timed_out_count:
        return Exit.NOT_FINISHED
    return Exit.HELD_BACK if outcomes.held_back else Exit.OK


async def _interrupts(running: list[BulkRun], last_words: list[Callable[[], None]], *,
                      task_status: anyio.abc.TaskStatus[None]) -> None:  # fmt: skip
    """First Ctrl-C: stop, record, exit 130. Second (or one before the run): exit at once."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for _ in signals:
            if not running or running[0].stopping:
                for save in last_words:  # the emulator's jobs, so a resume finds them
                    save()
                sys.stderr.flush()
                os._exit(Exit.INTERRUPTED)  # the journal is consistent whenever we die
            print("stopping: recording what is in flight (Ctrl-C again to quit at once)",
                  file=sys.stderr, flush=True)  # fmt: skip
            running[0].stop(cancel_in_flight=True)
