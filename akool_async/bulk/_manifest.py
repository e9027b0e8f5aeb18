"""The manifest (one JSON line per image, from the journal, so it covers every run of a
resumed job) and the end-of-run summary.

Each row names its ``job_id`` and ``index``: k for image k of the job (``images[k-1]``,
what ``U<k>``/``V<k>`` act on: a grid job has four rows, 1-4), 0 for a job's 2x2 grid
saved on request (``kind`` "grid"), null for a job with no image (failed). A grid whose
parts never came has one row, its grid, with ``parts_missing`` true."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import attrs

from .._models import ImageStatus
from ._journal import DONE, FAILED, UNCERTAIN, ImageRecord, Journal


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

    def lines(self) -> list[str]:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.failures.items()))
        return [
            f"done: {self.images_done} images ({self.items_done} requests)",
            f"failed: {self.images_failed} images ({self.items_failed} requests)"
            + (f": {reasons}" if reasons else ""),
            f"uncertain: {self.uncertain} requests (may exist on the server; not resubmitted)",
            f"invalid input lines: {self.invalid}",
            f"credits spent: {self.credits:g}",
            f"wall time: {self.seconds:.1f} s",
        ]


async def write_manifest(
    journal: Journal, out_dir: Path, path: Path
) -> tuple[int, int, Counter[str]]:
    """Rewrite the manifest atomically; (images done, images failed, failure reasons)."""
    partial = path.with_name(f".{path.name}.part")
    done = failed = 0
    reasons: Counter[str] = Counter()
    async with await anyio.open_file(partial, "w", encoding="utf-8") as file:
        async for row in journal.manifest_rows():
            record = _record(row, out_dir)
            if record["ok"]:
                done += 1
            else:
                failed += 1
                reasons[_reason(record)] += 1
            await file.write(json.dumps(record, ensure_ascii=False) + "\n")
        await file.flush()
        await anyio.to_thread.run_sync(os.fsync, file.wrapped.fileno())
    await anyio.Path(partial).replace(path)
    return done, failed, reasons


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


async def summarise(journal: Journal, images: tuple[int, int, Counter[str]], *, invalid: int,
                    seconds: float) -> Summary:  # fmt: skip
    states = await journal.count_states()
    done, failed, reasons = images
    return Summary(
        images_done=done, images_failed=failed, failures=dict(reasons),
        items_done=states.get(DONE, 0), items_failed=states.get(FAILED, 0),
        uncertain=states.get(UNCERTAIN, 0), invalid=invalid,
        credits=await journal.credits_spent(), seconds=seconds,
    )  # fmt: skip
