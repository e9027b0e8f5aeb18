"""Several ``akool-async bulk --resume`` processes on one output folder, against one
emulator over real HTTP: they share the items as workers (claims under a lease, with a
fence), a killed one's items are taken over, and nothing is ever created twice."""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import sqlite3
import subprocess
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path

import anyio
import attrs
import pytest

from akool_async import ImageJob, ImageStatus
from akool_async.bulk._journal_follow import BulkJournal
from akool_async.bulk._states import ItemState
from akool_async.emulator import Emulator, Faults

from .test_bulk_cli import CLI, FAST, bulk, item_errors, item_states, prompts, served, unmeasured

CREATE = "createBySourcePrompt"
SLOW = attrs.evolve(FAST, time_scale=40)  # a job takes ~0.75 s: the runs overlap
ARGS = ["--rate", "3000", "--concurrency", "6", "--resume"]


def runs_of_items(out: Path) -> dict[int, int]:
    """How many items each process (its run number) last wrote."""
    with sqlite3.connect(out / "journal.sqlite") as db:
        return dict(db.execute("SELECT run, COUNT(*) FROM items GROUP BY run").fetchall())


def started(env: dict[str, str], source: Path, out: Path, *extra: str,
            quiet: bool = True) -> subprocess.Popen[str]:  # fmt: skip
    args = [*ARGS, "--quiet"] if quiet else ARGS
    return subprocess.Popen([*CLI, str(source), "--out", str(out), *args, *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def both_sending(
    server: Emulator, env: dict[str, str], source: Path, out: Path
) -> tuple[subprocess.Popen[str], subprocess.Popen[str]]:
    """Two processes on one folder (2 s leases), each with its 6 creates on their way: the
    emulator holds every create's answer for 3 s, having created the jobs."""
    server.set_faults(Faults(slow=1.0, slow_seconds=3, endpoints=frozenset({CREATE})))
    pair = started(env, source, out, "--lease", "2"), started(env, source, out, "--lease", "2")
    while server.counters.requests[CREATE] < 12:  # both processes' workers sending
        time.sleep(0.05)  # polling for the signal point, not timing a race
    return pair


OPENERS, ROUNDS = 4, 100


def open_each_round(folder: Path, start: Barrier) -> None:
    """In a process of its own: each round, once every opener is ready, open that round's
    new journal (as a run does first) and close it."""

    async def opened(path: Path) -> None:
        async with BulkJournal(path):
            pass

    try:
        for round_ in range(ROUNDS):
            start.wait()
            anyio.run(opened, folder / str(round_) / "journal.sqlite")
    except BaseException:
        start.abort()  # the others stop at once, not at the barrier's timeout
        raise


def test_processes_opening_one_new_journal_at_once_all_open_it(tmp_path: Path) -> None:
    """Four processes open one new journal at the same moment, 100 times over: every open
    succeeds, and each of them is one run in the file. (Switching a new file to WAL
    fails at once, not after the busy timeout, while another opener holds its lock: about
    one open in eleven failed so before they were tried again.)"""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(OPENERS, timeout=60)
    openers = [context.Process(target=open_each_round, args=(tmp_path, start), daemon=True)
               for _ in range(OPENERS)]  # fmt: skip
    for opener in openers:
        opener.start()
    try:
        for opener in openers:
            opener.join(timeout=60)
    finally:  # one that hangs fails the test, and leaves no process behind
        for opener in openers:
            opener.kill()
            opener.join()
    assert [opener.exitcode for opener in openers] == [0] * OPENERS
    for round_ in range(ROUNDS):
        with sqlite3.connect(tmp_path / str(round_) / "journal.sqlite") as db:
            assert db.execute("SELECT COUNT(*) FROM runs").fetchone() == (OPENERS,)
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_a_failed_line_is_retried_once_by_two_processes_that_read_it_failed(
    tmp_path: Path,
) -> None:
    """Two processes with --retry-failed on one folder read item ``id:a`` failed. One
    retries it, and that attempt fails too; the other's retry then changes nothing (the
    attempt it read is set aside already) and goes by the journal: one retry for the
    line, not two (it used to set the new failure aside too, and send the line again)."""
    path, request = tmp_path / "journal.sqlite", {"prompt": "a red fox"}
    async with BulkJournal(path) as first:
        await first.intent("id:a", 1, "a", request, ())
        await first.submitted("id:a", [ImageJob(id="j1", status=ImageStatus.QUEUEING)])
        await first.item_state("id:a", ItemState.FAILED, "the job failed")
    async with BulkJournal(path) as one, BulkJournal(path) as other:
        read_by_one = (await one.recorded(["id:a"]))["id:a"]
        read_by_other = (await other.recorded(["id:a"]))["id:a"]
        assert await other.retry("id:a", read_by_other.run)
        await other.intent("id:a", 1, "a", request, ())
        await other.submitted("id:a", [ImageJob(id="j2", status=ImageStatus.QUEUEING)])
        await other.item_state("id:a", ItemState.FAILED, "the job failed again")
        await other.flush()
        assert not await one.retry("id:a", read_by_one.run)
        assert await one.state_of("id:a") is ItemState.FAILED
    with sqlite3.connect(path) as db:
        rows = dict(db.execute("SELECT key, state FROM items").fetchall())
    assert rows == {"id:a": "failed", f"id:a~failed{other.run}": "retried"}


@pytest.mark.long
def test_two_processes_on_one_folder_share_the_work_and_never_pay_twice(tmp_path: Path) -> None:
    """Started together on one folder: both end well, every item done once, each process
    did part of the work, 0 duplicate creates; neither calls the items the other took
    "no longer in the input"."""
    with served(SLOW) as (server, served_env):
        env = unmeasured(served_env)
        source, out = prompts(tmp_path / "p.jsonl", 24, batch_quantity=2), tmp_path / "out"
        first, second = (started(env, source, out, quiet=False) for _ in range(2))
        outputs = [process.communicate(timeout=240) for process in (first, second)]
        assert [first.returncode, second.returncode] == [0, 0], outputs
        summaries = [out_text for out_text, _ in outputs]
        assert all("done:" in text for text in summaries), summaries  # a summary each
        assert not [text for text in summaries if "no longer in the input" in text], summaries
        assert set(item_states(out).values()) == {"done"}, item_errors(out)
        assert len(item_states(out)) == 24
        assert server.counters.requests["createBySourcePrompt"] == 24
        assert server.counters.jobs_created == 48
        assert not server.counters.duplicate_creates
        shares = runs_of_items(out)
    assert len(shares) == 2, shares  # both processes worked on items
    assert sum(shares.values()) == 24


@pytest.mark.long
def test_a_killed_worker_s_items_are_taken_over_then_resumed_without_paying_twice(
    tmp_path: Path,
) -> None:
    """Two processes, creates on their way in each (the emulator holds every answer for
    3 s, having created the jobs); one is SIGKILLed. The other takes its items over at
    once (their holder is gone): those whose create may have left become uncertain,
    never pending; the rest is done, and a later --resume sends nothing again."""
    with served(SLOW) as (server, served_env):
        env = unmeasured(served_env)
        source, out = prompts(tmp_path / "p.jsonl", 24, batch_quantity=2), tmp_path / "out"
        victim, survivor = both_sending(server, env, source, out)
        victim.send_signal(signal.SIGKILL)
        victim.communicate()
        server.set_faults(Faults())  # what comes next answers at once
        out_text = survivor.communicate(timeout=240)
        assert survivor.returncode == 1, out_text  # uncertain items: not all done
        final = bulk(env, str(source), "--out", str(out), *ARGS)
        assert final.returncode == 1, final.stdout + final.stderr
        states = item_states(out)
        assert len(states) == 24
        uncertain = [key for key, state in states.items() if state == "uncertain"]
        # The killed process's creates then on their way (6 workers: 6 at most).
        assert 1 <= len(uncertain) <= 6, item_errors(out)
        assert set(states.values()) == {"done", "uncertain"}
        assert server.counters.requests[CREATE] == 24
        assert not server.counters.duplicate_creates


def write_locked(journal: Path) -> bool:
    """Whether a process holds the journal's write lock now (a probe that does not wait)."""
    probe = sqlite3.connect(journal, isolation_level=None, timeout=0)
    try:
        probe.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return True
    else:
        probe.execute("ROLLBACK")
        return False
    finally:
        probe.close()


def all_threads_stopped(pid: int) -> bool:
    """Whether every thread of process ``pid`` is stopped (``T`` in its ``stat``)."""
    states = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
            states.append((task / "stat").read_text().split(") ")[1][0])
    return all(state == "T" for state in states)


def ended(process: subprocess.Popen[str]) -> None:
    """``process`` killed if it still runs, and waited for (nothing left behind)."""
    if process.poll() is None:
        process.kill()
        process.wait()


def stop_without_the_write_lock(process: subprocess.Popen[str], journal: Path) -> None:
    """SIGSTOP ``process`` at a moment it does not hold the journal's write lock: stopped
    holding it, it would keep every other process waiting for it (as a stopped process
    does), where this test wants the other to go on."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None
        process.send_signal(signal.SIGSTOP)
        while not all_threads_stopped(process.pid):
            assert time.monotonic() < deadline
            time.sleep(0.01)  # polling for the stop to take effect, not timing a race
        if not write_locked(journal):  # held: by it, or for a moment by the other
            return
        process.send_signal(signal.SIGCONT)
    raise AssertionError("never stopped without the journal's write lock in 30 s")


@pytest.mark.long
def test_a_stalled_worker_loses_its_items_at_its_lease_and_sends_nothing_more(
    tmp_path: Path,
) -> None:
    """One of two processes is stopped (SIGSTOP) with creates on their way, past its
    2 s lease: the other takes its items over (fence + 1; those whose create may have
    left become uncertain). Let go on (SIGCONT), the stalled one finds its claims lost
    and sends nothing more for them. A final --resume: every item done or uncertain, 0
    duplicate creates."""
    with served(SLOW) as (server, served_env):
        env = unmeasured(served_env)
        source, out = prompts(tmp_path / "p.jsonl", 24, batch_quantity=2), tmp_path / "out"
        stalled, other = both_sending(server, env, source, out)
        try:
            stop_without_the_write_lock(stalled, out / "journal.sqlite")
            server.set_faults(Faults())
            other_out = other.communicate(timeout=90)  # it waits out the stalled leases
        finally:  # a test that fails leaves neither process behind, stopped or running
            stalled.send_signal(signal.SIGCONT)
            ended(other)
        try:
            stalled_out = stalled.communicate(timeout=90)
        finally:
            ended(stalled)
        assert other.returncode in (0, 1), other_out
        assert stalled.returncode in (0, 1), stalled_out
        final = bulk(env, str(source), "--out", str(out), *ARGS)
        assert final.returncode in (0, 1), final.stdout + final.stderr
        states = item_states(out)
        assert len(states) == 24
        assert set(states.values()) <= {"done", "uncertain"}, item_errors(out)
        assert server.counters.requests[CREATE] == 24  # each item created once
        assert not server.counters.duplicate_creates
