"""The poll scheduler with webhooks, on a fake clock: callbacks end waits, polls shrink to a
safety net while they flow, catch the one that is lost, and take over when they stop."""

from __future__ import annotations

import contextlib
import functools
import statistics
from collections.abc import AsyncIterator

import anyio

from akool_async import ImageJob, ImageStatus, JobSource, PollPolicy
from akool_async._polling import PollScheduler
from akool_async.webhook import WebhookEvent

from .fakes import FakeAkool, FakeClock, send_callbacks
from .test_polling import FAST, collect


@contextlib.asynccontextmanager
async def hooked(
    fake: FakeAkool, *, expect: bool = True, policy: PollPolicy = FAST
) -> AsyncIterator[tuple[PollScheduler, anyio.abc.TaskGroup]]:
    """A running scheduler (told to expect callbacks, or not) and a task group to send
    callbacks from."""
    scheduler = PollScheduler(fake.fetch, fake.clock, policy, seed=1)
    if expect:
        scheduler.expect_callbacks()
    async with fake.clock.autojump(), anyio.create_task_group() as tasks:
        await tasks.start(scheduler.run)
        yield scheduler, tasks
        tasks.cancel_scope.cancel()


async def test_flowing_callbacks_end_every_wait_without_a_poll() -> None:
    fake = FakeAkool(FakeClock(), seed=1)
    ids = fake.add_lognormal(500)
    async with hooked(fake) as (scheduler, tasks):
        tasks.start_soon(send_callbacks, fake, scheduler.notify, ids)
        results = await collect(scheduler, ids)
    assert all(isinstance(r, ImageJob) and r.url for r in results.values())
    assert sum(fake.polls.values()) == 0
    assert scheduler.stats.by_callback == 500


async def test_a_lost_callback_is_caught_by_the_safety_net() -> None:
    fake = FakeAkool(FakeClock(), seed=2)
    ids = fake.add_lognormal(100)
    lost = frozenset(ids[:3])
    async with hooked(fake) as (scheduler, tasks):
        tasks.start_soon(functools.partial(send_callbacks, fake, scheduler.notify, ids, lost=lost))
        results = await collect(scheduler, ids)
    assert all(isinstance(r, ImageJob) and r.status is ImageStatus.COMPLETED
               for r in results.values())  # fmt: skip
    assert {job_id for job_id, n in fake.polls.items() if n} == lost


async def test_polling_takes_over_when_callbacks_stop() -> None:
    """A wave on callbacks, then a wave whose callbacks never come: after the silence
    window the second wave is polled as if no webhook were set."""
    policy = PollPolicy(min_interval=0.5, webhook_silence=60)
    fake = FakeAkool(FakeClock(), seed=3)
    first = fake.add_lognormal(50)
    async with hooked(fake, policy=policy) as (scheduler, tasks):
        tasks.start_soon(send_callbacks, fake, scheduler.notify, first)
        await collect(scheduler, first)
        second = fake.add_lognormal(200)
        started = fake.clock.now()
        results = await collect(scheduler, second)
    assert len(results) == 200
    assert sum(fake.polls.get(j, 0) for j in first) == 0
    noticed = [fake.noticed[j] for j in second]
    assert min(noticed) >= started + 60  # the silence window is waited out once...
    delays = [fake.noticed[j] - fake.jobs[j].done_at for j in second]
    assert statistics.median(delays) < 60  # ...then polling, not the safety net, finds them
    assert sum(fake.polls[j] for j in second) / 200 <= 2.5


async def test_the_first_callback_stretches_polling() -> None:
    """Not told to expect callbacks: jobs are polled (and probed) until the first one
    arrives, then every wait stretches to the safety net."""
    fake = FakeAkool(FakeClock(), seed=4)
    ids = fake.add_lognormal(400)
    async with hooked(fake, expect=False) as (scheduler, tasks):
        tasks.start_soon(send_callbacks, fake, scheduler.notify, ids)
        await collect(scheduler, ids)
    assert 0 < sum(fake.polls.values()) / 400 < 0.2


