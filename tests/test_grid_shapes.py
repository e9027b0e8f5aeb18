"""Which jobs are grids when the client waiting on them did not create them: the shape an
``ImageJob`` from a create tells (``_grid.told_by``), the guess for a bare id whose
answers cannot tell (``_grid.job_shape``), and a wait's timeout that comes while only the
parts are missing. Two clients on one emulator and one fake clock: nothing really waits."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import anyio
import pytest

from akool_async import AkoolClient, Button, ImageJob, ImageStatus, JobTimeoutError, PollPolicy
from akool_async._converter import structure_jobs
from akool_async._grid import Shape, job_shape, told_by
from akool_async._polling import PollScheduler
from akool_async._watchset import WatchSet
from akool_async.emulator import Emulator

from .emulated import NO_WAIT
from .fakes import FakeClock
from .test_grids import GridAkool, assert_whole_grid, completed, faked
from .test_seeds import EXAMPLES


@contextlib.asynccontextmanager
async def another(
    emulator: Emulator, clock: FakeClock, **options: object
) -> AsyncIterator[AkoolClient]:
    """A second client of the same account: it knows nothing of the first one's creates."""
    async with emulator.client(clock=clock, retry=NO_WAIT, rate_limit=None, **options) as client:
        yield client


async def test_a_v_jobs_create_answer_tells_any_client_it_is_a_grid() -> None:
    """The ImageJob from createbybutton V1 (op_button V1), waited on by another client:
    wait and as_completed bring its four images, though status answers lack op_button."""
    async with faked(parts_delay=20.0) as (emulator, client, clock):
        parent = await client.wait(await client.create_by_prompt(prompt="a fox"))
        varied = await client.create_by_button(parent, "V1")
        other_v = await client.create_by_button(parent, "V2")
        assert varied.op_button is Button.V1
        async with another(emulator, clock) as other:
            waited = await other.wait(varied)
            (listed,) = [job async for job in other.as_completed([other_v])]
    assert_whole_grid(waited)
    assert_whole_grid(listed)


async def test_a_v3_create_answer_tells_any_client_it_is_a_grid() -> None:
    """The createbyprompt answer (from 1, faceswap_quality, no parent; type 4 as the docs'
    example) is a grid for any client: no grace period, its parts come."""
    async with faked(parts_delay=20.0) as (emulator, client, clock):
        job = await client.create_by_prompt(prompt="a hare")
        assert job.type == 4  # like a v4 job's: type tells nothing
        assert told_by(job) is True
        async with another(emulator, clock) as other:
            result = await other.wait(job)
            assert other.poll_stats.parts_missing == 0
    assert_whole_grid(result)


async def test_a_bare_id_whose_answers_cannot_tell_is_followed_like_a_grid() -> None:
    """Another client's v3 job by bare id: completed, buttons, no parts, not type 4; a
    possible grid, followed until its parts come. A v4 job (type 4) and a U result (no
    buttons) end at status 3 as before."""
    async with faked(parts_delay=20.0) as (emulator, client, clock):
        parent = await client.wait(await client.create_by_prompt(prompt="a fox"))
        upscaled = await client.wait(await client.create_by_button(parent, "U1"))
        (single,) = await client.create_by_source_prompt(prompt="an owl")
        await client.wait(single)
        fresh = await client.create_by_prompt(prompt="a hare")
        async with another(emulator, clock) as other:
            grid = await other.wait(fresh.id)
            parts_polls = other.poll_stats.parts_polls
            assert parts_polls >= 1
            ones = [await other.wait(upscaled.id), await other.wait(single.id)]
            assert other.poll_stats.parts_polls == parts_polls
            assert other.poll_stats.parts_missing == 0
    assert_whole_grid(grid)
    for one in ones:
        assert one.upscaled_urls == ()
        assert one.images == (one.url,)
        assert not one.parts_missing


