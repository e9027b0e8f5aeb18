"""``akool-async generate PROMPT``: create a batch, wait for it, download the images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import anyio

from .._client import AkoolClient
from .._exceptions import AkoolError
from .._models import ImageJob, ImageStatus
from ._connect import connect


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "generate",
        help="generate images for one prompt and download them",
        description="Create a v4 batch for PROMPT, wait for it, and save the images in --out.",
    )
    parser.add_argument("prompt")
    parser.add_argument("--batch", type=int, default=1, help="images to generate, 1-4")
    parser.add_argument("--scale", default="1:1", help="1:1 3:2 4:3 16:9 2:3 3:4 9:16")
    parser.add_argument("--resolution", default="4k", help="1080p or 4k")
    parser.add_argument("--negative-prompt", default=None)
    parser.add_argument("--source-image", action="append", default=None, metavar="URL",
                        help="image-to-image from this URL")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("out"), help="folder for the images")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait in all")
    parser.add_argument("--poll-interval", type=float, default=None,
                        help="seconds between polls (default 3; less on the emulator)")  # fmt: skip
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        return anyio.run(_generate, args, backend=args.backend)
    except AkoolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


async def _generate(args: argparse.Namespace) -> int:
    async with connect() as connection:
        client = connection.client
        jobs = await client.create_by_source_prompt(
            prompt=args.prompt, batch_quantity=args.batch, scale=args.scale,
            resolution=args.resolution, negative_prompt=args.negative_prompt,
            source_images=args.source_image,
        )  # fmt: skip
        print(f"created {len(jobs)} job(s): {', '.join(job.id for job in jobs)}")
        with anyio.fail_after(args.timeout):
            interval = args.poll_interval or connection.poll_interval
            results = await _wait_all(client, jobs, interval)
        await anyio.Path(args.out).mkdir(parents=True, exist_ok=True)
        failed = 0
        for result in results:
            if result.status != ImageStatus.COMPLETED:
                failed += 1
                print(f"job {result.id} ended {result.status.name.lower()}", file=sys.stderr)
                continue
            saved = await client.download(result, args.out / f"{result.id}.png")
            print(f"{saved.path}  ({saved.size} bytes, sha256 {saved.sha256[:12]})")
    return 1 if failed else 0


async def _wait_all(
    client: AkoolClient, jobs: tuple[ImageJob, ...], interval: float
) -> list[ImageJob]:
    """Poll every pending job each ``interval`` until all are finished (a simple loop)."""
    results: dict[str, ImageJob] = {}
    while len(results) < len(jobs):
        await anyio.sleep(interval)
        for job in jobs:
            if job.id not in results:
                current = await client.info_by_model_id(job.id)
                if current.is_terminal:
                    results[job.id] = current
    return [results[job.id] for job in jobs]
