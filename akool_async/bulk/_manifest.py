"""The manifest (one JSON line per image, from the journal, so it covers every run of a
resumed job) and the end-of-run summary.

Each row names its ``job_id`` and ``index``: k for image k of the job (``images[k-1]``,
what ``U<k>``/``V<k>`` act on: a grid job has four rows, 1-4), 0 for a job's 2x2 grid
saved on request (``kind`` "grid"), null for a job with no image (failed). A grid whose
parts never came has one row, its grid (index 0), with ``parts_missing`` true. A job's
``credits`` are on its first row (image 1, or its only row), null on the others.

Every input line has a row: a request with no job one ``kind`` "request" row (why, and
when its create left), a line that made no request (invalid, held back by the budget) one
``kind`` "line" row (``line_notes`` in the journal, rewritten by each run)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import attrs

from .._models import ImageStatus
from ._journal import Journal
from ._rows import IMAGE_COLUMNS_QUALIFIED, IMAGE_FIELDS, JOB_COLUMNS_QUALIFIED, JOB_FIELDS
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
    new: int = 0  # resuming: lines the journal had no item for (created now)
    changed: int = 0  # resuming: lines whose request changed under their id (new items)
    gone: tuple[str, ...] = ()  # journalled items no line of this input is (key, line)
    retried: int = 0  # --retry-failed: failed requests sent again

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
            *self._identities(),
            f"credits spent: {self.credits:g}",
            f"wall time: {self.seconds:.1f} s",
        ]

    def _identities(self) -> list[str]:
        lines = []
        if self.new or self.changed:
            lines.append(f"new in the input: {self.new} requests, changed: {self.changed}"
                         " (changed lines are new requests; the old ones are kept)")  # fmt: skip
        if self.retried:
            lines.append(f"retried: {self.retried} failed requests sent again (the failed"
                         " attempts stay in the manifest as retried)")  # fmt: skip
        if self.gone:
            shown = ", ".join(self.gone[:10]) + (", ..." if len(self.gone) > 10 else "")
            lines.append(f"no longer in the input: {len(self.gone)} requests ({shown})")
        return lines


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


_ROWS = (
    f"SELECT items.user_id, items.line, items.prompt, items.state, {JOB_COLUMNS_QUALIFIED},"  # noqa: S608
    f" {IMAGE_COLUMNS_QUALIFIED}"
    " FROM jobs JOIN items ON items.key = jobs.item_key"
    " LEFT JOIN images ON images.job_id = jobs.job_id"
    " ORDER BY items.line, jobs.submitted, jobs.position, images.idx = 0, images.idx"
)
# Requests with no job to show: uncertain, refused, failed before a job existed.
_REQUESTS = (
    "SELECT user_id, line, prompt, state, error, sent, key FROM items"
    " WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.item_key = items.key) ORDER BY line"
)

# Input lines that made no item (a journal from before line notes has no such table).
_HAS_LINE_NOTES = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'line_notes'"
_LINE_NOTES = "SELECT line, state, reason FROM line_notes ORDER BY line"


async def write_manifest(journal: Journal, out_dir: Path, path: Path) -> ImageCounts:
    """Rewrite the manifest atomically, in one pass over one query on a thread of its own
    (linear in its rows: no paging, no hop back to the event loop per row); count the
    images done, failed (why) and pending."""
    await journal.flush()
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")  # one per process
    return await anyio.to_thread.run_sync(_write_all, journal.path, out_dir, partial, path)


def _write_all(journal: Path, out_dir: Path, partial: Path, path: Path) -> ImageCounts:
    counts = ImageCounts()
    credited: set[str] = set()  # a job's credits on its first row only: sums count it once
    width = len(JOB_FIELDS)
    # A reader of its own (the writer goes on), in one read transaction: another process
    # recording an item's first job between two queries would leave it out of both.
    connection = sqlite3.connect(journal, isolation_level=None)
    try:
        connection.execute("BEGIN")
        with partial.open("w", encoding="utf-8") as file:
            relative = _Relative(out_dir)
            for user_id, line, prompt, state, *columns in connection.execute(_ROWS):
                job = dict(zip(JOB_FIELDS, columns[:width], strict=True))
                image = None
                if columns[width] is not None:
                    image = dict(zip(IMAGE_FIELDS, columns[width:], strict=True))
                row = {"id": user_id, "line": line, "prompt": prompt, **job}
                record = _record(row, image, relative)
                record["state"] = state
                if record["job_id"] in credited:
                    record["credits"] = None
                elif record["job_id"] is not None:
                    credited.add(record["job_id"])
                if state != ItemState.RETRIED:  # an attempt sent again: a record only
                    _count(counts, record)
                file.write(json.dumps(record, ensure_ascii=False) + "\n")
            for request in connection.execute(_REQUESTS):
                file.write(json.dumps(_request(request), ensure_ascii=False) + "\n")
            if connection.execute(_HAS_LINE_NOTES).fetchone():
                for line, state, reason in connection.execute(_LINE_NOTES):
                    file.write(json.dumps(_line(line, state, reason), ensure_ascii=False) + "\n")
            file.flush()
            os.fsync(file.fileno())
    finally:
        connection.close()
    partial.replace(path)
    return counts


def _line(line: int, state: str, reason: str) -> dict[str, Any]:
    """An input line that made no item: invalid, or held back by the budget."""
    return {"id": None, "line": line, "prompt": None, "kind": "line", "key": None,
            "state": state, "job_id": None, "ok": False, "submitted": None,
            "error": reason}  # fmt: skip


def _request(row: tuple[Any, ...]) -> dict[str, Any]:
    """A request with no job: why (``state``, ``error``) and when its create left
    (``submitted``: None if it never did)."""
    user_id, line, prompt, state, error, sent, key = row
    return {
        "id": user_id, "line": line, "prompt": prompt, "kind": "request", "key": key,
        "state": state, "job_id": None, "ok": False, "submitted": sent,
        "error": error or f"the request is {state}",
    }  # fmt: skip


def _count(counts: ImageCounts, record: dict[str, Any]) -> None:
    if record["ok"]:
        counts.done += 1
    elif is_pending(record):
        counts.pending += 1
    else:
        counts.failed += 1
        counts.reasons[_reason(record)] += 1


# A job's status as the manifest names it (a status outside the enum is refused, as ever).
_STATUS_NAMES = {status.value: status.name.lower() for status in ImageStatus}


class _Relative:
    """Paths as the manifest gives them: relative to the output folder (a journalled path
    is under it: its prefix is cut; any other goes through ``os.path.relpath``)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir, self._prefix = out_dir, os.path.join(out_dir, "")

    def __call__(self, path: str) -> str:
        if path.startswith(self._prefix) and os.path.isabs(path):
            return os.path.normpath(path[len(self._prefix) :])
        return os.path.relpath(path, self.out_dir)


