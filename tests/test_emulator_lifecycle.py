"""Job lifecycle on the emulator's clock, durations and failures as configured, real PNGs
that expire, and the client's downloads checking what they receive."""

from __future__ import annotations

import statistics
import struct
import zlib
from pathlib import Path

import pytest

import akool_async as ak
from akool_async import RetryPolicy
from akool_async.emulator import Emulator, EmulatorConfig, Faults, LogNormal
from akool_async.emulator._images import image_size, render_png
from akool_async.emulator._state import Backend

from .emulated import NO_WAIT, ManualClock, config


@pytest.mark.parametrize(
    ("scale", "resolution", "size"),
    [("1:1", "1080p", (1080, 1080)), ("16:9", "4k", (3840, 2160)), ("9:16", "1080p", (1080, 1920)),
     ("3:2", "1080p", (1620, 1080)), ("2:3", "4k", (2160, 3240)), ("4:3", "4k", (2880, 2160)),
     ("3:4", "1080p", (1080, 1440)), ("Original", "4k", (2160, 2160))],
)  # fmt: skip
def test_image_size_follows_scale_and_resolution(
    scale: str, resolution: str, size: tuple[int, int]
) -> None:
    """The short side comes from the resolution, the long side from the aspect ratio."""
    assert image_size(scale, resolution) == size
    scaled = image_size(scale, resolution, max_side=512)
    assert max(scaled) == 512
    assert abs(scaled[0] / scaled[1] - size[0] / size[1]) < 0.01


def test_png_is_valid_and_unique_per_job() -> None:
    """Chunks carry correct CRCs, the pixels decompress to the right size, ids differ."""
    data = render_png("abc", 64, 36)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, {}
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks[kind] = body
        offset += 12 + length
    assert list(chunks) == [b"IHDR", b"tEXt", b"IDAT", b"IEND"]
    assert struct.unpack(">II", chunks[b"IHDR"][:8]) == (64, 36)
    assert len(zlib.decompress(chunks[b"IDAT"])) == 36 * (1 + 3 * 64)
    assert render_png("abd", 64, 36) != data


def test_lognormal_durations_centre_on_thirty_seconds() -> None:
    """By default a job takes a log-normal time whose median is about 30 s."""
    backend = Backend(EmulatorConfig(seed=1), clock=lambda: 0.0)
    draws = [LogNormal().draw(backend.rng) for _ in range(4000)]
    assert 28 < statistics.median(draws) < 32
    assert min(draws) > 5
    assert max(draws) < 200


async def test_statuses_follow_the_clock_and_fail_rate() -> None:
    """Queueing for 20% of the time, then processing, then completed or failed as drawn."""
    clock = ManualClock()
    emulator = Emulator(config(fail_rate=0.5, seed=3), clock=clock)
    async with emulator, emulator.client(rate_limit=None, retry=NO_WAIT) as client:
        jobs = [job for _ in range(10) for job in await client.create_by_source_prompt(
            prompt="x", batch_quantity=4)]  # fmt: skip
        clock.advance(5.9)
        assert {(await client.info_by_model_id(j)).status for j in jobs} == {
            ak.ImageStatus.QUEUEING
        }
        clock.advance(0.2)
        assert {(await client.info_by_model_id(j)).status for j in jobs} == {
            ak.ImageStatus.PROCESSING
        }
        clock.advance(24)
        finals = [(await client.info_by_model_id(j)).status for j in jobs]
    failed = finals.count(ak.ImageStatus.FAILED)
    assert set(finals) == {ak.ImageStatus.COMPLETED, ak.ImageStatus.FAILED}
    assert 10 <= failed <= 30


async def test_instant_mode_finishes_at_once() -> None:
    """``instant=True``: the create answers status 1, the first read status 3."""
    emulator = Emulator(EmulatorConfig(instant=True))
    async with emulator, emulator.client(rate_limit=None) as client:
        (job,) = await client.create_by_source_prompt(prompt="x")
        assert job.status is ak.ImageStatus.QUEUEING
        assert (await client.info_by_model_id(job.id)).status is ak.ImageStatus.COMPLETED


async def test_empty_image_quirk_reads_from_upscaled_urls(tmp_path: Path) -> None:
    """A finished job answering ``image: ""`` still gives its URL (upscaled_urls[0])."""
    emulator = Emulator(EmulatorConfig(instant=True, empty_image_rate=1.0))
    async with emulator, emulator.client(rate_limit=None) as client:
        (job,) = await client.create_by_source_prompt(prompt="x")
        result = await client.info_by_model_id(job.id)
        assert result.image == ""
        assert result.url is not None
        saved = await client.download(result, tmp_path / "a.png")
    assert saved.path.read_bytes() == emulator.image_bytes(job.id)


async def test_string_numbers_quirk_structures() -> None:
    """Numbers sent as strings reach the user as numbers."""
    emulator = Emulator(EmulatorConfig(instant=True, string_numbers=True))
    async with emulator, emulator.client(rate_limit=None) as client:
        (job,) = await client.create_by_source_prompt(prompt="x")
        result = await client.info_by_model_id(job.id)
        credit = await client.credit_info()
    assert result.status is ak.ImageStatus.COMPLETED
    assert isinstance(result.create_time, int)
    assert credit.credit == emulator.config.credits.balance - 1


async def test_results_expire_after_their_time_to_live(tmp_path: Path) -> None:
    """After 7 emulated days the image is gone: ResultExpiredError, and nothing is written."""
    clock = ManualClock()
    emulator = Emulator(config(), clock=clock)
    async with emulator, emulator.client(rate_limit=None, retry=NO_WAIT) as client:
        (job,) = await client.create_by_source_prompt(prompt="x")
        clock.advance(30)
        result = await client.info_by_model_id(job.id)
        await client.download(result, tmp_path / "in-time.png")
        clock.advance(7 * 24 * 3600 + 1)
        with pytest.raises(ak.ResultExpiredError) as info:
            await client.download(result, tmp_path / "late.png")
    assert info.value.http_status == 404
    assert info.value.job_id == job.id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in-time.png"]


@pytest.mark.parametrize("fault", ["drop_connection", "malformed_json", "http_5xx", "html_error"])
async def test_downloads_retry_bad_transfers(tmp_path: Path, fault: str) -> None:
    """Cut, truncated, 5xx and HTML answers on a download are retried until a whole PNG lands."""
    emulator = Emulator(
        EmulatorConfig(instant=True, faults=Faults(**{fault: 0.5}, endpoints=frozenset({"image"})))
    )
    async with (
        emulator,
        emulator.client(rate_limit=None, retry=RetryPolicy(attempts=20, wait=False)) as client,
    ):
        jobs = await client.create_by_source_prompt(prompt="x", batch_quantity=4)
        for job in jobs:
            result = await client.info_by_model_id(job.id)
            saved = await client.download(result, tmp_path / f"{job.id}.png")
            assert saved.path.read_bytes() == emulator.image_bytes(job.id)
    assert emulator.counters.faults[fault] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{j.id}.png" for j in jobs)


async def test_download_refuses_unfinished_job(tmp_path: Path) -> None:
    """Downloading a job without an image is a ValidationError, nothing sent."""
    emulator = Emulator(config())
    async with emulator, emulator.client(rate_limit=None) as client:
        (job,) = await client.create_by_source_prompt(prompt="x")
        with pytest.raises(ak.ValidationError, match="completed"):
            await client.download(job, tmp_path / "x.png")
    assert emulator.counters.requests["image"] == 0
