"""The bulk run's journal: what was asked, created, seen and saved, in SQLite.

Nothing is lost and nothing is paid twice because of the order of writes: the intent to
create is committed before the create is sent, and the job ids with the next group commit
once they come back (their jobs are polled meanwhile). A run killed between the two
leaves an intent without ids: the item is *uncertain* (the server may have created it)
and is not submitted again unless asked to.

SQLite in WAL mode, written by one writer task that commits in groups: an intent is
committed at once; the ids, statuses and downloads ride along with the next commit
(``LAZY_COMMIT`` at the latest; at once when the run stops: ``hurry``). A transaction
happened or did not: the journal is consistent whenever the process dies. A commit
holding an intent or ids is synced to disk (``synchronous=FULL``: a power cut cannot lose
it), on the event loop while the disk syncs quickly (``SyncedCommits``); the others
(``NORMAL``) are in the file once committed, safe from the process's death, and synced
with the next synced one (the WAL is written in order): a power cut loses only what came
after it, to be polled or fetched again.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Self

import anyio
import anyio.abc

from .._clock import SYSTEM_CLOCK
from .._exceptions import AkoolError, ClaimLostError
from .._models import ImageJob
from . import _journal_writes as transaction
from ._identity import fingerprint_of
from ._journal_reads import JournalReads
from ._journal_schema import open_journal
from ._journal_writes import LAZY_COMMIT, Guard, Write
from ._states import FINISHED, ItemState, check_transition

# A create's intent: the item's row, state submitting (see ``Journal.intent``).
_INTENT = (
    "INSERT INTO items (key, line, user_id, prompt, request, follow_ups, state, updated,"
    " run, fingerprint, seen, sent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET state = excluded.state, error = NULL,"
    " sent = excluded.sent,"
    " updated = excluded.updated, run = excluded.run, line = excluded.line,"
    " fingerprint = excluded.fingerprint, seen = MAX(COALESCE(seen, 0), excluded.seen)"
)


class JournalWriteError(AkoolError):
    """The journal could not be written (disk full, read-only, damaged): the run stops
    submitting; ``job_ids`` holds the jobs created whose ids could not be recorded."""

    hint = "Free space or fix the output folder, then run again with --resume"

    def __init__(self, message: str, *, job_ids: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.job_ids = job_ids


class Journal(JournalReads):
    """Open with ``async with Journal(path) as journal`` (inside a task group it writes from)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._thread = anyio.CapacityLimiter(1)  # one thread at a time on the connection
        self._pending: list[Write] = []
        self._wake = anyio.Event()  # a write waits for its commit: commit now
        self._nudge = anyio.Event()  # something is pending: commit within LAZY_COMMIT
        self._failure: BaseException | None = None
        self._hurried = False  # the run is stopping: every write commits at once (``hurry``)
        self._committing = False  # a batch is on its way to the file
        self._closed = False  # the writer is gone: nothing more is committed
        self._writing = anyio.CancelScope(shield=True)  # the writer's: only the close ends it
        self._synced = True  # the connection's commits are synced to disk (``Write.sync``)
        self._syncs = transaction.SyncedCommits()  # on the loop or in a thread
        self._tasks: anyio.abc.TaskGroup | None = None
        self._stack = contextlib.AsyncExitStack()
        self.run = 0  # this run's number: a key it already recorded is a duplicate
        # The state of each item this run is working on (None: no row yet), to check its
        # next change against the table without a read; an item not here is looked up.
        self._states: dict[str, ItemState | None] = {}

    async def __aenter__(self) -> Self:
        self._connection = await self._run(self._connect)
        self._tasks = await self._stack.enter_async_context(anyio.create_task_group())
        await self._tasks.start(self._writer)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._tasks is not None
        assert self._connection is not None
        if exc_info[0] is not None:  # an error, or cancelled from outside: stopping
            self.hurry()
        try:
            with anyio.CancelScope(shield=True), contextlib.suppress(JournalWriteError):
                await self.flush()  # even when cancelled: what was written stays written
        finally:  # a flush that failed (a full disk) must still leave the writer's task group
            self._writing.cancel()
            self._tasks.cancel_scope.cancel()
            await self._stack.aclose()
            with anyio.CancelScope(shield=True):
                connection, self._connection = self._connection, None
                await self._run(connection.close)

    def _connect(self) -> sqlite3.Connection:
        connection, self.run = open_journal(self.path)
        return connection

    def _open(self) -> sqlite3.Connection:
        """The connection (on the journal's one thread: ``_run``)."""
        assert self._connection is not None
        return self._connection

    async def state_of(self, key: str) -> ItemState | None:
        """``key``'s state as the file holds it now (another process may have changed
        it), remembered as the state its next change is checked against."""
        rows = await self._query("SELECT state FROM items WHERE key = ?", (key,))
        self._states[key] = state = ItemState(rows[0][0]) if rows else None
        return state

    async def _run(self, function: Any, *args: Any) -> Any:
        """``function(*args)`` on the journal's one thread, ``patiently``."""
        return await anyio.to_thread.run_sync(
            transaction.patiently, self._connection, function, *args, limiter=self._thread
        )

    # -- writing ------------------------------------------------------------------------

    async def _writer(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        task_status.started()
        try:
            with self._writing:  # a caller cancelled from outside still gets its writes done
                await self._write_batches()
        finally:  # closed (or interrupted): no write may wait for a commit that never comes
            self._closed = True
            if self._pending:
                self._failure = self._failure or JournalWriteError("closed before committing")
            for write in self._pending:
                if write.done is not None:
                    write.done.set()

    async def _write_batches(self) -> None:
        while True:
            await self._nudge.wait()
            # Writes nobody waits for ride along with the next one somebody does (one
            # commit, one fsync), and are committed by LAZY_COMMIT seconds at the latest.
            with anyio.move_on_after(LAZY_COMMIT):
                await self._wake.wait()
            self._wake, self._nudge = anyio.Event(), anyio.Event()
            batch, self._pending = self._pending, []
            self._committing = True
            try:
                async with self._thread:  # nobody else on the connection meanwhile
                    await self._commit(batch)
            except Exception as exc:  # whatever it is: no write may hang on it
                # Disk full, read-only, corrupted (or a bug): every write from now on fails
                # at once (the run stops submitting); the writer stays, so nothing hangs.
                self._failure = exc
            except BaseException:  # cancelled, interrupted: committed or not, none may count
                self._failure = self._failure or JournalWriteError("cancelled while committing")
                raise
            finally:
                self._committing = False
                for write in batch:
                    if write.done is not None:
                        write.done.set()

    async def _commit(self, batch: list[Write]) -> None:
        """One transaction: all of the batch or none (the caller holds ``_thread``). On the
        event loop (quick statements; a thread would wait for the GIL at each one while the
        loop is busy), but for what may block: a slow disk's sync (``SyncedCommits``),
        another process's lock."""
        connection = self._open()
        synced = any(write.sync for write in batch)
        if synced is not self._synced:
            connection.execute(f"PRAGMA synchronous={'FULL' if synced else 'NORMAL'}")
            self._synced = synced
        if not transaction.begin_at_once(connection):
            await transaction.commit_when_free(connection, batch, self.path, lambda: self._hurried)
            return
        with anyio.CancelScope(shield=True):  # begun: never left half way
            try:
                transaction.apply(connection, batch)
            except BaseException:
                transaction.roll_back(connection)
                raise
            if synced:
                await self._syncs.finish(connection)
            else:
                transaction.finish(connection)

    async def _write(
        self, sql: str, params: Sequence[Any], *, durable: bool, guard: Guard | None = None,
        sync: bool = False, hurry: bool = True,
    ) -> None:  # fmt: skip
        write = Write(sql, params, anyio.Event() if durable or guard else None, guard, sync=sync)
        await self._enqueue(write, hurry=hurry)
        if write.lost:
            assert guard is not None
            raise ClaimLostError(guard.key, guard.fence)

    async def _applied(
        self, step: Callable[[sqlite3.Connection], Any], *, sync: bool = False
    ) -> Any:
        """``step``'s answer, run in the writer's next group commit and committed with it
        (no thread and no transaction of its own); ``sync``: see ``Write``."""
        write = Write("", (), anyio.Event(), apply=step, sync=sync)
        # Shielded: a caller cancelled while its step is being committed would lose what
        # the step did (a claim taken and never released: held until its lease ends).
        with anyio.CancelScope(shield=True):
            await self._enqueue(write)
        return write.result

    def hurry(self) -> None:
        """Commit every write at once from now on (stopping: a lazy one could be cut off)."""
        self._hurried = True
        self._wake.set()

    async def _enqueue(self, write: Write, *, hurry: bool = True) -> None:
        self._check_failure()
        if self._closed:
            raise JournalWriteError(f"the journal {self.path} is closed")
        self._pending.append(write)
        self._nudge.set()
        if write.done is not None:
            if hurry or self._hurried:
                self._wake.set()
            await write.done.wait()
            self._check_failure()

    @property
    def failure(self) -> BaseException | None:
        """Why the file could not be written (None while it can)."""
        return self._failure

    def _check_failure(self) -> None:
        if self._failure is not None:
            raise JournalWriteError(
                f"the journal {self.path} cannot be written"
                f" ({type(self._failure).__name__}: {self._failure})"
            ) from self._failure

    async def committed(self, *, hurry: bool = False, sync: bool = False) -> None:
        """Wait until everything written so far is committed (a batch being committed too),
        riding along with the writer's next group commit unless told to ``hurry``; with
        ``sync``, synced to disk too (see ``Write``)."""
        if self._pending or self._committing or sync:
            write = Write("", (), anyio.Event(), None, sync=sync)
            await self._enqueue(write, hurry=hurry)

    async def flush(self, *, sync: bool = False) -> None:
        """``committed`` now: a reader of its own must find everything written so far."""
        await self.committed(hurry=True, sync=sync)

    # -- items --------------------------------------------------------------------------

    async def intent(self, key: str, line: int, user_id: str | None, request: dict[str, Any],
                     follow_ups: Sequence[str], *, guard: Guard | None = None) -> None:  # fmt: skip
        """Before a create is sent: committed, so a crash leaves the item uncertain; with
        a ``guard``, only while the item's claim holds (else ``ClaimLostError``)."""
        await self._change(key, ItemState.SUBMITTING)
        await self._write(_INTENT, self._intent_row(key, line, user_id, request, follow_ups),
                          durable=True, guard=guard, sync=True)  # fmt: skip

    def _first_intent(self, connection: sqlite3.Connection, key: str, *, line: int,
                      user_id: str | None, request: dict[str, Any],
                      follow_ups: Sequence[str]) -> None:  # fmt: skip
        """The intent of an item the file has no row of (read in this transaction)."""
        check_transition(None, ItemState.SUBMITTING, key=key)
        connection.execute(_INTENT, self._intent_row(key, line, user_id, request, follow_ups))
        self._states[key] = ItemState.SUBMITTING

    def _intent_row(self, key: str, line: int, user_id: str | None, request: dict[str, Any],
                    follow_ups: Sequence[str]) -> tuple[Any, ...]:  # fmt: skip
        now = SYSTEM_CLOCK.wall()
        return (key, line, user_id, request.get("prompt"), json.dumps(request),
                ",".join(follow_ups), ItemState.SUBMITTING.value, now, self.run,
                fingerprint_of(request, follow_ups), self.run, now)  # fmt: skip

    async def submitted(self, key: str, jobs: Iterable[ImageJob], *, parent_id: str | None = None,
                        button: str | None = None) -> None:  # fmt: skip
        """The ids a create answered with, synced with the writer's next group commit (the
        next intent's, at most ``LAZY_COMMIT`` later): their jobs are polled meanwhile."""
        now = SYSTEM_CLOCK.wall()
        for position, job in enumerate(jobs, start=1):
            await self._write(
                "INSERT OR IGNORE INTO jobs (job_id, item_key, parent_id, button, position,"
                " status, credits, created, submitted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job.id, key, parent_id, button, position, int(job.status), job.deduction_credit,
                 None if job.create_time is None else job.create_time / 1000, now),
                durable=False,
            )  # fmt: skip
        if parent_id is None:  # synced: a power cut must not lose what was paid for
            await self._change(key, ItemState.SUBMITTED)
            await self._write("UPDATE items SET state = ?, updated = ? WHERE key = ?",
                              (ItemState.SUBMITTED.value, now, key), durable=True,
                              sync=True, hurry=False)  # fmt: skip
        else:
            await self.committed(sync=True)

    async def item_state(self, key: str, state: ItemState, error: str | None = None) -> None:
        await self._change(key, state)
        await self._write(
            "UPDATE items SET state = ?, error = ?, updated = ?, run = ? WHERE key = ?",
            (state.value, error, SYSTEM_CLOCK.wall(), self.run, key),
            durable=False,
        )  # fmt: skip

    async def _change(self, key: str, state: ItemState) -> None:
        """Check an item's change of state against the table (``IllegalTransitionError``)."""
        if key in self._states:
            before = self._states[key]
        else:
            rows = await self._query("SELECT state FROM items WHERE key = ?", (key,))
            before = ItemState(rows[0][0]) if rows else None
        check_transition(before, state, key=key)
        if state is ItemState.SUBMITTING or state is ItemState.SUBMITTED:
            self._states[key] = state
        else:  # the item's last change in this run: forget it, keep memory to what is in flight
            self._states.pop(key, None)

    # -- follow-ups ---------------------------------------------------------------------

    async def press_intent(
        self, key: str, parent_id: str, button: str, *, guard: Guard | None = None
    ) -> None:
        """Before a button is pressed: committed (and guarded), like a create's intent."""
        await self._write(
            "INSERT OR IGNORE INTO presses (parent_id, button, item_key) VALUES (?, ?, ?)",
            (parent_id, button, key),
            durable=True,
            guard=guard,
            sync=True,
        )

    async def pressed(self, key: str, parent_id: str, button: str, child: ImageJob) -> None:
        await self._write("UPDATE presses SET child_id = ? WHERE parent_id = ? AND button = ?",
                          (child.id, parent_id, button), durable=False)  # fmt: skip
        await self.submitted(key, [child], parent_id=parent_id, button=button)

    async def forget_press(self, parent_id: str, button: str) -> None:
        """A press provably not made (refused): a resume may press it again."""
        await self._write("DELETE FROM presses WHERE parent_id = ? AND button = ?",
                          (parent_id, button), durable=False)  # fmt: skip

    # -- jobs ---------------------------------------------------------------------------

    async def job_ended(self, job: ImageJob, error: str | None = None) -> None:
        await self._write(
            "UPDATE jobs SET status = ?, url = ?, credits = COALESCE(?, credits), finished = ?,"
            " error = ? WHERE job_id = ?",
            (int(job.status), job.url, job.deduction_credit, SYSTEM_CLOCK.wall(), error, job.id),
            durable=False,
        )

    async def job_error(self, job_id: str, error: str) -> None:
        await self._write("UPDATE jobs SET error = ?, finished = ? WHERE job_id = ?",
                          (error, SYSTEM_CLOCK.wall(), job_id), durable=False)  # fmt: skip

    # -- a job's images (a grid's parts, each saved on its own) -------------------------

    async def job_images(
        self, job_id: str, images: Sequence[tuple[int, str, str]], *, parts_missing: bool
    ) -> None:
        """The images a finished job has to save, ``(index, kind, url)`` each; what was
        saved before stays recorded."""
        for index, kind, url in images:
            await self._write(
                "INSERT INTO images (job_id, idx, kind, url, parts_missing) VALUES"
                " (?, ?, ?, ?, ?) ON CONFLICT (job_id, idx) DO UPDATE SET url = excluded.url,"
                " kind = excluded.kind, parts_missing = excluded.parts_missing",
                (job_id, index, kind, url, int(parts_missing)),
                durable=False,
            )

    async def image_saved(self, job_id: str, index: int, path: str, sha256: str, *, size: int,
                          near_expiry: bool) -> None:  # fmt: skip
        """Image ``index`` of a job is on disk (its row only: the job's own ``path``
        columns are read from journals from before per-image rows, never written now)."""
        await self._write(
            "UPDATE images SET path = ?, sha256 = ?, size = ?, near_expiry = ?, error = NULL"
            " WHERE job_id = ? AND idx = ?",
            (path, sha256, size, int(near_expiry), job_id, index),
            durable=False,
        )

    async def image_error(self, job_id: str, index: int, error: str) -> None:
        await self._write(
            "UPDATE images SET error = ? WHERE job_id = ? AND idx = ?",
            (error, job_id, index),
            durable=False,
        )
        await self.job_error(job_id, error)

    # -- reading ------------------------------------------------------------------------

    async def states(self, keys: Sequence[str]) -> dict[str, tuple[ItemState, int | None]]:
        """The recorded state of each of ``keys`` that has one, and the run that wrote it."""
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        sql = f"SELECT key, state, run FROM items WHERE key IN ({marks})"  # noqa: S608 - marks
        found = {key: (ItemState(state), run) for key, state, run in await self._query(sql, keys)}
        for key in keys:  # what the run goes on to work on; a finished item is only skipped
            state = found[key][0] if key in found else None
            if state not in FINISHED:
                self._states[key] = state
        return found

    async def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        await self.flush()

        def run() -> list[tuple[Any, ...]]:
            assert self._connection is not None
            return self._connection.execute(sql, params).fetchall()

        result: list[tuple[Any, ...]] = await self._run(run)
        return result