async def test_a_possible_grid_whose_parts_never_come_is_flagged_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing tells, and no parts come: after the grace period the job is returned as it
    is, parts_missing, with a warning that says its shape was a guess."""
    policy = PollPolicy(expected_seconds=30.0, parts_grace=12.0, parts_interval=3.0)
    async with faked(parts_delay=1e9) as (emulator, client, clock):
        job = await client.create_by_prompt(prompt="a fox")
        async with another(emulator, clock, poll_policy=policy) as other:
            with caplog.at_level(logging.WARNING, logger="akool_async"):
                result = await other.wait(job.id)
    assert result.parts_missing
    assert result.images == (result.image,)
    assert f"job {job.id} completed without the four images of a grid" in caplog.text
    assert "nothing said whether it is a grid" in caplog.text


async def test_a_timeout_while_only_the_parts_are_missing_returns_the_job_flagged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Status 3 at 30 s, parts at 50 s, a 40 s timeout: wait returns the job as it is,
    parts_missing (no JobTimeoutError for a finished job); as_completed yields it before
    it reports the job that is really late."""
    async with faked(parts_delay=20.0) as (_emulator, client, clock):
        job = await client.create_by_prompt(prompt="a fox")
        with caplog.at_level(logging.WARNING, logger="akool_async"):
            result = await client.wait(job, timeout=40)
        assert clock.now() < 50
        late_grid = await client.create_by_prompt(prompt="a hare")
        clock.advance(20)  # 30 s jobs: this one is done by the 40 s timeout below,
        running = await client.create_by_prompt(prompt="an owl")  # this one is not
        seen: list[ImageJob] = []
        with pytest.raises(JobTimeoutError) as raised:
            await _collect(client.as_completed([late_grid, running], timeout=20), seen)
    assert result.status is ImageStatus.COMPLETED
    assert result.parts_missing
    assert result.upscaled_urls == ()
    assert "had not come when the wait's timeout came" in caplog.text
    assert [(j.id, j.parts_missing) for j in seen] == [(late_grid.id, True)]
    assert raised.value.job_ids == (running.id,)
    assert client.poll_stats.parts_missing == 2


async def test_a_callback_for_a_job_of_unknown_shape_leads_to_one_poll() -> None:
    """A callback carries a URL, nothing of the shape: a job nobody said the shape of is
    looked at once; the status answer (its parts, here) decides."""
    fake = GridAkool(FakeClock(), parts_delay=0.0)
    fake.add("unknown", 30.0)
    scheduler = PollScheduler(fake.fetch, fake.clock, PollPolicy(), seed=1)
    scheduler.expect_callbacks()
    async with fake.clock.autojump(), anyio.create_task_group() as tasks:
        await tasks.start(scheduler.run)
        watch = WatchSet(scheduler)
        watch.add("unknown")
        await fake.clock.wait(anyio.Event(), 30.0)
        scheduler.notify(completed("unknown"))
        _, result = await watch.next()
        tasks.cancel_scope.cancel()
    assert isinstance(result, ImageJob)
    assert len(result.images) == 4
    assert fake.polls == {"unknown": 1}


async def _collect(results: AsyncIterator[ImageJob], into: list[ImageJob]) -> None:
    async for job in results:
        into.append(job)


def test_what_the_docs_examples_tell_of_their_shape() -> None:
    """The v3 create example is a grid (though its type is 4), the v4 ones and the U2
    button's are single images; the result example (status 3, buttons, no parts, type 3)
    cannot tell: a possible grid."""
    told = {}
    for name, example in EXAMPLES:
        for job in structure_jobs(example["data"]):
            told[name] = told_by(job)
            if job.is_terminal:
                assert job_shape(job, None) is Shape.POSSIBLE_GRID
                assert job_shape(job, False) is Shape.SINGLE
    assert told == {
        "000_e5cfc0d847a87e9d.txt#0": False,
        "001_3b3e6a12be089736.txt#0": False,
        "002_c3a56b11016ae535.txt#0": True,
        "002_c3a56b11016ae535.txt#1": False,
        "002_c3a56b11016ae535.txt#2": None,
        "004_28e412f6a766a10e.txt#0": False,
        "004_28e412f6a766a10e.txt#1": False,
    }
