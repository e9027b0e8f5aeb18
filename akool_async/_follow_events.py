"""The follow machine's vocabulary: the events a driver feeds it, the actions it answers
with, and what it emits. Data only (see ``_follow`` for the machine)."""

from __future__ import annotations

import enum

import attrs

from ._journal_protocol import CreateIntent, Entry, ImageToSave, PressIntent
from ._models import Button, ImageJob, ImageStatus
from ._requests import ButtonRequest, PromptRequest, SourcePromptRequest

# -- events: what happened (the driver tells the machine) ------------------------------


@attrs.frozen
class Created:
    """The root create answered with its jobs."""

    jobs: tuple[ImageJob, ...]


@attrs.frozen
class CreateFailed:
    """The root create got no usable answer. ``sent``: it may have created jobs (a
    ``SubmissionUncertainError``: uncertain, never sent again); False when it provably
    created nothing (refused before it left, or answered with an error). ``job_ids``: ids
    the answer still held (then the jobs exist and are followed)."""

    error: Exception
    sent: bool
    job_ids: tuple[str, ...] = ()


@attrs.frozen
class StatusSeen:
    """A poll answered with the job as it is now (buttons included)."""

    job: ImageJob


@attrs.frozen
class CallbackSeen:
    """A webhook callback told the job's status (callbacks carry no buttons)."""

    job: ImageJob


@attrs.frozen
class ButtonsLookedUp:
    """The finished job looked at again for its buttons."""

    job: ImageJob


@attrs.frozen
class LookupFailed:
    job_id: str
    error: Exception


@attrs.frozen
class Pressed:
    """A press answered with its child job(s)."""

    parent_id: str
    button: Button
    children: tuple[ImageJob, ...]


@attrs.frozen
class PressFailed:
    """A press got no usable answer; ``sent`` and ``child_ids`` as for ``CreateFailed``
    (a press refused before it left, by the budget for example, is ``sent=False``)."""

    parent_id: str
    button: Button
    error: Exception
    sent: bool
    child_ids: tuple[str, ...] = ()


@attrs.frozen
class WatchFailed:
    """Following the job failed for good (a poll error the client did not retry)."""

    job_id: str
    error: Exception


@attrs.frozen
class TimedOut:
    """The job's deadline passed: it goes on on the server, left running."""

    job_id: str
    error: Exception | None = None


@attrs.frozen
class Saved:
    job_id: str
    index: int
    path: str
    sha256: str
    size: int
    near_expiry: bool = False  # the driver knows the job's age: a day or less left


@attrs.frozen
class SaveFailed:
    job_id: str
    index: int
    error: Exception


@attrs.frozen
class Cancelled:
    """The driver stops: nothing new is sent; answers to what was sent still come."""


Event = (
    Created | CreateFailed | StatusSeen | CallbackSeen | ButtonsLookedUp | LookupFailed
    | Pressed | PressFailed | WatchFailed | TimedOut | Saved | SaveFailed | Cancelled
)  # fmt: skip


# -- actions: what to do (the machine tells the driver) --------------------------------


@attrs.frozen
class Create:
    """Send the root create. Write ``intent`` to the journal right before it leaves
    (``AkoolClient.submit(before_send=...)``), then answer ``Created``/``CreateFailed``."""

    request: SourcePromptRequest | PromptRequest
    intent: CreateIntent


@attrs.frozen
class Watch:
    """Follow the job: ``age`` None means poll it now (it may be old); ``deadline`` (the
    clock of ``now``) None means no deadline; ``grid`` whether its parts come later."""

    job_id: str
    deadline: float | None
    age: float | None
    grid: bool


@attrs.frozen
class LookUpButtons:
    """Get the finished job once more (a callback brought it, without its buttons)."""

    job_id: str


@attrs.frozen
class Press:
    """Press ``button`` on the parent (already checked against its buttons); write
    ``intent`` right before it leaves, then answer ``Pressed``/``PressFailed``."""

    parent_id: str
    button: Button
    request: ButtonRequest
    intent: PressIntent


@attrs.frozen
class Download:
    """Save these images of a completed job (answer ``Saved``/``SaveFailed`` for each).
    ``position`` (and the parent's) name the files."""

    job_id: str
    position: int
    parent_position: int | None
    button: Button | None
    images: tuple[ImageToSave, ...]


@attrs.frozen
class Record:
    """Write ``entry`` to the journal (a driver without one ignores it)."""

    entry: Entry


class Verdict(enum.Enum):
    """How a whole tree ended (bulk's item state)."""

    DONE = "done"
    FAILED = "failed"
    REFUSED = "refused"  # the create provably made nothing: a resume may send it again
    UNCERTAIN = "uncertain"
    STOPPED = "stopped"  # cancelled: the journal keeps it as it was, to resume


class OutcomeState(enum.StrEnum):
    """How one job (or a create or press that made none) ended; equal to its string."""

    COMPLETED = "completed"
    FAILED = "failed"
    LEFT_RUNNING = "left_running"  # timed out or stopped: it goes on on the server
    REFUSED = "refused"  # provably not created: nothing spent
    UNCERTAIN = "uncertain"  # may have been created: never sent again
    NOT_SENT = "not_sent"  # stopped before it was sent
    ABANDONED = "abandoned"  # a press whose parent did not complete, or stopped first


def _outcome_state(value: OutcomeState | str | None) -> OutcomeState | None:
    return None if value is None or value == "" else OutcomeState(value)


@attrs.frozen
class JobOutcome:
    """How one job of a generation ended: its last state, or the error that stopped it.

    ``job_id`` is None for a create or press that made no job. ``state`` says how it ended
    (an ``OutcomeState``, equal to its string: ``completed``, ``failed``, ``left_running``,
    ``refused``, ``uncertain``...). One record for the machine, ``generate()`` and bulk.
    """

    job_id: str | None  # None when the create itself failed
    job: ImageJob | None = None
    error: Exception | None = None
    parent_id: str | None = None
    button: Button | None = None
    children: tuple[str, ...] = ()
    submitted_at: float = 0.0  # epoch seconds
    finished_at: float = 0.0
    state: OutcomeState | None = attrs.field(default=None, kw_only=True, converter=_outcome_state)

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


Outcome = JobOutcome  # the machine's name for it


@attrs.frozen
class Settled:
    """Everything is over: the verdict, its first error, the jobs still on the server."""

    verdict: Verdict
    error: str | None
    left_running: tuple[str, ...]


@attrs.frozen
class Emit:
    what: Outcome | Settled


Action = Create | Watch | LookUpButtons | Press | Download | Record | Emit
