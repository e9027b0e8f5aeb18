"""When to poll a job: the poll scheduler's decisions, as plain functions of ``now``.

No I/O and no clock here (``now`` is passed in, the random source injected): the
scheduler (``_polling``) keeps the heap, the senders and the waiters, and asks this
module when each job is next due. The model behind the ages is ``_durations``.

When a job is polled:
- a fresh job first at the age most jobs are done by, learned from the jobs followed so
  far (with a sane prior before any finished), and no later than the oldest job seen
  running plus ``max_interval``; a job of unknown age at once;
- the first few young jobs are probes: polled from a sixteenth of the first age,
  doubling, until they reach the first age (then they are normal jobs);
- while it is processing, next where half of the jobs still running at its age are done;
- while it is still queued it is behind the others: back off, ``queued_backoff`` times
  more each time in a row;
- a transient failure (after the client's own retries) only postpones the next poll:
  1 s, then double each time, up to ``max_interval``;
- always jittered (at most a third of the learned spread once it is known), never two
  polls of one job closer than ``min_interval``, never more than ``max_interval`` apart.

Webhooks: while callbacks flow, polls are only a safety net: no poll before
``webhook_safety`` first ages (nor any probe). When the first callback comes, every
planned poll moves out to the safety net; when none has come for ``webhook_silence`` (or
two first ages, whichever is longer), callbacks count as stopped and every job is polled
again soon, spread over up to half a first age (a burst would take the rate budget from
creates). Jobs waiting for their parts are polled on, callbacks or not.

A grid job completed without its parts is polled every ``parts_interval`` until
``parts_grace`` has passed since its status 3; then it is given up on.
"""

from __future__ import annotations

from typing import Protocol

from ._callbacks import Callbacks
from ._durations import DurationModel
from ._models import ImageStatus
from ._poll_policy import PollPolicy

__all__ = ["JobPlan", "PollPlanner", "Uniform"]


class Uniform(Protocol):
    """The random source for jitter (``random.Random`` is one)."""

    def uniform(self, a: float, b: float) -> float: ...


class JobPlan:
    """What the planner knows of one watched job."""

    __slots__ = ("interval", "last_age", "learn", "origin", "parts_until", "polls", "probe",
                 "queued")  # fmt: skip

    def __init__(self, origin: float, *, probe: bool = False, learn: bool = True) -> None:
        self.origin = origin  # when it was created, on the planner's clock
        self.probe = probe  # polled densely to learn from it
        self.learn = learn  # only jobs of known age teach the duration model
        self.polls = 0  # answered polls
        self.queued = 0  # answers in a row that said still queued
        self.interval = 0.0  # the back-off after transient failures
        self.last_age = 0.0  # its age when last seen running
        self.parts_until: float | None = None  # completed without parts: followed until then


