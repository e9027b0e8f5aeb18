"""A prompt's whole tree of jobs: the v4 batch, then the U/V follow-ups on each image.

``Generation`` creates the batch, follows every job through the client's shared poll
scheduler, presses the requested buttons on each image the moment it finishes (checked
against its ``buttons`` first, so no credit is spent on a button that is not offered),
follows those too, and yields one ``JobOutcome`` per job as it ends. The workflow is THE
follow machine's (``_follow``, shared with the bulk runner); ``Generation`` is its driver:
it runs the machine's actions with the client and feeds it what came of them.

One job failing never costs its siblings their results: each outcome carries its own
error, and nothing is raised unless ``fail_fast`` asks for it. Stopping early (a break,
an exception, a cancellation) stops following the jobs; the ids of those still running
on the server are kept in ``left_running`` (and logged), so they can be picked up later.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from types import TracebackType
from typing import Self

import anyio
import attrs

from . import _follow_events as ev
from . import _follow_io as fio
from ._clock import wall_time
from ._follow import FollowMachine
from ._follow_events import JobOutcome
from ._models import Button, ImageJob
from ._requests import ButtonRequest, SourcePromptRequest
from ._watchset import WatchSet
from ._workflow_client import WorkflowClient

log = logging.getLogger("akool_async")


@attrs.frozen
class GenerationTree:
    """Every outcome of a generation, in the order they ended, linked parent to children."""

    outcomes: tuple[JobOutcome, ...]
    left_running: tuple[str, ...] = ()

    @property
    def roots(self) -> tuple[JobOutcome, ...]:
        return tuple(o for o in self.outcomes if o.parent_id is None)

    def children(self, parent: JobOutcome) -> tuple[JobOutcome, ...]:
        return tuple(
            o for o in self.outcomes if o.parent_id is not None and o.parent_id == parent.job_id
        )

    @property
    def completed(self) -> tuple[JobOutcome, ...]:
        return tuple(o for o in self.outcomes if o.ok)

    @property
    def failed(self) -> tuple[JobOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.ok)

    @property
    def credits(self) -> float:
        return sum(o.credits or 0 for o in self.outcomes)


class Generation:
    """``async for outcome in client.generate(...)``; or ``await ....collect()`` for the tree.

    The tree is followed by a driver task in the client's background, so buttons are
    pressed the moment their image finishes, however slowly outcomes are read. Leaving
    early (``async with`` makes it prompt) stops the driver; ``left_running`` then names
    the jobs still running on the server.

    Why the client's background (``client.start_soon``) and not a task group of its own:
    an async generator may not hold a task group open across its ``yield`` (its cancel
    scope would span the consumer's code), and requiring ``async with`` around every
    ``async for`` would break the public API. The client's background lives exactly as
    long as the polling it depends on, and closing the client ends both. ``client`` is
    any ``WorkflowClient``: only public client methods are used.
    """

    def __init__(
        self,
        client: WorkflowClient,
        request: SourcePromptRequest,
        follow_ups: Sequence[Button],
        *,
        fail_fast: bool = False,
        job_timeout: float | None = None,
    ) -> None:
        self._client = client
        self.request = request
        self.follow_ups = tuple(follow_ups)
        self.fail_fast = fail_fast
        self._job_timeout = job_timeout
        self._iterator: AsyncIterator[JobOutcome] | None = None
        self._queue: deque[JobOutcome] = deque()
        self._arrived = anyio.Event()
        self._driver_scope: anyio.CancelScope | None = None
        self._driver_ended = anyio.Event()
        self._stopping = False
        self._done = False
        self._failure: Exception | None = None
        self._left: set[str] = set()  # jobs going on on the server unfollowed
        self.left_running: tuple[str, ...] = ()

    def __aiter__(self) -> AsyncIterator[JobOutcome]:
        if self._iterator is None:
            self._iterator = self._consume()
        return self._iterator

    async def aclose(self) -> None:
        if self._iterator is not None:
            await self._iterator.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def collect(self) -> GenerationTree:
        """Run the whole generation and return every outcome as a tree."""
        async with self:
            outcomes = [outcome async for outcome in self]
        return GenerationTree(tuple(outcomes), self.left_running)

    # -- the consumer's side ------------------------------------------------------------

    async def _consume(self) -> AsyncIterator[JobOutcome]:
        self._client.start_soon(self._drive)  # the driver is part of the client
        try:
            while True:
                while not self._queue:
                    if self._done:
                        if self._failure is not None:
                            raise self._failure
                        return
                    self._arrived = anyio.Event()
                    await self._arrived.wait()
                outcome = self._queue.popleft()
                if self.fail_fast and outcome.error is not None:
                    raise outcome.error
                yield outcome
        finally:
            self._stopping = True
            if self._driver_scope is not None:
                self._driver_scope.cancel()
            with anyio.CancelScope(shield=True):
                await self._driver_ended.wait()
            self.left_running = tuple(sorted(self._left))
            if self.left_running:
                log.warning(
                    "generation stopped with %d job(s) still running on the server: %s",
                    len(self.left_running),
                    ", ".join(self.left_running),
                )

    def _push(self, outcome: JobOutcome) -> None:
        self._queue.append(outcome)
        self._arrived.set()

    # -- the driver, in the client's background ------------------------------------------

    async def _drive(self) -> None:
        try:
            with anyio.CancelScope() as self._driver_scope:
                if not self._stopping:
                    await self._follow()
        except Exception as exc:  # a bug, or the client closing: the consumer hears of it
            self._failure = exc
        finally:
            self._done = True
            self._arrived.set()
            self._driver_ended.set()

    async def _follow(self) -> None:
        """Run THE follow machine (``_follow``): execute its actions, feed it what came of
        them. Creates and presses are shielded (their jobs may exist); a stop is told to the
        machine, which names the jobs it leaves running."""
        machine = FollowMachine(self.request, self.follow_ups, job_timeout=self._job_timeout)
        watch = self._client.watch()
        seen: dict[str, ImageJob] = {}  # each job's outcome, for a look-up of its buttons
        try:
            pending = deque(machine.start(wall_time(watch.clock)))
            while pending or not machine.settled:
                if pending:
                    event = await self._execute(pending.popleft(), watch, seen)
                    now = wall_time(watch.clock)
                elif watch.idle:  # pragma: no cover - the machine waits on nothing: a bug
                    raise RuntimeError(f"the follow machine is stuck: {machine.jobs}")
                else:
                    job_id, result = await watch.next()
                    event, now = fio.watched(job_id, result, seen), watch.last_arrival
                if event is not None:
                    pending.extend(machine.handle(event, now))
        finally:
            watch.close()
            if not machine.settled:
                self._emit_all(machine.handle(ev.Cancelled(), wall_time(watch.clock)))
            self._left |= set(machine.left_running)

    async def _execute(
        self, action: ev.Action, watch: WatchSet, seen: dict[str, ImageJob]
    ) -> ev.Event | None:
        """One action of the machine, with I/O; the event it led to (None: nothing to tell).
        Record and Download are a journal's and saving's (bulk): generate has neither."""
        if isinstance(action, ev.Create | ev.Press):
            return await self._send(action)
        if isinstance(action, ev.LookUpButtons):
            return await fio.look_up(
                action.job_id, lambda: self._client.with_buttons(seen[action.job_id])
            )
        if isinstance(action, ev.Watch):
            fio.watch(watch, action)
        elif isinstance(action, ev.Emit):
            self._emit_all([action])
        return None

    async def _send(self, action: ev.Create | ev.Press) -> ev.Event:
        """A create or press, let finish if the generation stops meanwhile (its jobs may
        exist). Ids a failure still holds are left running unfollowed (the error is the
        outcome, as it always was here), so the machine is told none."""
        request = action.request
        assert isinstance(request, SourcePromptRequest | ButtonRequest)  # v4 trees only

        async def submit() -> tuple[ImageJob, ...]:
            with anyio.CancelScope(shield=True):
                jobs = await self._client.submit(request)
            return jobs

        event = await fio.send(action, submit)
        if isinstance(event, ev.CreateFailed):
            self._left.update(event.job_ids)
            return attrs.evolve(event, job_ids=())
        if isinstance(event, ev.PressFailed):
            self._left.update(event.child_ids)
            return attrs.evolve(event, child_ids=())
        return event

    def _emit_all(self, actions: Iterable[ev.Action]) -> None:
        """The machine's outcomes, onto the consumer's queue (after a stop, only emits come)."""
        for action in actions:
            if isinstance(action, ev.Emit) and isinstance(outcome := action.what, ev.Outcome):
                self._push(outcome)  # the machine's record is the public one
