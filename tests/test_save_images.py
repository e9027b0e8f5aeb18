"""``AkoolClient.download_images``: every image of a job saved, named ``<id>-<k>.png`` (and
``<id>-grid.png`` on request), byte for byte what the emulator serves."""

from __future__ import annotations

from pathlib import Path

import pytest

from akool_async import ValidationError

from .test_grids import faked


async def test_a_grids_four_images_and_its_grid_are_saved(tmp_path: Path) -> None:
    folder = tmp_path / "out" / "fox"  # created on the way
    async with faked(parts_delay=0.0) as (emulator, client, _clock):
        result = await client.wait(await client.create_by_prompt(prompt="a fox"))
        saved = await client.download_images(result, folder, with_grid=True)
        only_parts = await client.download_images(result, tmp_path / "parts")
    names = [f"{result.id}-{k}.png" for k in (1, 2, 3, 4)]
    assert [s.path for s in saved] == [folder / n for n in [*names, f"{result.id}-grid.png"]]
    assert [s.path.read_bytes() for s in saved] == [
        *(emulator.image_bytes(result.id, k) for k in (1, 2, 3, 4)),
        emulator.image_bytes(result.id),
    ]
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == names
    assert [s.sha256 for s in only_parts] == [s.sha256 for s in saved[:4]]


async def test_a_single_image_is_saved_as_image_1(tmp_path: Path) -> None:
    """A v4 job: one image, ``<id>-1.png``; asking for a grid it has not adds nothing."""
    async with faked(parts_delay=0.0) as (emulator, client, _clock):
        (job,) = await client.create_by_source_prompt(prompt="an owl")
        result = await client.wait(job)
        (saved,) = await client.download_images(result, tmp_path, with_grid=True)
    assert saved.path == tmp_path / f"{result.id}-1.png"
    assert saved.path.read_bytes() == emulator.image_bytes(result.id)


async def test_a_job_without_images_is_refused_before_any_request(tmp_path: Path) -> None:
    async with faked() as (emulator, client, _clock):
        job = await client.create_by_prompt(prompt="a fox")
        with pytest.raises(ValidationError, match="QUEUEING"):
            await client.download_images(job, tmp_path)
        with pytest.raises(ValidationError, match="folder"):
            await client.download_images(await client.wait(job), "")
        with pytest.raises(ValidationError, match="an ImageJob"):
            await client.download_images(job.id, tmp_path)  # type: ignore[arg-type]
    assert emulator.counters.requests["image"] == 0
    assert list(tmp_path.iterdir()) == []
