"""One request of a bulk run, from its create (or its journal, when resuming) to its images
on disk.

Creates and button presses run shielded from cancellation, with their intent committed
first and their ids right after: stopping a run never leaves a create half-recorded.
On resume a press recorded as intended but without a child is settled by the parent's
``used_buttons``: unused, it is pressed now; used, its image exists but its id was lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import anyio
import attrs

from .._client import AkoolClient
from .._converter import unstructure
from .._defaults import NEAR_EXPIRY, SHIELD_SECONDS
from .._download import DownloadedImage
from .._exceptions import (
    AkoolError,
    AuthenticationError,
    ConnectError,
    JobTimeoutError,
    SubmissionUncertainError,
)
from .._gate import Gate
from .._models import Button, ImageJob, ImageStatus
from .._polling import Result
from .._requests import ButtonRequest
from .._watchset import WatchSet
from ._folder import free_target, same_or_beside
from ._images import JobImage, job_images, reuse_saved
from ._input import BulkItem
from ._journal import ImageRecord, JobRecord, Journal, Press
from ._lost import said_if_unrecorded
from ._paths import GRID, image_name, inside, item_folder
from ._states import FINISHED, ItemState

PriorityGate = Gate  # the one gate primitive (``_gate``): downloads served oldest first
TIMED_OUT = "timed out (--job-timeout): left running on the server; --resume follows it again"


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
    started: float = attrs.Factory(time.monotonic)


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


class Budget:
    """Credits: spent, reserved for creates in flight, and what a create will cost."""

    def __init__(self, limit: float | None, spent: float) -> None:
        self.limit, self.spent, self.reserved = limit, spent, 0.0
        self.image_cost, self.button_cost = 1.0, 2.0  # the docs' figures until seen
        self.exhausted = False

    def reserve(self, amount: float) -> bool:
        if self.limit is not None and self.spent + self.reserved + amount > self.limit:
            self.exhausted = True
            return False
        self.reserved += amount
        return True

    def settle(self, reserved: float, jobs: list[ImageJob], *, button: bool) -> None:
        self.reserved -= reserved
        for job in jobs:
            cost = float(job.deduction_credit or 0)
            self.spent += cost
            if button:
                self.button_cost = max(self.button_cost, cost)
            else:
                self.image_cost = max(self.image_cost, cost)


@attrs.define
class _Job:
    job_id: str
    position: int
    parent_id: str | None
    button: str | None
    created: float | None
    status: ImageStatus | None = None
    url: str | None = None
    credits: float | None = None
    path: Path | None = None
    sha256: str | None = None
    error: str | None = None
    images: list[JobImage] = attrs.Factory(list)  # once completed: what it has to save

    @property
    def is_grid(self) -> bool:
        return self.button is not None and Button(self.button).is_variation

    def results(self) -> list[ImageResult]:
        """One result per image of the job; one for the job when it has none to save."""
        if not self.images:
            return [ImageResult(self.job_id, self.parent_id, self.button, self.status,
                                self.path, self.sha256, self.credits, self.error)]  # fmt: skip
        return [self._result(image) for image in self.images]

    def _result(self, image: JobImage) -> ImageResult:
        # Only its own download can fail a completed job's image (a resumed job's error
        # may be an earlier run's download, fetched again since). The job's credits on
        # its first image only: summing them counts each job once.
        return ImageResult(
            self.job_id, self.parent_id, self.button, self.status, image.path, image.sha256,
            self.credits if image is self.images[0] else None, image.error, index=image.index,
            parts_missing=image.parts_missing,
        )  # fmt: skip


class ItemRunner:
    def __init__(
        self,
        client: AkoolClient,
        *,
        journal: Journal,
        out_dir: Path,
        budget: Budget,
        downloads: PriorityGate,
        stats: BulkStats,
        resubmit_uncertain: bool,
        save_grid: bool = False,
        on_fatal: Callable[[AkoolError], None] = lambda error: None,
        job_timeout: float | None = None,
    ) -> None:
        self.client, self.journal, self.out_dir = client, journal, out_dir
        self.budget, self.downloads, self.stats = budget, downloads, stats
        self.resubmit_uncertain = resubmit_uncertain
        self.save_grid = save_grid
        self.on_fatal = on_fatal  # an error every other request would meet too (a bad key)
        self.job_timeout = job_timeout  # seconds a job is followed; then it is left running

    async def run(self, item: BulkItem, state: ItemState | None) -> ItemResult:
        if state in FINISHED:
            self.stats.skipped += 1
            return self._result(item, ItemState.SKIPPED)
        # An uncertain item with jobs was created; only a follow-up of it is in doubt.
        known = state in (ItemState.SUBMITTED, ItemState.UNCERTAIN)
        records = await self.journal.jobs_of(item.key) if known else []
        if state == ItemState.SUBMITTED or (state == ItemState.UNCERTAIN and records):
            presses = await self.journal.presses_of(item.key)
            return await _Follow(self, item, records, presses, resumed=True).run()
        if state in (ItemState.UNCERTAIN, ItemState.SUBMITTING) and not self.resubmit_uncertain:
            reason = "the create may have reached the server before the run stopped"
            await self.journal.item_state(item.key, ItemState.UNCERTAIN, reason)
            self.stats.uncertain += 1
            return self._result(item, ItemState.UNCERTAIN, error=reason)
        created = await self._create(item)
        if isinstance(created, ItemResult):
            return created
        records = [_record(item.key, job, position) for position, job in enumerate(created, 1)]
        return await _Follow(self, item, records, [], resumed=False).run()

    async def _create(self, item: BulkItem) -> list[ImageJob] | ItemResult:
        cost = item.request.batch_quantity * self.budget.image_cost
        if not self.budget.reserve(cost):
            self.stats.over_budget += 1
            return self._result(item, ItemState.BUDGET, error="the credit budget would be exceeded")
        jobs: list[ImageJob] = []
        sending = anyio.CancelScope()
        recorded = False

        async def record_intent() -> None:
            nonlocal recorded
            _shield(sending)  # from here on the create is on its way: let it answer
            await self.journal.intent(
                item.key,
                item.line,
                item.user_id,
                _payload(item),
                [b.value for b in item.follow_ups],
            )
            recorded = True

        try:
            with sending:
                try:
                    jobs = list(await self.client.submit(item.request, before_send=record_intent))
                except SubmissionUncertainError as exc:
                    if not exc.job_ids:
                        await self.journal.item_state(
                            item.key, ItemState.UNCERTAIN, str(exc.message)
                        )
                        self.stats.uncertain += 1
                        return self._result(item, ItemState.UNCERTAIN, error=exc.message)
                    jobs = [
                        ImageJob(id=job_id, status=ImageStatus.QUEUEING) for job_id in exc.job_ids
                    ]
                except AkoolError as exc:
                    # Not uncertain, so provably nothing was created: a resume tries again.
                    if not recorded:  # refused before it was sent: recorded all the same
                        await record_intent()
                    await self.journal.item_state(item.key, ItemState.REFUSED, _reason(exc))
                    if isinstance(exc, AuthenticationError | ConnectError):
                        self.on_fatal(exc)  # every other create would meet it too
                    return self._result(item, ItemState.FAILED, error=_reason(exc))
                with said_if_unrecorded(item, [job.id for job in jobs]):
                    await self.journal.submitted(item.key, jobs)
                self.stats.submitted += 1
        finally:
            self.budget.settle(cost, jobs, button=False)
            self.stats.credits = self.budget.spent
        if not jobs:  # the shield's time ran out with the create unanswered
            await self.journal.item_state(item.key, ItemState.UNCERTAIN, "stopped while creating")
            return self._result(item, ItemState.UNCERTAIN, error="stopped while creating")
        return jobs

    def _result(
        self,
        item: BulkItem,
        state: ItemState,
        images: tuple[ImageResult, ...] = (),
        error: str | None = None,
    ) -> ItemResult:
        return ItemResult(item.line, item.key, item.user_id, state, images, error)


class _Follow:
    """Follows an item's jobs to their end, presses its follow-ups, saves its images."""

    def __init__(
        self,
        runner: ItemRunner,
        item: BulkItem,
        records: list[JobRecord],
        presses: list[Press],
        *,
        resumed: bool,
    ) -> None:
        self.runner, self.item, self.resumed = runner, item, resumed
        self.records = {r.job_id: r for r in records} if resumed else {}
        self.jobs = {r.job_id: _from_record(r) for r in records}
        self.presses = {(p.parent_id, p.button): p.child_id for p in presses}
        self.lost: list[ImageResult] = []
        self.left_running = False  # a job timed out: the item stays submitted, to resume
        self.folder = item_folder(runner.out_dir, item.user_id, item.line)

    async def run(self) -> ItemResult:
        runner = self.runner
        watch = runner.client.watch()
        try:
            async with anyio.create_task_group() as saving:
                for job in list(self.jobs.values()):
                    record = self.records.get(job.job_id)
                    if record is not None and record.is_terminal and await self._recall(job):
                        for image in job.images:
                            saving.start_soon(self._save, job, image)
                        continue
                    self._watch(watch, job, age=None if self.resumed else 0.0)
                while True:
                    try:
                        job_id, result = await watch.next()
                    except LookupError:
                        break
                    runner.stats.running -= 1
                    await self._ended(self.jobs[job_id], result, watch, saving)
        finally:
            runner.stats.running -= len(watch.close())
        outcome = self._outcome()
        if self.left_running:  # not ended: recorded as submitted still, a resume follows it
            return attrs.evolve(outcome, state=ItemState.SUBMITTED, error=TIMED_OUT)
        await runner.journal.item_state(self.item.key, outcome.state, outcome.error)
        return outcome

    def _watch(self, watch: WatchSet, job: _Job, age: float | None = 0.0) -> None:
        self.runner.stats.running += 1
        watch.add(job.job_id, age=age, timeout=self.runner.job_timeout, grid=job.is_grid)

    async def _recall(self, job: _Job) -> bool:
        """A job that ended in an earlier run: its images from the journal; False when it
        must be looked at again (follow-ups to press, or images not recorded)."""
        if job.status != ImageStatus.COMPLETED:
            return True
        if job.parent_id is None and any(
            self.presses.get((job.job_id, b.value)) is None for b in self.item.follow_ups
        ):
            return False  # a finished parent needs a fresh look at its buttons
        recorded = await self.runner.journal.images_of(job.job_id)
        if recorded:
            job.images = [
                JobImage(r.index, r.kind, r.url, r.parts_missing) for r in recorded if r.url
            ]
        elif job.is_grid or not job.url:  # a journal without per-image rows: ask again
            return False
        else:
            job.images = [JobImage(1, "image", job.url)]
        await self._reuse_saved(job, recorded)
        return True

    async def _reuse_saved(self, job: _Job, recorded: list[ImageRecord] | None = None) -> None:
        """Images an earlier run saved, still intact on disk, are not fetched again."""
        if not self.resumed:
            return
        if recorded is None:
            recorded = await self.runner.journal.images_of(job.job_id)
        saved = {r.index: (r.path, r.sha256) for r in recorded if r.path and r.sha256}
        record = self.records.get(job.job_id)
        if not recorded and not job.is_grid and record and record.path and record.sha256:
            saved[1] = (record.path, record.sha256)  # a journal from before per-image rows
        await reuse_saved(job.images, saved)

    async def _ended(
        self, job: _Job, result: Result, watch: WatchSet, saving: anyio.abc.TaskGroup
    ) -> None:
        runner = self.runner
        if isinstance(result, JobTimeoutError):
            self.left_running = True
            return
        if isinstance(result, Exception):
            if isinstance(result, AuthenticationError):
                runner.on_fatal(result)
            job.error = _reason(result)
            runner.stats.failed += 1
            await runner.journal.job_error(job.job_id, job.error)
            return
        job.status, job.url, job.credits = result.status, result.url, result.deduction_credit
        runner.stats.finished += 1
        if result.status != ImageStatus.COMPLETED:
            job.error = f"job {result.status.name.lower()}"
            runner.stats.failed += 1
        await runner.journal.job_ended(result, job.error)
        if result.status == ImageStatus.COMPLETED:
            job.images = job_images(result, save_grid=runner.save_grid)
            await self._reuse_saved(job)
            await runner.journal.job_images(
                job.job_id, [(i.index, i.kind, i.url) for i in job.images],
                parts_missing=result.parts_missing,
            )  # fmt: skip
            for image in job.images:
                saving.start_soon(self._save, job, image)
            if job.parent_id is None and self.item.follow_ups:
                try:
                    parent = await runner.client.with_buttons(result)  # callbacks carry none
                except AkoolError as exc:
                    self.lost.extend(
                        _missing(job.job_id, b, _reason(exc)) for b in self.item.follow_ups
                    )
                    return
                await self._press_follow_ups(parent, watch)

    async def _press_follow_ups(self, parent: ImageJob, watch: WatchSet) -> None:
        for button in self.item.follow_ups:
            key = (parent.id, button.value)
            if self.presses.get(key) is not None:
                continue  # pressed before: its job is followed like the others
            if key in self.presses and button in parent.used_buttons:
                lost = "pressed before the run stopped; the new job's id was lost"
                self.lost.append(_missing(parent.id, button, lost, uncertain=True))
                continue
            await self._press(parent, button, watch)  # never pressed, or provably not

    async def _press(self, parent: ImageJob, button: Button, watch: WatchSet) -> None:
        runner, item = self.runner, self.item
        cost = runner.budget.button_cost
        if not runner.budget.reserve(cost):
            runner.stats.over_budget += 1
            self.lost.append(_missing(parent.id, button, "the credit budget would be exceeded"))
            return
        children: list[ImageJob] = []
        pressing = anyio.CancelScope()

        async def record_intent() -> None:
            _shield(pressing)
            await runner.journal.press_intent(item.key, parent.id, button.value)

        try:
            with pressing:
                try:
                    request = ButtonRequest.for_parent(parent, button)
                    children = list(await runner.client.submit(request, before_send=record_intent))
                except SubmissionUncertainError as exc:  # pressed, perhaps: never again
                    if not exc.job_ids:
                        self.lost.append(_missing(parent.id, button, exc.message, uncertain=True))
                        return
                    children = [ImageJob(id=exc.job_ids[0], status=ImageStatus.QUEUEING)]
                except AkoolError as exc:
                    self.lost.append(_missing(parent.id, button, _reason(exc)))
                    return
                with said_if_unrecorded(item, [children[0].id], f"press of {button.value}"):
                    await runner.journal.pressed(item.key, parent.id, button.value, children[0])
        finally:
            runner.budget.settle(cost, children, button=True)
            runner.stats.credits = runner.budget.spent
        for child in children:
            parent_job = self.jobs[parent.id]
            self.jobs[child.id] = _Job(
                child.id,
                parent_job.position,
                parent.id,
                button.value,
                _seconds(child.create_time),
                credits=child.deduction_credit,
            )
            self.presses[(parent.id, button.value)] = child.id
            self._watch(watch, self.jobs[child.id])

    async def _save(self, job: _Job, image: JobImage) -> None:
        """Download one image of ``job`` unless a verified copy is already there."""
        runner = self.runner
        if image.path is not None:
            return
        parent_position = self.jobs[job.parent_id].position if job.parent_id in self.jobs else None
        count = sum(1 for i in job.images if i.index != GRID)
        name = image_name(job.position, job.button, parent_position, ".png",
                          index=image.index, count=count)  # fmt: skip
        path = inside(runner.out_dir, self.folder / name)
        near_expiry = job.created is not None and time.time() - job.created > NEAR_EXPIRY
        try:
            target = await anyio.to_thread.run_sync(
                free_target, self.folder, path, image.recorded == path)  # fmt: skip
            async with runner.downloads.slot(job.created or time.time()):
                saved = await runner.client.download(image.url, target)
            target = await _fix_suffix(saved)
            if target.stem != path.stem:  # a file was there: never replaced by other bytes
                target = await anyio.to_thread.run_sync(same_or_beside, path, target, saved.sha256)
            path = target
        except AkoolError as exc:
            image.error = _reason(exc)
            await runner.journal.image_error(job.job_id, image.index, image.error)
            return
        image.path, image.sha256 = path, saved.sha256
        runner.stats.downloaded += 1
        await runner.journal.image_saved(
            job.job_id, image.index, str(path), saved.sha256, size=saved.size,
            near_expiry=near_expiry,
        )  # fmt: skip

    def _outcome(self) -> ItemResult:
        images = tuple(r for job in self.jobs.values() for r in job.results()) + tuple(self.lost)
        ok = all(image.ok for image in images) and bool(images)
        short = [image for image in images if not image.ok]
        state = ItemState.DONE
        if not ok:
            uncertain = all(i.uncertain for i in short)
            state = ItemState.UNCERTAIN if uncertain else ItemState.FAILED
        error = None if ok else next((i.error for i in short if i.error), "incomplete")
        if state == ItemState.UNCERTAIN:
            self.runner.stats.uncertain += 1
        else:
            self.runner.stats.items_done += 1
        return ItemResult(self.item.line, self.item.key, self.item.user_id, state, images, error)


