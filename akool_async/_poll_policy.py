"""How the poll scheduler polls (``PollPolicy``) and what it counts (``PollStats``)."""

from __future__ import annotations

import attrs

from . import _defaults as d
from ._arguments import check_count, check_number
from ._exceptions import InvalidSettingError


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How the scheduler polls. Times are in seconds of the scheduler's clock.

    ``polls_per_job`` is the target average over the jobs followed; the default 1.45 leaves
    room for the few first jobs probed densely while the model learns, so that a run costs
    at most 1.5 polls per job. Lower it to save requests, raise it (up to 2.9) to notice
    sooner.
    ``expected_seconds``/``spread`` are the log-normal prior used until jobs finish.
    """

    expected_seconds: float = d.POLL_EXPECTED_SECONDS
    spread: float = d.POLL_SPREAD
    polls_per_job: float = d.POLLS_PER_JOB
    min_interval: float = d.POLL_MIN_INTERVAL
    max_interval: float = d.POLL_MAX_INTERVAL
    queued_backoff: float = d.POLL_QUEUED_BACKOFF
    jitter: float = d.POLL_JITTER
    probes: int = d.POLL_PROBES
    senders: int | None = None  # long-lived pollers; default: the client's max_in_flight
    webhook_safety: float = d.WEBHOOK_SAFETY  # callbacks flowing: no poll before N first ages
    webhook_silence: float = d.WEBHOOK_SILENCE  # flowing until this long without one
    # A grid completed without its parts: followed this long after its status 3, polled
    # every parts_interval (Akool's demo polls every 3 s; how late parts come is unknown).
    parts_grace: float = d.PARTS_GRACE
    parts_interval: float = d.PARTS_INTERVAL

    def __attrs_post_init__(self) -> None:
        numbers = ("expected_seconds", "spread", "polls_per_job", "min_interval", "max_interval",
                   "queued_backoff", "jitter", "webhook_safety", "webhook_silence",
                   "parts_grace", "parts_interval")  # fmt: skip
        for name in numbers:
            check_number(f"PollPolicy.{name}", getattr(self, name), allow_minimum=True)
        check_count("PollPolicy.probes", self.probes, minimum=0)
        if self.senders is not None:
            check_count("PollPolicy.senders", self.senders)
        checks = {
            "polls_per_job": ("from 1.05 to 2.9", 1.05 <= self.polls_per_job <= 2.9),
            "min_interval": ("above 0", self.min_interval > 0),
            "max_interval": (
                f"at least min_interval ({self.min_interval})",
                self.max_interval >= self.min_interval,
            ),
            "expected_seconds": ("above 0", self.expected_seconds > 0),
            "spread": ("above 0", self.spread > 0),
            "jitter": ("from 0 up to (not including) 1", self.jitter < 1),
            "queued_backoff": ("at least 1", self.queued_backoff >= 1),
            "webhook_safety": ("at least 1", self.webhook_safety >= 1),
            "parts_interval": ("above 0", self.parts_interval > 0),
        }
        for name, (allowed, ok) in checks.items():
            if not ok:
                raise InvalidSettingError(f"PollPolicy.{name}", getattr(self, name), allowed)

    @property
    def first_quantile(self) -> float:
        # Polls per job ~ 1 + 2 * (1 - q0) with the ladder halving what is left each rung.
        return 1 - (self.polls_per_job - 1) / 2


@attrs.define
class PollStats:
    polls: int = 0
    finished: int = 0
    failed_polls: int = 0
    parts_polls: int = 0  # polls of grids seen completed without their parts, for them
    parts_missing: int = 0  # grids returned without parts, the grace period over
    callbacks: int = 0  # verified webhook events received
    by_callback: int = 0  # jobs that ended by a callback, not a poll
