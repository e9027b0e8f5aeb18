"""What the poll scheduler knows of webhook callbacks: whether they flow, when one was last
heard, which jobs are this client's, and outcomes that came before anyone waited."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import TypeVar

from ._models import ImageJob

T = TypeVar("T")
KEPT = 4096  # jobs remembered, of each kind (~0.5 KB each)


class Callbacks:
    def __init__(self) -> None:
        self.flowing = False  # callbacks arriving: polls are only a safety net
        self._heard = 0.0  # when the last one came (or waiting began, while none was due)
        self._ours: OrderedDict[str, None] = OrderedDict()  # recently created by this client
        self._early: OrderedDict[str, ImageJob] = OrderedDict()  # ended, not yet awaited
        # Ended, from callbacks for jobs not known as ours (yet): another client's on a
        # shared receiver, or ours whose callback beat its create's answer.
        self._strays: OrderedDict[str, ImageJob] = OrderedDict()

    def expect(self, now: float) -> None:
        """A receiver is attached: count callbacks as flowing until a silence says not."""
        self.flowing, self._heard = True, now

    def busy_again(self, now: float) -> None:
        """Jobs are watched again after none was: the silence counts from here."""
        if self.flowing:
            self._heard = max(self._heard, now)

    def heard(self, now: float) -> bool:
        """One came; True when callbacks have just started to flow."""
        started, self.flowing, self._heard = not self.flowing, True, now
        return started

    def silent_at(self, silence: float) -> float:
        """When callbacks will count as stopped, if none comes before."""
        return self._heard + silence

    def fell_silent(self, now: float, silence: float) -> bool:
        """True once, when callbacks have just stopped: polling takes over again."""
        if self.flowing and now >= self.silent_at(silence):
            self.flowing = False
            return True
        return False

    def mark_ours(self, job_ids: Iterable[str]) -> int:
        """Returns how many of them had already ended (their callbacks kept as strays)."""
        early = 0
        for job_id in job_ids:
            self._ours[job_id] = None
            stray = self._strays.pop(job_id, None)
            if stray is not None:
                self._early[job_id] = stray
                early += 1
        _bound(self._ours)
        _bound(self._early)
        return early

    def is_ours(self, job_id: str) -> bool:
        return job_id in self._ours

    def keep(self, job: ImageJob, *, ours: bool) -> None:
        """An outcome nobody waits for yet (a loop awaiting one job after another)."""
        kept = self._early if ours else self._strays
        kept[job.id] = job
        _bound(kept)

    def take(self, job_id: str) -> ImageJob | None:
        early = self._early.pop(job_id, None)
        return early if early is not None else self._strays.pop(job_id, None)


def _bound(kept: OrderedDict[str, T]) -> None:
    while len(kept) > KEPT:
        kept.popitem(last=False)
