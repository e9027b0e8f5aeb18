"""generate(): a batch and its follow-ups, concurrently, against the emulator."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import pytest
import respx

import akool_async as ak
from akool_async import AkoolClient, Button, ImageStatus, JobOutcome
from akool_async.emulator import Credits, Emulator, EmulatorConfig, Faults, Fixed

from .conftest import API_KEY, BASE_URL
from .payloads import finished, job, ok

FAST = EmulatorConfig(time_scale=1000, durations=Fixed(30))


async def test_batch_with_follow_ups_builds_the_whole_tree() -> None:
    """4 images, U1 and V2 pressed on each as it finishes: 12 jobs, linked, all paid for."""
    emulator = Emulator(FAST)
    async with emulator, emulator.client(rate_limit=None) as client:
        tree = await client.generate(
            prompt="a red fox", batch_quantity=4, follow_ups=["U1", Button.V2], scale="16:9"
        ).collect()
    assert len(tree.roots) == 4
    assert len(tree.outcomes) == 12
    assert all(o.ok for o in tree.outcomes)
    for root in tree.roots:
        children = tree.children(root)
        assert sorted(c.button for c in children) == [Button.U1, Button.V2]  # type: ignore[type-var]
        assert set(root.children) == {c.job_id for c in children}
        assert all(c.parent_id == root.job_id for c in children)
    assert tree.credits == 4 * 1 + 8 * 2 == emulator.counters.credits_charged
    assert not tree.left_running
    assert not emulator.counters.duplicate_creates


async def test_outcomes_stream_as_jobs_end_parents_first() -> None:
    """The iterator yields each outcome as it ends; a parent always before its children."""
    emulator = Emulator(FAST)
    seen: list[JobOutcome] = []
    async with emulator, emulator.client(rate_limit=None) as client:
        async for outcome in client.generate(prompt="x", batch_quantity=2, follow_ups=["V1"]):
            seen.append(outcome)
    order = [o.job_id for o in seen]
    for outcome in seen:
        if outcome.parent_id is not None:
            assert order.index(outcome.parent_id) < order.index(outcome.job_id)
    assert all(o.url for o in seen)
    assert all(o.seconds >= 0 for o in seen)


async def test_one_failure_keeps_the_siblings_work() -> None:
    """Failed images end with their error and no follow-ups; the others complete; no raise."""
    emulator = Emulator(EmulatorConfig(time_scale=1000, durations=Fixed(30), fail_rate=0.5, seed=3))
    async with emulator, emulator.client(rate_limit=None) as client:
        trees = [await client.generate(prompt="x", batch_quantity=4, follow_ups=["U2"]).collect()
                 for _ in range(3)]  # fmt: skip
    roots = [root for tree in trees for root in tree.roots]
    failed = [r for r in roots if r.status is ImageStatus.FAILED]
    completed = [r for r in roots if r.status is ImageStatus.COMPLETED]
    assert failed
    assert completed
    assert all(isinstance(r.error, ak.JobFailedError) and not r.children for r in failed)
    assert all(len(r.children) == 1 for r in completed)
    assert {r.state for r in failed} == {ak.OutcomeState.FAILED}
    assert {r.state for r in completed} == {ak.OutcomeState.COMPLETED} == {"completed"}


async def test_fail_fast_raises_the_first_error_not_a_group() -> None:
    """With fail_fast the first failure is raised as itself, never an ExceptionGroup."""
    emulator = Emulator(EmulatorConfig(instant=True, fail_rate=1.0))
    async with emulator, emulator.client() as client:
        generation = client.generate(prompt="x", batch_quantity=3, fail_fast=True)
        with pytest.raises(ak.JobFailedError) as info:
            await generation.collect()
    assert not isinstance(info.value, BaseExceptionGroup)
    assert set(generation.left_running) <= set(emulator.backend.jobs)


async def _until(condition: Callable[[], bool]) -> None:
    """Wait (up to 10 s) for background work to make ``condition`` true."""
    with anyio.fail_after(10):
        while not condition():  # noqa: ASYNC110 - counters signal nothing; bounded above
            await anyio.sleep(0.005)


async def test_cancelling_reports_the_jobs_left_running() -> None:
    """Cancelling the caller stops following the tree and names the remote jobs still running."""
    emulator = Emulator(EmulatorConfig(time_scale=1, durations=Fixed(60)))
    async with emulator, emulator.client(rate_limit=None) as client:
        generation = client.generate(prompt="x", batch_quantity=4)
        async with anyio.create_task_group() as tg:
            tg.start_soon(generation.collect)
            await _until(lambda: emulator.counters.jobs_created == 4)
            tg.cancel_scope.cancel()
        assert len(generation.left_running) == 4
        assert set(generation.left_running) == set(emulator.backend.jobs)
        assert client._scheduler.watching == 0


async def test_buttons_are_pressed_as_images_finish_not_as_outcomes_are_read() -> None:
    """Follow-ups are pressed by the client in the background, however slow the reader."""
    emulator = Emulator(FAST)
    async with emulator, emulator.client(rate_limit=None) as client:
        generation = client.generate(prompt="x", batch_quantity=4, follow_ups=["U1"])
        async with generation:
            outcomes = generation.__aiter__()
            first = await outcomes.__anext__()
            await _until(lambda: emulator.counters.requests["createbybutton"] == 4)
            rest = [first] + [o async for o in outcomes]
    roots = [o for o in rest if o.parent_id is None]
    assert len(rest) == 8
    assert max(o.finished_at for o in roots) - min(o.finished_at for o in roots) < 1.0


async def test_finish_times_are_when_jobs_ended_not_when_read() -> None:
    """A slow reader does not move the outcomes' finishing times."""
    emulator = Emulator(FAST)
    async with emulator, emulator.client(rate_limit=None) as client:
        read: list[tuple[float, JobOutcome]] = []
        async for outcome in client.generate(prompt="x", batch_quantity=4):
            read.append((time.time(), outcome))
            await anyio.sleep(0.2)
    assert read[-1][0] - read[0][0] >= 0.6
    assert max(o.finished_at for _, o in read) - min(o.finished_at for _, o in read) < 0.3


