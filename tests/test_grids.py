"""Grid jobs through the client: a v3 first result or a V result has finished when its four
images came, however late; without them for ``parts_grace`` it is returned marked
``parts_missing``. U results and v4 jobs finish at status 3. The emulator and the client
share one fake clock, so nothing really waits."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
import pytest

from akool_async import (
    AkoolClient,
    Button,
    ButtonRequest,
    ImageJob,
    ImageStatus,
    PollPolicy,
    PromptRequest,
    SourcePromptRequest,
)
from akool_async._cli import main
from akool_async._grid import awaiting_parts, job_is_grid, request_makes_grid
from akool_async._polling import PollScheduler
from akool_async._watchset import WatchSet
from akool_async.emulator import Emulator, EmulatorConfig, Fixed
from akool_async.webhook import WebhookEvent, WebhookReceiver

from .emulated import config, wired
from .fakes import FakeAkool, FakeClock


@contextlib.asynccontextmanager
async def faked(
    **fields: Any,
) -> AsyncIterator[tuple[Emulator, AkoolClient, FakeClock]]:
    """An emulator (30 s jobs) and a client on one fake clock that jumps when all wait."""
    clock = FakeClock()
    started = time.time()
    policy = fields.pop("policy", None)
    emulator = Emulator(config(**fields), clock=lambda: started + clock.now())
    options: dict[str, Any] = {"clock": clock}
    if policy is not None:
        options["poll_policy"] = policy
    async with clock.autojump(), wired("in-process", emulator, **options) as client:
        yield emulator, client, clock


def assert_whole_grid(job: ImageJob) -> None:
    assert job.status is ImageStatus.COMPLETED
    assert not job.parts_missing
    assert len(set(job.images)) == 4
    assert job.images == job.upscaled_urls
    assert job.grid == job.image == job.url
    assert job.grid not in job.images


async def test_parts_that_come_after_status_3_are_waited_for() -> None:
    """A v3 result whose parts come 20 s after its status 3: wait returns it with them."""
    async with faked(parts_delay=20.0) as (_emulator, client, clock):
        job = await client.create_by_prompt(prompt="a fox")
        result = await client.wait(job)
        assert clock.now() >= 50  # 30 s to status 3, 20 more for the parts
    assert_whole_grid(result)
    assert client.poll_stats.parts_polls >= 1
    assert client.poll_stats.parts_missing == 0


async def test_a_completed_grid_without_parts_is_followed_until_they_come() -> None:
    """Given a status-3 answer without parts, wait polls on until the parts are there."""
    async with faked(parts_delay=10.0) as (_emulator, client, clock):
        job = await client.create_by_prompt(prompt="a fox")
        clock.advance(31)
        seen = await client.info_by_model_id(job)
        assert seen.status is ImageStatus.COMPLETED
        assert seen.upscaled_urls == ()
        assert seen.images == (seen.image,)  # the grid is all there is, for now
        assert seen.grid is None
        result = await client.wait(seen)
    assert_whole_grid(result)


async def test_parts_that_never_come_end_the_wait_after_the_grace_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No parts within parts_grace: the job is returned as it is, marked and logged."""
    policy = PollPolicy(expected_seconds=30.0, parts_grace=45.0, parts_interval=5.0)
    async with faked(parts_delay=1e9, policy=policy) as (_emulator, client, clock):
        job = await client.create_by_prompt(prompt="a fox")
        with caplog.at_level(logging.WARNING, logger="akool_async"):
            result = await client.wait(job)
        assert clock.now() >= 30 + 45
    assert result.status is ImageStatus.COMPLETED
    assert result.parts_missing
    assert result.upscaled_urls == ()
    assert result.images == (result.url,) == (result.image,)
    assert client.poll_stats.parts_missing == 1
    assert 45 / 5 <= client.poll_stats.parts_polls <= 45 / 5 + 1
    assert f"job {job.id} completed, but its grid's four images did not come" in caplog.text


async def test_parts_with_the_status_cost_no_extra_poll() -> None:
    """Parts filled with status 3: the wait ends on that answer."""
    async with faked(parts_delay=0.0) as (_emulator, client, _clock):
        job = await client.create_by_prompt(prompt="a fox")
        result = await client.wait(job.id)  # a bare id: its shape is known from the create
    assert_whole_grid(result)
    assert client.poll_stats.parts_polls == 0


