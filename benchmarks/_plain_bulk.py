"""The plain script ``bulk_vs_script.py`` holds ``akool-async bulk`` against: what a user
would write without the runner. Every line of a JSONL file is created, waited for and its
images downloaded to disk, ``CONCURRENCY`` prompts at a time, in one ``asyncio.gather``,
with the same client, rate and poll floor as the bulk run; no journal, no manifest.

    AKOOL_API_KEY=... AKOOL_BASE_URL=... python benchmarks/_plain_bulk.py PROMPTS OUT \
        CONCURRENCY RATE POLL_FLOOR
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from akool_async import AkoolClient, ImageStatus, PollPolicy


async def one(client: AkoolClient, gate: asyncio.Semaphore, line: dict[str, Any],
              out: Path) -> int:  # fmt: skip
    """Create, wait for each job, download its images: the images saved."""
    async with gate:
        jobs = await client.create_by_source_prompt(
            prompt=line["prompt"], batch_quantity=line.get("batch_quantity", 1)
        )
        folder = out / line["id"]
        saved = 0
        for job in jobs:
            done = await client.wait(job)
            if done.status == ImageStatus.COMPLETED:
                saved += len(await client.download_images(done, folder))
        return saved


async def main(lines: list[dict[str, Any]], out: Path, concurrency: int, rate: float,
               floor: float) -> None:  # fmt: skip
    policy = PollPolicy(min_interval=floor, max_interval=max(60.0, floor))
    gate = asyncio.Semaphore(concurrency)
    async with AkoolClient(rate_limit=rate, poll_policy=policy) as client:
        saved = await asyncio.gather(*(one(client, gate, line, out) for line in lines))
    print(f"{len(lines)} prompts, {sum(saved)} images")


if __name__ == "__main__":
    prompts, folder, concurrency, rate, floor = sys.argv[1:6]
    lines = [json.loads(text) for text in Path(prompts).read_text().splitlines() if text]
    asyncio.run(main(lines, Path(folder), int(concurrency), float(rate), float(floor)))
