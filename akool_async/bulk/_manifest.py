"""The manifest (one JSON line per image, from the journal, so it covers every run of a
resumed job) and the end-of-run summary.

Each row names its ``job_id`` and ``index``: k for image k of the job (``images[k-1]``,
what ``U<k>``/``V<k>`` act on: a grid job has four rows, 1-4), 0 for a job's 2x2 grid
saved on request (``kind`` "grid"), null for a job with no image (failed). A grid whose
parts never came has one row, its grid (index 0), with ``parts_missing`` true. A job's
``credits`` are on its first row (image 1, or its only row), null on the others."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import attrs

from .._models import ImageStatus
from ._journal import ImageRecord, Journal
from ._states import ItemState


@attrs.frozen
class Summary:
    images_done: int
    images_failed: int
    failures: dict[str, int]  # reason -> images
    items_done: int
    items_failed: int
    uncertain: int
    invalid: int
    credits: float
    seconds: float
    images_pending: int = 0  # still queued or running when the run stopped
    items_pending: int = 0

    def lines(self) -> list[str]:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.failures.items()))
        pending = [
            f"not finished: {self.images_pending} images ({self.items_pending} requests):"
            " still running on the server; resume to collect them"
        ]
        return [
            f"done: {self.images_done} images ({self.items_done} requests)",
            f"failed: {self.images_failed} images ({self.items_failed} requests)"
            + (f": {reasons}" if reasons else ""),
            *(pending if self.images_pending or self.items_pending else []),
            f"uncertain: {self.uncertain} requests (may exist on the server; not resubmitted)",
            f"invalid input lines: {self.invalid}",
            f"credits spent: {self.credits:g}",
            f"wall time: {self.seconds:.1f} s",
        ]


@attrs.define
class ImageCounts:
    done: int = 0
    failed: int = 0
    pending: int = 0
    reasons: Counter[str] = attrs.Factory(Counter)


def is_pending(record: dict[str, Any]) -> bool:
    """An image whose job was still queued or running, or not yet saved, when the run
    stopped: not failed (every failure has its error recorded)."""
    return not record["ok"] and not record["error"]


async def write_manifest(journal: Journal, out_dir: Path, path: Path) -> ImageCounts:
    """Rewrite the manifest atomically; count the images done, failed (why) and pending."""
    partial = path.with_name(f".{path.name}.part")
    counts = ImageCounts()
    credited: set[str] = set()  # a job's credits on its first row only: sums count it once
    async with await anyio.open_file(partial, "w", encoding="utf-8") as file:
        async for row in journal.manifest_rows():
            record = _record(row, out_dir)
            if record["job_id"] in credited:
                record["credits"] = None
            elif record["job_id"] is not None:
                credited.add(record["job_id"])
            if record["ok"]:
                counts.done += 1
            elif is_pending(record):
                counts.pending += 1
            else:
                counts.failed += 1
                counts.reasons[_reason(record)] += 1
            await file.write(json.dumps(record, ensure_ascii=False) + "\n")
        await file.flush()
        await anyio.to_thread.run_sync(os.fsync, file.wrapped.fileno())
    await anyio.Path(partial).replace(path)
    return counts


def _record(row: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    status = row["status"]
    name = ImageStatus(status).name.lower() if status is not None else None
    image: ImageRecord | None = row["image"]
    saved = row if image is None else attrs.asdict(image)
    error = saved["error"]
    ok = status == ImageStatus.COMPLETED and saved["path"] is not None and error is None
    path = saved["path"]
    return {
        "id": row["id"], "line": row["line"], "prompt": row["prompt"], "job_id": row["job_id"],
        "index": None if image is None else image.index,
        "kind": None if image is None else image.kind,
        "parent_id": row["parent_id"], "button": row["button"], "status": name, "ok": ok,
        "url": saved["url"], "path": os.path.relpath(path, out_dir) if path else None,
        "sha256": saved["sha256"], "size": saved["size"], "credits": row["credits"],
        "submitted": row["submitted"], "finished": row["finished"],
        "seconds": None if row["finished"] is None or row["submitted"] is None
        else round(row["finished"] - row["submitted"], 3),
        "near_expiry": saved["near_expiry"], "error": error,
        "parts_missing": image is not None and image.parts_missing,
    }  # fmt: skip


def _reason(record: dict[str, Any]) -> str:
    if record["error"]:
        return str(record["error"]).split(":")[0]
    return record["status"] or "unknown"


async def summarise(journal: Journal, images: ImageCounts, *, invalid: int,
                    seconds: float) -> Summary:  # fmt: skip
    states = await journal.count_states()
    return Summary(
        images_done=images.done, images_failed=images.failed, failures=dict(images.reasons),
        items_done=states.get(ItemState.DONE, 0),
        items_failed=states.get(ItemState.FAILED, 0) + states.get(ItemState.REFUSED, 0),
        uncertain=states.get(ItemState.UNCERTAIN, 0), invalid=invalid,
        credits=await journal.credits_spent(), seconds=seconds,
        images_pending=images.pending, items_pending=states.get(ItemState.SUBMITTED, 0),
    )  # fmt: skip