def _record(row: dict[str, Any], image: dict[str, Any] | None,
            relative: _Relative) -> dict[str, Any]:  # fmt: skip
    """A row of the manifest: ``row`` a job's columns (and its item's), ``image`` one
    image's (None: a job with no image listed)."""
    status = row["status"]
    name = None if status is None else _STATUS_NAMES.get(status) or ImageStatus(status).name.lower()
    saved = row if image is None else image
    error = saved["error"]
    ok = status == ImageStatus.COMPLETED and saved["path"] is not None and error is None
    path = saved["path"]
    return {
        "id": row["id"], "line": row["line"], "prompt": row["prompt"], "job_id": row["job_id"],
        "index": None if image is None else image["index"],
        "kind": None if image is None else image["kind"],
        "parent_id": row["parent_id"], "button": row["button"], "status": name, "ok": ok,
        "url": saved["url"], "path": relative(path) if path else None,
        "sha256": saved["sha256"], "size": saved["size"], "credits": row["credits"],
        "submitted": row["submitted"], "finished": row["finished"],
        "seconds": None if row["finished"] is None or row["submitted"] is None
        else round(row["finished"] - row["submitted"], 3),
        "near_expiry": bool(saved["near_expiry"]), "error": error,
        "parts_missing": image is not None and bool(image["parts_missing"]),
    }  # fmt: skip


def _reason(record: dict[str, Any]) -> str:
    if record["error"]:
        return str(record["error"]).split(":")[0]
    return record["status"] or "unknown"


async def summarise(journal: Journal, images: ImageCounts, *, invalid: int, seconds: float,
                    new: int = 0, changed: int = 0, retried: int = 0,
                    gone: tuple[str, ...] = ()) -> Summary:  # fmt: skip
    states = await journal.count_states()
    return Summary(
        images_done=images.done, images_failed=images.failed, failures=dict(images.reasons),
        items_done=states.get(ItemState.DONE, 0),
        items_failed=states.get(ItemState.FAILED, 0) + states.get(ItemState.REFUSED, 0),
        uncertain=states.get(ItemState.UNCERTAIN, 0), invalid=invalid,
        credits=await journal.credits_spent(), seconds=seconds,
        images_pending=images.pending, items_pending=states.get(ItemState.SUBMITTED, 0),
        new=new, changed=changed, gone=gone, retried=retried,
    )  # fmt: skip
