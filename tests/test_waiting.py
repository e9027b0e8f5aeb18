"""wait() and as_completed() through the client's scheduler, against the emulator, and the
shared rate budget against the emulator's per-key limit."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

import akool_async as ak
from akool_async import AkoolClient, ImageStatus, RetryPolicy
from akool_async.emulator import Emulator, EmulatorConfig, Fixed

FAST = EmulatorConfig(time_scale=1000, durations=Fixed(30))


async def test_wait_returns_the_finished_job() -> None:
    """wait() gives the completed job with its image URL, polled by the scheduler."""
    emulator = Emulator(FAST)
    async with emulator, emulator.client(rate_limit=None) as client:
        jobs = await client.create_by_source_prompt(prompt="a fox", batch_quantity=2)
        results = [await client.wait(job) for job in jobs]
    assert [r.status for r in results] == [ImageStatus.COMPLETED] * 2
    assert all(r.url for r in results)
    assert client.poll_stats.finished == 2


async def test_wait_raises_on_failure_and_on_timeout_keeping_the_id() -> None:
    """A failed job raises JobFailedError; a slow one JobTimeoutError with its id, and can
    be waited on again."""
    failing = Emulator(EmulatorConfig(instant=True, fail_rate=1.0))
    async with failing, failing.client() as client:
        (job,) = await client.create_by_source_prompt(prompt="x")
        with pytest.raises(ak.JobFailedError) as failed:
            await client.wait(job)
    assert failed.value.job.status is ImageStatus.FAILED
    slow = Emulator(EmulatorConfig(time_scale=100, durations=Fixed(30)))
    async with slow, slow.client(rate_limit=None) as client:
        (job,) = await client.create_by_source_prompt(prompt="x")
        with pytest.raises(ak.JobTimeoutError) as timed_out:
            await client.wait(job, timeout=0.01)
        assert timed_out.value.job_id == job.id
        assert client._scheduler.watching == 0
        assert (await client.wait(job.id)).status is ImageStatus.COMPLETED


async def test_as_completed_yields_each_as_it_finishes() -> None:
    """as_completed yields every job once, failures included."""
    emulator = Emulator(EmulatorConfig(time_scale=1000, fail_rate=0.3, seed=2))
    async with emulator, emulator.client(rate_limit=None) as client:
        jobs = [j for _ in range(5) for j in await client.create_by_source_prompt(
            prompt="x", batch_quantity=4)]  # fmt: skip
        seen = [job async for job in client.as_completed(jobs)]
    assert sorted(j.id for j in seen) == sorted(j.id for j in jobs)
    assert {j.status for j in seen} == {ImageStatus.COMPLETED, ImageStatus.FAILED}


async def test_leaving_as_completed_early_stops_polling_its_jobs() -> None:
    """Breaking out of as_completed (closing it) unwatches the jobs still running."""
    emulator = Emulator(EmulatorConfig(time_scale=1, durations=Fixed(600)))
    async with emulator, emulator.client(rate_limit=None) as client:
        jobs = await client.create_by_source_prompt(prompt="x", batch_quantity=3)
        waiting = client.as_completed(jobs, timeout=0.05)
        with pytest.raises(ak.JobTimeoutError):
            async for _ in waiting:
                pass
        assert client._scheduler.watching == 0
        with anyio.move_on_after(0.05):
            async for _ in client.as_completed(jobs):
                pass
        assert client._scheduler.watching == 0


async def test_as_completed_timeout_lists_every_late_job() -> None:
    """After its timeout as_completed raises JobTimeoutError naming all unfinished jobs."""
    emulator = Emulator(EmulatorConfig(time_scale=1, durations=Fixed(60)))
    async with emulator, emulator.client(rate_limit=None) as client:
        jobs = await client.create_by_source_prompt(prompt="x", batch_quantity=3)
        with pytest.raises(ak.JobTimeoutError) as info:
            async for _ in client.as_completed(jobs, timeout=0.05):
                pass
    assert sorted(info.value.job_ids) == sorted(j.id for j in jobs)


async def test_resumed_and_finished_jobs_cost_at_most_one_poll() -> None:
    """A bare id is polled at once; an already finished ImageJob is not polled at all."""
    emulator = Emulator(EmulatorConfig(instant=True))
    async with emulator, emulator.client() as client:
        (job,) = await client.create_by_source_prompt(prompt="x")
        before = emulator.counters.requests["infobymodelid"]
        finished = await client.wait(job.id)
        assert emulator.counters.requests["infobymodelid"] == before + 1
        assert await client.wait(finished) is finished
        assert emulator.counters.requests["infobymodelid"] == before + 1


async def test_waiting_needs_an_open_client() -> None:
    """wait() on a client not opened with ``async with`` says what to do."""
    client = AkoolClient(api_key="k" * 16, base_url="http://localhost:9")
    with pytest.raises(ak.ConfigurationError, match="async with"):
        await client.wait("abc")
    with pytest.raises(ak.ConfigurationError, match="async with"):
        client.generate(prompt="x")
    await client.aclose()


async def test_closing_the_client_ends_the_scheduler_and_cancelled_waits() -> None:
    """Leaving ``async with`` ends the scheduler's tasks; a cancelled wait stops polling."""
    emulator = Emulator(EmulatorConfig(time_scale=1, durations=Fixed(60)))
    before = len(anyio.get_running_tasks())
    async with emulator:
        tasks_with_emulator = len(anyio.get_running_tasks())
        async with emulator.client(rate_limit=None) as client:
            assert len(anyio.get_running_tasks()) > tasks_with_emulator
            (job,) = await client.create_by_source_prompt(prompt="x")
            with anyio.move_on_after(0.05):
                await client.wait(job)
            assert client._scheduler.watching == 0
        assert len(anyio.get_running_tasks()) == tasks_with_emulator
        with pytest.raises(ak.ClientClosedError):
            await client.wait(job)
    assert len(anyio.get_running_tasks()) == before


