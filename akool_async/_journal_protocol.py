"""What the follow machine asks a journal to keep, and the interface a journal offers.

The follow machine (``_follow``) never writes anything itself: it emits ``Record`` actions
holding one of the entries below, in the order they must become durable. A journal turns
them into rows. Two implementations are meant to exist:

- **SQLite** (``bulk/_journal.py``, one process on one machine): ``claim`` hands out a
  fence from a per-item counter and never loses it (no other process writes the file);
  ``write`` is the existing group-committing writer task.
- **PostgreSQL** (issue 13, many workers on many machines): ``claim`` is
  ``SELECT ... FOR UPDATE SKIP LOCKED`` setting ``lease_until`` and ``fence = fence + 1``;
  every ``write`` is guarded by ``WHERE key = $1 AND fence = $2`` and raises
  ``ClaimLostError`` when no row matched (another worker took the item over: the caller
  must stop without sending anything more); a reaper turns an expired claim in
  ``submitting`` into *uncertain*, never back into pending.

Durability: entries whose ``durable`` is True (an intent, the ids a create answered) must be
committed before ``write`` returns; the others may ride along with the next commit (group
commit: one fsync per batch, no create waiting on another item's status row).

Pure data and a ``typing.Protocol``: no I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs

from ._exceptions import ClaimLostError  # noqa: F401 - the contract's error, re-exported
from ._models import Button, ImageJob, ImageStatus


@attrs.frozen
class Claim:
    """The right to write one item: ``fence`` grows on each claim, ``lease_until`` (wall
    clock seconds) is when another worker may take the item over unless renewed."""

    key: str
    fence: int
    lease_until: float


# -- the entries (what a Record action holds) ------------------------------------------


@attrs.frozen
class CreateIntent:
    """Before the root create leaves: a crash after this leaves the item uncertain."""

    request: Mapping[str, object]  # the request as sent (unstructured; no credentials)
    follow_ups: tuple[Button, ...]
    durable = True


@attrs.frozen
class CreateSettled:
    """The root create's answer: its jobs, or why there are none (``uncertain``: it may
    have reached the server, so it is never sent again)."""

    jobs: tuple[ImageJob, ...]
    error: str | None = None
    uncertain: bool = False
    durable = True


@attrs.frozen
class PressIntent:
    """Before a button press leaves, like a create's intent."""

    parent_id: str
    button: Button
    durable = True


@attrs.frozen
class PressSettled:
    """A press's answer: its child job, or why there is none."""

    parent_id: str
    button: Button
    child: ImageJob | None
    error: str | None = None
    uncertain: bool = False
    durable = True


@attrs.frozen
class JobStatus:
    """A status answer or callback for a job (each one, not only the last)."""

    job: ImageJob
    durable = False


@attrs.frozen
class JobError:
    """A job's following ended without a last status: a poll error, or its deadline
    passed (``left_running``: it goes on on the server)."""

    job_id: str
    error: str
    left_running: bool = False
    durable = False


@attrs.frozen
class ImagesListed:
    """The images a completed job has to save (index 0 is its 2x2 grid)."""

    job_id: str
    images: tuple[ImageToSave, ...]
    durable = False


@attrs.frozen
class ImageSaved:
    job_id: str
    index: int
    path: str
    sha256: str
    size: int
    near_expiry: bool = False
    durable = False


@attrs.frozen
class ImageFailed:
    job_id: str
    index: int
    error: str
    durable = False


@attrs.frozen
class TreeSettled:
    """The whole tree is over: the item's final state and its first error."""

    state: str  # a ``Verdict`` value
    error: str | None
    durable = False


@attrs.frozen
class ImageToSave:
    """One image of a completed job: ``index`` k is ``job.images[k-1]``, 0 its grid."""

    index: int
    kind: str  # "image", or "grid" (the grid standing in for parts that never came)
    url: str
    parts_missing: bool = False


Entry = (
    CreateIntent | CreateSettled | PressIntent | PressSettled | JobStatus | JobError
    | ImagesListed | ImageSaved | ImageFailed | TreeSettled
)  # fmt: skip


# -- what a resumed tree starts from -------------------------------------------------


@attrs.frozen
class KnownJob:
    """A job an earlier run created: its last recorded status (None: never seen ended)."""

    job_id: str
    parent_id: str | None
    button: Button | None
    position: int
    status: ImageStatus | None = None
    last: ImageJob | None = None  # its last answer, when recorded whole
    images: tuple[ImageToSave, ...] | None = None  # None: not listed (look again)
    saved: frozenset[int] = frozenset()  # indexes whose files were found intact


@attrs.frozen
class KnownPress:
    """A press an earlier run intended: ``child_id`` None when its answer was lost."""

    parent_id: str
    button: Button
    child_id: str | None


@attrs.frozen
class History:
    jobs: tuple[KnownJob, ...] = ()
    presses: tuple[KnownPress, ...] = ()


class FollowJournal(Protocol):
    """What a driver of the follow machine needs from a journal (SQLite or PostgreSQL)."""

    async def claim(self, key: str, *, lease: float) -> Claim | None:
        """Take the item for ``lease`` seconds; None when another worker holds it."""

    async def renew(self, claim: Claim, *, lease: float) -> Claim:
        """Extend the lease (``ClaimLostError`` if it was taken over meanwhile)."""

    async def write(self, claim: Claim, entries: Sequence[Entry]) -> None:
        """Record ``entries`` in order, guarded by ``claim.fence``; return once every
        ``durable`` one is committed (``ClaimLostError`` if the fence is stale)."""

    async def history(self, claim: Claim) -> History:
        """What earlier runs recorded of the item, to resume its tree."""

    async def release(self, claim: Claim) -> None:
        """Give the item up (it is settled, or the run stops)."""
