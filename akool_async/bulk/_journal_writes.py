"""The writes a bulk journal's one writer commits in groups (``Journal``): each a
statement, or a step that reads as well (a claim); guarded ones only while their item's
claim holds. And the steps of a group's transaction (``begin_at_once``, ``apply``,
``finish``; ``commit_waiting`` all of them, waiting for the write lock)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import attrs

from .._clock import SYSTEM_CLOCK

# The longest a write nobody waits for (a status, a download) stays uncommitted: what a
# crash can lose of them, to be polled or fetched again by a resume.
LAZY_COMMIT = 0.05


@attrs.frozen
class Guard:
    """A write that may only happen while its item is claimed: ``fence`` by ``owner``,
    with the lease still running (an intent: a process that lost its claim sends nothing)."""

    key: str
    fence: int
    owner: str


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
    """Whether ``guard``'s claim is still the item's, its lease running (in the writing
    transaction: no other process can take the item over in between)."""
    row = connection.execute(
        "SELECT 1 FROM claims WHERE key = ? AND fence = ? AND owner = ? AND lease_until > ?",
        (guard.key, guard.fence, guard.owner, SYSTEM_CLOCK.wall()),
    ).fetchone()
    return row is not None


BUSY_MS = 60_000  # how long a commit waits for another process's write lock (in a thread)


def begin_at_once(connection: sqlite3.Connection) -> bool:
    """``BEGIN IMMEDIATE`` (the write lock first, so another process's commit never makes
    this one fail half way) unless another process holds the lock: False, nothing begun."""
    connection.execute("PRAGMA busy_timeout = 0")
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:  # any kind of busy
            raise
        return False
    finally:
        connection.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
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
        else:
            connection.execute(write.sql, write.params)


def finish(connection: sqlite3.Connection) -> None:
    """Commit the transaction begun (rolled back if that fails: a full disk)."""
    try:
        connection.execute("COMMIT")
    except BaseException:
        roll_back(connection)
        raise


def roll_back(connection: sqlite3.Connection) -> None:
    """End the transaction begun, undone (unless SQLite already rolled it back itself)."""
    if connection.in_transaction:
        connection.execute("ROLLBACK")


def commit_waiting(connection: sqlite3.Connection, batch: Sequence[Write]) -> None:
    """The batch in one transaction, waiting for the write lock if need be (a thread's)."""
    with connection:
        connection.execute("BEGIN IMMEDIATE")
        apply(connection, batch)
