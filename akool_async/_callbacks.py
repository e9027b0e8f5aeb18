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

    def mark_ours(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            self._ours[job_id] = None
        _bound(self._ours)

    def is_ours(self, job_id: str) -> bool:
        return job_id in self._ours

    def keep(self, job: ImageJob) -> None:
        """An outcome nobody waits for yet (a loop awaiting one job after another)."""
        self._early[job.id] = job
        _bound(self._early)

    def take(self, job_id: str) -> ImageJob | None:
        return self._early.pop(job_id, None)


def _bound(kept: OrderedDict[str, T]) -> None:
    while len(kept) > KEPT:
        kept.popitem(last=False)
