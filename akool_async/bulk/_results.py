"""What a bulk run tells of its items: live counts (``BulkStats``), one ``ItemResult`` per
request with an ``ImageResult`` per image, and the ``Tally`` that builds the latter from
what the follow machine asks the journal to record (the same facts, seen once)."""

from __future__ import annotations

from pathlib import Path

import attrs

from .. import _journal_protocol as jp
from .._clock import SYSTEM_CLOCK
from .._models import Button, ImageJob, ImageStatus
from ._states import ItemState


@attrs.define
class BulkStats:
    """Live counts for progress displays."""

    read: int = 0
    invalid: int = 0
    submitted: int = 0
    skipped: int = 0
    uncertain: int = 0
    over_budget: int = 0
    items_done: int = 0
    running: int = 0
    finished: int = 0
    failed: int = 0
    downloaded: int = 0
    credits: float = 0.0
    new: int = 0  # resuming: lines the journal had no item for
    changed: int = 0  # resuming: lines whose request changed under their id (new items)
    retried: int = 0  # --retry-failed: failed items sent again (the failed one kept)
    started: float = attrs.Factory(SYSTEM_CLOCK.now)


@attrs.frozen
class ImageResult:
    job_id: str | None
    parent_id: str | None
    button: str | None
    status: ImageStatus | None
    path: Path | None
    sha256: str | None
    credits: float | None  # the job's, on its first image only (None on the others)
    error: str | None
    uncertain: bool = False  # a follow-up pressed before a kill: its job exists, its id is lost
    index: int | None = None  # k for the job's image k (a grid's part k), 0 for its grid
    parts_missing: bool = False  # a grid saved whole: its four images never came

    @property
    def ok(self) -> bool:
        return self.error is None and self.path is not None


@attrs.frozen
class ItemResult:
    """How one request ended: done, failed, uncertain, skipped (finished before), budget,
    or invalid (a bad input line); see ``ItemState``."""

    line: int
    key: str | None
    user_id: str | None
    state: ItemState
    images: tuple[ImageResult, ...] = ()
    error: str | None = None


@attrs.define
class _Image:
    image: jp.ImageToSave
    path: Path | None = None
    sha256: str | None = None
    error: str | None = None


@attrs.define
class _Job:
    job_id: str
    parent_id: str | None
    button: Button | None
    position: int
    created: float | None
    status: ImageStatus | None = None
    credits: float | None = None
    error: str | None = None
    images: dict[int, _Image] = attrs.Factory(dict)


class Tally:
    """One tree's jobs and images as the journal records them, for its ``ItemResult``."""

    def __init__(self) -> None:
        self.jobs: dict[str, _Job] = {}
        self.lost: list[ImageResult] = []  # follow-ups with no job to show for them

    def recall(self, known: jp.KnownJob, created: float | None, credits: float | None,
               error: str | None) -> None:  # fmt: skip
        job = _Job(known.job_id, known.parent_id, known.button, known.position, created,
                   known.status, credits, error)  # fmt: skip
        self.jobs[known.job_id] = job
        for image in known.images or ():
            job.images[image.index] = _Image(image)

    def created(self, job_id: str) -> float | None:
        job = self.jobs.get(job_id)
        return None if job is None else job.created

    def take(self, entry: jp.Entry) -> None:
        """What one record says of the tree."""
        match entry:
            case jp.CreateSettled(jobs):
                for position, answered in enumerate(jobs, 1):
                    self._born(answered, None, None, position)
            case jp.PressSettled(parent_id, button, child, error, uncertain):
                if child is not None:
                    self._born(child, parent_id, button, self.jobs[parent_id].position)
                else:
                    self.lost.append(ImageResult(None, parent_id, button.value, None, None,
                                                 None, None, error, uncertain))  # fmt: skip
            case jp.JobStatus(seen):
                job = self.jobs[seen.id]
                job.status = seen.status
                if seen.deduction_credit is not None:
                    job.credits = float(seen.deduction_credit)
                if seen.is_terminal and seen.status != ImageStatus.COMPLETED:
                    job.error = failed_job(seen.status)
            case jp.JobError(job_id, error):
                self.jobs[job_id].error = error
            case jp.ImagesListed(job_id, images):
                known = self.jobs[job_id].images
                self.jobs[job_id].images = {i.index: known.get(i.index, _Image(i)) for i in images}
            case jp.ImageSaved(job_id, index, path, sha256):
                image = self.jobs[job_id].images[index]
                image.path, image.sha256, image.error = Path(path), sha256, None
            case jp.ImageFailed(job_id, index, error):
                self.jobs[job_id].images[index].error = error

    def _born(self, job: ImageJob, parent_id: str | None, button: Button | None,
              position: int) -> None:  # fmt: skip
        created = None if job.create_time is None else job.create_time / 1000
        credits = None if job.deduction_credit is None else float(job.deduction_credit)
        self.jobs[job.id] = _Job(job.id, parent_id, button, position, created, credits=credits)

    def results(self) -> tuple[ImageResult, ...]:
        """One result per image of each job (one for a job with none to save), then the
        follow-ups that made no job. A job's credits are on its first image only."""
        out: list[ImageResult] = []
        for job in self.jobs.values():
            button = None if job.button is None else job.button.value
            if not job.images:
                out.append(ImageResult(job.job_id, job.parent_id, button, job.status, None,
                                       None, job.credits, job.error))  # fmt: skip
            for n, image in enumerate(job.images.values()):
                out.append(ImageResult(
                    job.job_id, job.parent_id, button, job.status, image.path, image.sha256,
                    job.credits if n == 0 else None, image.error, index=image.image.index,
                    parts_missing=image.image.parts_missing,
                ))  # fmt: skip
        return (*out, *self.lost)


def failed_job(status: ImageStatus) -> str:
    """A job that ended without its image, as the journal and manifest say it."""
    return f"job {status.name.lower()}"
