"""THE follow state machine: one prompt's tree of jobs, free of I/O (in h11's manner).

A tree is the root create (one request, 1-4 jobs), then on each finished root image the
requested follow-up buttons, each press a child job, every job followed to its end (and,
when saving, every image of every completed job downloaded). A driver feeds ``handle``
the events it saw (``_follow_events``) with the time it saw them, and executes the actions
it gets back, in order; ``Generation`` and the bulk runner are meant to be two such drivers
(see docs/one-engine.md).

Each item of the tree (the create, each job, each press, each image, the tree itself) has
a state, and every change is one row of ``_follow_table.TRANSITIONS``. An event is first
classified into a trigger for the item it concerns (a status seen becomes "completed,
follow-ups to press" or "still running"); an event no row allows raises
``IllegalTransitionError`` before anything changes.

Never twice: a create or press is sent from one row each, once; one that may have left is
*uncertain* and no row leads back to sending. A resumed press whose answer was lost is
sent only if the parent still offers its button unused (so it provably was not pressed).
Fail-fast, budgets, shields and file names are the driver's business.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from . import _follow_events as ev
from . import _journal_protocol as jp
from ._exceptions import IllegalTransitionError, JobFailedError, JobTimeoutError
from ._follow_items import (
    ImageItem,
    Item,
    JobItem,
    PressItem,
    images_to_save,
    offer_trigger,
    reason,
    recall_trigger,
    resumed_press,
    status_trigger,
    verdict,
)
from ._follow_states import CreateState, Do, ImageState, JobState, On, PressState, TreeState
from ._follow_table import TRANSITIONS
from ._grid import request_makes_grid
from ._models import Button, ImageJob, ImageStatus
from ._requests import ButtonRequest, PromptRequest, SourcePromptRequest

__all__ = ["FollowMachine", "IllegalTransitionError"]

_UNSETTLED_JOB = frozenset({JobState.NEW, JobState.RUNNING, JobState.AWAITING_PARTS,
                            JobState.LOOKING_UP, JobState.PRESSING})  # fmt: skip
_OPEN_PRESS = frozenset({PressState.WANTED, PressState.INTENDED, PressState.SENDING})

Answer = tuple[ImageJob, ...]
K = TypeVar("K")
T = TypeVar("T", bound=Item)


class FollowMachine:
    """One tree: ``start(now)`` (or ``resume``), then ``handle(event, now)`` until
    ``settled``. Each call returns the actions to execute, in order."""

    def __init__(
        self,
        request: SourcePromptRequest | PromptRequest,
        follow_ups: Sequence[Button] = (),
        *,
        job_timeout: float | None = None,
        save: bool = False,
        save_grid: bool = False,
        payload: Mapping[str, object] | None = None,
    ) -> None:
        self.request, self.follow_ups = request, tuple(dict.fromkeys(follow_ups))
        self.job_timeout, self.save, self.save_grid = job_timeout, save, save_grid
        self._payload = payload or {}  # the request as journalled
        self._tree = Item("tree", TreeState.FOLLOWING)
        self._create = Item("create", CreateState.PLANNED)
        self._stopped = False
        self._jobs: dict[str, JobItem] = {}
        self._presses: dict[tuple[str, Button], PressItem] = {}
        self._images: dict[tuple[str, int], ImageItem] = {}
        self._started_at = 0.0
        self._now = 0.0
        self._out: list[ev.Action] = []
        # What the event being handled brought (scratch: the steps take it into the tree).
        self._answer: Answer = ()
        self._error: Exception | None = None
        self._seen: ImageJob | None = None
        self._saved: tuple[str, str, int, bool] = ("", "", 0, False)

    # -- reading the tree ---------------------------------------------------------------

    @property
    def state(self) -> TreeState:
        return TreeState(self._tree.state)

    @property
    def settled(self) -> bool:
        return self._tree.state is TreeState.SETTLED

    @property
    def create_state(self) -> CreateState:
        return CreateState(self._create.state)

    @property
    def jobs(self) -> Mapping[str, JobState]:
        return {job_id: JobState(job.state) for job_id, job in self._jobs.items()}

    @property
    def presses(self) -> Mapping[tuple[str, Button], PressState]:
        return {key: PressState(press.state) for key, press in self._presses.items()}

    @property
    def images(self) -> Mapping[tuple[str, int], ImageState]:
        return {key: ImageState(image.state) for key, image in self._images.items()}

    @property
    def left_running(self) -> tuple[str, ...]:
        """Jobs that go on on the server unfollowed (timed out, or the driver stopped)."""
        states = (JobState.LEFT_RUNNING, JobState.RUNNING, JobState.AWAITING_PARTS)
        return tuple(sorted(j for j, job in self._jobs.items() if job.state in states))

    # -- driving it ---------------------------------------------------------------------

    def start(self, now: float) -> list[ev.Action]:
        """The first action: the root create."""
        self._started_at = now
        return self._run(now, lambda: self._fire(self._create, On.START))

    def resume(self, history: jp.History, now: float) -> list[ev.Action]:
        """Pick up a tree an earlier run created (``history`` from the journal)."""
        self._started_at = now

        def seed() -> None:
            self._fire(self._create, On.RESUMED)
            answers = {(p.parent_id, p.button): p.child_id for p in history.presses}
            for known in history.jobs:
                job = self._new_job(known.job_id, known.parent_id, known.button, known.position)
                job.recalled, job.last = known, known.last
            for known in history.jobs:
                if known.parent_id is not None and known.parent_id in self._jobs:
                    self._jobs[known.parent_id].children.append(known.job_id)
                if known.parent_id is None:
                    for button in self.follow_ups:
                        self._add_press(
                            known.job_id, button, resumed_press(answers, known.job_id, button)
                        )
            for job in list(self._jobs.values()):
                self._fire(job, recall_trigger(job, bool(self._open_presses(job)), save=self.save))

        return self._run(now, seed)

    def handle(self, event: ev.Event, now: float) -> list[ev.Action]:
        """Take in ``event`` (seen at ``now``); the actions it leads to."""
        item, trigger = self._classify(event)
        if (item.state, trigger) not in TRANSITIONS:
            raise IllegalTransitionError(item.name, item.state, trigger)
        return self._run(now, lambda: self._fire(item, trigger))

    def verdict(self) -> tuple[ev.Verdict, str | None]:
        """How the tree ended (see ``_follow_items.verdict``)."""
        return verdict(self._create, self._jobs.values(), self._presses.values(),
                       self._images.values(), save=self.save, stopped=self._stopped)  # fmt: skip

    # -- the engine ---------------------------------------------------------------------

    def _run(self, now: float, change: Callable[[], None]) -> list[ev.Action]:
        self._now, self._out = now, []
        change()
        if self._tree.state is not TreeState.SETTLED and self._all_settled():
            self._fire(self._tree, On.SETTLE)
        out, self._out = self._out, []
        return out

    def _fire(self, item: Item, trigger: On) -> None:
        row = TRANSITIONS.get((item.state, trigger))
        if row is None:
            raise IllegalTransitionError(item.name, item.state, trigger)
        item.state, steps = row
        for step in steps:
            _STEPS[step](self, item)
        if isinstance(item, PressItem):
            self._check_presses(self._jobs[item.parent_id])

    def _all_settled(self) -> bool:
        return (
            self._create.state not in (CreateState.PLANNED, CreateState.SENDING)
            and not any(job.state in _UNSETTLED_JOB for job in self._jobs.values())
            and not any(p.state is PressState.SENDING for p in self._presses.values())
            and not any(i.state is ImageState.SAVING for i in self._images.values())
        )

    def _classify(self, event: ev.Event) -> tuple[Item, On]:  # noqa: PLR0911 (a case each)
        """The item ``event`` concerns and its trigger. Only the scratch fields change
        here; the steps of the row take the event's data into the tree."""
        self._answer, self._error, self._seen = (), None, None
        match event:
            case ev.Cancelled():
                return self._tree, On.STOP
            case ev.Created(jobs):
                self._answer = jobs
                return self._create, On.ANSWERED
            case ev.CreateFailed(error, sent, job_ids):
                self._error = error
                return self._create, self._failure(sent, job_ids)
            case ev.Pressed(parent_id, button, children):
                self._answer = children
                return self._press(parent_id, button), On.ANSWERED
            case ev.PressFailed(parent_id, button, error, sent, child_ids):
                self._error = error
                return self._press(parent_id, button), self._failure(sent, child_ids[:1])
            case ev.Saved(job_id, index, path, sha256, size, near_expiry):
                self._saved = (path, sha256, size, near_expiry)
                return self._image(job_id, index), On.SAVED
            case ev.SaveFailed(job_id, index, error):
                self._error = error
                return self._image(job_id, index), On.SAVE_FAILED
        return self._classify_read(event)

    def _classify_read(self, event: ev.Event) -> tuple[Item, On]:
        """A status, callback, lookup or watch outcome; after the driver stopped, late."""
        if isinstance(event, ev.StatusSeen | ev.CallbackSeen | ev.ButtonsLookedUp):
            job, self._seen = self._job(event.job.id), event.job
        elif isinstance(event, ev.LookupFailed | ev.WatchFailed | ev.TimedOut):
            job, self._error = self._job(event.job_id), event.error
        else:  # pragma: no cover - every event type is matched above
            raise TypeError(f"not a follow event: {event!r}")
        if self._tree.state is not TreeState.FOLLOWING:
            return job, On.LATE
        if isinstance(event, ev.StatusSeen | ev.CallbackSeen):
            known = isinstance(event, ev.StatusSeen)
            return job, status_trigger(event.job, job.grid, bool(self._open_presses(job)), known)
        if isinstance(event, ev.ButtonsLookedUp):
            return job, On.LOOKED_UP
        if isinstance(event, ev.LookupFailed):
            return job, On.LOOKUP_FAILED
        return job, On.WATCH_FAILED if isinstance(event, ev.WatchFailed) else On.TIMED_OUT

    def _failure(self, sent: bool, job_ids: Sequence[str]) -> On:
        if job_ids:  # the answer got that far: the jobs exist, follow them
            self._answer = tuple(ImageJob(id=i, status=ImageStatus.QUEUEING) for i in job_ids)
            return On.ANSWERED
        return On.IN_DOUBT if sent else On.REFUSED

    # -- the steps ----------------------------------------------------------------------

    def _send_create(self, _: Item) -> None:
        intent = jp.CreateIntent(self._payload, self.follow_ups)
        self._out.append(ev.Create(self.request, intent))

    def _record_create(self, _: Item) -> None:
        uncertain = self._create.state is CreateState.UNCERTAIN
        self._record(jp.CreateSettled(self._answer, reason(self._error), uncertain))

    def _bear_jobs(self, item: Item) -> None:
        parent = self._jobs[item.parent_id] if isinstance(item, PressItem) else None
        for position, answered in enumerate(self._answer, 1):
            if parent is None:
                job = self._new_job(answered.id, None, None, position)
                job.last = answered
                job.submitted_at = self._started_at
            else:
                assert isinstance(item, PressItem)
                job = self._new_job(answered.id, parent.job_id, item.button, parent.position)
                job.last, job.submitted_at = answered, item.sent_at
                parent.children.append(job.job_id)
            if job.parent_id is None:
                for button in self.follow_ups:
                    self._add_press(job.job_id, button, PressState.WANTED)
            stopping = self._tree.state is not TreeState.FOLLOWING
            self._fire(job, On.BORN_STOPPED if stopping else On.BORN)

    def _emit_failure(self, item: Item) -> None:
        state, item.error = str(item.state.value), self._error
        if isinstance(item, PressItem):
            self._emit(ev.Outcome(None, state=state, error=item.error, parent_id=item.parent_id,
                                  button=item.button, submitted_at=item.sent_at or self._now,
                                  finished_at=self._now))  # fmt: skip
        else:
            started, now = self._started_at, self._now
            self._emit(ev.Outcome(None, state=state, error=self._error, submitted_at=started,
                                  finished_at=now))  # fmt: skip

    def _watch(self, item: JobItem) -> None:
        deadline = None if self.job_timeout is None else self._now + self.job_timeout
        age = None if item.recalled is not None else 0.0
        self._out.append(ev.Watch(item.job_id, deadline, age, item.grid))

    def _record_status(self, item: JobItem) -> None:
        """Take in the status seen (a failed one is the job's error) and record it."""
        assert self._seen is not None
        item.last = self._seen
        if self._seen.is_terminal and not item.ended_at:
            item.ended_at = self._now
        if self._seen.status == ImageStatus.FAILED:
            item.error = JobFailedError("the job failed", job=self._seen)
        self._record(jp.JobStatus(self._seen))

    def _record_job_error(self, item: JobItem) -> None:
        if self._error is None and item.state is JobState.LEFT_RUNNING:
            self._error = JobTimeoutError(
                "the job did not finish in time; it goes on on the server", job_id=item.job_id
            )
        item.error, item.ended_at = self._error, self._now
        left = item.state is JobState.LEFT_RUNNING
        self._record(jp.JobError(item.job_id, reason(self._error) or "", left_running=left))

    def _download(self, item: JobItem) -> None:
        if not self.save:
            return
        known = item.recalled
        if known is not None and known.images is not None and item.last is known.last:
            images, saved = known.images, known.saved
        else:
            assert item.last is not None
            images, saved = images_to_save(item.last, save_grid=self.save_grid), frozenset()
            self._record(jp.ImagesListed(item.job_id, images))
        for image in images:
            state = ImageState.SAVED if image.index in saved else ImageState.SAVING
            name = f"image {item.job_id}#{image.index}"
            self._images[(item.job_id, image.index)] = ImageItem(
                name, state, job_id=item.job_id, image=image
            )
        to_fetch = tuple(i for i in images if i.index not in saved)
        if to_fetch:
            parent = self._jobs.get(item.parent_id or "")
            self._out.append(ev.Download(item.job_id, item.position,
                                         parent.position if parent else None, item.button,
                                         to_fetch))  # fmt: skip

    def _look_up(self, item: JobItem) -> None:
        self._out.append(ev.LookUpButtons(item.job_id))

    def _press_follow_ups(self, item: JobItem) -> None:
        assert item.last is not None
        for press in self._open_presses(item):
            trigger, self._error = offer_trigger(item.last, press)
            self._fire(press, trigger)

    def _fail_follow_ups(self, item: JobItem) -> None:
        for press in self._open_presses(item):
            self._fire(press, On.LOOKUP_FAILED)

    def _drop_follow_ups(self, item: JobItem) -> None:
        for press in self._open_presses(item):
            if press.state is not PressState.SENDING:
                self._fire(press, On.PARENT_LOST)

    def _emit_job(self, item: JobItem) -> None:
        self._emit(ev.Outcome(
            item.job_id, state=str(item.state.value), job=item.last, error=item.error,
            parent_id=item.parent_id, button=item.button, children=tuple(item.children),
            submitted_at=item.submitted_at, finished_at=item.ended_at,
        ))  # fmt: skip

    def _send_press(self, item: PressItem) -> None:
        parent = self._jobs[item.parent_id].last
        assert parent is not None
        item.sent_at = self._now
        request = ButtonRequest(job_id=parent.id, button=item.button)
        intent = jp.PressIntent(item.parent_id, item.button)
        self._out.append(ev.Press(item.parent_id, item.button, request, intent))

    def _record_press(self, item: PressItem) -> None:
        child = self._answer[0] if self._answer else None
        uncertain = item.state is PressState.UNCERTAIN
        entry = jp.PressSettled(item.parent_id, item.button, child, reason(self._error), uncertain)
        self._record(entry)

    def _record_image(self, item: ImageItem) -> None:
        index = item.image.index
        if item.state is ImageState.FAILED:
            item.error = self._error
            self._record(jp.ImageFailed(item.job_id, index, reason(self._error) or ""))
        else:
            self._record(jp.ImageSaved(item.job_id, index, *self._saved))

    def _stop_all(self, _: Item) -> None:
        self._stopped = True
        self._fire(self._create, On.STOP)
        for press in list(self._presses.values()):
            self._fire(press, On.STOP)
        for job in list(self._jobs.values()):
            self._fire(job, On.STOP)
        for image in list(self._images.values()):
            self._fire(image, On.STOP)

    def _record_verdict(self, _: Item) -> None:
        how, error = self.verdict()
        self._record(jp.TreeSettled(how.value, error))

    def _emit_settled(self, _: Item) -> None:
        how, error = self.verdict()
        self._emit(ev.Settled(how, error, self.left_running))

    # -- helpers ------------------------------------------------------------------------

    def _record(self, entry: jp.Entry) -> None:
        self._out.append(ev.Record(entry))

    def _emit(self, what: ev.Outcome | ev.Settled) -> None:
        self._out.append(ev.Emit(what))

    def _new_job(self, job_id: str, parent_id: str | None, button: Button | None,
                 position: int) -> JobItem:  # fmt: skip
        if job_id in self._jobs:
            raise IllegalTransitionError(f"job {job_id}", self._jobs[job_id].state, "created again")
        grid = request_makes_grid(self.request) if button is None else button.is_variation
        job = JobItem(f"job {job_id}", JobState.NEW, job_id=job_id, parent_id=parent_id,
                      button=button, position=position, grid=grid)  # fmt: skip
        self._jobs[job_id] = job
        return job

    def _add_press(self, parent_id: str, button: Button, state: PressState) -> None:
        name = f"press {button.value} on {parent_id}"
        self._presses[(parent_id, button)] = PressItem(
            name, state, parent_id=parent_id, button=button
        )

    def _open_presses(self, job: JobItem) -> list[PressItem]:
        return [p for p in self._presses.values()
                if p.parent_id == job.job_id and p.state in _OPEN_PRESS]  # fmt: skip

    def _check_presses(self, job: JobItem) -> None:
        if job.state is JobState.PRESSING and not self._open_presses(job):
            self._fire(job, On.PRESSES_SETTLED)

    def _job(self, job_id: str) -> JobItem:
        return _find(self._jobs, job_id, f"job {job_id}")

    def _press(self, parent_id: str, button: Button) -> PressItem:
        return _find(self._presses, (parent_id, button), f"press {button} on {parent_id}")

    def _image(self, job_id: str, index: int) -> ImageItem:
        return _find(self._images, (job_id, index), f"image {job_id}#{index}")


def _find(items: Mapping[K, T], key: K, name: str) -> T:
    if key not in items:
        raise IllegalTransitionError(name, None, "an event for an item not in the tree")
    return items[key]


# Each step is the method named after it; the row decides which kind of item it gets.
_STEPS: dict[Do, Callable[[FollowMachine, Any], None]] = {
    do: getattr(FollowMachine, f"_{do.value}") for do in Do
}
