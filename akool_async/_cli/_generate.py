"""``akool-async generate PROMPT``: create a batch (and follow-ups), download each image as
it finishes, say where they are."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import anyio

from .._exceptions import AuthenticationError, JobTimeoutError, TransportError, ValidationError
from .._models import Button
from .._requests import SourcePromptRequest, parse_buttons
from ._checks import output_folder
from ._connect import connect, has_credentials, require_emulator
from ._errors import CLIError, Exit
from ._parsing import add_backend, subcommand

EXAMPLES = """  akool-async generate "a red fox in snow" --batch 4 --scale 16:9 --out out/
  akool-async generate "a lighthouse at dusk" --follow-ups U1,V2 --timeout 120"""


def add_parser(commands: Any) -> None:
    parser = subcommand(
        commands, "generate",
        help="generate images for one prompt and download them",
        description="Create a v4 batch for PROMPT, wait for it, press --follow-ups on each "
        "image, and save every image in --out as JOB_ID.png (a V follow-up's four images as "
        "JOB_ID-1.png ... -4.png). Jobs still running at "
        "--timeout are printed with the 'akool-async wait' command that picks them up.",
        examples=EXAMPLES,
    )  # fmt: skip
    parser.add_argument("prompt")
    parser.add_argument("--batch", type=int, default=1, metavar="N",
                        help="images to generate, 1-4")  # fmt: skip
    parser.add_argument("--scale", default="1:1", help="1:1 3:2 4:3 16:9 2:3 3:4 9:16")
    parser.add_argument("--resolution", default="4k", help="1080p or 4k")
    parser.add_argument("--negative-prompt", default=None, help="what to keep out of the image")
    parser.add_argument("--source-image", action="append", default=None, metavar="URL",
                        help="image-to-image from this URL (repeat for several)")  # fmt: skip
    parser.add_argument("--follow-ups", default="", metavar="U1,V2",
                        help="buttons to press on each finished image")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("out"), metavar="DIR",
                        help="folder for the images")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=900.0, metavar="SECONDS",
                        help="seconds to wait per job")  # fmt: skip
    add_backend(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    names = [b.strip() for b in args.follow_ups.replace(" ", ",").split(",") if b.strip()]
    try:  # the client would refuse these too, but only after connecting: say it now
        SourcePromptRequest(
            prompt=args.prompt, batch_quantity=args.batch, scale=args.scale,
            resolution=args.resolution, negative_prompt=args.negative_prompt,
            source_images=args.source_image,
        )  # fmt: skip
        follow_ups = parse_buttons(names, field="--follow-ups")
    except ValidationError as exc:
        raise CLIError(str(exc)) from None
    if args.timeout <= 0:
        raise CLIError("--timeout must be positive")
    if not has_credentials():
        require_emulator()
    output_folder(args.out)
    return anyio.run(_generate, args, follow_ups, backend=args.backend)


async def _generate(args: argparse.Namespace, follow_ups: tuple[Button, ...]) -> int:
    failed = 0
    running: list[str] = []
    async with connect(quiet=args.quiet) as connection:
        client = connection.client
        generation = client.generate(
            prompt=args.prompt, batch_quantity=args.batch, scale=args.scale,
            resolution=args.resolution, negative_prompt=args.negative_prompt,
            source_images=args.source_image, follow_ups=follow_ups, job_timeout=args.timeout,
        )  # fmt: skip
        async with generation:
            async for outcome in generation:
                name = outcome.job_id or "create"
                if outcome.button is not None:
                    name = f"{name} ({outcome.button.value} of {outcome.parent_id})"
                if isinstance(outcome.error, AuthenticationError | TransportError):
                    raise outcome.error  # one line from main, with what to check
                if isinstance(outcome.error, JobTimeoutError) and outcome.job_id:
                    running.append(outcome.job_id)
                    continue
                if not outcome.ok or outcome.job is None:
                    failed += 1
                    print(f"{name}: {outcome.error}", file=sys.stderr)
                    continue
                images = outcome.images  # a V result's four (<id>-1.png ... -4.png)
                for k, url in enumerate(images, 1):
                    stem = outcome.job_id if len(images) == 1 else f"{outcome.job_id}-{k}"
                    saved = await client.download(url, args.out / f"{stem}.png")
                    print(f"{saved.path}  {name}, {saved.size} bytes, sha256 {saved.sha256[:12]}")
    if running:
        if connection.emulated:
            print(f"still running after --timeout: {' '.join(running)}", file=sys.stderr)
        else:
            print(f"still running: akool-async wait {' '.join(running)} --out {args.out}",
                  file=sys.stderr)  # fmt: skip
        return Exit.NOT_FINISHED
    return Exit.FAILED if failed else Exit.OK
