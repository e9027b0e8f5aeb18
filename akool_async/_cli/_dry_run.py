"""``akool-async bulk --dry-run``: read and check the whole input, say what a run would
send and cost, list the lines it would refuse; send nothing, write nothing."""

from __future__ import annotations

import argparse
from pathlib import Path

import attrs

from .._models import Button
from ..bulk import BulkItem, read_items
from ._errors import CLIError, Exit

# Akool's documented prices: 1 credit per v4 image; the button examples show 2.
IMAGE_PRICE, BUTTON_PRICE = 1.0, 2.0


def add_pricing(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image-price", type=float, default=IMAGE_PRICE, metavar="CREDITS",
                        help="credits per created image, for --dry-run's estimate "
                        "(Akool documents 1)")  # fmt: skip
    parser.add_argument("--button-price", type=float, default=BUTTON_PRICE, metavar="CREDITS",
                        help="credits per follow-up (button) image, for --dry-run")  # fmt: skip


@attrs.define
class Estimate:
    requests: int = 0
    created: int = 0  # images the creates make
    follow_ups: int = 0  # images the button presses make
    refused: list[tuple[int, str]] = attrs.Factory(list)

    def add(self, item: BulkItem) -> None:
        images = item.request.batch_quantity
        self.requests += 1
        self.created += images
        self.follow_ups += images * len(item.follow_ups)

    def credits(self, image_price: float, button_price: float) -> float:
        return self.created * image_price + self.follow_ups * button_price

    def lines(self, image_price: float, button_price: float) -> list[str]:
        images = self.created + self.follow_ups
        return [
            *(f"line {line}: refused: {reason}" for line, reason in self.refused),
            f"would send {self.requests} requests for {images} images "
            f"({self.created} created, {self.follow_ups} follow-ups)",
            f"expected credits: {self.credits(image_price, button_price):g} "
            f"({image_price:g} per image, {button_price:g} per follow-up; "
            "--image-price/--button-price)",
            f"refused lines: {len(self.refused)}",
            "dry run: nothing was sent",
        ]


async def estimate(path: Path, follow_ups: tuple[Button, ...]) -> Estimate:
    result = Estimate()
    seen: set[str] = set()
    async for entry in read_items(path, follow_ups):
        if isinstance(entry, BulkItem) and entry.key in seen:
            result.refused.append((entry.line, "an id already used earlier in this input"))
        elif isinstance(entry, BulkItem):
            seen.add(entry.key)
            result.add(entry)
        else:
            result.refused.append((entry.line, entry.reason))
    return result


async def dry_run(args: argparse.Namespace, follow_ups: tuple[Button, ...]) -> int:
    if args.image_price < 0 or args.button_price < 0:
        raise CLIError("--image-price and --button-price must be zero or more")
    found = await estimate(args.prompts, follow_ups)
    for line in found.lines(args.image_price, args.button_price):
        print(line)
    return Exit.FAILED if found.refused else Exit.OK
