"""The PostgreSQL queue and journal: ``FollowJournal`` for many workers on many machines.

Semantics (the protocol's, see ``_journal_protocol``):

- ``claim`` locks the item's row (``FOR UPDATE SKIP LOCKED``: a row another transaction
  holds is not waited for), refuses it while another holder's lease runs, else sets
  ``fence = fence + 1``, the lease and the holder. Taking over an item left in
  ``submitting`` (its intent recorded, no ids) makes it *uncertain*: its create may have
  left, so it is never pending again.
- ``write`` is group-committed by one writer task: the writes that arrived while the last
  commit ran go in one transaction. Each write's claim is checked first (``SELECT ... WHERE
  key AND fence FOR UPDATE``, which also holds the row until the commit); one whose fence
  is stale writes nothing and its caller gets ``ClaimLostError``; so does an intent whose
  lease ran out (nothing may be sent under it). A write holding a durable entry (an
  intent, a create's ids) returns only once committed.
- ``reap`` gives up the expired claims of workers that died: back to pending, or to
  uncertain when the item was left in ``submitting``; each gets a new fence, so a late
  write of the old holder fails.

Lease times are wall-clock seconds of the database server (one clock for every machine),
or of ``clock`` when one is given (tests).
"""

from __future__ import annotations

import functools
import json
import socket
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Self

import anyio
import anyio.abc
import attrs

from .. import _journal_protocol as jp
from .._converter import structure
from .._defaults import QUEUE_CONNECTIONS
from .._exceptions import ClaimLostError, ValidationError
from .._models import Button, ImageJob, ImageStatus
from ..bulk._states import ItemState
from ._pg_database import Database, QueueError
from ._pg_entries import statements
from ._pg_schema import check_schema, migrate

_UNCERTAIN_TAKEOVER = (
    "the worker holding it stopped after recording its create's intent:"
    " the create may have reached the server"
)
# Taking over (a claim or the reaper): an intent without ids becomes uncertain.
_LEFT = f"akool_items.state = '{ItemState.SUBMITTING.value}'"
_TAKE_OVER = (
    f"state = CASE WHEN {_LEFT} THEN '{ItemState.UNCERTAIN.value}' ELSE akool_items.state END,"
    f" error = CASE WHEN {_LEFT} THEN %s ELSE akool_items.error END"
)


@attrs.define
class _Write:
    claim: jp.Claim
    entries: Sequence[jp.Entry]
    done: anyio.Event | None
    lost: bool = False
    expired: bool = False
    error: BaseException | None = None


@attrs.frozen
class Reaped:
    """What one ``reap`` did: claims given back to pending, and items made uncertain."""

    pending: int
    uncertain: tuple[str, ...]


