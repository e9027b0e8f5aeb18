"""run_bulk against the in-process emulator: results, journal, resume, budget, faults."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import pytest

from akool_async import RetryPolicy
from akool_async.bulk import BulkItem, ItemResult, JournalExistsError, parse_record, run_bulk
from akool_async.bulk._item import PriorityGate
from akool_async.emulator import Credits, Emulator, EmulatorConfig, Faults, Fixed, LogNormal

from .emulated import ManualClock

FAST = EmulatorConfig(time_scale=1000, durations=Fixed(30), image_max_side=32)


def items(count: int, **fields: Any) -> list[BulkItem]:
    entries = [parse_record(n, {"id": f"req-{n}", "prompt": f"a fox, take {n}", **fields})
               for n in range(1, count + 1)]  # fmt: skip
    assert all(isinstance(e, BulkItem) for e in entries)
    return entries  # type: ignore[return-value]


async def bulk(
    emulator: Emulator, entries: list[Any], out: Path, **options: Any
) -> tuple[list[ItemResult], Any]:
    retry = options.pop("retry", RetryPolicy(wait=False))
    options.setdefault("resume", True)  # the tests resume on purpose; refusing is tested apart
    client = emulator.client(rate_limit=None, retry=retry)
    async with client, run_bulk(client, entries, out_dir=out, **options) as run:
        results = [result async for result in run]
    return results, run


def manifest(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


async def test_every_image_on_disk_once_verified_and_in_the_manifest(tmp_path: Path) -> None:
    """20 requests x 2 images, U1 on each: 80 images saved, byte-identical, all listed."""
    emulator = Emulator(FAST)
    async with emulator:
        results, run = await bulk(
            emulator, items(20, batch_quantity=2, follow_ups=["U1"]), tmp_path
        )
    assert sorted(r.state for r in results) == ["done"] * 20
    records = manifest(tmp_path)
    assert len(records) == 80
    assert all(r["ok"] for r in records)
    assert len({r["path"] for r in records}) == 80
    for record in records:
        assert (tmp_path / record["path"]).read_bytes() == emulator.image_bytes(record["job_id"])
    children = [r for r in records if r["parent_id"]]
    assert len(children) == 40
    assert {r["button"] for r in children} == {"U1"}
    assert run.summary.images_done == 80
    assert run.summary.credits == emulator.counters.credits_charged == 40 * 1 + 40 * 2
    assert not emulator.counters.duplicate_creates


async def test_bad_and_duplicate_lines_are_reported_and_the_rest_goes_on(tmp_path: Path) -> None:
    """Invalid lines and a repeated id come back as 'invalid'; every other request is done."""
    entries = [
        *items(3),
        parse_record(9, {"scale": "1:1"}),
        parse_record(10, {"id": "req-2", "prompt": "again"}),
    ]
    emulator = Emulator(FAST)
    async with emulator:
        results, run = await bulk(emulator, entries, tmp_path)
    states = {r.line: r.state for r in results}
    assert states == {1: "done", 2: "done", 3: "done", 9: "invalid", 10: "invalid"}
    assert run.summary.invalid == 2
    assert emulator.counters.jobs_created == 3


async def test_budget_stops_new_submissions(tmp_path: Path) -> None:
    """With 10 credits and requests of 4 images, two are created and nothing beyond the budget."""
    emulator = Emulator(FAST)
    async with emulator:
        results, run = await bulk(
            emulator, items(6, batch_quantity=4), tmp_path, concurrency=1, budget=10
        )
    assert [r.state for r in results][:2] == ["done", "done"]
    assert "budget" in {r.state for r in results}
    assert emulator.counters.credits_charged == 8 <= 10
    assert run.summary.credits == 8


async def test_uncertain_creates_are_not_resubmitted_unless_asked(tmp_path: Path) -> None:
    """A create whose answer was lost is uncertain; resuming keeps it so; asking resubmits."""
    emulator = Emulator(FAST)
    emulator.set_faults(Faults(drop_connection=1.0, endpoints=frozenset({"createBySourcePrompt"})))
    async with emulator:
        first, _ = await bulk(emulator, items(3), tmp_path)
        assert [r.state for r in first] == ["uncertain"] * 3
        emulator.set_faults(Faults())
        again, run = await bulk(emulator, items(3), tmp_path)
        assert [r.state for r in again] == ["uncertain"] * 3
        assert run.summary.uncertain == 3
        forced, run = await bulk(emulator, items(3), tmp_path, resubmit_uncertain=True)
    assert [r.state for r in forced] == ["done"] * 3
    assert emulator.counters.requests["createBySourcePrompt"] == 6  # 3 lost answers + 3 asked for


@pytest.mark.long
async def test_a_stopped_run_resumes_without_creating_twice(tmp_path: Path) -> None:
    """Stopped mid-way, a run resumed on its journal finishes and never repeats a create."""
    # Spread durations: at the first result the others are still running (with equal
    # ones they all end together, within the first result's commit).
    config = EmulatorConfig(time_scale=300, durations=LogNormal(30, 1.0), image_max_side=32)
    emulator = Emulator(config)
    async with emulator:
        async with (
            emulator.client(rate_limit=None) as client,
            run_bulk(client, items(12, follow_ups=["V1"]), out_dir=tmp_path, concurrency=6) as run,
        ):
            async for _result in run:
                run.stop(cancel_in_flight=True)
                break
        assert run.interrupted
        assert run.summary is not None
        assert run.summary.images_failed == 0  # in flight at the stop: not finished, not failed
        assert run.summary.images_pending + run.summary.images_done == len(manifest(tmp_path))
        assert run.summary.images_pending > 0
        assert any(line.startswith("not finished: ") for line in run.summary.lines())
        created_before = emulator.counters.jobs_created
        results, run = await bulk(emulator, items(12, follow_ups=["V1"]), tmp_path)
    assert {r.state for r in results} <= {"done", "skipped"}
    assert run.summary.images_done == 12 + 12 * 4  # a V result is a grid of 4 (issue 14)
    assert not emulator.counters.duplicate_creates
    assert emulator.counters.jobs_created == 24 >= created_before


async def test_a_failed_press_is_pressed_again_on_resume(tmp_path: Path) -> None:
    """A button press refused (nothing created) is retried on resume, settled by used_buttons."""
    emulator = Emulator(FAST)
    emulator.set_faults(Faults(code_1108=1.0, endpoints=frozenset({"createbybutton"})))
    async with emulator:
        first, _ = await bulk(
            emulator, items(2, follow_ups=["U2"]), tmp_path, retry=RetryPolicy(attempts=1)
        )
        assert [r.state for r in first] == ["failed"] * 2
        emulator.set_faults(Faults())
        # A failed request is finished: only an explicit resubmission would redo it. Mark
        # them submitted again to exercise the press path of a resumed request.
        import sqlite3

        with sqlite3.connect(tmp_path / "journal.sqlite") as db:
            db.execute("UPDATE items SET state = 'submitted'")
        again, _ = await bulk(emulator, items(2, follow_ups=["U2"]), tmp_path)
    assert [r.state for r in again] == ["done"] * 2
    assert emulator.counters.requests["createbybutton"] == 4
    assert emulator.counters.jobs_created == 4


async def test_a_press_whose_answer_was_lost_leaves_its_request_uncertain(
    tmp_path: Path,
) -> None:
    """The press reached the server (its job exists) but its id never came back: the
    request is uncertain, and neither resuming nor resubmitting presses or creates again."""
    emulator = Emulator(FAST)
    emulator.set_faults(Faults(drop_connection=1.0, endpoints=frozenset({"createbybutton"})))
    async with emulator:
        first, run = await bulk(emulator, items(2, follow_ups=["V1"]), tmp_path)
        assert [r.state for r in first] == ["uncertain"] * 2
        assert run.summary.uncertain == 2
        lost = [image for r in first for image in r.images if not image.ok]
        assert [(image.button, image.uncertain) for image in lost] == [("V1", True)] * 2
        emulator.set_faults(Faults())
        again, _ = await bulk(emulator, items(2, follow_ups=["V1"]), tmp_path)
        forced, _ = await bulk(
            emulator, items(2, follow_ups=["V1"]), tmp_path, resubmit_uncertain=True
        )
    assert [r.state for r in again + forced] == ["uncertain"] * 4
    assert emulator.counters.requests["createbybutton"] == 2
    assert emulator.counters.requests["createBySourcePrompt"] == 2
    assert len(list(tmp_path.glob("*/*.png"))) == 2  # the parents' images


async def test_verified_images_are_not_downloaded_again(tmp_path: Path) -> None:
    """A resumed run with every file present and matching its hash downloads nothing."""
    emulator = Emulator(FAST)
    async with emulator:
        await bulk(emulator, items(4), tmp_path)
        downloads = emulator.counters.requests["image"]
        import sqlite3

        with sqlite3.connect(tmp_path / "journal.sqlite") as db:
            db.execute("UPDATE items SET state = 'submitted'")
        (tmp_path / "id-req-1" / "1.png").write_bytes(b"tampered")
        results, _ = await bulk(emulator, items(4), tmp_path)
    assert [r.state for r in results] == ["done"] * 4
    assert emulator.counters.requests["image"] == downloads + 1  # only the tampered one
    assert (tmp_path / "id-req-1" / "1.png").read_bytes()[:4] == b"\x89PNG"


async def test_results_close_to_expiry_are_flagged(tmp_path: Path) -> None:
    """Jobs created six and a half days ago are saved and flagged as near expiry."""
    clock = ManualClock(now=time.time() - 6.5 * 24 * 3600)
    emulator = Emulator(EmulatorConfig(instant=True, image_max_side=32), clock=clock)
    async with emulator:
        await bulk(emulator, items(2), tmp_path)
    assert all(r["near_expiry"] and r["ok"] for r in manifest(tmp_path))


async def test_downloads_go_oldest_first() -> None:
    """The download gate serves waiters by priority (oldest job first), one at a time."""
    gate = PriorityGate(1)
    order: list[float] = []

    async def download(priority: float) -> None:
        async with gate.slot(priority):
            order.append(priority)
            await anyio.lowlevel.checkpoint()

    holding = gate.slot(0)
    await holding.__aenter__()
    async with anyio.create_task_group() as tg:
        for priority in (5.0, 1.0, 3.0):
            tg.start_soon(download, priority)
        await anyio.wait_all_tasks_blocked()
        await holding.__aexit__(None, None, None)  # the held slot passes to the oldest
    assert order == [1.0, 3.0, 5.0]


def test_concurrency_must_be_positive(tmp_path: Path) -> None:
    """A concurrency under one is refused."""

    async def run() -> None:
        emulator = Emulator(FAST)
        async with emulator, emulator.client() as client:
            with pytest.raises(ValueError, match="concurrency"):
                async with run_bulk(client, [], out_dir=tmp_path, concurrency=0):
                    pass

    anyio.run(run)


async def test_an_existing_journal_is_continued_only_when_asked(tmp_path: Path) -> None:
    """Like the command line: an existing journal without resume=True is refused, before
    anything is sent; with it, the run continues."""
    emulator = Emulator(FAST)
    async with emulator:
        await bulk(emulator, items(2), tmp_path)
        sent = sum(emulator.counters.requests.values())
        with pytest.raises(JournalExistsError, match="resume=True"):
            await bulk(emulator, items(2), tmp_path, resume=False)
        assert sum(emulator.counters.requests.values()) == sent
        results, _ = await bulk(emulator, items(2), tmp_path, resume=True)
    assert [r.state for r in results] == ["skipped", "skipped"]


async def test_refused_creates_are_retried_on_resume(tmp_path: Path) -> None:
    """Creates refused for want of credit made nothing: a resume, with credit, makes them."""
    emulator = Emulator(attrs.evolve(FAST, credits=Credits(balance=2)))
    async with emulator:
        first, run = await bulk(emulator, items(4), tmp_path, concurrency=1)
        assert [r.state for r in first] == ["done", "done", "failed", "failed"]
        assert run.summary.items_failed == 2
        emulator.backend.default_account.credit = 100
        again, run = await bulk(emulator, items(4), tmp_path, concurrency=1)
    assert [r.state for r in again] == ["skipped", "skipped", "done", "done"]
    assert run.summary.items_done == 4
    assert not emulator.counters.duplicate_creates


async def test_a_run_cancelled_from_outside_journals_every_job_it_created(tmp_path: Path) -> None:
    """The caller's scope cancelled with creates on their way (a web request ending): the
    run ends cancelled, every job the server created is in the journal (none lost to a
    writer cancelled with its caller), and the manifest is written."""
    emulator = Emulator(FAST)
    out = tmp_path / "out"
    async with emulator:
        client = emulator.client(rate_limit=None, retry=RetryPolicy(wait=False))
        async with client:
            with anyio.CancelScope() as outside:
                async with run_bulk(client, items(40, batch_quantity=2), out_dir=out) as run:
                    async for _ in run:
                        outside.cancel()  # at the first result: the others on their way
        assert outside.cancelled_caught
        created = emulator.counters.jobs_created
    assert created > 2  # more than the first result's
    with sqlite3.connect(out / "journal.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM jobs").fetchone() == (created,)
    assert (out / "manifest.jsonl").exists()
