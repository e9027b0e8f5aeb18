"""``akool-async wait JOB_ID...`` and ``akool-async download JOB_ID...``: pick up jobs
created earlier (the ids ``generate --timeout`` prints), by id, on the real API."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import anyio
import attrs

from .._client import AkoolClient
from .._exceptions import (
    APIError,
    AuthenticationError,
    DownloadError,
    JobFailedError,
    JobTimeoutError,
)
from .._models import ImageJob, ImageStatus
from ._checks import output_folder
from ._connect import connect, has_credentials
from ._errors import CLIError, Exit
from ._parsing import add_backend, subcommand

WAIT_EXAMPLES = """  akool-async wait 6651a1c2e4b0a8f3d2c1b0a9 6651a1c2e4b0a8f3d2c1b0aa --timeout 60
  akool-async wait 6651a1c2e4b0a8f3d2c1b0a9 --out images/    # and save the image"""
DOWNLOAD_EXAMPLES = """  akool-async download 6651a1c2e4b0a8f3d2c1b0a9 --out images/"""


def add_parsers(commands: Any) -> None:
    wait = subcommand(
        commands, "wait", help="wait for jobs by id (and save their images with --out)",
        description="Wait until each JOB_ID has finished and print its status and URL; with "
        "--out, save each finished image there as JOB_ID.png (a V result's four images as "
        "JOB_ID-1.png ... -4.png).",
        examples=WAIT_EXAMPLES,
    )  # fmt: skip
    wait.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    wait.add_argument("--timeout", type=float, default=900.0, metavar="SECONDS",
                      help="seconds to wait before giving up (the jobs go on)")  # fmt: skip
    wait.add_argument("--out", type=Path, default=None, metavar="DIR",
                      help="save finished images here")  # fmt: skip
    download = subcommand(
        commands, "download", help="save the images of finished jobs by id",
        description="Look up each JOB_ID once and save its image in --out as JOB_ID.png "
        "(results expire 7 days after they were made).",
        examples=DOWNLOAD_EXAMPLES,
    )  # fmt: skip
    download.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    download.add_argument("--out", type=Path, default=Path("."), metavar="DIR",
                          help="folder for the images")  # fmt: skip
    for parser in (wait, download):
        add_backend(parser)
    wait.set_defaults(run=run)
    download.set_defaults(run=run, timeout=None)


@attrs.define
class _Ends:
    failed: int = 0
    running: list[str] = attrs.Factory(list)


def run(args: argparse.Namespace) -> int:
    if not has_credentials():
        raise CLIError(
            f"{args.command} follows jobs on Akool: set AKOOL_API_KEY (jobs of the built-in "
            "emulator end with the command that made them)"
        )
    if args.timeout is not None and args.timeout <= 0:
        raise CLIError("--timeout must be positive")
    if args.out is not None:
        output_folder(args.out)
    return anyio.run(_follow_all, args, backend=args.backend)


async def _follow_all(args: argparse.Namespace) -> int:
    ends = _Ends()
    async with connect(quiet=args.quiet) as connection, anyio.create_task_group() as tasks:
        for job_id in dict.fromkeys(args.job_ids):
            tasks.start_soon(_follow, connection.client, job_id, args, ends)
    if ends.running:
        print(f"still running: akool-async wait {' '.join(ends.running)}", file=sys.stderr)
        return Exit.NOT_FINISHED
    return Exit.FAILED if ends.failed else Exit.OK


async def _follow(client: AkoolClient, job_id: str, args: argparse.Namespace,
                  ends: _Ends) -> None:  # fmt: skip
    try:
        # One look first: a job that has finished is answered at once (a wait would first
        # poll when a job of unknown age is likely done, seconds later).
        job = await client.info_by_model_id(job_id)
        if args.timeout is not None and not job.status.is_terminal:
            job = await client.wait(job_id, timeout=args.timeout)
    except JobTimeoutError:
        ends.running.append(job_id)
        return
    except JobFailedError:
        ends.failed += 1
        print(f"{job_id}: failed (Akool gives no reason)", file=sys.stderr)
        return
    except AuthenticationError:
        raise  # every other job would meet it too: one line from main
    except APIError as exc:
        ends.failed += 1
        print(f"{job_id}: {exc}", file=sys.stderr)
        return
    await _ended(client, job, args, ends)


async def _ended(client: AkoolClient, job: ImageJob, args: argparse.Namespace,
                 ends: _Ends) -> None:  # fmt: skip
    if not job.status.is_terminal:
        ends.running.append(job.id)
        print(f"{job.id}: {job.status.name.lower()}", file=sys.stderr)
        return
    if job.status != ImageStatus.COMPLETED or not job.url:
        ends.failed += 1
        print(f"{job.id}: {job.status.name.lower()}", file=sys.stderr)
        return
    if args.out is None:
        print(f"{job.id}  completed  {job.url}")
        return
    images = job.images  # a V result's four: JOB_ID-1.png ... JOB_ID-4.png
    for k, url in enumerate(images, 1):
        stem = job.id if len(images) == 1 else f"{job.id}-{k}"
        try:
            saved = await client.download(url, args.out / f"{stem}.png")
        except DownloadError as exc:
            ends.failed += 1
            print(f"{job.id}: {exc}", file=sys.stderr)
            return
        print(f"{saved.path}  {job.id}, {saved.size} bytes, sha256 {saved.sha256[:12]}")