class PostgresJournal:
    """``async with PostgresJournal(url) as journal``: the schema is brought up to date on
    entering (``create=False``: only checked, for a reader that must not make a queue
    where there was none), the writer runs until leaving (which commits what was
    written)."""

    def __init__(
        self,
        url: str,
        *,
        connections: int = QUEUE_CONNECTIONS,
        clock: Callable[[], float] | None = None,
        worker_id: str | None = None,
        host: str | None = None,
        create: bool = True,
    ) -> None:
        self._db = Database(url, connections=max(2, connections))
        self._clock = clock
        self._create = create  # False: a queue that is not there is an error, not made
        self.worker_id = worker_id or uuid.uuid4().hex
        self.host = host or socket.gethostname()
        self._pending: list[_Write] = []
        self._committing = False  # the writer has a batch on its way to the database
        self._wake = anyio.Event()
        self._failure: BaseException | None = None
        self._lost: set[tuple[str, int]] = set()
        self._tasks: anyio.abc.TaskGroup | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._db.shown_url} worker={self.worker_id}>"

    @property
    def database(self) -> Database:
        return self._db

    async def __aenter__(self) -> Self:
        try:
            if self._create:
                await self._db.run(migrate)
            else:
                await self._db.run(functools.partial(check_schema, shown_url=self._db.shown_url))
            self._tasks = anyio.create_task_group()
            await self._tasks.__aenter__()
            await self._tasks.start(self._writer)
        except BaseException:
            await self._db.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._tasks is not None
        try:
            with anyio.CancelScope(shield=True):
                if self._failure is None:
                    await self.flush()
        finally:
            self._tasks.cancel_scope.cancel()
            await self._tasks.__aexit__(None, None, None)
            with anyio.CancelScope(shield=True):
                await self._db.aclose()

    def now(self, connection: Any) -> float:
        if self._clock is not None:
            return self._clock()
        row = connection.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
        return float(row[0])

    # -- claims -------------------------------------------------------------------------

    async def claim(self, key: str, *, lease: float) -> jp.Claim | None:
        """Take ``key`` for ``lease`` seconds (a key not on the queue yet is added); None
        while another worker holds it. This worker's own earlier claim of it is replaced
        (the new fence makes the old claim stale)."""
        check_lease(lease)

        def run(connection: Any) -> jp.Claim | None:
            with connection.transaction():
                now = self.now(connection)
                connection.execute(
                    "INSERT INTO akool_items (key, enqueued) VALUES (%s, %s)"
                    " ON CONFLICT (key) DO NOTHING",
                    (key, now),
                )
                row = connection.execute(
                    "SELECT lease_until, holder FROM akool_items WHERE key = %s"
                    " FOR UPDATE SKIP LOCKED",
                    (key,),
                ).fetchone()
                if row is None:  # a transaction holds it this moment: a claim, a commit
                    return None
                lease_until, holder = row
                if lease_until is not None and lease_until > now and holder != self.worker_id:
                    return None
                return self._take(connection, key, now + lease)

        return await self._db.run(run)

    def _take(self, connection: Any, key: str, lease_until: float) -> jp.Claim:
        fence = connection.execute(
            f"UPDATE akool_items SET fence = fence + 1, lease_until = %s, holder = %s,"  # noqa: S608
            f" {_TAKE_OVER} WHERE key = %s RETURNING fence",
            (lease_until, self.worker_id, _UNCERTAIN_TAKEOVER, key),
        ).fetchone()[0]
        return jp.Claim(key, int(fence), lease_until)

    async def renew(self, claim: jp.Claim, *, lease: float) -> jp.Claim:
        check_lease(lease)
        self._check_lost(claim)

        def run(connection: Any) -> float | None:
            now = self.now(connection)
            row = connection.execute(
                "UPDATE akool_items SET lease_until = %s WHERE key = %s AND fence = %s"
                " RETURNING lease_until",
                (now + lease, claim.key, claim.fence),
            ).fetchone()
            return None if row is None else float(row[0])

        lease_until = await self._db.run(run)
        if lease_until is None:
            raise ClaimLostError(claim.key, claim.fence)
        return attrs.evolve(claim, lease_until=lease_until)

    async def release(self, claim: jp.Claim) -> None:
        """Give the item up once what was written for it is committed; a claim taken over
        meanwhile gives up nothing (the new holder keeps it)."""
        await self.flush()

        def run(connection: Any) -> None:
            connection.execute(
                "UPDATE akool_items SET lease_until = NULL, holder = NULL"
                " WHERE key = %s AND fence = %s",
                (claim.key, claim.fence),
            )

        await self._db.run(run)

    async def reap(self) -> Reaped:
        """Give up every expired claim: back to pending, or uncertain if the item was left
        with an intent and no ids. Safe to run from every worker at once."""

        def run(connection: Any) -> Reaped:
            with connection.transaction():
                now = self.now(connection)
                rows = connection.execute(
                    "WITH expired AS (SELECT key, state FROM akool_items WHERE lease_until < %s"  # noqa: S608
                    " FOR UPDATE SKIP LOCKED)"
                    " UPDATE akool_items SET fence = akool_items.fence + 1, lease_until = NULL,"
                    " holder = NULL, updated = %s,"
                    f" {_TAKE_OVER}"
                    " FROM expired WHERE akool_items.key = expired.key"
                    " RETURNING akool_items.key, expired.state",
                    (now, now, _UNCERTAIN_TAKEOVER),
                ).fetchall()
            uncertain = tuple(sorted(k for k, s in rows if s == ItemState.SUBMITTING.value))
            return Reaped(len(rows) - len(uncertain), uncertain)

        return await self._db.run(run)

    # -- writing ------------------------------------------------------------------------

    async def write(self, claim: jp.Claim, entries: Sequence[jp.Entry]) -> None:
        self._check_lost(claim)
        if self._failure is not None:
            raise QueueError("the journal cannot be written: an earlier commit failed")
        durable = any(entry.durable for entry in entries)
        write = _Write(claim, tuple(entries), anyio.Event() if durable else None)
        self._pending.append(write)
        self._wake.set()
        if write.done is None:
            return
        await write.done.wait()
        if write.error is not None:
            raise write.error
        if write.lost or write.expired:
            raise ClaimLostError(claim.key, claim.fence)

    async def flush(self) -> None:
        """Wait until everything written so far is committed (a batch being committed
        too: a release must not overtake the item's last records)."""
        if self._pending or self._committing:
            done = anyio.Event()
            self._pending.append(_Write(jp.Claim("", 0, 0.0), (), done))
            self._wake.set()
            await done.wait()

    def _check_lost(self, claim: jp.Claim) -> None:
        if (claim.key, claim.fence) in self._lost:
            raise ClaimLostError(claim.key, claim.fence)

    async def _writer(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        task_status.started()
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            batch, self._pending = self._pending, []
            self._committing = True
            try:
                error = await self._commit_batch(batch)
            finally:
                self._committing = False
            for write in batch:
                write.error = error
                if write.lost:
                    self._lost.add((write.claim.key, write.claim.fence))
                if write.done is not None:
                    write.done.set()
                elif error is not None:  # nobody waits for it: the next write says so
                    self._failure = error

    async def _commit_batch(self, batch: list[_Write]) -> BaseException | None:
        """Commit ``batch`` in one transaction (the database runs it once more on a fresh
        connection if its connection had dropped); the error, if it failed."""
        try:
            await self._db.run(functools.partial(self._commit, sorted(batch, key=_by_key)))
        except Exception as exc:  # the writers waiting on this batch raise it
            return exc
        return None

    def _commit(self, batch: list[_Write], connection: Any) -> None:
        # Sorted by key (stable: one claim's writes keep their order), so two writers
        # lock rows in one order and never deadlock.
        now = self.now(connection)
        with connection.transaction():
            for write in batch:
                write.lost = write.expired = False
                if not write.entries:
                    continue
                held = connection.execute(
                    "SELECT lease_until FROM akool_items WHERE key = %s AND fence = %s FOR UPDATE",
                    (write.claim.key, write.claim.fence),
                ).fetchone()
                if held is None:
                    write.lost = True
                    continue
                if _sends(write.entries) and not (held[0] or 0) > now:
                    write.expired = True  # this write only: answers may still be recorded
                    continue
                for entry in write.entries:
                    for sql, params in statements(write.claim.key, entry, now, self.host):
                        connection.execute(sql, params)

    # -- reading ------------------------------------------------------------------------

    async def history(self, claim: jp.Claim) -> jp.History:
        await self.flush()
        self._check_lost(claim)
        found = await self._db.run(functools.partial(_read_history, claim))
        if found is None:
            raise ClaimLostError(claim.key, claim.fence)
        return found


def _by_key(write: _Write) -> str:
    return write.claim.key


def _sends(entries: Sequence[jp.Entry]) -> bool:
    """An intent: what comes next is a request that costs credits. Only a claim whose
    lease still runs may send (one past it may be taken over any moment); the answers of
    what was sent are recorded as long as the fence holds."""
    return any(isinstance(e, jp.CreateIntent | jp.PressIntent) for e in entries)


def _read_history(claim: jp.Claim, connection: Any) -> jp.History | None:
    with connection.transaction():
        if connection.execute("SELECT 1 FROM akool_items WHERE key = %s AND fence = %s",
                              (claim.key, claim.fence)).fetchone() is None:  # fmt: skip
            return None
        jobs = connection.execute(
            "SELECT job_id, parent_id, button, position, status, last FROM akool_jobs"
            " WHERE item_key = %s ORDER BY seq",
            (claim.key,),
        ).fetchall()
        images: dict[str, list[tuple[Any, ...]]] = {}
        for row in connection.execute(
            "SELECT akool_images.job_id, idx, kind, akool_images.url, parts_missing,"
            " akool_images.path, akool_images.error FROM akool_images JOIN akool_jobs"
            " USING (job_id) WHERE item_key = %s ORDER BY idx = 0, idx",  # as listed: the grid last
            (claim.key,),
        ):
            images.setdefault(row[0], []).append(row[1:])
        presses = connection.execute(
            "SELECT parent_id, button, child_id FROM akool_presses WHERE item_key = %s"
            " ORDER BY intent_at, parent_id, button",
            (claim.key,),
        ).fetchall()
    return jp.History(
        jobs=tuple(_known_job(row, images.get(row[0])) for row in jobs),
        presses=tuple(jp.KnownPress(p, Button(b), c) for p, b, c in presses),
    )


def _known_job(row: tuple[Any, ...], images: list[tuple[Any, ...]] | None) -> jp.KnownJob:
    job_id, parent_id, button, position, status, last = row
    listed = None
    saved: frozenset[int] = frozenset()
    if images is not None:
        listed = tuple(
            jp.ImageToSave(i, kind, url, missing) for i, kind, url, missing, *_ in images
        )
        saved = frozenset(i for i, _k, _u, _m, path, error in images if path and not error)
    return jp.KnownJob(
        job_id=job_id, parent_id=parent_id, button=None if button is None else Button(button),
        position=int(position or 1), status=None if status is None else ImageStatus(status),
        last=None if last is None else structure(json.loads(last), ImageJob),
        images=listed, saved=saved,
    )  # fmt: skip


def check_lease(lease: float) -> None:
    if not lease > 0:
        raise ValidationError("lease", lease, "a positive number of seconds")
