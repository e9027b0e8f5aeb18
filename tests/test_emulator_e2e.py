"""The client end to end against the emulator, in-process and over real HTTP."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import httpx
import pytest

from akool_async import Button, ImageStatus, ValidationError
from akool_async.emulator import Emulator

from .emulated import MODES, ManualClock, config, wired


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_batch_lifecycle_buttons_and_downloads(mode: str, tmp_path: Path) -> None:
    """A batch of 4 queues, processes, completes; U2 upscales, V1 varies; bytes download intact."""
    clock = ManualClock()
    emulator = Emulator(config(image_max_side=None), clock=clock)
    async with wired(mode, emulator) as client:
        jobs = await client.create_by_source_prompt(
            prompt="a red fox in snow", batch_quantity=4, scale="16:9", resolution="1080p"
        )
        assert len(jobs) == 4
        assert len({job.id for job in jobs}) == 4
        assert all(job.status is ImageStatus.QUEUEING for job in jobs)
        assert all(job.model_name == "wavespeed-ai/flux-krea-dev-lora" for job in jobs)
        assert (await client.info_by_model_id(jobs[0].id)).status is ImageStatus.QUEUEING
        clock.advance(10)
        assert (await client.info_by_model_id(jobs[0].id)).status is ImageStatus.PROCESSING
        clock.advance(25)
        result = await client.info_by_model_id(jobs[0].id)
        assert result.status is ImageStatus.COMPLETED
        assert result.buttons == tuple(Button)
        saved = await client.download(result, tmp_path / "fox.png")
        data = saved.path.read_bytes()
        assert data == emulator.image_bytes(result.id)
        assert saved.sha256 == hashlib.sha256(data).hexdigest()
        assert _png_size(data) == (1920, 1080)

        upscale = await client.create_by_button(result, "U2")
        variation = await client.create_by_button(result, Button.V1)
        parent = await client.info_by_model_id(result.id)
        assert parent.used_buttons == (Button.U2, Button.V1)
        assert Button.U2 not in parent.buttons
        with pytest.raises(ValidationError, match="already used"):
            await client.create_by_button(parent, "U2")
        clock.advance(31)
        upscaled = await client.info_by_model_id(upscale.id)
        assert upscaled.status is ImageStatus.COMPLETED
        assert upscaled.buttons == ()
        assert upscaled.upscaled_urls == ()  # one image (issue 14), as Akool's demo expects
        assert upscaled.images == (upscaled.url,)
        assert _png_size(emulator.image_bytes(upscale.id)) == (3840, 2160)
        varied = await client.info_by_model_id(variation.id)
        assert varied.buttons == tuple(Button)
        assert upscale.parent_id == variation.parent_id == result.id
    assert emulator.counters.jobs_created == 6
    assert emulator.counters.credits_charged == 4 * 1 + 2 * 2
    assert not emulator.counters.duplicate_creates


async def test_v4_single_and_v3(mode: str) -> None:
    """batch 1 answers one object; v3 answers its own shape; both finish."""
    clock = ManualClock()
    emulator = Emulator(config(), clock=clock)
    async with wired(mode, emulator) as client:
        (single,) = await client.create_by_source_prompt(
            prompt="a fox", source_images=["https://example.com/a.png"], similar=0.3,
            scale="Original",
        )  # fmt: skip
        assert single.sub_type == 40002
        legacy = await client.create_by_prompt(prompt="a fox", scale="3:4")
        assert legacy.from_ == 1
        assert legacy.buttons == ()
        clock.advance(60)
        for job in (single, legacy):
            assert (await client.info_by_model_id(job.id)).status is ImageStatus.COMPLETED
        credit = await client.credit_info()
    assert credit.credit == emulator.config.credits.balance - 1 - 2


async def test_token_auth_and_refresh(mode: str) -> None:
    """client id + secret get a token; after the emulator expires it, one refresh follows."""
    emulator = Emulator(config(instant=True))
    async with wired(
        mode, emulator, api_key=None, client_id=emulator.client_id, client_secret=emulator.api_key
    ) as client:
        await client.credit_info()
        emulator.expire_tokens()
        await client.credit_info()
    assert emulator.counters.requests["getToken"] == 2
    assert emulator.counters.requests["quota/info"] == 3


async def test_webhook_fields_have_api_casing(mode: str) -> None:
    """Webhook URLs reach the emulator under the casing it reads (nothing ignored)."""
    emulator = Emulator(config())
    async with wired(mode, emulator) as client:
        await client.create_by_source_prompt(prompt="x", webhook_url="https://h.test/a")
        await client.create_by_prompt(prompt="x", webhook_url="https://h.test/a")
    assert not emulator.counters.ignored_fields
    assert sum(1 for job in emulator.backend.jobs.values() if job.webhook_url) == 2


async def test_admin_counters_route(mode: str) -> None:
    """The admin route serves the same counters as the Python object."""
    emulator = Emulator(config(instant=True))
    async with wired(mode, emulator) as client:
        await client.create_by_source_prompt(prompt="a fox", batch_quantity=2)
        await client.create_by_source_prompt(prompt="a fox", batch_quantity=2)
    app = httpx.AsyncClient(transport=emulator.transport(), base_url="http://e")
    async with app:
        counters = (await app.get("/_emulator/counters")).json()
    assert counters == json.loads(json.dumps(emulator.counters.snapshot()))
    assert counters["jobs_created"] == 4
    assert list(counters["duplicate_creates"].values()) == [2]
