"""The bulk runner as a driver of THE follow machine: creates slower than a stopping run's
wait, presses whose answer was lost, against the in-process emulator."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from akool_async import AkoolClient
from akool_async._exceptions import ClaimLostError
from akool_async._journal_protocol import Claim, CreateIntent
from akool_async.bulk import _journal, _tree, run_bulk
from akool_async.bulk._journal import JournalWriteError
from akool_async.bulk._journal_follow import BulkJournal
from akool_async.bulk._journal_writes import LAZY_COMMIT
from akool_async.bulk._states import ItemState
from akool_async.emulator import Credits, Emulator, Faults

from .test_bulk_run import FAST, bulk, items, manifest

CREATE = "createBySourcePrompt"


def journal(out: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(out / "journal.sqlite") as db:
        return db.execute(sql, params).fetchall()


async def test_a_create_slower_than_the_stop_wait_is_done_when_not_stopping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stopping run's wait bounds nothing while the run goes on: a create answering
    after it is followed to its images, not left uncertain."""
    monkeypatch.setattr(_tree, "SHIELD_SECONDS", 0.01)
    emulator = Emulator(FAST)
    emulator.set_faults(Faults(slow=1.0, slow_seconds=0.3, endpoints=frozenset({CREATE})))
    async with emulator:
        results, run = await bulk(emulator, items(2), tmp_path)
    assert [r.state for r in results] == ["done"] * 2
    assert run.summary.uncertain == 0
    assert emulator.counters.requests[CREATE] == 2


async def test_a_grids_parts_saved_before_a_stop_are_journalled_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A V follow-up's four parts are saved image by image; stopped while the last one
    downloads, the three on disk are in the journal already (a resume keeps them, never
    fetching them again or saving beside them)."""
    download_to = AkoolClient.download_to
    last_part = anyio.Event()

    async def stalling(self: AkoolClient, source: Any, choose: Any, **kwargs: Any) -> Any:
        chosen: list[Path] = []

        def noting() -> Any:  # in the download's thread
            chosen.append(Path(choose()))
            return chosen[0]

        saved = await download_to(self, source, noting, **kwargs)
        if chosen[0].name.endswith("-V1-4.png"):
            last_part.set()
            await anyio.sleep_forever()  # the run is stopped meanwhile
        return saved

    monkeypatch.setattr(AkoolClient, "download_to", stalling)
    emulator = Emulator(FAST)
    async with emulator:
        async with (
            emulator.client(rate_limit=None) as client,
            run_bulk(client, items(1, follow_ups=["V1"]), out_dir=tmp_path) as run,
        ):
            await last_part.wait()
            run.stop(cancel_in_flight=True)
            assert [result async for result in run] == []
        sql = ("SELECT i.idx FROM images i JOIN jobs j USING (job_id)"
               " WHERE j.button = 'V1' AND i.path IS NOT NULL ORDER BY i.idx")  # fmt: skip
        parts = journal(tmp_path, sql)
        assert parts == [(1,), (2,), (3,)]
        monkeypatch.setattr(AkoolClient, "download_to", download_to)
        again, _ = await bulk(emulator, items(1, follow_ups=["V1"]), tmp_path)
    assert [r.state for r in again] == ["done"]
    saved = sorted(path.name for path in tmp_path.glob("id-req-1/*.png"))
    assert saved == ["1-V1-1.png", "1-V1-2.png", "1-V1-3.png", "1-V1-4.png", "1.png"]
    assert emulator.counters.requests["image"] == 1 + 4 + 1  # the 4th part fetched again


async def test_a_create_answering_while_the_run_stops_has_its_ids_journalled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped (in flight cancelled) once a create's intent is written, as it leaves: its
    answer is let come, its ids are journalled, and the resume follows them without
    creating again."""
    intended = anyio.Event()
    intend = BulkJournal.claim_and_intend  # a new item's intent, its claim taken with it

    async def noting(
        self: BulkJournal, key: str, intent: CreateIntent, **kwargs: Any
    ) -> tuple[Claim | None, ItemState | None]:
        taken = await intend(self, key, intent, **kwargs)
        intended.set()
        return taken

    monkeypatch.setattr(BulkJournal, "claim_and_intend", noting)
    emulator = Emulator(FAST)
    emulator.set_faults(Faults(slow=1.0, slow_seconds=0.3, endpoints=frozenset({CREATE})))
    async with emulator:
        async with (
            emulator.client(rate_limit=None) as client,
            run_bulk(client, items(1), out_dir=tmp_path) as run,
        ):

            async def stop_once_sent() -> None:
                await intended.wait()
                run.stop(cancel_in_flight=True)

            results = []
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(stop_once_sent)
                async for result in run:
                    results.append(result)
        assert run.interrupted
        assert results == []  # stopped before it ended
        assert journal(tmp_path, "SELECT state FROM items") == [("submitted",)]
        assert len(journal(tmp_path, "SELECT job_id FROM jobs")) == 1
        emulator.set_faults(Faults())
        again, _ = await bulk(emulator, items(1), tmp_path)
    assert [r.state for r in again] == ["done"]
    assert emulator.counters.requests[CREATE] == 1
    assert not emulator.counters.duplicate_creates


