"""The items of a followed tree as the follow machine keeps them, and the rules read off
them: which trigger an answer is for an item, the tree's verdict, the images a completed
job saves, an error's reason. Pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from ._exceptions import AkoolError, ValidationError
from ._follow_events import Verdict
from ._follow_states import CreateState, ImageState, JobState, On, PressState, State
from ._grid import awaiting_parts
from ._journal_protocol import ImageToSave, KnownJob
from ._models import Button, ImageJob, ImageStatus
from ._requests import check_button_available

GRID_INDEX = 0  # an image's index when it is the job's whole 2x2 grid
_LOST_ANSWER = "pressed before the run stopped; the new job's id was lost"


@attrs.define
class Item:
    name: str  # for error messages: "job abc", "press U1 on abc"
    state: State
    error: Exception | None = attrs.field(default=None, kw_only=True)


@attrs.define
class JobItem(Item):
    job_id: str = attrs.field(kw_only=True)
    parent_id: str | None = attrs.field(kw_only=True)
    button: Button | None = attrs.field(kw_only=True)
    position: int = attrs.field(kw_only=True)
    grid: bool = attrs.field(kw_only=True)
    submitted_at: float = 0.0
    ended_at: float = 0.0  # when its end was seen (its follow-ups are pressed after)
    last: ImageJob | None = None  # the create's answer, then each status seen
    children: list[str] = attrs.Factory(list)
    recalled: KnownJob | None = None  # what an earlier run recorded of it


@attrs.define
class PressItem(Item):
    parent_id: str = attrs.field(kw_only=True)
    button: Button = attrs.field(kw_only=True)
    sent_at: float = 0.0


@attrs.define
class ImageItem(Item):
    job_id: str = attrs.field(kw_only=True)
    image: ImageToSave = attrs.field(kw_only=True)


def verdict(
    create: Item,
    jobs: Iterable[JobItem],
    presses: Iterable[PressItem],
    images: Iterable[ImageItem],
    *,
    save: bool,
    stopped: bool,
) -> tuple[Verdict, str | None]:
    """How a tree ended (bulk's rule): done when every job (and, saving, every image) is
    there; uncertain when all that is missing may exist; else failed, with the first reason."""
    if stopped or create.state is CreateState.NOT_SENT:
        return Verdict.STOPPED, None
    if create.state is CreateState.UNCERTAIN:
        return Verdict.UNCERTAIN, reason(create.error)
    if create.state is CreateState.REFUSED:
        return Verdict.REFUSED, reason(create.error)
    by_job: dict[str, list[ImageItem]] = {}
    for image in images:
        by_job.setdefault(image.job_id, []).append(image)
    short: list[tuple[str | None, bool]] = []  # (why, uncertain) for each shortfall
    made = False
    for job in jobs:
        made = True
        mine = by_job.get(job.job_id, [])
        if job.state is not JobState.COMPLETED:
            short.append((reason(job.error) or f"job {job.state.value}", False))
        elif save and not mine:  # completed with nothing to save
            short.append((None, False))
        elif save:
            short += [(reason(i.error), False) for i in mine if i.state is not ImageState.SAVED]
    for press in presses:
        if press.state in (PressState.REFUSED, PressState.FAILED, PressState.UNCERTAIN):
            short.append((reason(press.error), press.state is PressState.UNCERTAIN))
    if not short and made:
        return Verdict.DONE, None
    first = next((why for why, _ in short if why), "incomplete")
    if short and all(uncertain for _, uncertain in short):
        return Verdict.UNCERTAIN, first
    return Verdict.FAILED, first


def status_trigger(seen: ImageJob, grid: bool, presses_open: bool, buttons_known: bool) -> On:
    """A status seen for a followed job: still running, a grid awaiting its parts, ended
    (with follow-ups to press: at once when the answer has buttons, a poll's does, a
    callback's does not)."""
    if seen.status == ImageStatus.FAILED:
        return On.SEEN_FAILED
    if seen.status != ImageStatus.COMPLETED:
        return On.SEEN_RUNNING
    if awaiting_parts(seen, grid) and not seen.parts_missing:
        return On.SEEN_PARTS_PENDING
    if not presses_open:
        return On.SEEN_COMPLETED
    return On.SEEN_COMPLETED_PRESS if buttons_known else On.SEEN_COMPLETED_LOOKUP


def recall_trigger(job: JobItem, presses_open: bool, *, save: bool) -> On:
    """A job an earlier run recorded: done with, or to be looked at again."""
    known = job.recalled
    assert known is not None
    if known.status == ImageStatus.FAILED:
        return On.RECALLED_FAILED
    if known.status != ImageStatus.COMPLETED or presses_open:
        return On.BORN  # not seen ended, or a finished parent needs a look at its buttons
    if known.last is None or (save and known.images is None and job.grid):
        return On.BORN  # what it has to save was never recorded: ask again
    return On.RECALLED_COMPLETED


def offer_trigger(parent: ImageJob, press: PressItem) -> tuple[On, Exception | None]:
    """Whether the finished parent offers the press's button; refused here, a press
    spends no credit. A resumed press whose button was used was pressed: uncertain."""
    if press.state is PressState.INTENDED and press.button in parent.used_buttons:
        return On.USED, AkoolError(_LOST_ANSWER, job_id=parent.id)
    try:
        check_button_available(parent, press.button)
    except ValidationError as exc:
        return (On.USED if press.button in parent.used_buttons else On.NOT_OFFERED), exc
    return On.OFFERED, None


def resumed_press(
    answers: Mapping[tuple[str, Button], str | None], parent_id: str, button: Button
) -> PressState:
    """A press as an earlier run left it: never intended, intended with its answer lost,
    or answered (its child is among the jobs)."""
    if (parent_id, button) not in answers:
        return PressState.WANTED
    return PressState.INTENDED if answers[(parent_id, button)] is None else PressState.PRESSED


def images_to_save(job: ImageJob, *, save_grid: bool) -> tuple[ImageToSave, ...]:
    """What a completed job saves: each of its images (a grid's four parts, or the one
    image), and its grid if asked for. A grid whose parts never came saves its grid alone,
    as a grid (index 0): there is no image k, as there is no part k to act on."""
    if job.parts_missing:
        return tuple(ImageToSave(GRID_INDEX, "grid", url, True) for url in job.images[:1])
    images = [ImageToSave(k, "image", url) for k, url in enumerate(job.images, 1)]
    if save_grid and job.grid is not None:
        images.append(ImageToSave(GRID_INDEX, "grid", job.grid))
    return tuple(images)


def reason(error: BaseException | None) -> str | None:
    """An error as the journal and manifest show it: its type and message."""
    if error is None:
        return None
    message = getattr(error, "message", None) or str(error)
    return f"{type(error).__name__}: {message}"
