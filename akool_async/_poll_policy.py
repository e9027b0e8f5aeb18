"""How the poll scheduler polls (``PollPolicy``) and what it counts (``PollStats``)."""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How the scheduler polls. Times are in seconds of the scheduler's clock.

    ``polls_per_job`` is the target average over the jobs followed; the default 1.45 leaves
    room for the few first jobs probed densely while the model learns, so that a run costs
    at most 1.5 polls per job. Lower it to save requests, raise it (up to 2.9) to notice
    sooner.
    ``expected_seconds``/``spread`` are the log-normal prior used until jobs finish.
    """

    expected_seconds: float = 30.0
    spread: float = 0.35
    polls_per_job: float = 1.45
    min_interval: float = 1.0
    max_interval: float = 60.0
    queued_backoff: float = 1.5
    jitter: float = 0.1
    probes: int = 2
    senders: int | None = None  # long-lived pollers; default: the client's max_in_flight
    webhook_safety: float = 4.0  # callbacks flowing: poll no sooner than this many first ages
    webhook_silence: float = 60.0  # callbacks count as flowing until this long without one
    # A grid completed without its parts: followed this long after its status 3, polled
    # every parts_interval (Akool's demo polls every 3 s; how late parts come is unknown).
    parts_grace: float = 60.0
    parts_interval: float = 3.0

    def __attrs_post_init__(self) -> None:
        checks = {
            "polls_per_job must be between 1.05 and 2.9": 1.05 <= self.polls_per_job <= 2.9,
            "need 0 < min_interval <= max_interval": 0 < self.min_interval <= self.max_interval,
            "expected_seconds and spread must be positive": self.expected_seconds > 0
            and self.spread > 0,
            "jitter must be in [0, 1)": 0 <= self.jitter < 1,
            "queued_backoff must be at least 1": self.queued_backoff >= 1,
            "probes must not be negative": self.probes >= 0,
            "senders must be at least 1": self.senders is None or self.senders >= 1,
            "webhook_safety must be at least 1": self.webhook_safety >= 1,
            "parts_grace must not be negative": self.parts_grace >= 0,
            "parts_interval must be positive": self.parts_interval > 0,
        }
        for problem, ok in checks.items():
            if not ok:
                raise ValueError(problem)

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