async def test_a_follow_up_the_budget_holds_back_is_pressed_by_a_resume_with_more(
    tmp_path: Path,
) -> None:
    """A budget for the create (1 credit) but not its U1 (2 more): the line ends held back
    (``budget``, not ``failed``: a plain resume would have skipped it for good), its batch
    image saved, U1 never sent; a resume with a larger budget presses U1 once and creates
    nothing again."""
    emulator = Emulator(FAST)
    async with emulator:
        (first,), run = await bulk(emulator, items(1, follow_ups=["U1"]), tmp_path, budget=1)
        assert first.state == "budget"
        assert [i.button for i in first.images if i.ok] == [None]
        assert emulator.counters.requests["createbybutton"] == 0
        assert run.summary.items_failed == 0
        (again,), _ = await bulk(emulator, items(1, follow_ups=["U1"]), tmp_path, budget=10)
    assert again.state == "done"
    assert [i.button for i in again.images if i.ok] == [None, "U1"]
    assert emulator.counters.requests[CREATE] == 1
    assert emulator.counters.requests["createbybutton"] == 1
    assert not emulator.counters.duplicate_creates


async def test_a_resumed_press_is_sent_only_if_the_parent_still_offers_it_unused(
    tmp_path: Path,
) -> None:
    """Two presses whose intent was journalled and whose answer was lost (as a kill right
    after the intent leaves them): U1 had reached the server (the parent's used_buttons
    says so), U2 had not. The resume presses U2 once and leaves U1 uncertain, unsent."""
    emulator = Emulator(FAST)
    async with emulator:
        # A budget for the create (1) and U1 (2): U2 is refused before it leaves.
        await bulk(emulator, items(1, follow_ups=["U1", "U2"]), tmp_path, budget=3)
        assert emulator.counters.requests["createbybutton"] == 1
        # As if killed after U1 left (its answer lost) and right after U2's intent was
        # written, before U2 left.
        with sqlite3.connect(tmp_path / "journal.sqlite") as db:
            db.execute("DELETE FROM images WHERE job_id IN"
                       " (SELECT job_id FROM jobs WHERE parent_id IS NOT NULL)")  # fmt: skip
            db.execute("DELETE FROM jobs WHERE parent_id IS NOT NULL")
            db.execute("UPDATE presses SET child_id = NULL")
            db.execute("INSERT INTO presses (parent_id, button, item_key)"
                       " SELECT parent_id, 'U2', item_key FROM presses")  # fmt: skip
            db.execute("UPDATE items SET state = 'submitted'")
        results, run = await bulk(emulator, items(1, follow_ups=["U1", "U2"]), tmp_path)
    (result,) = results
    assert result.state == "uncertain"
    assert emulator.counters.requests["createbybutton"] == 2  # U2 once, U1 never again
    lost = [(i.button, i.uncertain) for i in result.images if not i.ok]
    assert lost == [("U1", True)]
    assert [i.button for i in result.images if i.ok] == [None, "U2"]
    assert run.summary.uncertain == 1


