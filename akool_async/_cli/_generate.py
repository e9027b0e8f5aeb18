"""``akool-async generate PROMPT``: create a batch (and follow-ups), download each image as
it finishes, say where they are."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import anyio

from .._exceptions import AkoolError
from ._connect import connect


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "generate",
        help="generate images for one prompt and download them",
        description="Create a v4 batch for PROMPT, wait for it, and save the images in --out "
        "(<job id>.png; a V follow-up's four images as <job id>-1.png ... -4.png).",
    )
    parser.add_argument("prompt")
    parser.add_argument("--batch", type=int, default=1, help="images to generate, 1-4")
    parser.add_argument("--scale", default="1:1", help="1:1 3:2 4:3 16:9 2:3 3:4 9:16")
    parser.add_argument("--resolution", default="4k", help="1080p or 4k")
    parser.add_argument("--negative-prompt", default=None)
    parser.add_argument("--source-image", action="append", default=None, metavar="URL",
                        help="image-to-image from this URL")  # fmt: skip
    parser.add_argument("--follow-ups", default="", metavar="U1,V2",
                        help="buttons to press on each finished image")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("out"), help="folder for the images")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait per job")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        return anyio.run(_generate, args, backend=args.backend)
    except AkoolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


async def _generate(args: argparse.Namespace) -> int:
    follow_ups = [b.strip() for b in args.follow_ups.split(",") if b.strip()]
    failed = 0
    async with connect() as connection:
        client = connection.client
        generation = client.generate(
            prompt=args.prompt, batch_quantity=args.batch, scale=args.scale,
            resolution=args.resolution, negative_prompt=args.negative_prompt,
            source_images=args.source_image, follow_ups=follow_ups, job_timeout=args.timeout,
        )  # fmt: skip
        await anyio.Path(args.out).mkdir(parents=True, exist_ok=True)
        async with generation:
            async for outcome in generation:
                name = outcome.job_id or "create"
                if outcome.button is not None:
                    name = f"{name} ({outcome.button.value} of {outcome.parent_id})"
                if not outcome.ok or outcome.job is None:
                    failed += 1
                    print(f"{name}: {outcome.error}", file=sys.stderr)
                    continue
                images = outcome.images  # a V result's four (<id>-1.png ... -4.png)
                for k, url in enumerate(images, 1):
                    stem = outcome.job_id if len(images) == 1 else f"{outcome.job_id}-{k}"
                    saved = await client.download(url, args.out / f"{stem}.png")
                    print(f"{saved.path}  {name}, {saved.size} bytes, sha256 {saved.sha256[:12]}")
    return 1 if failed else 0