async def test_u_results_and_v4_jobs_finish_at_status_3() -> None:
    """Single images: no parts to wait for, even if they never come to grids."""
    policy = PollPolicy(expected_seconds=30.0, parts_grace=0.0)
    async with faked(parts_delay=0.0, policy=policy) as (_emulator, client, _clock):
        parent = await client.wait(await client.create_by_prompt(prompt="a fox"))
        upscale = await client.create_by_button(parent, Button.U2)
        (single,) = await client.create_by_source_prompt(prompt="an owl")
        results = [job async for job in client.as_completed([upscale, single])]
    assert {r.id for r in results} == {upscale.id, single.id}
    for result in results:
        assert result.status is ImageStatus.COMPLETED
        assert result.upscaled_urls == ()
        assert result.images == (result.url,)
        assert result.grid is None
        assert not result.parts_missing
    assert client.poll_stats.parts_polls == client.poll_stats.parts_missing == 0


async def test_as_completed_and_generate_wait_for_the_parts_of_v_results() -> None:
    """A V follow-up is a grid: generate's outcome for it and as_completed carry its parts."""
    async with faked(parts_delay=15.0) as (_emulator, client, _clock):
        tree = await client.generate(prompt="a fox", follow_ups=["V1", "U1"]).collect()
        (root,) = tree.roots
        children = {o.button: o for o in tree.children(root)}
        assert children[Button.U1].job is not None
        assert children[Button.U1].job.upscaled_urls == ()
        varied = children[Button.V1].job
        assert varied is not None
        assert_whole_grid(varied)
        assert children[Button.V1].images == varied.upscaled_urls
        first = await client.create_by_prompt(prompt="a hare")
        again = await client.create_by_button(varied, "V2")
        results = [job async for job in client.as_completed([first, again])]
    assert len(results) == 2
    for result in results:
        assert_whole_grid(result)


async def test_a_grid_can_be_downloaded_image_by_image(tmp_path: Path) -> None:
    """Each of images is a real PNG the emulator serves, the parts distinct."""
    async with faked(parts_delay=0.0) as (emulator, client, _clock):
        result = await client.wait(await client.create_by_prompt(prompt="a fox"))
        saved = [
            await client.download(url, tmp_path / f"{k}.png")
            for k, url in enumerate(result.images, 1)
        ]
    assert [s.path.read_bytes() for s in saved] == [
        emulator.image_bytes(result.id, k) for k in (1, 2, 3, 4)
    ]
    assert len({s.sha256 for s in saved}) == 4


class GridAkool(FakeAkool):
    """Grid jobs: their parts fill ``upscaled_urls`` ``parts_delay`` after status 3."""

    def __init__(self, clock: FakeClock, parts_delay: float) -> None:
        super().__init__(clock)
        self.parts_delay = parts_delay

    async def fetch(self, job_id: str) -> ImageJob:
        job = await super().fetch(job_id)
        if self.clock.now() >= self.jobs[job_id].done_at + self.parts_delay:
            parts = tuple(f"https://cdn.test/{job_id}-{k}.png" for k in (1, 2, 3, 4))
            job = attrs.evolve(job, upscaled_urls=parts)
        return job


def completed(job_id: str) -> WebhookEvent:
    """A status-3 callback, its url the grid (what it carries for a grid is not known)."""
    return WebhookEvent(job_id, ImageStatus.COMPLETED, url=f"https://cdn.test/{job_id}.png")


async def test_a_status_3_callback_for_a_grid_leads_to_one_poll_for_its_parts() -> None:
    """Callbacks flowing: a grid's status-3 callback does not end its wait; one poll
    brings the parts. A single image's callback ends its wait with no poll."""
    fake = GridAkool(FakeClock(), parts_delay=0.0)
    fake.add("grid", 30.0)
    fake.add("single", 30.0)
    scheduler = PollScheduler(fake.fetch, fake.clock, PollPolicy(), seed=1)
    scheduler.expect_callbacks()
    scheduler.remember_shapes(["grid"], grid=True)
    scheduler.remember_shapes(["single"], grid=False)
    scheduler.submitted(["grid", "single"])
    async with fake.clock.autojump(), anyio.create_task_group() as tasks:
        await tasks.start(scheduler.run)
        watch = WatchSet(scheduler)
        watch.add("grid")
        watch.add("single")
        await fake.clock.wait(anyio.Event(), 30.0)
        scheduler.notify(completed("grid"))
        scheduler.notify(completed("single"))
        results = dict([await watch.next(), await watch.next()])
        tasks.cancel_scope.cancel()
    grid, single = results["grid"], results["single"]
    assert isinstance(grid, ImageJob)
    assert len(grid.images) == 4
    assert isinstance(single, ImageJob)
    assert single.images == ("https://cdn.test/single.png",)
    assert fake.polls == {"grid": 1}