class PollPlanner:
    def __init__(self, policy: PollPolicy, callbacks: Callbacks, rng: Uniform) -> None:
        self.policy = policy
        self.callbacks = callbacks
        self._rng = rng
        self.model = DurationModel(
            expected=policy.expected_seconds,
            spread=policy.spread,
            first_quantile=policy.first_quantile,
            probes=policy.probes,
        )

    # -- a job is watched, polled, ends ---------------------------------------------------

    def plan(self, age: float | None, now: float) -> JobPlan:
        """A job starts being followed; ``age`` None: unknown (it is polled at once)."""
        if age is None:
            return JobPlan(now - self.model.first_age(), learn=False)
        # Only a new job is probed: an old one would teach nothing but its age.
        young = age <= self.policy.min_interval and not self.callbacks.flowing
        return JobPlan(now - age, probe=young and self.model.take_probe())

    def first_due(self, plan: JobPlan, now: float) -> float:
        if self.callbacks.flowing:
            return max(now, plan.origin + self.jittered(self.safety_age()))
        if plan.probe:
            return now + self.jittered(self.model.probe_age(0, self.policy.min_interval))
        first = self.model.first_age()
        oldest = self.model.oldest_running()
        if oldest is not None:  # no later than what has been seen, plus one long interval
            first = min(first, oldest + self.policy.max_interval)
        # Jittered like every poll: a burst of new jobs is not polled all at one instant,
        # and polls at a spread of ages let the model learn the spread of durations too.
        return max(now, plan.origin + self.jittered(first))

    def answered(self, plan: JobPlan, now: float) -> float:
        """A poll was answered (any status): returns the job's age."""
        plan.polls += 1
        plan.interval = 0.0  # a success resets the back-off after failures
        return now - plan.origin

    def running(self, plan: JobPlan, status: ImageStatus, now: float) -> float:
        """A poll said still running (queued or processing): learn, and say when next."""
        age = now - plan.origin
        if plan.learn and not plan.probe:
            self.model.running(plan.last_age, age)
        plan.last_age = age
        return self._next_due(plan, status, now)

    def _next_due(self, plan: JobPlan, status: ImageStatus, now: float) -> float:
        policy, model = self.policy, self.model
        age = now - plan.origin
        if plan.probe and not self.callbacks.flowing:
            probe_age = model.probe_age(plan.polls, policy.min_interval)
            if probe_age < model.first_age():
                step = min(policy.max_interval, max(policy.min_interval, probe_age - age))
                return now + self.jittered(step)
            # Probed up to where jobs are first polled anyway: from now on a normal job.
            plan.probe = False
            model.running(0.0, age)
        step = model.next_age(age) - age
        if status == ImageStatus.QUEUEING:
            # Not even started: behind the others, so back off, more each time.
            plan.queued += 1
            step *= policy.queued_backoff**plan.queued
        else:
            plan.queued = 0
        step = min(policy.max_interval, max(policy.min_interval, step))
        if self.callbacks.flowing:
            step = max(step, self.safety_age())
        return now + self.jittered(step)

    def failed(self, plan: JobPlan, now: float) -> float:
        """A poll failed transiently (after the client's retries): when to try again."""
        plan.interval = min(self.policy.max_interval, max(plan.interval * 2, 1.0))
        return now + self.jittered(plan.interval)

    def ended(self, plan: JobPlan, *, failed: bool, age: float) -> bool:
        """The job ended (or completed, its parts aside) by ``age``: learn its duration.
        True when the prior moved: jobs not yet polled are planned again (``replan``)."""
        if failed:  # may fail fast or late: not a duration
            if plan.learn and not plan.probe:
                self.model.dropped(plan.last_age)
        elif plan.probe:
            return self.model.probe_finished(plan.last_age, age)
        elif plan.learn:
            self.model.finished(plan.last_age, age)
        return False

    def dropped(self, plan: JobPlan) -> None:
        """Nobody waits for the job any more: the model forgets it."""
        if plan.learn and not plan.probe:
            self.model.dropped(plan.last_age)

    def replan(self, plan: JobPlan, now: float) -> float | None:
        """The prior moved: a job not polled yet gets its first poll anew (else None)."""
        if plan.polls == 0 and not plan.probe:
            return self.first_due(plan, now)
        return None

    # -- grids completed without their parts ----------------------------------------------

    def await_parts(self, plan: JobPlan, now: float) -> float:
        """The job completed without its parts: followed for them until (returned)."""
        plan.parts_until = until = now + self.policy.parts_grace
        plan.learn = plan.probe = False  # its duration is learned (or unknown) already
        return until

    def parts_due(self, plan: JobPlan, now: float) -> float | None:
        """Still no parts: when to poll for them next; None once the grace has passed."""
        until = plan.parts_until if plan.parts_until is not None else self.await_parts(plan, now)
        if now >= until:
            return None
        step = min(self.policy.parts_interval, until - now)
        return now + max(self.policy.min_interval, step)

    # -- webhooks ---------------------------------------------------------------------------

    def safety_age(self) -> float:
        """While callbacks flow, no poll before this age (a net for callbacks never sent)."""
        return self.policy.webhook_safety * self.model.first_age()

    def silence(self) -> float:
        """How long without a callback before callbacks count as stopped."""
        return max(self.policy.webhook_silence, 2 * self.model.first_age())

    def fell_silent(self, now: float) -> bool:
        """True once, when callbacks have just stopped: every job is planned again."""
        return self.callbacks.fell_silent(now, self.silence())

    def wake_at(self, due: float | None) -> float | None:
        """When the scheduler must look again: the next due poll, or the moment
        callbacks would count as stopped, whichever is first."""
        if not self.callbacks.flowing:
            return due
        silent_at = self.callbacks.silent_at(self.silence())
        return silent_at if due is None else min(due, silent_at)

    def rescheduled(self, plan: JobPlan, due: float, now: float) -> float | None:
        """Callbacks just started or stopped: the job's new due time (from ``due``), or
        None for one polled for its parts (callbacks or not)."""
        if plan.parts_until is not None:
            return None
        if plan.polls == 0:
            return self.first_due(plan, now)
        if self.callbacks.flowing:
            return max(due, now + self.safety_age())
        soon = self._rng.uniform(self.policy.min_interval, self.model.first_age() / 2)
        return min(due, now + soon)

    def jittered(self, interval: float) -> float:
        # Once the spread is known, never jitter by more than a third of it (a narrow
        # spread would otherwise cost polls); before, jitter helps learn it.
        jitter = self.policy.jitter
        if self.model.spread_learned:
            jitter = min(jitter, self.model.sigma / 3)
        spread = self._rng.uniform(1 - jitter, 1 + jitter)
        return max(self.policy.min_interval, interval * spread)
