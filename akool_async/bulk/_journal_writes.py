"""The writes a bulk journal's one writer commits in groups (``Journal``): each a
statement, or a step that reads as well (a claim); guarded ones only while their item's
claim holds. And the steps of a group's transaction (``begin_at_once``, ``apply``,
``finish``; ``commit_waiting`` all of them, waiting for the write lock; ``commit_when_free``
for as long as another process holds it)."""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import attrs

from .._clock import SYSTEM_CLOCK

log = logging.getLogger("akool_async")
_T = TypeVar("_T")

# The longest a write that does not hurry the writer (a status, a download, a create's ids)
# stays uncommitted, unless another's commit takes it along first: what a crash can lose of
# them (polled or fetched again by a resume; a create's ids lost leave it uncertain).
LAZY_COMMIT = 0.05


@attrs.frozen
class Guard:
    """A write that may only happen while its item is claimed: ``fence`` by ``owner``, not
    taken over since (an intent: a process that lost its claim sends nothing); the write
    renews the claim's lease for ``lease`` seconds."""

    key: str
    fence: int
    owner: str
    lease: float


@attrs.define
class Write:
    sql: str
    params: Sequence[Any]
    done: anyio.Event | None = None
    guard: Guard | None = None
    lost: bool = False  # the guard did not hold: nothing was written
    # Synced to disk with its commit (an intent: a power cut must not lose it, or the
    # create it announces would be sent again; the ids an answer brought: paid for). Other
    # commits survive the process's death (they are in the file, its cache); a power cut
    # keeps them up to the last synced one.
    sync: bool = False
    # Instead of ``sql``: a step that reads as well as writes, in the batch's transaction
    # (a claim), its answer in ``result``.
    apply: Callable[[sqlite3.Connection], Any] | None = None
    result: Any = None


def holds(connection: sqlite3.Connection, guard: Guard) -> bool:
    """Whether ``guard``'s claim is still the item's (in the writing transaction: no other
    process can take the item over in between), renewing its lease for ``guard.lease``.
    Its fence and owner say so, and a lease not released: run out or not, as a takeover
    raises the fence, and a lease that ran out while this process waited for another's
    lock (``waiting_out_locks``) was taken by nobody. Renewed, it cannot be taken over as
    the create this write announces leaves."""
    renewed = connection.execute(
        "UPDATE claims SET lease_until = MAX(lease_until, ?)"
        " WHERE key = ? AND fence = ? AND owner = ? AND lease_until > 0",
        (SYSTEM_CLOCK.wall() + guard.lease, guard.key, guard.fence, guard.owner),
    )
    return renewed.rowcount == 1


# How long what runs in a thread waits for another process's lock (``patiently``). On the
# event loop the connection never waits (busy timeout 0, set by ``open_journal``).
BUSY_MS = 60_000
BUSY_SECONDS = BUSY_MS / 1000


def is_busy(error: BaseException) -> bool:
    """Whether ``error`` is SQLite's busy (another connection holds the lock), of any kind."""
    return getattr(error, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


def patiently(connection: sqlite3.Connection | None, function: Callable[..., Any],
              *args: Any) -> Any:  # fmt: skip
    """``function(*args)`` (in a thread), waiting up to ``BUSY_MS`` for another process's
    lock on ``connection`` (None: not open yet, or closed)."""
    if connection is None:
        return function(*args)
    connection.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
    try:
        return function(*args)
    finally:
        connection.execute("PRAGMA busy_timeout = 0")


async def waiting_out_locks(
    attempt: Callable[[], Awaitable[_T]], path: Path, stopping: Callable[[], bool]
) -> _T:
    """``attempt()`` (a thread that waits ``BUSY_SECONDS`` for another process's lock on
    the journal at ``path``), again for as long as that process holds the lock, with a
    warning each time: a stopped process (Ctrl-Z, a debugger, a paused machine) holds it,
    and giving up would lose what was paid for. Once ``stopping()``, one wait only."""
    waited = 0.0
    while True:
        try:
            return await attempt()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or stopping():
                raise
        waited += BUSY_SECONDS
        log.warning("the journal %s has been held locked by another process for %g s"
                    " (is it stopped?): still waiting for it", path, waited)  # fmt: skip


def begin_at_once(connection: sqlite3.Connection) -> bool:
    """``BEGIN IMMEDIATE`` (the write lock first, so another process's commit never makes
    this one fail half way) unless another process holds the lock: False, nothing begun."""
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if not is_busy(exc):
            raise
        return False
    return True


def apply(connection: sqlite3.Connection, batch: Sequence[Write]) -> None:
    """The batch's writes, in the transaction begun: a guarded one only while its claim
    holds (else marked ``lost``, nothing written)."""
    for write in batch:
        if write.guard is not None and not holds(connection, write.guard):
            write.lost = True
            continue
        if write.apply is not None:
            write.result = write.apply(connection)
        elif write.sql:  # none: a mark that waits for the commit (``Journal.committed``)
            connection.execute(write.sql, write.params)


def finish(connection: sqlite3.Connection) -> None:
    """Commit the transaction begun (rolled back if that fails: a full disk)."""
    try:
        connection.execute("COMMIT")
    except BaseException:
        roll_back(connection)
        raise


# A synced commit (an fsync) that takes less than this runs on the event loop: blocking it
# that long costs less than a thread hop, whose worker waits for the GIL at both ends (up
# to the switch interval, 5 ms, each time) while the loop is busy. A slower one sends the
# next ``THREAD_TURNS`` synced commits to a thread; then the loop is tried again.
SYNC_ON_LOOP = 0.002
THREAD_TURNS = 32


def thread_turns(turns_left: int, seconds: float | None) -> int:
    """The synced commits still to run in a thread, after one that took ``seconds`` on
    the loop (None: it ran in a thread)."""
    if seconds is None:
        return max(0, turns_left - 1)
    return THREAD_TURNS if seconds > SYNC_ON_LOOP else 0


class SyncedCommits:
    """Where a synced commit runs: on the loop while the disk syncs quickly, else in a
    worker thread (``thread_turns``); ``clock`` times those on the loop."""

    def __init__(self, clock: Callable[[], float] = SYSTEM_CLOCK.now) -> None:
        self.turns_left = 0
        self._clock = clock

    async def finish(self, connection: sqlite3.Connection) -> None:
        """``finish`` the transaction begun, its commit synced to disk."""
        if self.turns_left:
            self.turns_left = thread_turns(self.turns_left, None)
            await anyio.to_thread.run_sync(finish, connection)
            return
        started = self._clock()
        try:
            finish(connection)
        finally:
            self.turns_left = thread_turns(0, self._clock() - started)


def roll_back(connection: sqlite3.Connection) -> None:
    """End the transaction begun, undone (unless SQLite already rolled it back itself)."""
    if connection.in_transaction:
        connection.execute("ROLLBACK")


async def commit_when_free(
    connection: sqlite3.Connection, batch: Sequence[Write], path: Path,
    stopping: Callable[[], bool],
) -> None:  # fmt: skip
    """``commit_waiting`` in a thread, for as long as it takes (``waiting_out_locks``)."""
    attempt = functools.partial(anyio.to_thread.run_sync, commit_waiting, connection, batch)
    await waiting_out_locks(attempt, path, stopping)


def commit_waiting(connection: sqlite3.Connection, batch: Sequence[Write]) -> None:
    """The batch in one transaction, waiting for the write lock if need be (a thread's)."""

    def commit() -> None:
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            apply(connection, batch)

    patiently(connection, commit)
