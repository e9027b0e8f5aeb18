"""The poll scheduler on a fake clock against a fake Akool: one task for any number of
jobs, adaptive intervals, learning, deadlines, cancellation and failures."""

from __future__ import annotations

import contextlib
import itertools
import math
import statistics
from collections.abc import AsyncIterator

import anyio
import pytest

from akool_async import (
    ImageJob,
    ImageStatus,
    JobTimeoutError,
    NotFoundError,
    PollPolicy,
    ServerError,
)
from akool_async._polling import PollScheduler, Result
from akool_async._watchset import WatchSet

from .fakes import FakeAkool, FakeClock

FAST = PollPolicy(min_interval=0.5)
# Thousands of jobs through the scheduler on a fake clock: their figures are the point, and
# tracing them for coverage triples their CPU for lines the smaller tests here (and the
# planner's own tests) cover already.
SIMULATION = pytest.mark.no_cover


@contextlib.asynccontextmanager
async def running(fake: FakeAkool, policy: PollPolicy = FAST) -> AsyncIterator[PollScheduler]:
    scheduler = PollScheduler(fake.fetch, fake.clock, policy, seed=1)
    async with fake.clock.autojump(), anyio.create_task_group() as tg:
        await tg.start(scheduler.run)
        yield scheduler
        tg.cancel_scope.cancel()


async def collect(
    scheduler: PollScheduler, ids: list[str], timeout: float | None = None
) -> dict[str, Result]:
    watch = WatchSet(scheduler)
    for job_id in ids:  # the fake's jobs are single images (v4), as their creator knows
        watch.add(job_id, timeout=timeout, grid=False)
    results: dict[str, Result] = {}
    try:
        while True:
            try:
                job_id, result = await watch.next()
            except LookupError:
                return results
            results[job_id] = result
    finally:
        watch.close()


def _polls_per_job(fake: FakeAkool, ids: list[str]) -> float:
    return sum(fake.polls[j] for j in ids) / len(ids)


@SIMULATION
async def test_ten_thousand_waiting_jobs_cost_one_task_not_ten_thousand() -> None:
    """10,000 jobs wait on the scheduler's task and its senders, not a task each."""
    fake = FakeAkool(FakeClock())
    ids = fake.add_lognormal(10_000)
    async with running(fake) as scheduler:
        tasks_before = len(anyio.get_running_tasks())
        watch = WatchSet(scheduler)
        for job_id in ids:
            watch.add(job_id)
        assert scheduler.watching == 10_000
        most_tasks = done = 0
        while not watch.idle:  # (``pending`` is a copy: O(n) a call)
            _, result = await watch.next()
            most_tasks = max(most_tasks, len(anyio.get_running_tasks()))
            assert isinstance(result, ImageJob)
            assert result.status is ImageStatus.COMPLETED
            done += 1
    assert done == 10_000
    assert most_tasks == tasks_before  # no task per job, ever
    assert scheduler.watching == 0


async def _waves(policy: PollPolicy, waves: int, size: int, seed: int) -> list[tuple[float, float]]:
    """(polls per job, median notice delay) of each wave of jobs created together."""
    fake = FakeAkool(FakeClock(), seed=seed)
    figures = []
    async with running(fake, policy) as scheduler:
        for _ in range(waves):
            ids = fake.add_lognormal(size)
            await collect(scheduler, ids)
            delays = [fake.noticed[j] - fake.jobs[j].done_at for j in ids]
            figures.append((_polls_per_job(fake, ids), statistics.median(delays)))
    return figures


@pytest.mark.parametrize("seed", [3, 4, 5])
@SIMULATION
async def test_polls_per_job_stay_within_one_and_a_half(seed: int) -> None:
    """On Akool-like durations (log-normal around 30 s) the default policy costs at most
    1.5 polls per job: in a cold burst of 2,000 jobs, and in waves once it has learned."""
    cold = await _waves(FAST, waves=1, size=2000, seed=seed)
    assert cold[0][0] <= 1.5
    steady = await _waves(FAST, waves=5, size=400, seed=seed)
    assert statistics.fmean(polls for polls, _ in steady[1:]) <= 1.5


@SIMULATION
async def test_more_polls_buy_a_shorter_notice_delay() -> None:
    """Raising polls_per_job lowers the median delay between finishing and noticing."""
    figures = {}
    for target in (1.5, 2.5):
        waves = await _waves(PollPolicy(min_interval=0.5, polls_per_job=target), 4, 400, seed=4)
        polls = statistics.fmean(p for p, _ in waves[1:])
        figures[target] = statistics.fmean(d for _, d in waves[1:])
        assert polls <= target + 0.05
    assert figures[2.5] < figures[1.5] * 0.7