async def test_a_callback_before_the_wait_ends_it_without_a_poll() -> None:
    """The event came while nobody waited (a loop awaiting one job after another)."""
    fake = FakeAkool(FakeClock(), seed=5)
    fake.add("early", 1.0)
    fake.add("failed", 1.0, outcome=ImageStatus.FAILED)
    async with hooked(fake) as (scheduler, _):
        scheduler.submitted(["early", "failed"])
        scheduler.notify(WebhookEvent("early", ImageStatus.COMPLETED, url="https://cdn.test/e.png"))
        scheduler.notify(WebhookEvent("failed", ImageStatus.FAILED))
        results = await collect(scheduler, ["early", "failed"])
    assert results["early"] == ImageJob(
        id="early", status=ImageStatus.COMPLETED, image="https://cdn.test/e.png",
        extra={"via": "webhook"},
    )  # fmt: skip
    failed = results["failed"]
    assert isinstance(failed, ImageJob)
    assert failed.status is ImageStatus.FAILED
    assert not fake.polls


async def test_a_callback_that_beats_its_create_answer_ends_the_wait() -> None:
    """A fast job on a busy loop: its callback is handled before its create's answer, so
    before the job is known as ours. It is kept, and counted once the job is."""
    fake = FakeAkool(FakeClock(), seed=8)
    fake.add("fast", 1.0)
    async with hooked(fake, expect=False) as (scheduler, _):
        scheduler.notify(WebhookEvent("fast", ImageStatus.COMPLETED, url="https://cdn.test/f.png"))
        assert scheduler.stats.callbacks == 0  # not yet known as ours
        scheduler.submitted(["fast"])
        assert scheduler.stats.callbacks == 1
        results = await collect(scheduler, ["fast"])
    assert results["fast"] == ImageJob(
        id="fast", status=ImageStatus.COMPLETED, image="https://cdn.test/f.png",
        extra={"via": "webhook"},
    )  # fmt: skip
    assert not fake.polls


async def test_another_clients_callbacks_do_not_count() -> None:
    """On a shared receiver, callbacks for jobs this client neither made nor waits on
    neither end anything nor keep polling stretched while its own callbacks stay away."""
    policy = PollPolicy(min_interval=0.5, webhook_silence=60)
    fake = FakeAkool(FakeClock(), seed=6)
    ids = fake.add_lognormal(50)

    async def foreign_chatter(scheduler: PollScheduler) -> None:
        for n in range(100):
            await fake.clock.wait(anyio.Event(), fake.clock.now() + 5)
            scheduler.notify(WebhookEvent(f"theirs{n}", ImageStatus.COMPLETED, url="https://x/"))

    async with hooked(fake, policy=policy) as (scheduler, tasks):
        tasks.start_soon(foreign_chatter, scheduler)
        results = await collect(scheduler, ids)
    assert len(results) == 50
    assert scheduler.stats.callbacks == 0
    delays = [fake.noticed[j] - fake.jobs[j].done_at for j in ids]
    assert statistics.median(delays) < 60  # polled after the silence, not the safety net


async def test_a_completed_callback_without_its_image_is_polled_for_it() -> None:
    fake = FakeAkool(FakeClock(), seed=7)
    fake.add("bare", 1.0)
    async with hooked(fake) as (scheduler, tasks):
        watch = collect(scheduler, ["bare"])

        async def callback_then_wait() -> None:
            await fake.clock.wait(anyio.Event(), 1.0)
            scheduler.notify(WebhookEvent("bare", ImageStatus.COMPLETED))

        tasks.start_soon(callback_then_wait)
        results = await watch
    assert results["bare"] == ImageJob(id="bare", status=ImageStatus.COMPLETED,
                                       image="https://cdn.test/bare.png")  # fmt: skip
    assert fake.polls["bare"] == 1


async def test_an_outcome_says_whether_a_callback_or_a_poll_brought_it() -> None:
    """``ImageJob.source`` (typed) tells a callback's outcome from a poll's; the old
    ``extra["via"]`` key stays on a callback's for readers of it."""
    fake = FakeAkool(FakeClock(), seed=9)
    fake.add("hooked", 1.0)
    fake.add("polled", 1.0)
    async with hooked(fake, expect=False) as (scheduler, _):
        scheduler.submitted(["hooked", "polled"])
        scheduler.notify(
            WebhookEvent("hooked", ImageStatus.COMPLETED, url="https://cdn.test/h.png")
        )
        results = await collect(scheduler, ["hooked", "polled"])
    hooked_job, polled_job = results["hooked"], results["polled"]
    assert isinstance(hooked_job, ImageJob)
    assert isinstance(polled_job, ImageJob)
    assert hooked_job.source is JobSource.CALLBACK
    assert hooked_job.from_callback
    assert hooked_job.extra["via"] == "webhook"
    assert polled_job.source is JobSource.ANSWER
    assert not polled_job.from_callback
    assert "via" not in polled_job.extra
