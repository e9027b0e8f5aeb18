"""``PollScheduler``: every waiting job of a client, polled by one long-lived task.

Jobs wait in a min-heap keyed by when they are next due, so ten thousand waiting jobs
cost one task and a heap entry each, not ten thousand sleeping coroutines. Due jobs are
handed to a few long-lived senders (not a task per request), which poll them through
the client, so polls share the client's rate budget and cap on requests in flight.

When to poll is decided by ``_poll_planner`` (pure, ``now`` passed in): this module
executes its plans, reconciles webhook callbacks with the jobs watched, and resolves the
waiters. A status-3 callback for a grid job, or for one whose shape is unknown, leads to
one poll for its parts, not to its end; once the planner gives up on the parts, waiters
get the job with ``parts_missing=True`` (and a warning is logged).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from types import MappingProxyType

import anyio
import anyio.abc
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._callbacks import Callbacks
from ._clock import Clock
from ._closing import OpenState
from ._durations import DurationModel
from ._exceptions import AkoolError, ClientClosedError, PayloadError
from ._grid import awaiting_parts, job_is_grid, job_shape, parts_missing_note
from ._models import ImageJob, ImageStatus, JobSource, WebhookEvent
from ._poll_planner import JobPlan, PollPlanner
from ._poll_policy import PollPolicy, PollStats
from ._retry import READ_RETRYABLE

__all__ = ["PollPolicy", "PollScheduler", "PollStats", "Result"]  # the policy re-exported

Result = ImageJob | Exception
Listener = Callable[[str, Result], None]
Fetch = Callable[[str], Awaitable[ImageJob]]

_TRANSIENT = (*READ_RETRYABLE, PayloadError)
# A callback's job says so in ``ImageJob.source``; this key is kept for readers of the
# old signal (deprecated), never read by the package.
_VIA_WEBHOOK = MappingProxyType({"via": "webhook"})
_SHAPES_KEPT = 16384  # jobs whose shape (grid or not) the scheduler remembers from creates
log = logging.getLogger("akool_async")


class _Entry:
    """One watched job; shared by everyone waiting on it."""

    __slots__ = ("completed", "due", "grid", "job_id", "listeners", "plan")

    def __init__(self, job_id: str, plan: JobPlan) -> None:
        self.job_id = job_id
        self.plan = plan
        self.grid: bool | None = None  # None: not known before its answers say
        self.completed: ImageJob | None = None  # its last answer then: what there is so far
        self.listeners: list[Listener] = []
        self.due = 0.0


class PollScheduler:
    def __init__(self, fetch: Fetch, clock: Clock, policy: PollPolicy | None = None,
                 *, seed: int | None = None, senders: int = 8,
                 state: OpenState | None = None) -> None:  # fmt: skip
        self.policy = policy or PollPolicy()
        self._senders = self.policy.senders or senders
        self.clock = clock
        self.stats = PollStats()
        self._fetch = fetch
        self._callbacks = Callbacks()
        jitter = random.Random(seed)  # noqa: S311 - jitter, not secrecy
        self._planner = PollPlanner(self.policy, self._callbacks, jitter)
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[float, int, _Entry]] = []
        self._order = itertools.count()
        self._wake = anyio.Event()
        self.running = False
        self.state = state or OpenState()  # its client's: a closed client follows nothing
        self._grids: OrderedDict[str, bool] = OrderedDict()  # shapes known from creates

    @property
    def watching(self) -> int:
        return len(self._entries)

    @property
    def _model(self) -> DurationModel:
        return self._planner.model

    # -- watching -------------------------------------------------------------------------

    def remember_shapes(self, job_ids: Iterable[str], *, grid: bool) -> None:
        """Whether jobs just created are grids (see ``_grid``), for whoever waits on them."""
        for job_id in job_ids:
            self._grids[job_id] = grid
        while len(self._grids) > _SHAPES_KEPT:
            self._grids.popitem(last=False)

    def is_grid(self, job: ImageJob) -> bool:
        """Whether ``job`` is a grid job, as its create or its answer says."""
        return job_is_grid(job, self._grids.get(job.id))

    def watch(
        self, job_id: str, listener: Listener, *, age: float | None = 0.0, grid: bool | None = None
    ) -> None:
        """Call ``listener(job_id, result)`` once ``job_id`` ends (or cannot be followed).

        ``age``: seconds since the job was created; None when unknown (it is polled now).
        ``grid``: whether it is a grid job; None: as its create or its answers say.
        """
        if self.state.closed:  # nothing would poll it: say so rather than wait forever
            listener(job_id, ClientClosedError("the client is closed"))
            return
        entry = self._entries.get(job_id)
        if grid is None:
            grid = self._grids.get(job_id)
        early = None if entry is not None else self._callbacks.take(job_id)
        if early is not None and not awaiting_parts(early, job_is_grid(early, grid)):
            self.stats.by_callback += 1  # it ended before anyone waited: no poll needed
            listener(job_id, early)
            return
        if entry is None:
            now = self.clock.now()
            entry = _Entry(job_id, self._planner.plan(age, now))
            if not self._entries:
                self._callbacks.busy_again(now)
            self._entries[job_id] = entry
            if early is not None:  # a grid its callback said completed: a poll for its parts
                self._start_parts_wait(entry, early, now)
                self._schedule(entry, now)
            else:
                self._schedule(entry, self._planner.first_due(entry.plan, now))
        if grid is not None:
            entry.grid = grid
        entry.listeners.append(listener)

    def unwatch(self, job_id: str, listener: Listener) -> None:
        """Stop telling ``listener``; a job nobody waits for is no longer polled."""
        entry = self._entries.get(job_id)
        if entry is None:
            return
        if listener in entry.listeners:
            entry.listeners.remove(listener)
        if not entry.listeners:
            del self._entries[job_id]  # its heap item is skipped when it comes up
            self._planner.dropped(entry.plan)
            if len(self._heap) > 64 and len(self._heap) > 2 * len(self._entries):
                self._heap = [item for item in self._heap if self._is_current(item)]
                heapq.heapify(self._heap)

    def _is_current(self, item: tuple[float, int, _Entry]) -> bool:
        due, _, entry = item
        return self._entries.get(entry.job_id) is entry and entry.due == due

    def _schedule(self, entry: _Entry, due: float) -> None:
        entry.due = due
        heapq.heappush(self._heap, (due, next(self._order), entry))
        if self._heap[0][2] is entry:
            self._wake.set()

    # -- webhooks -------------------------------------------------------------------------

    def expect_callbacks(self) -> None:
        """A webhook receiver is attached: count callbacks as flowing until a silence says
        otherwise, so jobs are not polled (nor probed) ahead of their callbacks."""
        self._callbacks.expect(self.clock.now())

    def submitted(self, job_ids: Iterable[str]) -> None:
        """Jobs this client created: their callbacks, even before anyone waits, show that
        callbacks flow (another client's, on a shared receiver, say nothing about ours)."""
        early = self._callbacks.mark_ours(job_ids)
        if early:  # they ended before their create's answer was handled (a busy loop)
            now = self.clock.now()
            self.stats.callbacks += early
            if self._callbacks.heard(now):
                self._replan_all(now)

    def notify(self, event: WebhookEvent) -> None:
        """A verified callback: end its job's wait at once; while callbacks flow, polls
        stretch to a safety net for callbacks that never come."""
        entry = self._entries.get(event.job_id)
        if entry is None and not self._callbacks.is_ours(event.job_id):
            # Another client's, or ours before its create's answer was handled: kept
            # unheard, for submitted() or a wait to claim.
            if (job := _outcome(event)) is not None:
                self._callbacks.keep(job, ours=False)
            return
        now = self.clock.now()
        self.stats.callbacks += 1
        if self._callbacks.heard(now):
            self._replan_all(now)
        if not event.status.is_terminal:
            return
        job = _outcome(event)
        if job is None:
            if entry is not None:  # completed without its image: a poll will bring it
                self._schedule(entry, now)
            return
        if entry is None:  # kept a while for a wait that starts later
            self._callbacks.keep(job, ours=True)
            return
        if awaiting_parts(job, job_is_grid(job, entry.grid)):
            if entry.plan.parts_until is None:  # one poll for the parts; more only if they lag
                self._learn_end(entry, job, now - entry.plan.origin)
                self._start_parts_wait(entry, job, now)
                self._schedule(entry, now)
            return
        self.stats.by_callback += 1
        self._ended(entry, job, now - entry.plan.origin)

    def _replan_all(self, now: float) -> None:
        """Callbacks just started or stopped: every job is planned again."""
        for entry in list(self._entries.values()):
            due = self._planner.rescheduled(entry.plan, entry.due, now)
            if due is not None:
                self._schedule(entry, due)

    # -- the long-lived tasks ---------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Hand due jobs to the senders until cancelled (by the client's closing)."""
        send, receive = anyio.create_memory_object_stream[_Entry]()
        async with anyio.create_task_group() as senders, send, receive:
            for _ in range(self._senders):
                senders.start_soon(self._sender, receive.clone())
            self.running = True
            task_status.started()
            try:
                while True:
                    now = self.clock.now()
                    if self._planner.fell_silent(now):
                        self._replan_all(now)
                    await self._dispatch_due(send)
                    self._wake = anyio.Event()
                    until = self._planner.wake_at(self._heap[0][0] if self._heap else None)
                    await self.clock.wait(self._wake, until)
            finally:
                self.running = False
                self._close_all()

    def _close_all(self) -> None:
        """The scheduler is ending (its client closed): nobody may wait on it any more."""
        entries, self._entries, self._heap = list(self._entries.values()), {}, []
        for entry in entries:
            for listener in entry.listeners:
                listener(entry.job_id, ClientClosedError("the client closed while this job ran"))

    async def _dispatch_due(self, send: MemoryObjectSendStream[_Entry]) -> None:
        while self._heap and self._heap[0][0] <= self.clock.now():
            item = heapq.heappop(self._heap)
            if self._is_current(item):
                # Straight to an idle sender when there is one (no pass through the event
                # loop: at thousands of polls a second those passes were a third of the
                # scheduler's CPU); else wait for one: the heap keeps the order.
                try:
                    send.send_nowait(item[2])
                except anyio.WouldBlock:
                    await send.send(item[2])

    async def _sender(self, receive: MemoryObjectReceiveStream[_Entry]) -> None:
        async with receive:
            with contextlib.suppress(anyio.EndOfStream):
                while True:
                    try:
                        entry = receive.receive_nowait()
                    except anyio.WouldBlock:
                        entry = await receive.receive()
                    await self._poll(entry)

    async def _poll(self, entry: _Entry) -> None:
        if self._entries.get(entry.job_id) is not entry:
            return  # unwatched while it waited for a sender
        try:
            job = await self._fetch(entry.job_id)
        except Exception as exc:
            # Whatever happens to one poll must not end the scheduler: every waiter would hang.
            self.stats.failed_polls += 1
            if self._entries.get(entry.job_id) is not entry:
                return
            if not isinstance(exc, AkoolError):
                log.exception("polling job %s failed unexpectedly", entry.job_id)
            if isinstance(exc, _TRANSIENT):
                self._schedule(entry, self._planner.failed(entry.plan, self.clock.now()))
            else:
                self._resolve(entry, exc)
            return
        now = self.clock.now()
        self.stats.polls += 1
        age = self._planner.answered(entry.plan, now)
        if self._entries.get(entry.job_id) is not entry:
            return  # nobody waits any more
        if job.is_terminal:
            if entry.plan.parts_until is not None:
                self.stats.parts_polls += 1
            if awaiting_parts(job, job_is_grid(job, entry.grid)):
                given_up = self._await_parts(entry, job, now, age)
                if given_up is None:
                    return
                job = given_up
            self._ended(entry, job, age)
            return
        self._schedule(entry, self._planner.running(entry.plan, job.status, now))

    def _await_parts(self, entry: _Entry, job: ImageJob, now: float, age: float) -> ImageJob | None:
        """A grid completed without its parts: None while they may still come (polled
        again), else the job as it is, marked ``parts_missing``."""
        if entry.plan.parts_until is None:
            self._learn_end(entry, job, age)  # the generation's duration, not the parts'
            self._start_parts_wait(entry, job, now)
        entry.completed = job
        due = self._planner.parts_due(entry.plan, now)
        if due is None:
            return self._without_parts(entry, job)
        self._schedule(entry, due)
        return None

    def parts_pending(self, job_id: str) -> ImageJob | None:
        """A job followed only for its parts, as it is (``parts_missing``, logged); None
        for one not completed yet. For a waiter whose deadline came: the issue's "return
        what is there, flagged", not a timeout for a job that has finished."""
        entry = self._entries.get(job_id)
        if entry is None or entry.completed is None:
            return None
        return self._without_parts(entry, entry.completed, deadline=True)

    def _without_parts(self, entry: _Entry, job: ImageJob, *, deadline: bool = False) -> ImageJob:
        self.stats.parts_missing += 1
        grace = None if deadline else self.policy.parts_grace
        log.warning("job %s %s", job.id, parts_missing_note(job_shape(job, entry.grid), grace))
        return attrs.evolve(job, parts_missing=True)

    def _start_parts_wait(self, entry: _Entry, job: ImageJob, now: float) -> None:
        """``entry`` is a grid completed without its parts (``job``): followed for them
        until the grace period ends."""
        entry.completed = job
        self._planner.await_parts(entry.plan, now)

    def _ended(self, entry: _Entry, job: ImageJob, age: float) -> None:
        self.stats.finished += 1
        self._learn_end(entry, job, age)
        self._resolve(entry, job)

    def _learn_end(self, entry: _Entry, job: ImageJob, age: float) -> None:
        failed = job.status == ImageStatus.FAILED
        if self._planner.ended(entry.plan, failed=failed, age=age):
            # The prior moved: jobs not yet polled get their first poll from the new model.
            now = self.clock.now()
            for other in self._entries.values():
                if (due := self._planner.replan(other.plan, now)) is not None:
                    self._schedule(other, due)

    def _resolve(self, entry: _Entry, result: Result) -> None:
        del self._entries[entry.job_id]
        for listener in entry.listeners:
            listener(entry.job_id, result)


def _outcome(event: WebhookEvent) -> ImageJob | None:
    """The job a callback ends; None when it ends nothing yet (still running, or completed
    without its image, which a poll must bring)."""
    if not event.status.is_terminal or (event.status == ImageStatus.COMPLETED and not event.url):
        return None
    return ImageJob(
        id=event.job_id, status=event.status, image=event.url, extra=_VIA_WEBHOOK,
        source=JobSource.CALLBACK,
    )  # fmt: skip
