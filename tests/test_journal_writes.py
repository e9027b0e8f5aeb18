"""Where the bulk journal's synced commits run: on the event loop while the disk syncs
quickly (a thread hop would cost more), in a worker thread for a while after a slow one."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import anyio
import pytest

from akool_async import ImageJob, ImageStatus
from akool_async.bulk import _journal
from akool_async.bulk import _journal_writes as writes


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
