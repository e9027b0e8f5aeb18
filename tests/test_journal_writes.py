"""Where the bulk journal's synced commits run: on the event loop while the disk syncs
quickly (a thread hop would cost more), in a worker thread for a while after a slow one."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from akool_async import ImageJob, ImageStatus
from akool_async._journal_protocol import Claim
from akool_async.bulk import _journal
from akool_async.bulk import _journal_writes as writes
from akool_async.bulk._journal import JournalWriteError
from akool_async.bulk._journal_follow import BulkJournal


def test_a_quick_commit_keeps_them_on_the_loop_a_slow_one_sends_the_next_to_threads() -> None:
    assert writes.thread_turns(0, writes.SYNC_ON_LOOP / 2) == 0
    assert writes.thread_turns(0, writes.SYNC_ON_LOOP * 2) == writes.THREAD_TURNS
    assert writes.thread_turns(3, None) == 2  # one ran in a thread
    assert writes.thread_turns(0, None) == 0


async def test_synced_commits_run_on_the_loop_until_one_is_slow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real commits of a real file: the clock says the second took too long, so the next
    ``THREAD_TURNS`` run in a worker thread, and the one after on the loop again."""
    connection = sqlite3.connect(tmp_path / "j.sqlite", isolation_level=None,
                                 check_same_thread=False)  # fmt: skip
    connection.execute("CREATE TABLE t (n INTEGER)")
    threads: list[int] = []
    real_finish = writes.finish

    def finish(connection: sqlite3.Connection) -> None:
        threads.append(threading.get_ident())
        real_finish(connection)

    monkeypatch.setattr(writes, "finish", finish)
    # The start and end of each commit timed on the loop: quick, slow, then instant.
    times = iter([0.0, writes.SYNC_ON_LOOP / 10, 1.0, 1.0 + 10 * writes.SYNC_ON_LOOP])
    commits = writes.SyncedCommits(lambda: next(times, 0.0))
    for n in range(writes.THREAD_TURNS + 3):
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO t VALUES (?)", (n,))
        await commits.finish(connection)
    loop = threading.get_ident()
    assert threads[:2] == [loop, loop]  # quick, then slow: both on the loop
    assert loop not in threads[2 : 2 + writes.THREAD_TURNS]
    assert threads[2 + writes.THREAD_TURNS :] == [loop]  # tried on the loop again
    assert connection.execute("SELECT COUNT(*) FROM t").fetchone() == (writes.THREAD_TURNS + 3,)


async def test_a_stopping_runs_journal_commits_a_creates_ids_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create's ids ride along with the next group commit; once the run stops
    (``hurry``), they are committed at once: an exit could cut them off."""
    monkeypatch.setattr(_journal, "LAZY_COMMIT", 3600.0)  # no commit comes by the clock
    job = ImageJob(id="job1", status=ImageStatus.QUEUEING, deduction_credit=1)
    async with _journal.Journal(tmp_path / "journal.sqlite") as journal:
        await journal.intent("id:a", 1, "a", {"prompt": "a red fox"}, ())  # committed at once
        recorded = anyio.Event()

        async def ids() -> None:
            await journal.submitted("id:a", [job])
            recorded.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(ids)
            await anyio.wait_all_tasks_blocked()
            assert not recorded.is_set()  # riding along: no other commit comes
            journal.hurry()
            with anyio.fail_after(30):
                await recorded.wait()
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        assert db.execute("SELECT state FROM items").fetchall() == [("submitted",)]
        assert db.execute("SELECT job_id FROM jobs").fetchall() == [("job1",)]


# Holds the journal's write lock, as a process stopped in the middle of a commit would
# (Ctrl-Z, a debugger, a paused machine), until its standard input closes.
HOLDING_THE_WRITE_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
"""


@contextlib.asynccontextmanager
async def holding_the_write_lock(path: Path) -> AsyncIterator[anyio.abc.Process]:
    """A process holding ``path``'s write lock until its standard input closes (on leaving,
    at the latest)."""
    command = [sys.executable, "-c", HOLDING_THE_WRITE_LOCK, str(path)]
    async with await anyio.open_process(command) as holder:
        assert holder.stdout is not None
        said = await BufferedByteReceiveStream(holder.stdout).receive_until(b"\n", 64)
        assert said == b"held"
        yield holder


class WaitingWarnings(logging.Handler):
    """The journal's warnings that it waits for another process's lock; ``enough`` is set
    at the ``count``-th."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.messages: list[str] = []
        self.count, self.enough = count, anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:  # on the loop: the journal's writer
        if "held locked by another process" in record.getMessage():
            self.messages.append(record.getMessage())
            if len(self.messages) >= self.count:
                self.enough.set()


async def test_a_write_waits_as_long_as_another_process_holds_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the write lock past the busy timeout, again and again: the
    claim waits on (a warning each time), taken once the lock is let go; nothing fails
    (it used to stop the run after one timeout, losing the ids of creates on their way)."""
    monkeypatch.setattr(writes, "BUSY_MS", 100)  # the busy timeout: 0.1 s, not 60
    monkeypatch.setattr(writes, "BUSY_SECONDS", 0.1)
    warnings = WaitingWarnings(count=3)
    logger = logging.getLogger("akool_async")
    logger.addHandler(warnings)
    path = tmp_path / "journal.sqlite"
    claimed: list[Claim | None] = []
    try:
        async with BulkJournal(path) as journal, holding_the_write_lock(path) as holder:

            async def claim() -> None:
                claimed.append(await journal.claim("id:a", lease=60))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(claim)
                with anyio.fail_after(30):
                    await warnings.enough.wait()  # three timeouts over: still waiting
                assert not claimed
                assert holder.stdin is not None
                await holder.stdin.aclose()  # it lets go
            assert journal.failure is None
    finally:
        logger.removeHandler(warnings)
    (taken,) = claimed
    assert taken is not None
    assert taken.fence == 1
    assert warnings.messages[0].startswith(f"the journal {path} has been held locked")


async def test_a_stopping_run_waits_for_a_held_lock_once_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the run stops (``hurry``: Ctrl-C), a lock held past one busy timeout fails the
    write with ``JournalWriteError``: the stop is not held up for as long as it is held."""
    monkeypatch.setattr(writes, "BUSY_MS", 100)
    monkeypatch.setattr(writes, "BUSY_SECONDS", 0.1)
    path = tmp_path / "journal.sqlite"
    async with BulkJournal(path) as journal, holding_the_write_lock(path):
        journal.hurry()
        with anyio.fail_after(30), pytest.raises(JournalWriteError, match="database is locked"):
            await journal.claim("id:a", lease=60)