@SIMULATION
async def test_learns_durations_far_from_the_prior() -> None:
    """Jobs of ~5 s against a 30 s prior: after a few, first polls come near 5 s."""
    fake = FakeAkool(FakeClock(), seed=5)
    async with running(fake) as scheduler:
        waves = []
        for _ in range(10):
            waves.append(fake.add_lognormal(50, median=5.0, sigma=0.2))
            await collect(scheduler, waves[-1])
    late = [fake.noticed[j] - fake.jobs[j].done_at for j in waves[-1]]
    assert statistics.median(late) < 2.0
    assert _polls_per_job(fake, waves[-1]) <= 1.8


async def test_queued_jobs_back_off_with_jitter_above_the_floor() -> None:
    """A job stuck in the queue is polled less and less often, jittered, never too often."""
    clock = FakeClock()
    fake = FakeAkool(clock)
    fake.add("stuck", 600, queue_share=1.0)
    times: list[float] = []
    original = fake.fetch

    async def recording(job_id: str) -> ImageJob:
        if job_id == "stuck":
            times.append(clock.now())
        return await original(job_id)

    fake.fetch = recording  # type: ignore[method-assign]
    async with running(fake, PollPolicy(min_interval=1.0, probes=0)) as scheduler:
        await collect(scheduler, ["stuck"])
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1.0
    assert gaps[-2] > gaps[1]
    assert len({round(g, 6) for g in gaps}) > len(gaps) // 2  # jittered, not a fixed beat
    assert max(gaps) <= 60.0 * 1.1


async def test_deadline_gives_a_timeout_that_keeps_the_job_id() -> None:
    """A job past its deadline gives JobTimeoutError with its id and is no longer polled."""
    fake = FakeAkool(FakeClock())
    fake.add("slow", 100)
    async with running(fake) as scheduler:
        results = await collect(scheduler, ["slow"], timeout=10)
        error = results["slow"]
        assert isinstance(error, JobTimeoutError)
        assert error.job_id == "slow"
        assert error.job_ids == ("slow",)
        assert scheduler.watching == 0
        polls_then = fake.polls.get("slow", 0)
        resumed = await collect(scheduler, ["slow"])
    assert isinstance(resumed["slow"], ImageJob)
    assert resumed["slow"].status is ImageStatus.COMPLETED
    assert fake.polls["slow"] > polls_then


async def test_cancelled_waiter_removes_its_job() -> None:
    """Cancelling the only waiter of a job stops its polling."""
    fake = FakeAkool(FakeClock())
    fake.add("a", 1000)
    async with running(fake) as scheduler:
        with anyio.move_on_after(0):
            await collect(scheduler, ["a"])
        await anyio.wait_all_tasks_blocked()
        assert scheduler.watching == 0
        polls = fake.polls.get("a", 0)
        fake.clock.advance(2000)
        await anyio.wait_all_tasks_blocked()
    assert fake.polls.get("a", 0) == polls


async def test_two_waiters_share_one_stream_of_polls() -> None:
    """Two waiters on one job: one entry, one set of polls, both told."""
    fake = FakeAkool(FakeClock())
    fake.add("shared", 30)
    fake.add("alone", 30)
    async with running(fake) as scheduler:
        results: list[dict[str, Result]] = []

        async def waiter(ids: list[str]) -> None:
            results.append(await collect(scheduler, ids))

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter, ["shared"])
            tg.start_soon(waiter, ["shared"])
            tg.start_soon(waiter, ["alone"])
    assert len(results) == 3
    assert fake.polls["shared"] == fake.polls["alone"]


async def test_transient_failures_postpone_fatal_ones_end() -> None:
    """Server errors only delay a job; an unknown id ends with its error."""
    fake = FakeAkool(FakeClock())
    fake.add("flaky", 30)
    fake.add("gone", 30)
    fake.fail_next(
        "flaky", ServerError("boom", http_status=502), ServerError("boom", http_status=502)
    )
    fake.fail_next("gone", NotFoundError("no such job", code=1008))
    async with running(fake) as scheduler:
        results = await collect(scheduler, ["flaky", "gone"])
    flaky = results["flaky"]
    assert isinstance(flaky, ImageJob)
    assert flaky.status is ImageStatus.COMPLETED
    assert isinstance(results["gone"], NotFoundError)
    assert scheduler.stats.failed_polls >= 3


async def test_a_bug_in_one_poll_does_not_stop_the_others() -> None:
    """An unexpected exception ends that job's wait with it; the scheduler goes on."""
    fake = FakeAkool(FakeClock())
    fake.add("broken", 30)
    fake.add("fine", 30)
    fake.fail_next("broken", RuntimeError("bug"))  # type: ignore[arg-type]
    async with running(fake) as scheduler:
        results = await collect(scheduler, ["broken", "fine"])
    assert isinstance(results["broken"], RuntimeError)
    assert isinstance(results["fine"], ImageJob)


