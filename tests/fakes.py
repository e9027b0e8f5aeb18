"""A fake clock that jumps to the next deadline whenever every task is blocked, and a fake
Akool that answers job statuses from it: scheduler and limiter tests never really sleep."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import AsyncIterator, Callable

import anyio
import anyio.lowlevel
import attrs
import sniffio
import trio
import trio.testing

from akool_async import AkoolError, ImageJob, ImageStatus
from akool_async.webhook import WebhookEvent

_SETTLE_STEPS = 20


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self._sleepers: list[tuple[float, anyio.Event]] = []
        self._new_deadline: anyio.Event | None = None  # set when a deadline comes to jump to
        self.jumps = 0

    def now(self) -> float:
        return self.t

    async def wait(self, event: anyio.Event, until: float | None) -> None:
        if until is not None and until <= self.t:
            return
        sleeper = (math.inf if until is None else until, event)
        self._sleepers.append(sleeper)
        if until is not None and self._new_deadline is not None:
            self._new_deadline.set()
        try:
            await event.wait()
        finally:
            with contextlib.suppress(ValueError):
                self._sleepers.remove(sleeper)

    def advance(self, seconds: float) -> None:
        self.t += seconds
        for until, event in list(self._sleepers):
            if until <= self.t:
                event.set()

    def jump(self) -> bool:
        """Move to the earliest finite deadline; False when nobody sleeps with one."""
        finite = [until for until, _ in self._sleepers if until != math.inf]
        if not finite:
            return False
        self.advance(max(0.0, min(finite) - self.t))
        self.jumps += 1
        return True

    @contextlib.asynccontextmanager
    async def autojump(self) -> AsyncIterator[None]:
        """Within the block, time jumps to the next deadline once no other task can run.

        (anyio's wait_all_tasks_blocked sleeps 0.1 s of real time per check on asyncio, far
        too slow here. The event loop's own run queue says whether anything else can run;
        fake work never blocks on real I/O. A task that keeps rescheduling itself cannot hold
        time still: after a few steps time jumps anyway, which is harmless, since deadlines
        still hold.)
        """

        async def jumper() -> None:
            while True:
                await _settle()
                if not self.jump():  # nothing to jump to: block until something is
                    self._new_deadline = anyio.Event()
                    await self._new_deadline.wait()
                    self._new_deadline = None

        async with anyio.create_task_group() as tg:
            tg.start_soon(jumper)
            yield
            tg.cancel_scope.cancel()


async def _settle() -> None:
    """Return once no other task can run (or, on asyncio, after a few steps anyway)."""
    if sniffio.current_async_library() == "trio":
        await trio.testing.wait_all_tasks_blocked()  # exact, and woken by the scheduler
        return
    loop = asyncio.get_running_loop()
    for _ in range(_SETTLE_STEPS):
        await anyio.lowlevel.checkpoint()
        # CPython's loop keeps every ready task step and future wake-up in ``_ready``,
        # the current batch's included: empty means every other task is blocked.
        if not loop._ready:  # type: ignore[attr-defined]
            return


@attrs.define
class FakeJob:
    created: float
    queued_until: float
    done_at: float
    outcome: ImageStatus = ImageStatus.COMPLETED


class FakeAkool:
    """Job statuses by the fake clock; counts polls; can fail polls on demand."""

    def __init__(self, clock: FakeClock, seed: int = 0) -> None:
        self.clock = clock
        self.jobs: dict[str, FakeJob] = {}
        self.polls: dict[str, int] = {}
        self.noticed: dict[str, float] = {}
        self.errors: dict[str, list[Exception]] = {}
        self.rng = random.Random(seed)

    def add(
        self,
        job_id: str,
        duration: float,
        *,
        queue_share: float = 0.2,
        outcome: ImageStatus = ImageStatus.COMPLETED,
    ) -> None:
        now = self.clock.now()
        self.jobs[job_id] = FakeJob(now, now + duration * queue_share, now + duration, outcome)

    def add_lognormal(self, count: int, median: float = 30.0, sigma: float = 0.35) -> list[str]:
        ids = [f"job{len(self.jobs) + n}" for n in range(count)]
        for job_id in ids:
            self.add(job_id, self.rng.lognormvariate(math.log(median), sigma))
        return ids

    async def fetch(self, job_id: str) -> ImageJob:
        self.polls[job_id] = self.polls.get(job_id, 0) + 1
        if self.errors.get(job_id):
            raise self.errors[job_id].pop(0)
        job = self.jobs[job_id]
        now = self.clock.now()
        if now < job.queued_until:
            status = ImageStatus.QUEUEING
        elif now < job.done_at:
            status = ImageStatus.PROCESSING
        else:
            status = job.outcome
            self.noticed.setdefault(job_id, now)
        image = f"https://cdn.test/{job_id}.png" if status == ImageStatus.COMPLETED else None
        return ImageJob(id=job_id, status=status, image=image)

    def delays(self) -> list[float]:
        return [self.noticed[j] - self.jobs[j].done_at for j in self.noticed]

    def fail_next(self, job_id: str, *errors: AkoolError) -> None:
        self.errors.setdefault(job_id, []).extend(errors)


async def send_callbacks(
    fake: FakeAkool,
    notify: Callable[[WebhookEvent], None],
    ids: list[str],
    *,
    lost: frozenset[str] = frozenset(),
) -> None:
    """Akool's webhooks, on the fake clock: each job's final status at its end, except for
    the ``lost`` ones (a callback that never arrives)."""
    for job_id in sorted(ids, key=lambda j: fake.jobs[j].done_at):
        job = fake.jobs[job_id]
        await fake.clock.wait(anyio.Event(), job.done_at)
        if job_id not in lost:
            url = f"https://cdn.test/{job_id}.png" if job.outcome == ImageStatus.COMPLETED else None
            notify(WebhookEvent(job_id=job_id, status=job.outcome, type="image", url=url))