async def test_job_timeout_leaves_jobs_running_and_says_so() -> None:
    """Jobs past job_timeout end as JobTimeoutError outcomes and are listed as left running."""
    emulator = Emulator(EmulatorConfig(time_scale=1, durations=Fixed(60)))
    async with emulator, emulator.client(rate_limit=None) as client:
        generation = client.generate(prompt="x", batch_quantity=2, job_timeout=0.05)
        tree = await generation.collect()
    assert [type(o.error) for o in tree.outcomes] == [ak.JobTimeoutError] * 2
    assert sorted(tree.left_running) == sorted(emulator.backend.jobs)


async def test_create_failure_is_an_outcome() -> None:
    """A batch the account cannot pay for ends as one outcome with its error, no raise."""
    emulator = Emulator(EmulatorConfig(instant=True, credits=Credits(balance=1)))
    async with emulator, emulator.client() as client:
        tree = await client.generate(prompt="x", batch_quantity=4).collect()
    (outcome,) = tree.outcomes
    assert outcome.job_id is None
    assert isinstance(outcome.error, ak.InsufficientCreditError)


async def test_uncertain_create_is_reported_with_its_ids() -> None:
    """A create whose answer was lost is an outcome with SubmissionUncertainError."""
    emulator = Emulator(EmulatorConfig(instant=True, faults=Faults(drop_connection=1.0)))
    async with emulator, emulator.client() as client:
        tree = await client.generate(prompt="x", batch_quantity=2).collect()
    (outcome,) = tree.outcomes
    assert isinstance(outcome.error, ak.SubmissionUncertainError)
    assert emulator.counters.requests["createBySourcePrompt"] == 1


async def test_failed_follow_up_is_its_own_outcome() -> None:
    """A follow-up the server refuses (no credit left) ends alone; its parent is fine."""
    emulator = Emulator(EmulatorConfig(instant=True, credits=Credits(balance=2)))
    async with emulator, emulator.client() as client:
        tree = await client.generate(prompt="x", batch_quantity=2, follow_ups=["U1"]).collect()
    assert len(tree.roots) == 2
    assert all(r.ok for r in tree.roots)
    refused = [o for o in tree.outcomes if o.parent_id is not None]
    assert [type(o.error) for o in refused] == [ak.InsufficientCreditError] * 2


async def test_many_generations_share_one_scheduler() -> None:
    """Twenty concurrent generations on one client all complete through its one scheduler."""
    emulator = Emulator(FAST)
    trees = []
    async with emulator, emulator.client(rate_limit=None) as client:

        async def one(n: int) -> None:
            trees.append(await client.generate(prompt=f"fox {n}", batch_quantity=2).collect())

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(one, n)
        polls = client.poll_stats.polls
    assert len(trees) == 20
    assert all(o.ok for tree in trees for o in tree.outcomes)
    assert polls == emulator.counters.requests["infobymodelid"]


async def test_follow_ups_are_checked_against_the_parents_buttons(
    api: respx.MockRouter,
) -> None:
    """A button the finished image does not offer is refused without a request: no credit."""
    api.post("/api/open/v4/content/image/createBySourcePrompt").mock(return_value=ok(job("p1")))
    api.get("/api/open/v3/content/image/infobymodelid").mock(
        return_value=ok(finished("p1", buttons=["U2", "V1"], used_buttons=["U1"]))
    )
    pressed = api.post("/api/open/v3/content/image/createbybutton")
    policy = ak.PollPolicy(expected_seconds=0.01, min_interval=0.01)
    async with AkoolClient(
        api_key=API_KEY, base_url=BASE_URL, rate_limit=None, poll_policy=policy
    ) as client:
        tree = await client.generate(prompt="x", follow_ups=["U1", "U3"]).collect()
    refused = [o for o in tree.outcomes if o.parent_id == "p1"]
    assert [type(o.error) for o in refused] == [ak.ValidationError] * 2
    assert not pressed.called


def test_bad_follow_ups_are_refused_before_anything_is_sent() -> None:
    """An unknown or repeated follow-up button is a ValidationError at the call."""
    emulator = Emulator(EmulatorConfig(instant=True))

    async def run() -> None:
        async with emulator, emulator.client() as client:
            for follow_ups in (["X9"], ["U1", "U1"]):
                with pytest.raises(ak.ValidationError):
                    client.generate(prompt="x", follow_ups=follow_ups)

    anyio.run(run)
    assert not emulator.counters.requests