async def test_a_grid_callback_before_the_wait_still_brings_the_parts() -> None:
    """The callback came while nobody waited: the wait that starts later polls once for
    the parts (late here), then on until they come."""
    fake = GridAkool(FakeClock(), parts_delay=7.0)
    fake.add("grid", 30.0)
    scheduler = PollScheduler(fake.fetch, fake.clock, PollPolicy(), seed=1)
    scheduler.expect_callbacks()
    scheduler.remember_shapes(["grid"], grid=True)
    scheduler.submitted(["grid"])
    async with fake.clock.autojump(), anyio.create_task_group() as tasks:
        await tasks.start(scheduler.run)
        await fake.clock.wait(anyio.Event(), 30.0)
        scheduler.notify(completed("grid"))
        watch = WatchSet(scheduler)
        watch.add("grid")
        _, result = await watch.next()
        tasks.cancel_scope.cancel()
    assert isinstance(result, ImageJob)
    assert len(result.images) == 4
    assert fake.polls["grid"] >= 2  # one at once, more until the parts came
    assert fake.clock.now() >= 37


async def test_webhook_mode_end_to_end_waits_for_the_grid_parts() -> None:
    """Real encrypted callbacks from the emulator: a v3 job's wait costs exactly the one
    poll for its parts; a v4 job's none."""
    emulator_config = EmulatorConfig(time_scale=1000, durations=Fixed(30), parts_delay=0.0)
    receiver = WebhookReceiver(api_key=emulator_config.api_key, client_id=emulator_config.client_id)
    emulator = Emulator(emulator_config, webhook_transport=httpx.ASGITransport(app=receiver))
    async with (
        emulator,
        emulator.client(
            rate_limit=None,
            webhook=receiver,
            webhook_url="http://hooks.test/akool",
            # 30 ms jobs in real time: the emulator's safety net and silence would race each
            # callback (see test_webhook_client.hooked).
            poll_policy=attrs.evolve(
                emulator.poll_policy(), webhook_safety=1e4, webhook_silence=1e4
            ),
        ) as client,
    ):
        grid = await client.create_by_prompt(prompt="a fox")
        (single,) = await client.create_by_source_prompt(prompt="an owl")
        results = [await client.wait(grid), await client.wait(single)]
    assert_whole_grid(results[0])
    assert results[1].images == (results[1].url,)
    assert client.poll_stats.by_callback == 1  # the single one; the grid's needed its poll
    assert emulator.counters.requests["infobymodelid"] == 1


def test_generate_command_saves_a_v_results_four_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``akool-async generate --follow-ups V1`` (built-in emulator): the image, then the V
    result's four images as <id>-1.png ... <id>-4.png."""
    for name in ("AKOOL_API_KEY", "AKOOL_CLIENT_ID", "AKOOL_CLIENT_SECRET", "AKOOL_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    stamina = logging.getLogger("stamina")
    monkeypatch.setattr(stamina, "level", stamina.level)  # main() turns it down: restored
    assert main(["generate", "a fox", "--follow-ups", "V1", "--out", str(tmp_path)]) == 0
    saved = sorted(path.name for path in tmp_path.iterdir())
    assert len(saved) == 5
    stems = {name.removesuffix(".png").rsplit("-", 1)[0] for name in saved if "-" in name}
    (varied,) = stems
    assert {f"{varied}-{k}.png" for k in (1, 2, 3, 4)} <= set(saved)
    assert len({(tmp_path / name).read_bytes() for name in saved}) == 5
    assert capsys.readouterr().out.count("V1 of") == 4


def test_which_jobs_are_grids() -> None:
    """v3 creates and V presses make grids; v4 creates and U presses single images; an
    answer's op_button tells when nothing else does."""
    assert request_makes_grid(PromptRequest(prompt="a fox"))
    assert request_makes_grid(ButtonRequest(job_id="a" * 24, button="V3"))
    assert not request_makes_grid(ButtonRequest(job_id="a" * 24, button="U3"))
    assert not request_makes_grid(SourcePromptRequest(prompt="a fox"))
    done = ImageJob(id="a", status=ImageStatus.COMPLETED, image="https://x/g.png")
    assert not job_is_grid(done, None)
    assert job_is_grid(done, True)
    assert job_is_grid(attrs.evolve(done, op_button=Button.V1), None)
    assert not job_is_grid(attrs.evolve(done, op_button=Button.U1), None)
    assert not job_is_grid(attrs.evolve(done, op_button=Button.V1), False)
    assert awaiting_parts(done, True)
    assert not awaiting_parts(done, False)
    assert not awaiting_parts(attrs.evolve(done, upscaled_urls=("https://x/1.png",)), True)
    assert not awaiting_parts(attrs.evolve(done, status=ImageStatus.FAILED), True)
