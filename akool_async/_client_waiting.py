"""Waiting on jobs: ``AkoolClient.wait`` and ``as_completed``, built on the client's
public ``watch()`` (a ``WatchSet`` on the shared poll scheduler) and nothing else of it.

A mixin of ``AkoolClient`` (which supplies ``watch``), so the facade stays one module of
endpoints and lifecycle while the waiting rules live here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING

from ._arguments import MAX_WAIT_TIMEOUT, optional_timeout
from ._clock import wall_time
from ._exceptions import JobFailedError, JobTimeoutError, ValidationError
from ._grid import awaiting_parts, told_by
from ._models import ImageJob, ImageStatus
from ._requests import check_job_id
from ._settings import check_job
from ._watchset import WatchSet


class WaitingMixin:
    """``wait`` and ``as_completed`` for a class that has a ``watch()``."""

    if TYPE_CHECKING:

        def watch(self) -> WatchSet: ...

    async def wait(self, job: ImageJob | str, *, timeout: float | None = None) -> ImageJob:
        """The job once it has finished; ``JobFailedError`` if it failed.

        Polled by the client's shared scheduler. ``JobTimeoutError`` (with the job id) when
        ``timeout`` seconds pass first: the job goes on, wait on it again later.

        A grid job (v3 first result, V result: see ``ImageJob``) has finished when its four
        images have come too; if they have not ``PollPolicy.parts_grace`` seconds after its
        status 3, or when ``timeout`` comes first, it is returned with
        ``parts_missing=True``. Grids are known from the creates this client made, or from
        the ``ImageJob`` of a create (any client's). A bare id of another client's job whose
        answers cannot tell (completed, buttons, no parts, not v4) is followed like a grid:
        a v4 job of that look comes back after the grace period, ``parts_missing`` and
        logged (see ``_grid.job_shape``).
        """
        timeout = optional_timeout("timeout", timeout, maximum=MAX_WAIT_TIMEOUT)
        check_job(job)
        watch = self.watch()
        follow_job(watch, job, timeout)
        try:
            _, result = await watch.next()
        finally:
            watch.close()
        if isinstance(result, Exception):
            raise result
        if result.status == ImageStatus.FAILED:
            raise JobFailedError("the job failed", job=result)
        return result

    async def as_completed(
        self, jobs: Iterable[ImageJob | str], *, timeout: float | None = None
    ) -> AsyncIterator[ImageJob]:
        """Each job's final state (completed or failed: check ``status``) as it finishes.

        After ``timeout`` seconds, ``JobTimeoutError`` lists the jobs still running; a grid
        that has finished but for its parts is yielded first, as ``wait`` returns it.
        A job that cannot be followed (e.g. an unknown id) raises its error in its turn.
        """
        timeout = optional_timeout("timeout", timeout, maximum=MAX_WAIT_TIMEOUT)
        if isinstance(jobs, str | bytes) or not isinstance(jobs, Iterable):
            raise ValidationError("jobs", jobs, "an iterable of ImageJob or job id")
        jobs = list(jobs)
        for job in jobs:
            check_job(job)
        watch = self.watch()
        for job in jobs:
            follow_job(watch, job, timeout)
        try:
            while True:
                try:
                    _, result = await watch.next()
                except LookupError:
                    return
                if isinstance(result, JobTimeoutError):
                    late = watch.close()  # this one and any other past the deadline
                    raise JobTimeoutError(
                        f"{len(late)} job(s) did not finish in time", job_ids=late
                    )
                if isinstance(result, Exception):
                    raise result
                yield result
        finally:
            watch.close()


def follow_job(watch: WatchSet, job: ImageJob | str, timeout: float | None) -> None:
    """Watch ``job``: a bare id is polled at once (it may be old), a finished job not at all
    (unless a grid still lacks its parts), a running one from its age (by ``create_time``;
    never negative, clocks differ). An ``ImageJob`` brings the shape it tells (its
    ``op_button``, v3 or v4 create fields: ``_grid.told_by``), which status answers lack."""
    if isinstance(job, str):
        watch.add(check_job_id(job), age=None, timeout=timeout)
    elif job.is_terminal and not awaiting_parts(job, watch.is_grid(job)):
        watch.add_result(job.id, job)
    else:
        age = (
            0.0
            if job.create_time is None
            else max(0.0, wall_time(watch.clock) - job.create_time / 1000)
        )
        watch.add(job.id, age=age, timeout=timeout, grid=told_by(job))
