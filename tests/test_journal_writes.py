"""Where the bulk journal's synced commits run: on the event loop while the disk syncs
quickly (a thread hop would cost more), in a worker thread for a while after a slow one."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from akool_async import ImageJob, ImageStatus
from akool_async import _journal_protocol as jp
from akool_async._clock import SYSTEM_CLOCK
from akool_async._exceptions import ClaimLostError
from akool_async._journal_protocol import Claim
from akool_async.bulk import _journal
from akool_async.bulk import _journal_writes as writes
from akool_async.bulk._journal import JournalWriteError
from akool_async.bulk._journal_follow import BulkJournal
from akool_async.bulk._states import ItemState


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


@pytest.fixture
def waiting(monkeypatch: pytest.MonkeyPatch) -> Iterator[WaitingWarnings]:
    """A busy timeout of 0.1 s, not 60; the journal's warnings that it waits, the third
    setting ``enough``."""
    monkeypatch.setattr(writes, "BUSY_MS", 100)
    monkeypatch.setattr(writes, "BUSY_SECONDS", 0.1)
    warnings = WaitingWarnings(count=3)
    logger = logging.getLogger("akool_async")
    logger.addHandler(warnings)
    yield warnings
    logger.removeHandler(warnings)


async def test_a_write_waits_as_long_as_another_process_holds_the_lock(
    tmp_path: Path, waiting: WaitingWarnings
) -> None:
    """Another process holds the write lock past the busy timeout, again and again: the
    claim waits on (a warning each time), taken once the lock is let go; nothing fails
    (it used to stop the run after one timeout, losing the ids of creates on their way)."""
    path = tmp_path / "journal.sqlite"
    claimed: list[Claim | None] = []
    async with BulkJournal(path) as journal, holding_the_write_lock(path) as holder:

        async def claim() -> None:
            claimed.append(await journal.claim("id:a", lease=60))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(claim)
            with anyio.fail_after(30):
                await waiting.enough.wait()  # three timeouts over: still waiting
            assert not claimed
            assert holder.stdin is not None
            await holder.stdin.aclose()  # it lets go
        assert journal.failure is None
    (taken,) = claimed
    assert taken is not None
    assert taken.fence == 1
    assert waiting.messages[0].startswith(f"the journal {path} has been held locked")


async def test_a_claim_whose_lease_ran_out_waiting_for_the_lock_is_kept(
    tmp_path: Path, waiting: WaitingWarnings
) -> None:
    """The claim's lease runs out while another process holds the lock (so nobody could
    take the item over): once it is let go, the renewal keeps the claim and its intent is
    written. The wait loses no item (it used to drop every claim whose lease ran out)."""
    path = tmp_path / "journal.sqlite"
    async with BulkJournal(path) as journal:
        claim = await journal.claim("id:a", lease=0.2)
        assert claim is not None
        lost: list[set[str]] = []
        async with holding_the_write_lock(path) as holder:

            async def renew() -> None:
                lost.append(await journal.renew_all([claim], lease=60))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(renew)
                with anyio.fail_after(30):
                    await waiting.enough.wait()  # 0.3 s of timeouts: the lease ran out
                assert SYSTEM_CLOCK.wall() > claim.lease_until
                assert holder.stdin is not None
                await holder.stdin.aclose()
        assert lost == [set()]
        await journal.write(claim, [jp.CreateIntent({"prompt": "a red fox"}, ())])  # guarded
        assert await journal.state_of("id:a") is ItemState.SUBMITTING


async def test_a_stopping_run_waits_for_a_held_lock_once_only(
    tmp_path: Path, waiting: WaitingWarnings
) -> None:
    """Once the run stops (``hurry``: Ctrl-C), a lock held past one busy timeout fails the
    write with ``JournalWriteError``: the stop is not held up for as long as it is held."""
    path = tmp_path / "journal.sqlite"
    async with BulkJournal(path) as journal, holding_the_write_lock(path):
        journal.hurry()
        with anyio.fail_after(30), pytest.raises(JournalWriteError, match="database is locked"):
            await journal.claim("id:a", lease=60)
    assert not waiting.messages


@pytest.mark.timeout(60, method="thread")  # a close that hangs is shielded from signals
async def test_cancelled_from_outside_while_waiting_the_journal_closes(
    tmp_path: Path, waiting: WaitingWarnings
) -> None:
    """A caller's scope cancelled (``move_on_after`` around a run) while an intent waits
    for another process's lock: the journal closes instead of waiting forever for a
    writer that is gone (on trio it did)."""
    path = tmp_path / "journal.sqlite"
    with anyio.fail_after(30), anyio.CancelScope() as outer:
        async with (
            BulkJournal(path) as journal,
            holding_the_write_lock(path) as holder,
            anyio.create_task_group() as tasks,
        ):
            tasks.start_soon(journal.intent, "id:a", 1, "a", {"prompt": "a red fox"}, ())
            await waiting.enough.wait()
            outer.cancel()
            assert holder.stdin is not None
            await holder.stdin.aclose()  # let go: a write may now commit, or not
    assert outer.cancelled_caught


async def test_a_guarded_write_renews_a_lease_run_out_and_a_released_claim_holds_nothing(
    tmp_path: Path,
) -> None:
    """A claim whose lease ran out (the process waited), taken by nobody: its intent is
    written and renews the lease, so another process cannot take the item as the create
    leaves. Released, the claim holds nothing: an intent is refused, a renewal finds it
    lost."""
    path = tmp_path / "journal.sqlite"
    intent = jp.CreateIntent({"prompt": "a red fox"}, ())
    async with BulkJournal(path) as one, BulkJournal(path) as other:
        claim = await one.claim("id:a", lease=60)
        assert claim is not None
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
            db.execute("UPDATE claims SET lease_until = 1")  # ran out long ago
        await one.write(claim, [intent])  # still its own: written
        assert await other.claim("id:a", lease=60) is None  # renewed: not to be taken
        await one.release(claim)
        with pytest.raises(ClaimLostError):
            await one.write(claim, [intent])
        assert await one.renew_all([claim], lease=60) == {"id:a"}
        taken = await other.claim("id:a", lease=60)
        assert taken is not None
        assert taken.fence == claim.fence + 1
