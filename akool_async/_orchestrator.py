"""A prompt's whole tree of jobs: the v4 batch, then the U/V follow-ups on each image.

``Generation`` creates the batch, follows every job through the client's shared poll
scheduler, presses the requested buttons on each image the moment it finishes (checked
against its ``buttons`` first, so no credit is spent on a button that is not offered),
follows those too, and yields one ``JobOutcome`` per job as it ends.

One job failing never costs its siblings their results: each outcome carries its own
error, and nothing is raised unless ``fail_fast`` asks for it. Stopping early (a break,
an exception, a cancellation) stops following the jobs; the ids of those still running
on the server are kept in ``left_running`` (and logged), so they can be picked up later.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Self

import anyio
import attrs

from ._exceptions import AkoolError, JobFailedError, JobTimeoutError
from ._models import Button, ImageJob, ImageStatus
from ._polling import Result
from ._requests import ButtonRequest, SourcePromptRequest
from ._watchset import WatchSet
from ._workflow_client import WorkflowClient

log = logging.getLogger("akool_async")


@attrs.frozen
class JobOutcome:
    """How one job of a generation ended: its last state, or the error that stopped it."""

    job_id: str | None  # None when the create itself failed
    job: ImageJob | None = None
    error: Exception | None = None
    parent_id: str | None = None
    button: Button | None = None
    children: tuple[str, ...] = ()
    submitted_at: float = 0.0  # epoch seconds
    finished_at: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.error is None and self.job is not None and self.job.status == ImageStatus.COMPLETED
        )

    @property
    def status(self) -> ImageStatus | None:
        return self.job.status if self.job is not None else None

    @property
    def url(self) -> str | None:
        return self.job.url if self.ok and self.job is not None else None

    @property
    def images(self) -> tuple[str, ...]:
        """The finished job's images (a V result's four parts; see ``ImageJob.images``)."""
        return self.job.images if self.ok and self.job is not None else ()

    @property
    def credits(self) -> int | float | None:
        return self.job.deduction_credit if self.job is not None else None

    @property
    def seconds(self) -> float:
        return self.finished_at - self.submitted_at


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


@attrs.define
class _Pending:
    submitted: ImageJob
    submitted_at: float
    parent_id: str | None = None
    button: Button | None = None


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
        self._created: set[str] = set()  # every job made, whatever became of the driver
        self._ended: set[str] = set()
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
            self.left_running = tuple(sorted(self._created - self._ended))
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
        watch = self._client.watch()
        pending: dict[str, _Pending] = {}
        try:
            submitted_at = time.time()
            jobs = await self._submit(self.request, submitted_at, None, None)
            for job in jobs:
                pending[job.id] = _Pending(job, submitted_at)
                watch.add(job.id, timeout=self._job_timeout)
            while not watch.idle:
                job_id, result = await watch.next()
                mine = pending.pop(job_id)
                self._push(await self._finish(job_id, result, mine, pending=pending, watch=watch))
        finally:
            watch.close()

    async def _submit(
        self, request: SourcePromptRequest | ButtonRequest, submitted_at: float,
        parent_id: str | None, button: Button | None,
    ) -> tuple[ImageJob, ...]:  # fmt: skip
        """A create, let finish if the generation stops meanwhile (its jobs may exist)."""
        with anyio.CancelScope(shield=True):
            try:
                jobs = await self._client.submit(request)
            except AkoolError as exc:
                self._push(self._failed_create(exc, submitted_at, parent_id, button))
                self._created.update(getattr(exc, "job_ids", ()))
                return ()
        self._created.update(job.id for job in jobs)
        return jobs

    async def _finish(
        self,
        job_id: str,
        result: Result,
        mine: _Pending,
        *,
        pending: dict[str, _Pending],
        watch: WatchSet,
    ) -> JobOutcome:
        """The outcome of ``job_id``, after pressing its follow-ups (a failed press is an
        outcome of its own). Its time is when the scheduler saw it end."""
        finished_at = watch.last_arrival
        job = result if isinstance(result, ImageJob) else mine.submitted
        error: Exception | None = result if isinstance(result, Exception) else None
        if isinstance(result, ImageJob) and result.status == ImageStatus.FAILED:
            error = JobFailedError("the job failed", job=result)
        children: list[str] = []
        if error is None and mine.parent_id is None and job.status == ImageStatus.COMPLETED:
            buttons = self.follow_ups
            if buttons:
                try:
                    job = await self._client.with_buttons(job)  # a callback carries none
                except AkoolError as exc:
                    for button in buttons:
                        self._push(self._failed_create(exc, time.time(), job.id, button))
                    buttons = ()
            for button in buttons:
                try:
                    request = ButtonRequest.for_parent(job, button)
                except AkoolError as exc:
                    self._push(self._failed_create(exc, time.time(), job.id, button))
                    continue
                for child in await self._submit(request, time.time(), job.id, button):
                    children.append(child.id)
                    pending[child.id] = _Pending(child, time.time(), job.id, button)
                    watch.add(child.id, timeout=self._job_timeout)
        if error is None or not isinstance(error, JobTimeoutError):
            self._ended.add(job_id)
        return JobOutcome(
            job_id=job_id, job=job, error=error, parent_id=mine.parent_id, button=mine.button,
            children=tuple(children), submitted_at=mine.submitted_at, finished_at=finished_at,
        )  # fmt: skip

    @staticmethod
    def _failed_create(
        error: AkoolError, submitted_at: float, parent_id: str | None, button: Button | None
    ) -> JobOutcome:
        return JobOutcome(
            job_id=None, error=error, parent_id=parent_id, button=button,
            submitted_at=submitted_at, finished_at=time.time(),
        )  # fmt: skip
