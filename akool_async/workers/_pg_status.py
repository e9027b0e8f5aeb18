"""What the queue shows of itself: progress across every worker, and the manifest.

``queue_status`` is one short transaction of aggregates. ``export_manifest`` streams the
whole manifest through a server-side cursor into a file, in one worker thread and one
pass (linear in its rows): one JSON line per image, as ``bulk``'s manifest, plus a line
for each item with no job (not started, refused, uncertain), so every item is accounted
for; ``host`` names the machine a file was saved on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .._defaults import WORKER_ALIVE_WITHIN
from .._models import ImageStatus
from ..bulk._states import ItemState
from ._pg_journal import PostgresJournal

# An item's place on the queue: its recorded state, else whether a worker holds it.
STATES = ("pending", "claimed", *(s.value for s in ItemState if s.value not in
                                  ("skipped", "budget", "invalid")))  # fmt: skip
_CREATES_WINDOW = 60.0


@attrs.frozen
class QueueStatus:
    """Counts of items by state, credits spent, the request rate of the workers alive
    (requests/s, from their heartbeats), creates and presses sent in the last minute, and
    the workers alive (a heartbeat within ``alive_within`` seconds) of those ever seen."""

    counts: Mapping[str, int]
    credits: float
    request_rate: float
    sends_last_minute: int
    workers_alive: int
    workers_seen: int

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def lines(self) -> list[str]:
        total = sum(self.counts.values())
        parts = ", ".join(f"{self.counts[s]} {s}" for s in STATES if self.counts.get(s))
        return [
            f"items: {total}" + (f" ({parts})" if parts else ""),
            f"credits spent: {self.credits:g}",
            f"request rate: {self.request_rate:.1f}/s (workers alive);"
            f" creates and presses in the last minute: {self.sends_last_minute}",
            f"workers alive: {self.workers_alive} (of {self.workers_seen} seen)",
        ]


async def queue_status(
    journal: PostgresJournal, *, alive_within: float = WORKER_ALIVE_WITHIN
) -> QueueStatus:
    def run(connection: Any) -> QueueStatus:
        with connection.transaction():
            now = journal.now(connection)
            counts = dict.fromkeys(STATES, 0)
            for state, count in connection.execute(
                "SELECT COALESCE(state, CASE WHEN lease_until > %s THEN 'claimed'"
                " ELSE 'pending' END), COUNT(*) FROM akool_items GROUP BY 1",
                (now,),
            ):
                counts[state] = int(count)
            credits = connection.execute(
                "SELECT COALESCE(SUM(credits), 0) FROM akool_jobs"
            ).fetchone()[0]
            since = now - _CREATES_WINDOW
            sends = connection.execute(
                "SELECT (SELECT COUNT(*) FROM akool_items WHERE intent_at > %s)"
                " + (SELECT COUNT(*) FROM akool_presses WHERE intent_at > %s)",
                (since, since),
            ).fetchone()[0]
            rate, alive, seen = connection.execute(
                "SELECT COALESCE(SUM(rate) FILTER (WHERE alive), 0), COUNT(*) FILTER"
                " (WHERE alive), COUNT(*) FROM (SELECT rate, stopped IS NULL AND heartbeat > %s"
                " AS alive FROM akool_workers) AS w",
                (now - alive_within,),
            ).fetchone()
        return QueueStatus(counts, float(credits), float(rate), int(sends), int(alive), int(seen))

    return await journal.database.run(run)


_ROWS = """
SELECT i.key, i.user_id, i.line, i.prompt, i.state, i.error, i.source,
    j.job_id, j.parent_id, j.button, j.status, j.credits, j.submitted, j.finished, j.error,
    j.url, j.path, j.sha256, j.size, j.near_expiry, j.host,
    m.idx, m.kind, m.url, m.parts_missing, m.path, m.sha256, m.size, m.near_expiry, m.error,
    m.host
FROM akool_items i LEFT JOIN akool_jobs j ON j.item_key = i.key
    LEFT JOIN akool_images m ON m.job_id = j.job_id
ORDER BY i.enqueued, i.source, i.line, i.key, j.seq,
    m.idx = 0, m.idx
"""


async def export_manifest(journal: PostgresJournal, path: Path) -> int:
    """Write the queue's manifest to ``path`` (atomically); the number of rows."""
    await journal.flush()
    return await journal.database.run(lambda connection: _export(connection, path))


def _export(connection: Any, path: Path) -> int:
    partial = path.with_name(f".{path.name}.part")
    rows = 0
    credited: set[str] = set()
    with (
        partial.open("w", encoding="utf-8") as file,
        connection.transaction(),
        connection.cursor(name="akool_manifest") as cursor,
    ):
        cursor.itersize = 2000
        cursor.execute(_ROWS)
        for row in cursor:
            record = manifest_record(row)
            job_id = record["job_id"]
            if job_id in credited:
                record["credits"] = None
            elif job_id is not None:
                credited.add(job_id)
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
            rows += 1
        file.flush()
        os.fsync(file.fileno())
    partial.replace(path)
    return rows


def manifest_record(row: tuple[Any, ...]) -> dict[str, Any]:
    """One manifest line from a row of ``_ROWS``: the image's (or, with no image listed,
    its job's; with no job, its item's) fields."""
    (key, user_id, line, prompt, state, item_error, source, job_id, parent_id, button,
     status, credits, submitted, finished, job_error, *rest) = row  # fmt: skip
    job_saved, image = rest[:6], rest[6:]
    index, kind, *image_saved = image
    url, path, sha256, size, near_expiry, host = job_saved if index is None else (
        image_saved[0], *image_saved[2:6], image_saved[7])  # fmt: skip
    error = (job_error if index is None else image_saved[6]) if job_id else item_error
    name = ImageStatus(status).name.lower() if status is not None else None
    ok = status == ImageStatus.COMPLETED and path is not None and error is None
    return {
        "id": user_id, "key": key, "source": source, "line": line, "prompt": prompt,
        "state": state or "pending", "job_id": job_id, "index": index, "kind": kind,
        "parent_id": parent_id, "button": button, "status": name, "ok": ok, "url": url,
        "path": path, "host": host, "sha256": sha256, "size": size, "credits": credits,
        "submitted": submitted, "finished": finished,
        "seconds": None if finished is None or submitted is None
        else round(finished - submitted, 3),
        "near_expiry": bool(near_expiry), "error": error,
        "parts_missing": bool(index is not None and image_saved[1]),
    }  # fmt: skip