async def test_a_claim_taken_over_after_its_lease_cannot_write_an_intent(tmp_path: Path) -> None:
    """Two journals on one file (two processes): the second may take an item only once
    the first's lease ran out, with a higher fence; the first then can neither renew nor
    write an intent (so it sends nothing), the second can."""
    intent = CreateIntent({"prompt": "a fox"}, ())
    path = tmp_path / "journal.sqlite"
    async with BulkJournal(path) as first, BulkJournal(path) as second:
        mine = await first.claim("id:a", lease=0.2)
        assert mine is not None
        assert await second.claim("id:a", lease=60) is None  # held, and its owner is alive
        await anyio.sleep(0.3)  # the lease under test runs out
        theirs = await second.claim("id:a", lease=60)
        assert theirs is not None
        assert theirs.fence == mine.fence + 1
        with pytest.raises(ClaimLostError):
            await first.renew(mine, lease=60)
        with pytest.raises(ClaimLostError):
            await first.write(mine, [intent])
        await second.write(theirs, [intent])
        assert await second.state_of("id:a") == "submitting"


async def test_a_new_items_intent_takes_its_claim_or_finds_it_held_or_recorded(
    tmp_path: Path,
) -> None:
    """``claim_and_intend`` (a new item, claimed by its intent in one commit): held by
    another process, it takes nothing and writes nothing; recorded meanwhile, it takes
    the claim but writes no intent and answers the state; else claim and intent, both
    committed (another reader finds them)."""
    intent = CreateIntent({"prompt": "a fox"}, ())
    path = tmp_path / "journal.sqlite"
    async with BulkJournal(path) as first, BulkJournal(path) as second:
        theirs = await second.claim("id:a", lease=60)
        assert theirs is not None
        assert await first.claim_and_intend("id:a", intent, lease=60) == (None, None)
        assert await first.state_of("id:a") is None  # nothing written
        await second.write(theirs, [intent])
        await second.release(theirs)
        await second.flush()
        mine, state = await first.claim_and_intend("id:a", intent, lease=60)
        assert mine is not None
        assert mine.fence == theirs.fence + 1
        assert state == "submitting"  # left as the other process recorded it
        fresh, none = await first.claim_and_intend("id:b", intent, lease=60, line=7)
        assert fresh is not None
        assert none is None
        with sqlite3.connect(path) as db:
            row = db.execute("SELECT state, line FROM items WHERE key = 'id:b'").fetchone()
            owner = db.execute("SELECT owner FROM claims WHERE key = 'id:b'").fetchone()
        assert row == ("submitting", 7)
        assert owner == (first.owner,)


async def test_every_claim_held_is_renewed_while_its_tree_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs that take three leases: one task renews every claim held (one transaction),
    so no item's lease runs out while its tree runs; each is released at its end."""
    lease = 0.3
    emulator = Emulator(attrs.evolve(FAST, time_scale=30))  # 30 s jobs: 1 s here
    path = tmp_path / "journal.sqlite"
    both_created, submitted = anyio.Event(), _journal.Journal.submitted

    async def counting(self: _journal.Journal, key: str, *args: Any, **kwargs: Any) -> None:
        await submitted(self, key, *args, **kwargs)
        with sqlite3.connect(path) as db:
            if db.execute("SELECT COUNT(*) FROM jobs").fetchone() == (2,):
                both_created.set()

    def leases() -> list[tuple[str, int, float]]:
        with sqlite3.connect(path) as db:
            return db.execute("SELECT key, fence, lease_until FROM claims ORDER BY key").fetchall()

    monkeypatch.setattr(_journal.Journal, "submitted", counting)
    async with (
        emulator,
        emulator.client(rate_limit=None) as client,
        run_bulk(client, items(2), out_dir=tmp_path, lease=lease) as run,
    ):
        await both_created.wait()
        await anyio.sleep(2 * lease)  # past the first lease of each, still running
        held, now = leases(), time.time()
        results = [result async for result in run]
    assert [result.state for result in results] == ["done", "done"]
    assert [(key, fence) for key, fence, _ in held] == [("id:req-1", 1), ("id:req-2", 1)]
    assert all(until > now for _, _, until in held)  # renewed: never ran out
    assert all(until == 0 for _, _, until in leases())  # released