async def test_a_thousand_requests_meet_an_equal_server_limit_without_rejection() -> None:
    """With the emulator's per-key limit equal to the client's, 1,000 requests see no 1005."""
    emulator = Emulator(EmulatorConfig(instant=True, rate_limit=500, rate_burst=10))
    client = emulator.client(rate_limit=500, rate_burst=10)
    async with emulator, client, anyio.create_task_group() as tg:
        for _ in range(1000):
            tg.start_soon(client.credit_info)
    assert emulator.counters.requests["quota/info"] == 1000
    assert emulator.counters.rate_limited == 0


@pytest.mark.long
async def test_throttling_slows_the_shared_rate() -> None:
    """Against a server four times stricter, 1005s halve the shared rate and all succeed."""
    emulator = Emulator(EmulatorConfig(instant=True, rate_limit=50, rate_burst=5))
    retry = RetryPolicy(attempts=20, wait=False)
    async with emulator, emulator.client(rate_limit=200, rate_burst=5, retry=retry) as client:
        async with anyio.create_task_group() as tg:
            for _ in range(150):
                tg.start_soon(client.credit_info)
        limiter = client._requester.limiter
        assert limiter is not None
        assert limiter.throttles >= 1
    assert emulator.counters.requests["quota/info"] - emulator.counters.rate_limited == 150
    assert emulator.counters.rate_limited < 150


async def test_aclose_from_another_task_or_a_nested_scope_is_safe() -> None:
    """aclose() may come from any task or scope; the ``async with`` body is not cancelled."""
    emulator = Emulator(EmulatorConfig(instant=True))
    async with emulator:
        async with emulator.client() as client, anyio.create_task_group() as tg:
            tg.start_soon(client.aclose)
        body_ran_on = False
        async with emulator.client() as client:
            with anyio.fail_after(5):
                await client.aclose()
            await anyio.lowlevel.checkpoint()  # the body goes on: closing is not cancelling
            body_ran_on = True
        assert body_ran_on
        with pytest.raises(ak.ClientClosedError):
            await client.wait("abc")


async def test_pending_waits_end_when_the_client_closes() -> None:
    """A task waiting on a job gets ClientClosedError when the client closes, not a hang."""
    emulator = Emulator(EmulatorConfig(time_scale=1, durations=Fixed(600)))
    outcome: list[BaseException] = []
    async with emulator, emulator.client(rate_limit=None) as client:
        (job,) = await client.create_by_source_prompt(prompt="x")

        async def waiter() -> None:
            try:
                await client.wait(job)
            except ak.AkoolError as exc:
                outcome.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            await client.aclose()
    assert len(outcome) == 1
    assert isinstance(outcome[0], ak.ClientClosedError)


async def test_a_cancelled_async_with_still_closes_the_pool() -> None:
    """Cancelled from outside, leaving ``async with`` closes the HTTP pool all the same."""
    emulator = Emulator(EmulatorConfig(instant=True))
    http = None
    async with emulator:
        with anyio.CancelScope() as scope:
            async with emulator.client() as client:
                http = client._requester.transport._http  # type: ignore[attr-defined]
                scope.cancel()
                await anyio.sleep_forever()
    assert client.is_closed
    assert http is not None
    assert http.is_closed
