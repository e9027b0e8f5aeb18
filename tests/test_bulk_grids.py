"""Bulk runs save every image of a job: a V result's four parts (and its grid when asked),
each with its manifest row, job id and index."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import attrs

from akool_async.bulk import run_bulk
from akool_async.emulator import Emulator, EmulatorConfig, Fixed

from .test_bulk_run import bulk, items, manifest

FAST = EmulatorConfig(time_scale=1000, durations=Fixed(30), image_max_side=32, parts_delay=5)


async def test_a_v_follow_up_saves_its_four_parts_and_its_grid_on_request(tmp_path: Path) -> None:
    """3 requests, V1 on each: 3 images + 3 x (4 parts + the grid), all listed, all intact."""
    emulator = Emulator(FAST)
    async with emulator:
        results, run = await bulk(emulator, items(3, follow_ups=["V1"]), tmp_path, save_grid=True)
    assert [r.state for r in results] == ["done"] * 3
    records = manifest(tmp_path)
    assert len(records) == 3 + 3 * 5
    assert all(r["ok"] for r in records)
    for record in records:
        part = record["index"] if record["button"] and record["kind"] == "image" else None
        expected = emulator.image_bytes(record["job_id"], part)
        assert (tmp_path / record["path"]).read_bytes() == expected
    for n in (1, 2, 3):
        folder = tmp_path / f"id-req-{n}"
        names = sorted(path.name for path in folder.iterdir())
        assert names == ["1-V1-1.png", "1-V1-2.png", "1-V1-3.png", "1-V1-4.png",
                         "1-V1-grid.png", "1.png"]  # fmt: skip
    varied = [r for r in records if r["button"] == "V1"]
    by_job: dict[str, list[tuple[int, str]]] = {}
    for record in varied:
        by_job.setdefault(record["job_id"], []).append((record["index"], record["kind"]))
    assert len(by_job) == 3
    for rows in by_job.values():
        assert rows == [(1, "image"), (2, "image"), (3, "image"), (4, "image"), (0, "grid")]
    # Each job's credits once, on its first row: the rows sum to what was charged.
    assert [r["credits"] is not None for r in varied] == [True, False, False, False, False] * 3
    assert sum(r["credits"] or 0 for r in records) == emulator.counters.credits_charged
    assert sum(i.credits or 0 for r in results for i in r.images) == run.summary.credits
    roots = [r for r in records if r["button"] is None]
    assert [(r["index"], r["kind"]) for r in roots] == [(1, "image")] * 3
    assert run.summary.images_done == 18
    assert sum(len(r.images) for r in results) == 18
    assert not any(r["parts_missing"] for r in records)


async def test_without_save_grid_only_the_parts_are_saved(tmp_path: Path) -> None:
    """The grid is left out unless asked for: 4 files and rows for a V result."""
    emulator = Emulator(FAST)
    async with emulator:
        results, _ = await bulk(emulator, items(1, follow_ups=["V2"]), tmp_path)
    assert [r.state for r in results] == ["done"]
    (result,) = results
    assert [(i.button, i.index) for i in result.images] == [
        (None, 1),
        ("V2", 1),
        ("V2", 2),
        ("V2", 3),
        ("V2", 4),
    ]
    assert sorted(p.name for p in (tmp_path / "id-req-1").iterdir()) == [
        "1-V2-1.png", "1-V2-2.png", "1-V2-3.png", "1-V2-4.png", "1.png"
    ]  # fmt: skip
    assert len(manifest(tmp_path)) == 5


async def test_a_grid_whose_parts_never_come_is_saved_whole_and_says_so(tmp_path: Path) -> None:
    """Past the grace period the grid is saved alone, as a grid (index 0, -grid.png, as
    a grid saved on request), marked; it carries the job's credits."""
    emulator = Emulator(attrs.evolve(FAST, parts_delay=1e9))
    policy = attrs.evolve(emulator.poll_policy(), parts_grace=0.01)
    async with (
        emulator,
        emulator.client(rate_limit=None, poll_policy=policy) as client,
        run_bulk(client, items(1, follow_ups=["V1"]), out_dir=tmp_path) as run,
    ):
        results = [result async for result in run]
    assert [r.state for r in results] == ["done"]
    (row,) = [r for r in manifest(tmp_path) if r["button"] == "V1"]
    assert row["parts_missing"]
    assert (row["index"], row["kind"], row["path"]) == (0, "grid", "id-req-1/1-V1-grid.png")
    assert row["credits"] == emulator.config.credits.button
    assert (tmp_path / row["path"]).read_bytes() == emulator.image_bytes(row["job_id"])
    assert [(i.index, i.parts_missing) for i in results[0].images] == [(1, False), (0, True)]


async def test_resuming_fetches_only_the_images_missing_on_disk(tmp_path: Path) -> None:
    """A run resumed on a journal whose item is not finished: of a V result's parts,
    only the one deleted from disk is downloaded again; nothing is created again."""
    emulator = Emulator(FAST)
    async with emulator:
        await bulk(emulator, items(1, follow_ups=["V1"]), tmp_path)
        (tmp_path / "id-req-1" / "1-V1-3.png").unlink()
        with sqlite3.connect(tmp_path / "journal.sqlite") as journal:
            journal.execute("UPDATE items SET state = 'submitted'")  # as if killed before done
        downloads, creates = emulator.counters.requests["image"], emulator.counters.jobs_created
        results, _ = await bulk(emulator, items(1, follow_ups=["V1"]), tmp_path)
    assert [r.state for r in results] == ["done"]
    assert emulator.counters.requests["image"] == downloads + 1
    assert emulator.counters.jobs_created == creates
    rows = manifest(tmp_path)
    assert len(rows) == 5
    assert all(r["ok"] for r in rows)
    (part,) = [r for r in rows if r["path"] == "id-req-1/1-V1-3.png"]
    assert (tmp_path / part["path"]).read_bytes() == emulator.image_bytes(part["job_id"], 3)