async def test_scheduler_ends_cleanly_when_cancelled() -> None:
    """Cancelling the scheduler's scope leaves no task behind."""
    fake = FakeAkool(FakeClock())
    fake.add_lognormal(100)
    before = len(anyio.get_running_tasks())
    async with running(fake) as scheduler:
        watch = WatchSet(scheduler)
        for job_id in list(fake.jobs):
            watch.add(job_id)
        await anyio.wait_all_tasks_blocked()
    await anyio.wait_all_tasks_blocked()
    assert len(anyio.get_running_tasks()) == before
    assert not scheduler.running


@pytest.mark.parametrize("polls", [1.0, 3.0])
def test_policy_bounds(polls: float) -> None:
    """A polls-per-job target outside what the ladder can do is refused."""
    with pytest.raises(ValueError, match="polls_per_job"):
        PollPolicy(polls_per_job=polls)


@SIMULATION
async def test_a_service_much_slower_than_the_prior_is_learned_without_blowing_up() -> None:
    """Jobs of ~200 s against a 30 s prior: the model converges and later waves stay cheap."""
    fake = FakeAkool(FakeClock(), seed=6)
    async with running(fake, PollPolicy(min_interval=1.0)) as scheduler:
        waves = []
        for _ in range(3):
            ids = fake.add_lognormal(300, median=200.0)
            await collect(scheduler, ids)
            waves.append((_polls_per_job(fake, ids), statistics.median(fake.delays()[-300:])))
        model = scheduler._model
    assert 150 < math.exp(model.mu) < 260
    assert waves[-1][0] <= 1.7
    assert waves[0][0] <= 8  # the first wave pays for the wrong prior, within bounds


async def test_a_much_faster_service_replans_the_first_wave() -> None:
    """Jobs of ~5 s against a 30 s prior: probes move the prior and the waiting jobs' first
    polls come early, not at the prior's 38 s."""
    fake = FakeAkool(FakeClock(), seed=7)
    ids = fake.add_lognormal(300, median=5.0)
    async with running(fake, PollPolicy(min_interval=0.5)) as scheduler:
        await collect(scheduler, ids)
    assert statistics.median(fake.delays()) < 10


async def test_probes_stay_few_and_never_exceed_the_longest_interval() -> None:
    """A lone batch of long jobs (all probed) is polled at most once a minute, and a few times."""
    clock = FakeClock()
    fake = FakeAkool(clock)
    times: dict[str, list[float]] = {}
    original = fake.fetch

    async def recording(job_id: str) -> ImageJob:
        times.setdefault(job_id, []).append(clock.now())
        return await original(job_id)

    for n in range(4):
        fake.add(f"long{n}", 600.0)
    fake.fetch = recording  # type: ignore[method-assign]
    async with running(fake, PollPolicy()) as scheduler:
        await collect(scheduler, list(fake.jobs))
    for polled in times.values():
        gaps = [b - a for a, b in itertools.pairwise(polled)]
        assert max(gaps) <= 60 * 1.1
        assert len(polled) <= 20


async def test_a_job_unwatched_while_waiting_for_a_sender_is_not_polled() -> None:
    """With one sender busy, a job dropped while queued for it is never fetched."""
    fake = FakeAkool(FakeClock())
    fake.add("a", 30)
    fake.add("b", 30)
    release = anyio.Event()
    original = fake.fetch

    async def slow(job_id: str) -> ImageJob:
        if job_id == "a":
            await release.wait()
        return await original(job_id)

    fake.fetch = slow  # type: ignore[method-assign]
    scheduler = PollScheduler(fake.fetch, fake.clock, PollPolicy(probes=0, senders=1), seed=1)
    async with anyio.create_task_group() as tg:
        await tg.start(scheduler.run)
        watch = WatchSet(scheduler)
        watch.add("a")
        watch.add("b")
        fake.clock.advance(1000)
        await anyio.wait_all_tasks_blocked()
        watch.close()  # "b" waits for the sender "a" holds
        release.set()
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    assert "b" not in fake.polls


@pytest.mark.parametrize(
    "fields",
    [{"spread": 0}, {"expected_seconds": 0}, {"jitter": 1.0}, {"queued_backoff": 0.5},
     {"probes": -1}, {"senders": 0}, {"min_interval": 0}, {"max_interval": 0.1}],
)  # fmt: skip
def test_policy_refuses_settings_that_cannot_work(fields: dict[str, float]) -> None:
    """Every setting that would divide by zero or poll nonsensically is refused."""
    with pytest.raises(ValueError):  # noqa: PT011 - each field has its own message
        PollPolicy(**fields)  # type: ignore[arg-type]


def test_duration_model_takes_extreme_ages() -> None:
    """Ages of zero and infinity neither poison the model nor raise."""
    from akool_async._durations import DurationModel

    model = DurationModel(expected=30, spread=0.35, first_quantile=0.775, probes=0)
    for _ in range(40):
        model.finished(0.0, 0.0)
        model.running(0.0, math.inf)
        model.finished(10.0, 40.0)
    model._fit(1.0)
    assert math.isfinite(model.mu)
    assert math.isfinite(model.sigma)
    assert model.next_age(1e12) > 0