async def test_a_claim_reads_the_items_state_in_its_own_transaction(tmp_path: Path) -> None:
    """``claim_with_state`` answers the state another process left the item in, read when
    the claim was taken; the claim is committed with the writer's batch (another
    connection sees it), and a claim held elsewhere answers no state."""
    path = tmp_path / "journal.sqlite"
    async with BulkJournal(path) as first, BulkJournal(path) as second:
        mine = await first.claim("id:a", lease=60)
        assert mine is not None
        await first.write(mine, [CreateIntent({"prompt": "a fox"}, ())])
        await first.release(mine)
        await first.flush()
        new, none = await second.claim_with_state("id:b", lease=60)
        assert new is not None
        assert none is None
        theirs, state = await second.claim_with_state("id:a", lease=60)
        assert theirs is not None
        assert theirs.fence == mine.fence + 1
        assert state == "submitting"
        with sqlite3.connect(path) as db:  # committed: another reader finds it
            owner = db.execute("SELECT owner FROM claims WHERE key = 'id:a'").fetchone()
        assert owner == (second.owner,)
        assert await first.claim_with_state("id:a", lease=60) == (None, None)


async def test_writes_nobody_waits_for_ride_along_and_are_committed_on_their_own(
    tmp_path: Path,
) -> None:
    """A write nobody waits for (the item's line) is committed with the next write some
    task waits for (one transaction), and, with none coming, by the writer on its own
    (``LAZY_COMMIT``): never left for a flush."""
    path = tmp_path / "journal.sqlite"

    def line_of(key: str) -> int | None:
        with sqlite3.connect(path) as db:
            row = db.execute("SELECT line FROM items WHERE key = ?", (key,)).fetchone()
        return None if row is None else int(row[0])

    async with BulkJournal(path) as journal:
        claim = await journal.claim("id:a", lease=60, line=1)
        assert claim is not None
        await journal.write(claim, [CreateIntent({"prompt": "a fox"}, ())])
        await journal.saw("id:a", 7)
        assert await journal.claim("id:b", lease=60) is not None  # waited for: committed
        assert line_of("id:a") == 7  # ... and the line with it
        await journal.saw("id:a", 9)
        with anyio.fail_after(30):  # bounds a hang only: LAZY_COMMIT is 50 ms
            while line_of("id:a") != 9:  # noqa: ASYNC110 - another reader's view: no event
                await anyio.sleep(LAZY_COMMIT)


async def test_a_claim_cancelled_while_it_is_committed_still_reaches_its_caller(
    tmp_path: Path,
) -> None:
    """A caller cancelled while its claim is being committed still gets the claim (to
    release it): otherwise the item stays held by nobody until its lease ends."""
    async with BulkJournal(tmp_path / "journal.sqlite") as journal:
        claim: Claim | None = None
        with anyio.CancelScope() as scope:
            scope.cancel()  # cancelled before the commit even starts
            claim, _ = await journal.claim_with_state("id:a", lease=60)
        assert claim is not None
        await journal.release(claim)
        await journal.flush()  # a release rides along with the next commit
        async with BulkJournal(tmp_path / "journal.sqlite") as other:
            taken, _ = await other.claim_with_state("id:a", lease=60)
            assert taken is not None  # released: another journal takes it at once