def _missing(parent_id: str, button: Button, error: str, *, uncertain: bool = False) -> ImageResult:
    """A follow-up with no job to show for it."""
    return ImageResult(None, parent_id, button.value, None, None, None, None, error, uncertain)


def _payload(item: BulkItem) -> dict[str, object]:
    return unstructure(item.request)


def _record(key: str, job: ImageJob, position: int) -> JobRecord:
    return JobRecord(
        job.id,
        key,
        None,
        None,
        position,
        int(job.status),
        None,
        job.deduction_credit,
        _seconds(job.create_time),
        time.time(),
        None,
        None,
        None,
        None,
        None,
        False,
    )


def _from_record(record: JobRecord) -> _Job:
    status = None if record.status is None else ImageStatus(record.status)
    job = _Job(
        record.job_id,
        record.position,
        record.parent_id,
        record.button,
        record.created,
        status if record.is_terminal else None,
        record.url,
        record.credits,
    )
    job.path = Path(record.path) if record.path else None
    job.sha256, job.error = record.sha256, record.error
    return job


def _seconds(milliseconds: int | None) -> float | None:
    return None if milliseconds is None else milliseconds / 1000


def _shield(scope: anyio.CancelScope) -> None:
    """Protect a request that is about to be sent from cancellation, for a bounded time: a
    stopping run waits for its answer (the job ids) rather than leave it uncertain."""
    scope.shield = True
    scope.deadline = anyio.current_time() + SHIELD_SECONDS


def _reason(error: BaseException) -> str:
    message = getattr(error, "message", None) or str(error)
    return f"{type(error).__name__}: {message}"


async def _fix_suffix(saved: DownloadedImage) -> Path:
    """A JPEG result is saved under ``.jpg``."""
    if saved.kind == "jpeg":
        target = saved.path.with_suffix(".jpg")
        await anyio.Path(saved.path).replace(target)
        return target
    return saved.path
