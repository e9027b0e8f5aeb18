"""The queue on top of the journal: prompts files put on it, the next item for a worker,
and the workers' heartbeats.

An item on the queue is known by its key and fingerprint (``_keys``): putting
the same file on the queue again adds nothing, a changed line is a new item, a moved line
is the same item. ``claim_next`` hands each worker the oldest item nobody holds that is
still to do: never started, or created and not followed to its end (a worker that died
while following it); an item with an intent and no ids is never handed out (the reaper
makes it uncertain).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterable
from pathlib import Path
from typing import Any

import attrs

from .. import _journal_protocol as jp
from .._converter import unstructure
from .._models import Button
from ..bulk._input import BulkItem, InputProblem, read_items
from ..bulk._states import ItemState
from ._keys import QueueKeys
from ._pg_journal import PostgresJournal, check_lease

_CHUNK = 500
_COLUMNS = ("key", "fingerprint", "line", "user_id", "prompt", "request", "follow_ups",
            "source", "enqueued")  # fmt: skip


@attrs.frozen
class EnqueueReport:
    """What putting a file on the queue did: items added, items it already held, and the
    lines that are not valid requests (nothing of them was put on the queue).
    ``changed``: of those added, the ids the queue held with another request (a changed
    line: the new request is a new item, the old one stays on the queue). ``retried``: of
    those it held, the refused ones put back to be claimed again (``retry_refused``)."""

    added: int
    already: int
    invalid: tuple[InputProblem, ...]
    changed: int = 0
    retried: int = 0


@attrs.frozen
class QueuedItem:
    """An item a worker claimed: its claim, where it came from, the request to send (as
    the API receives it) and the buttons to press; ``state`` None if never started."""

    claim: jp.Claim
    line: int | None
    user_id: str | None
    request: dict[str, Any] | None
    follow_ups: tuple[Button, ...]
    state: ItemState | None


class PostgresQueue(PostgresJournal):
    """The journal with the queue's own operations (``async with PostgresQueue(url)``)."""

    async def enqueue(self, items: AsyncIterable[BulkItem | InputProblem], *,
                      source: str = "", retry_refused: bool = False) -> EnqueueReport:  # fmt: skip
        """Put ``items`` (``read_items`` of a file) on the queue, once each.

        ``retry_refused``: those of them the queue holds as refused (provably never sent: a
        shared budget out of reach, a request the API turned away) are put back, to be
        claimed again; workers never retry a refusal by themselves (one that would repeat
        would loop). Not one being worked on, nor any other state."""
        keys = QueueKeys()
        added = already = changed = retried = 0
        invalid: list[InputProblem] = []
        chunk: list[tuple[Any, ...]] = []
        async for entry in items:
            if isinstance(entry, InputProblem):
                invalid.append(entry)
                continue
            key, digest = keys.key(entry)
            request = unstructure(entry.request)
            chunk.append((key, digest, entry.line, entry.user_id, request.get("prompt"),
                          json.dumps(request, ensure_ascii=False),
                          ",".join(b.value for b in entry.follow_ups), source))  # fmt: skip
            if len(chunk) == _CHUNK:
                new, other, back = await self._insert(chunk, retry_refused=retry_refused)
                added, already, changed = added + new, already + len(chunk) - new, changed + other
                retried, chunk = retried + back, []
        if chunk:
            new, other, back = await self._insert(chunk, retry_refused=retry_refused)
            added, already, changed = added + new, already + len(chunk) - new, changed + other
            retried += back
        return EnqueueReport(added, already, tuple(invalid), changed, retried)

    async def enqueue_file(self, path: Path, default_follow_ups: tuple[Button, ...] = (), *,
                           retry_refused: bool = False) -> EnqueueReport:  # fmt: skip
        return await self.enqueue(read_items(path, default_follow_ups), source=path.name,
                                  retry_refused=retry_refused)  # fmt: skip

    async def _insert(
        self, rows: list[tuple[Any, ...]], *, retry_refused: bool = False
    ) -> tuple[int, int, int]:
        """Insert what is new of ``rows``: (items added, of them ids held before, refused
        items put back)."""
        # A refused item nobody holds goes back to pending (state NULL). ``xmax = 0`` tells
        # a row inserted from one updated (PostgreSQL's own marker; not documented as API).
        conflict = (
            "DO UPDATE SET state = NULL, error = NULL, intent_at = NULL,"
            " updated = EXCLUDED.enqueued"
            f" WHERE akool_items.state = '{ItemState.REFUSED.value}' AND"
            " (akool_items.lease_until IS NULL OR akool_items.lease_until < EXCLUDED.enqueued)"
            if retry_refused
            else "DO NOTHING"
        )

        # A key once per statement (a line repeated with its id has the same key): an
        # upsert may not touch one row twice. The repeat counts as already queued.
        firsts: dict[Any, tuple[Any, ...]] = {}
        for row in rows:
            firsts.setdefault(row[0], row)
        rows = list(firsts.values())

        def run(connection: Any) -> tuple[int, int, int]:
            now = self.now(connection)
            marks = ", ".join(["(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"] * len(rows))
            params = [value for row in rows for value in (*row, now)]
            with connection.transaction():
                rows_back = connection.execute(
                    f"INSERT INTO akool_items ({', '.join(_COLUMNS)}) VALUES {marks}"  # noqa: S608
                    f" ON CONFLICT (key) {conflict} RETURNING key, user_id, xmax = 0",
                    params,
                ).fetchall()
                added = [(key, user_id) for key, user_id, inserted in rows_back if inserted]
                back = len(rows_back) - len(added)
                ids = [user_id for _, user_id in added if user_id is not None]
                changed = 0
                if ids:
                    changed = connection.execute(
                        "SELECT COUNT(DISTINCT user_id) FROM akool_items WHERE user_id = ANY(%s)"
                        " AND NOT key = ANY(%s)",
                        (ids, [key for key, _ in added]),
                    ).fetchone()[0]
            return len(added), int(changed), back

        return await self.database.run(run)

    async def claim_next(self, *, lease: float) -> QueuedItem | None:
        """Claim the oldest item still to do that nobody holds; None when there is none."""
        check_lease(lease)

        def run(connection: Any) -> QueuedItem | None:
            with connection.transaction():
                now = self.now(connection)
                row = connection.execute(
                    "WITH next AS (SELECT key FROM akool_items WHERE request IS NOT NULL"
                    " AND (state IS NULL OR state = %s) AND (lease_until IS NULL OR"
                    " lease_until < %s)"
                    " ORDER BY enqueued, line, key LIMIT 1 FOR UPDATE SKIP LOCKED)"
                    " UPDATE akool_items SET fence = akool_items.fence + 1, lease_until = %s,"
                    " holder = %s FROM next WHERE akool_items.key = next.key RETURNING"
                    " akool_items.key, fence, line, user_id, request, follow_ups, state",
                    (ItemState.SUBMITTED.value, now, now + lease, self.worker_id),
                ).fetchone()
            if row is None:
                return None
            key, fence, line, user_id, request, follow_ups, state = row
            return QueuedItem(
                jp.Claim(key, int(fence), now + lease), line, user_id,
                None if request is None else json.loads(request),
                tuple(Button(b) for b in (follow_ups or "").split(",") if b),
                None if state is None else ItemState(state),
            )  # fmt: skip

        return await self.database.run(run)

    async def give_up(self, claim: jp.Claim, error: str) -> None:
        """Release an item whose driver failed, recording why: failed (not handed out
        again: a driver's failure would repeat), or uncertain if its create may have
        left; an item already settled keeps its state. A stale claim changes nothing."""
        await self.flush()

        def run(connection: Any) -> None:
            connection.execute(
                "UPDATE akool_items SET state = CASE WHEN state = %s THEN %s"
                " WHEN state IS NULL OR state IN (%s, %s) THEN %s ELSE state END,"
                " error = %s, updated = %s, lease_until = NULL, holder = NULL"
                " WHERE key = %s AND fence = %s",
                (ItemState.SUBMITTING.value, ItemState.UNCERTAIN.value,
                 ItemState.REFUSED.value, ItemState.SUBMITTED.value, ItemState.FAILED.value,
                 error, self.now(connection), claim.key, claim.fence),
            )  # fmt: skip

        await self.database.run(run)

    # -- workers ------------------------------------------------------------------------

    async def register_worker(self) -> None:
        """Record this worker (``worker_id``, host, process) as alive."""

        def run(connection: Any) -> None:
            now = self.now(connection)
            connection.execute(
                "INSERT INTO akool_workers (worker_id, host, pid, started, heartbeat)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (worker_id) DO UPDATE SET"
                " heartbeat = excluded.heartbeat, stopped = NULL",
                (self.worker_id, self.host, os.getpid(), now, now),
            )

        await self.database.run(run)

    async def heartbeat(self, requests: int) -> None:
        """This worker is alive and has sent ``requests`` requests in all so far; its rate
        is what it sent since its last heartbeat, per second."""

        def run(connection: Any) -> None:
            now = self.now(connection)
            connection.execute(
                "UPDATE akool_workers SET rate = CASE WHEN %s > heartbeat"
                " THEN GREATEST(%s - requests, 0) / (%s - heartbeat) ELSE rate END,"
                " requests = %s, heartbeat = %s WHERE worker_id = %s",
                (now, requests, now, requests, now, self.worker_id),
            )

        await self.database.run(run)

    async def stop_worker(self) -> None:
        def run(connection: Any) -> None:
            connection.execute(
                "UPDATE akool_workers SET stopped = %s, rate = 0 WHERE worker_id = %s",
                (self.now(connection), self.worker_id),
            )

        await self.database.run(run)
