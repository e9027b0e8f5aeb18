"""The client's public watch API: ``watch()`` and its ``WatchSet``, ``with_buttons`` and
``start_soon``, driven as a user's own workflow would, against the emulator."""

from __future__ import annotations

import logging

import anyio
import attrs
import httpx
import pytest

import akool_async as ak
from akool_async import AkoolClient, Button, ImageJob, ImageStatus, WatchSet
from akool_async.emulator import Emulator, Fixed
from akool_async.webhook import WebhookReceiver

from .emulated import config, wired

FAST = config(time_scale=1000)
SLOW = config(time_scale=1, durations=Fixed(600))  # nothing ends while a test runs
HOOK = "http://hooks.test/akool"


@pytest.mark.parametrize("mode", ["in-process", "http"])
async def test_a_workflow_of_ones_own_presses_each_image_as_it_ends(mode: str) -> None:
    """A batch followed on one watch set; U1 pressed on each image as it ends and its job
    added to the same set: every job ends once, linked, nothing sent twice."""
    emulator = Emulator(FAST)
    ended: dict[str, ImageJob] = {}
    parents: dict[str, str] = {}
    async with wired(mode, emulator, poll_policy=emulator.poll_policy()) as client:
        jobs = await client.create_by_source_prompt(prompt="a fox", batch_quantity=2)
        async with client.watch() as watch:
            assert isinstance(watch, WatchSet)
            for job in jobs:
                watch.add(job.id)
            assert watch.pending == {job.id for job in jobs}
            while not watch.idle:
                job_id, outcome = await watch.next()
                assert isinstance(outcome, ImageJob), outcome
                ended[job_id] = outcome
                if job_id not in parents:  # a root: press its follow-up
                    parent = await client.with_buttons(outcome)
                    child = await client.create_by_button(parent, Button.U1)
                    parents[child.id] = job_id
                    watch.add(child.id, timeout=300)
        assert not watch.pending
        with pytest.raises(LookupError):
            await watch.next()
    assert len(ended) == 4
    assert all(job.status is ImageStatus.COMPLETED and job.url for job in ended.values())
    assert sorted(parents.values()) == sorted(job.id for job in jobs)
    assert emulator.counters.credits_charged == 2 * 1 + 2 * 2
    assert not emulator.counters.duplicate_creates


async def test_known_results_timeouts_and_close() -> None:
    """``add_result`` delivers without a poll; a job past its ``timeout`` ends as
    ``JobTimeoutError``; ``close()`` names the jobs left running and stops their polling."""
    emulator = Emulator(SLOW)
    async with emulator, emulator.client(rate_limit=None) as client:
        first, second, third = await client.create_by_source_prompt(prompt="x", batch_quantity=3)
        done = attrs.evolve(first, status=ImageStatus.COMPLETED, image="https://cdn.test/a.png")
        watch = client.watch()
        watch.add(second.id, age=0.0)
        watch.add(third.id, timeout=0.0)
        watch.add_result(first.id, done)
        assert await watch.next() == (first.id, done)
        job_id, outcome = await watch.next()
        assert job_id == third.id
        assert isinstance(outcome, ak.JobTimeoutError)
        assert outcome.job_ids == (third.id,)
        assert watch.pending == {second.id}
        assert not watch.idle
        assert watch.close() == tuple(sorted((second.id, third.id)))
        assert watch.idle
        assert client._scheduler.watching == 0  # nothing left to poll
    assert emulator.counters.requests["infobymodelid"] == 0


async def test_with_buttons_looks_a_callback_job_up_once() -> None:
    """A job that a callback ended carries no buttons: one look-up gives them; a job that
    already has them (or any job not from a callback) costs no request."""
    receiver = WebhookReceiver(api_key=FAST.api_key, client_id=FAST.client_id)
    emulator = Emulator(
        attrs.evolve(FAST, webhook_retry_delay=0.1),
        webhook_transport=httpx.ASGITransport(app=receiver),
    )
    policy = attrs.evolve(emulator.poll_policy(), webhook_safety=1e4, webhook_silence=1e4)
    options = {"webhook": receiver, "webhook_url": HOOK, "poll_policy": policy}
    async with emulator, emulator.client(rate_limit=None, **options) as client:
        (job,) = await client.create_by_source_prompt(prompt="x")
        ended = await client.wait(job)
        assert client.poll_stats.by_callback == 1
        assert not ended.buttons
        before = emulator.counters.requests["infobymodelid"]
        full = await client.with_buttons(ended)
        assert emulator.counters.requests["infobymodelid"] == before + 1
        assert full.id == job.id
        assert Button.U1 in full.buttons
        assert await client.with_buttons(full) is full
        assert await client.with_buttons(job) is job  # still running: nothing to look up
        assert emulator.counters.requests["infobymodelid"] == before + 1
        with pytest.raises(ak.ValidationError, match="job"):
            await client.with_buttons(job.id)  # type: ignore[arg-type]
        with pytest.raises(ak.ValidationError, match="timeout"):
            await client.with_buttons(ended, timeout=-1)
        assert emulator.counters.requests["infobymodelid"] == before + 1


async def test_start_soon_runs_until_done_or_the_client_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Background work outlives its caller's reads, has its error logged (not raised),
    and is cancelled when the client closes."""
    emulator = Emulator(SLOW)
    finished = anyio.Event()
    cancelled = anyio.Event()
    failed = anyio.Event()
    created: list[ImageJob] = []

    async def create() -> None:
        created.extend(await client.create_by_source_prompt(prompt="x"))
        finished.set()

    async def fail() -> None:
        failed.set()
        raise RuntimeError("boom")

    async def forever() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    with caplog.at_level(logging.ERROR, logger="akool_async"):
        async with emulator, emulator.client(rate_limit=None) as client:
            client.start_soon(create)
            client.start_soon(fail)
            client.start_soon(forever)
            await finished.wait()
            await failed.wait()
            assert len(created) == 1
            assert not cancelled.is_set()
            assert await client.credit_info()  # the failure did not hurt the client
            with pytest.raises(ak.ValidationError, match="function"):
                client.start_soon("create")  # type: ignore[arg-type]
        assert cancelled.is_set()
    assert "boom" in caplog.text
    with pytest.raises(ak.ClientClosedError):
        client.start_soon(create)


async def test_the_watch_api_needs_an_open_client() -> None:
    """On a client not opened with ``async with``: a ConfigurationError saying what to do;
    on a closed one, ClientClosedError; nothing is sent."""
    client = AkoolClient(api_key="k" * 16, base_url="http://localhost:9")

    async def nothing() -> None:
        pass

    with pytest.raises(ak.ConfigurationError, match="async with"):
        client.watch()
    with pytest.raises(ak.ConfigurationError, match="async with"):
        client.start_soon(nothing)
    await client.aclose()
    with pytest.raises(ak.ClientClosedError):
        client.watch()
    assert client.requests_sent == 0
