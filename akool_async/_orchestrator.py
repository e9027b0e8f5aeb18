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
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

import attrs

from ._exceptions import AkoolError, JobFailedError
from ._models import Button, ImageJob, ImageStatus
from ._polling import Result, WatchSet
from ._requests import ButtonRequest, SourcePromptRequest

if TYPE_CHECKING:
    from ._client import AkoolClient

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

    Prefer ``async with client.generate(...) as generation: async for ...`` when the loop
    may end early: leaving the block stops following the jobs at once.
    """

    def __init__(
        self,
        client: AkoolClient,
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
        self.left_running: tuple[str, ...] = ()

    def __aiter__(self) -> AsyncIterator[JobOutcome]:
        if self._iterator is None:
            self._iterator = self._run()
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

    async def _run(self) -> AsyncIterator[JobOutcome]:
        watch = self._client._watch_set()
        pending: dict[str, _Pending] = {}
        try:
            submitted_at = time.time()
            try:
                jobs = await self._client.submit(self.request)
            except AkoolError as exc:
                if self.fail_fast:
                    raise
                yield self._failed_create(exc, submitted_at, None, None)
                return
            for job in jobs:
                pending[job.id] = _Pending(job, submitted_at)
                watch.add(job.id, timeout=self._job_timeout)
            while True:
                try:
                    job_id, result = await watch.next()
                except LookupError:
                    return
                for outcome in await self._finish(
                    job_id, result, pending.pop(job_id), pending, watch
                ):
                    if self.fail_fast and outcome.error is not None:
                        raise outcome.error
                    yield outcome
        finally:
            self.left_running = watch.close()
            if self.left_running:
                log.warning(
                    "generation stopped with %d job(s) still running on the server: %s",
                    len(self.left_running),
                    ", ".join(self.left_running),
                )

    async def _finish(
        self,
        job_id: str,
        result: Result,
        mine: _Pending,
        pending: dict[str, _Pending],
        watch: WatchSet,
    ) -> list[JobOutcome]:
        """The outcome of ``job_id``, after pressing its follow-ups (their failures too)."""
        now = time.time()
        job = result if isinstance(result, ImageJob) else mine.submitted
        error: Exception | None = result if isinstance(result, Exception) else None
        if isinstance(result, ImageJob) and result.status == ImageStatus.FAILED:
            error = JobFailedError("the job failed", job=result)
        outcomes: list[JobOutcome] = []
        children: list[str] = []
        if error is None and mine.parent_id is None and job.status == ImageStatus.COMPLETED:
            for button in self.follow_ups:
                try:
                    child = await self._client.submit(ButtonRequest.for_parent(job, button))
                except AkoolError as exc:
                    outcomes.append(self._failed_create(exc, now, job.id, button))
                    continue
                children.append(child[0].id)
                pending[child[0].id] = _Pending(child[0], time.time(), job.id, button)
                watch.add(child[0].id, timeout=self._job_timeout)
        outcome = JobOutcome(
            job_id=job_id, job=job, error=error, parent_id=mine.parent_id, button=mine.button,
            children=tuple(children), submitted_at=mine.submitted_at, finished_at=now,
        )  # fmt: skip
        return [outcome, *outcomes]

    @staticmethod
    def _failed_create(
        error: AkoolError, submitted_at: float, parent_id: str | None, button: Button | None
    ) -> JobOutcome:
        return JobOutcome(
            job_id=None, error=error, parent_id=parent_id, button=button,
            submitted_at=submitted_at, finished_at=time.time(),
        )  # fmt: skip