async def test_a_result_is_reported_only_once_its_records_are_on_disk(tmp_path: Path) -> None:
    """Each result, the moment it is handed out, is already in the file as another
    process would read it: the item finished, every image with its path (its records were
    committed first, not left for the writer's next lazy commit)."""
    out = tmp_path / "out"
    emulator = Emulator(FAST)
    seen = 0
    client = emulator.client(rate_limit=None)
    async with emulator, client, run_bulk(client, items(12, batch_quantity=2), out_dir=out) as run:
        async for result in run:
            with sqlite3.connect(out / "journal.sqlite") as db:  # a reader of its own
                (state,) = db.execute(
                    "SELECT state FROM items WHERE key = ?", (result.key,)
                ).fetchone()
                saved = db.execute(
                    "SELECT COUNT(*) FROM images JOIN jobs USING (job_id)"
                    " WHERE jobs.item_key = ? AND images.path IS NOT NULL", (result.key,)
                ).fetchone()[0]  # fmt: skip
            assert (state, saved) == (result.state, 2), result.key
            seen += 1
    assert seen == 12


async def test_requests_without_a_job_have_a_manifest_row_each(tmp_path: Path) -> None:
    """Uncertain creates (answers lost) and creates refused for want of credit: one row
    each in the manifest, with the request's state, its reason and when its create left."""
    emulator = Emulator(attrs.evolve(FAST, credits=Credits(balance=2)))
    emulator.set_faults(Faults(drop_connection=1.0, endpoints=frozenset({CREATE})))
    async with emulator:
        await bulk(emulator, items(2), tmp_path / "lost")
        emulator.set_faults(Faults())
        await bulk(emulator, items(2, batch_quantity=4), tmp_path / "refused")
    for folder, state in (("lost", "uncertain"), ("refused", "refused")):
        rows = manifest(tmp_path / folder)
        assert [(r["line"], r["kind"], r["state"], r["ok"]) for r in rows] == [
            (1, "request", state, False),
            (2, "request", state, False),
        ]
        assert all(r["error"] and r["submitted"] for r in rows)


async def test_a_journal_that_cannot_be_written_stops_the_run_and_names_the_lost_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills as the first creates' ids are to be committed: the run stops
    submitting at once and raises one clean error naming the jobs created whose ids
    could not be recorded (they exist on the server), never a raw group."""
    commit = _journal.Journal._commit

    async def full(self: _journal.Journal, batch: list[Any]) -> None:
        if any("INTO jobs" in write.sql for write in batch):
            raise sqlite3.OperationalError("database or disk is full")
        await commit(self, batch)

    monkeypatch.setattr(_journal.Journal, "_commit", full)
    emulator = Emulator(FAST)
    async with emulator:
        with pytest.raises(JournalWriteError, match="jobs created but not journalled") as caught:
            await bulk(emulator, items(10), tmp_path, concurrency=2)
    error = caught.value
    assert "disk is full" in error.message
    assert 1 <= len(error.job_ids) <= 2
    assert set(error.job_ids) <= set(emulator.backend.jobs)
    assert all(job_id in error.message for job_id in error.job_ids)
    assert emulator.counters.requests[CREATE] <= 2  # nothing sent after the failure


async def test_a_creates_ids_are_journalled_even_when_watching_its_jobs_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create's jobs are watched before its ids are written (their first poll need not
    wait for that commit); if watching fails, the ids are still journalled, paid for."""

    def broken(watch_set: object, action: object) -> None:
        raise RuntimeError("the watch set broke")

    monkeypatch.setattr(_tree.fio, "watch", broken)
    emulator = Emulator(FAST)
    async with emulator:
        with pytest.raises(BaseException) as raised:  # noqa: PT011 - however it is grouped
            await bulk(emulator, items(1), tmp_path)
    assert raised.group_contains(RuntimeError, match="the watch set broke")
    assert emulator.counters.requests[CREATE] == 1
    assert len(journal(tmp_path, "SELECT job_id FROM jobs")) == 1  # the one job created
    assert journal(tmp_path, "SELECT state FROM items") == [("submitted",)]
