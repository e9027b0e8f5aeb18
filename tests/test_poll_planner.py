"""The poll planner (``_poll_planner``) as plain calls with ``now`` passed in: no loop, no
clock, jitter from an injected source."""

from __future__ import annotations

import math
import random
from statistics import NormalDist

import pytest
from hypothesis import given
from hypothesis import strategies as st

from akool_async import ImageStatus, PollPolicy
from akool_async._callbacks import Callbacks
from akool_async._poll_planner import JobPlan, PollPlanner

PROCESSING, QUEUEING = ImageStatus.PROCESSING, ImageStatus.QUEUEING


class Middle:
    """No jitter: every draw is the middle of its range."""

    def __init__(self) -> None:
        self.draws: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.draws.append((a, b))
        return (a + b) / 2


def _planner(policy: PollPolicy | None = None, rng: Middle | None = None) -> PollPlanner:
    return PollPlanner(policy or PollPolicy(probes=0), Callbacks(), rng or Middle())


def test_a_fresh_job_is_first_polled_at_the_learned_first_age() -> None:
    """The first poll comes at the age a share q0 of jobs is done by (the prior's, here)."""
    planner = _planner()
    plan = planner.plan(0.0, now=100.0)
    expected = 30.0 * math.exp(0.35 * NormalDist().inv_cdf(0.775))
    assert planner.first_due(plan, 100.0) == pytest.approx(100.0 + expected)
    older = planner.plan(10.0, now=100.0)  # created 10 s ago: due 10 s sooner
    assert planner.first_due(older, 100.0) == pytest.approx(90.0 + expected)


def test_a_job_older_than_the_first_age_is_polled_now() -> None:
    """A job already past its first age is due at once, not in the past."""
    planner = _planner()
    assert planner.first_due(planner.plan(500.0, now=7.0), 7.0) == 7.0


def test_a_job_of_unknown_age_is_polled_at_once_and_teaches_nothing() -> None:
    """Age unknown: due now, and its duration is not learned."""
    planner = _planner()
    plan = planner.plan(None, now=50.0)
    assert planner.first_due(plan, 50.0) == pytest.approx(50.0)
    assert not plan.learn
    assert not plan.probe


def test_the_oldest_running_job_caps_the_first_age() -> None:
    """Once a job was seen running at age A, new jobs go first no later than A + max_interval."""
    planner = _planner(PollPolicy(probes=0, max_interval=2.0, expected_seconds=300.0))
    seen = planner.plan(0.0, now=0.0)
    planner.answered(seen, 5.0)
    planner.running(seen, PROCESSING, 5.0)
    fresh = planner.plan(0.0, now=10.0)
    assert planner.first_due(fresh, 10.0) == pytest.approx(10.0 + 5.0 + 2.0, rel=0.02)


def test_only_young_jobs_are_probed_and_only_the_first_few() -> None:
    """Probes: jobs no older than min_interval, while probes are left."""
    planner = _planner(PollPolicy(probes=2, min_interval=1.0))
    assert not planner.plan(5.0, now=0.0).probe  # old: would teach only its age
    assert [planner.plan(0.0, now=0.0).probe for _ in range(3)] == [True, True, False]


def test_probes_start_at_a_sixteenth_and_double_until_the_first_age() -> None:
    """A probe is polled at first_age/16, then at doubling ages, then like any job."""
    planner = _planner(PollPolicy(probes=1, min_interval=0.5))
    first = planner.model.first_age()
    plan = planner.plan(0.0, now=0.0)
    due = planner.first_due(plan, 0.0)
    assert due == pytest.approx(first / 16)
    ages = [due]
    while plan.probe:
        planner.answered(plan, due)
        due = planner.running(plan, PROCESSING, due)
        ages.append(due)
    # first/16 .. first/2 as a probe; the next rung would reach the first age: a normal job
    assert ages[:4] == pytest.approx([first / 16, first / 8, first / 4, first / 2])
    assert len(ages) == 5
    assert ages[4] - ages[3] >= planner.policy.min_interval


def test_processing_is_polled_where_half_the_survivors_are_done() -> None:
    """A job still processing at age A is next polled at the model's next age after A."""
    planner = _planner()
    plan = planner.plan(0.0, now=0.0)
    planner.answered(plan, 40.0)
    expected = planner.model.next_age(40.0)  # before this poll teaches the model
    due = planner.running(plan, PROCESSING, 40.0)
    assert due == pytest.approx(expected, rel=0.05)
    assert due > 40.0 + planner.policy.min_interval


def test_still_queued_backs_off_more_each_time_and_resets() -> None:
    """Queued answers in a row multiply the step by queued_backoff each; processing resets."""
    policy = PollPolicy(probes=0, min_interval=0.01, max_interval=1e6, queued_backoff=2.0)
    base, backed = _planner(policy), _planner(policy)
    steps = []
    plan = backed.plan(0.0, now=0.0)
    for _ in range(3):
        backed.answered(plan, 40.0)
        steps.append(backed.running(plan, QUEUEING, 40.0) - 40.0)
    reference = base.plan(0.0, now=0.0)
    base.answered(reference, 40.0)
    step = base.running(reference, PROCESSING, 40.0) - 40.0
    assert steps[0] == pytest.approx(2 * step, rel=0.05)
    assert steps[1] / steps[0] == pytest.approx(2.0, rel=0.05)
    assert plan.queued == 3
    backed.running(plan, PROCESSING, 40.0)
    assert plan.queued == 0


def test_steps_stay_between_min_and_max_interval() -> None:
    """However long the model says, never beyond max_interval; never under min_interval."""
    planner = _planner(PollPolicy(probes=0, max_interval=3.0, queued_backoff=5.0))
    plan = planner.plan(0.0, now=0.0)
    planner.answered(plan, 40.0)
    assert planner.running(plan, QUEUEING, 40.0) == pytest.approx(43.0)
    tight = _planner(PollPolicy(probes=0, min_interval=30.0, max_interval=60.0))
    job = tight.plan(0.0, now=0.0)
    tight.answered(job, 40.0)
    assert tight.running(job, PROCESSING, 40.0) == pytest.approx(70.0)


def test_transient_failures_back_off_from_one_second_doubling() -> None:
    """1 s, 2 s, 4 s ... up to max_interval; an answer resets the back-off."""
    planner = _planner(PollPolicy(probes=0, min_interval=0.5, max_interval=5.0))
    plan = planner.plan(0.0, now=0.0)
    steps = [planner.failed(plan, 10.0) - 10.0 for _ in range(5)]
    assert steps == pytest.approx([1.0, 2.0, 4.0, 5.0, 5.0])
    planner.answered(plan, 20.0)
    assert planner.failed(plan, 20.0) == pytest.approx(21.0)


def test_jitter_is_drawn_from_the_injected_source_within_bounds() -> None:
    """Each interval is scaled by a draw in [1 - jitter, 1 + jitter], floored at min_interval."""
    rng = Middle()
    planner = _planner(PollPolicy(probes=0, jitter=0.2, min_interval=1.0), rng)
    assert planner.jittered(10.0) == pytest.approx(10.0)
    assert rng.draws[-1] == pytest.approx((0.8, 1.2))
    assert planner.jittered(0.1) == 1.0
    planner.model.spread_learned = True  # a narrow learned spread narrows the jitter
    planner.model.sigma = 0.15
    planner.jittered(10.0)
    assert rng.draws[-1] == pytest.approx((0.95, 1.05))


def test_callbacks_flowing_make_polls_a_safety_net() -> None:
    """While callbacks flow: first poll at webhook_safety first ages, no probes, no step
    shorter than that."""
    planner = _planner(PollPolicy(probes=3, webhook_safety=4.0))
    planner.callbacks.expect(0.0)
    safety = 4.0 * planner.model.first_age()
    assert planner.safety_age() == pytest.approx(safety)
    plan = planner.plan(0.0, now=0.0)
    assert not plan.probe
    assert planner.first_due(plan, 0.0) == pytest.approx(safety)
    planner.answered(plan, safety)
    assert planner.running(plan, PROCESSING, safety) == pytest.approx(2 * safety)


def test_silence_is_the_longer_of_the_setting_and_two_first_ages() -> None:
    """Callbacks count as stopped after webhook_silence, or two first ages if longer; once."""
    planner = _planner(PollPolicy(probes=0, webhook_silence=10.0))
    silence = 2 * planner.model.first_age()
    assert planner.silence() == pytest.approx(silence)
    assert planner.wake_at(5.0) == 5.0  # not flowing: only the next poll wakes it
    planner.callbacks.expect(0.0)
    assert planner.wake_at(None) == pytest.approx(silence)
    assert planner.wake_at(1e9) == pytest.approx(silence)
    assert not planner.fell_silent(silence - 0.1)
    assert planner.fell_silent(silence)
    assert not planner.fell_silent(silence + 1)


def test_when_callbacks_start_every_planned_poll_moves_out() -> None:
    """A first callback: polled jobs are due no sooner than the safety net from now."""
    planner = _planner()
    plan = planner.plan(0.0, now=0.0)
    planner.answered(plan, 40.0)
    planner.callbacks.heard(41.0)
    safety = planner.safety_age()
    assert planner.rescheduled(plan, 45.0, 41.0) == pytest.approx(41.0 + safety)
    assert planner.rescheduled(plan, 1e6, 41.0) == 1e6  # already later: left there


def test_when_callbacks_stop_jobs_are_polled_soon_spread_out() -> None:
    """Silence: each job comes due within [min_interval, first_age / 2], not all at once."""
    rng = Middle()
    planner = _planner(PollPolicy(probes=0, min_interval=1.0), rng)
    plan = planner.plan(0.0, now=0.0)
    planner.answered(plan, 40.0)
    due = planner.rescheduled(plan, 1e6, 100.0)
    assert rng.draws[-1] == pytest.approx((1.0, planner.model.first_age() / 2))
    assert due == pytest.approx(100.0 + (1.0 + planner.model.first_age() / 2) / 2)
    assert planner.rescheduled(plan, 100.5, 100.0) == 100.5  # sooner already: kept
    unpolled = planner.plan(0.0, now=100.0)
    assert planner.rescheduled(unpolled, 1e6, 100.0) == planner.first_due(unpolled, 100.0)


def test_a_job_awaiting_its_parts_ignores_callbacks_and_stops_learning() -> None:
    """Parts wait: no replanning by callbacks, nothing learned from its later polls."""
    planner = _planner(PollPolicy(probes=1))
    plan = planner.plan(0.0, now=0.0)
    assert planner.await_parts(plan, 30.0) == pytest.approx(30.0 + 60.0)
    assert not plan.learn
    assert not plan.probe
    assert planner.rescheduled(plan, 33.0, 31.0) is None


def test_parts_are_polled_every_parts_interval_until_the_grace_ends() -> None:
    """Every parts_interval, the last step cut to the grace's end, then None (given up)."""
    planner = _planner(PollPolicy(probes=0, parts_grace=7.0, parts_interval=3.0))
    plan = planner.plan(0.0, now=0.0)
    planner.await_parts(plan, 10.0)
    dues, now = [], 10.0
    while (due := planner.parts_due(plan, now)) is not None:
        dues.append(due)
        now = due
    assert dues == pytest.approx([13.0, 16.0, 17.0])


def test_parts_polls_keep_min_interval_even_at_the_grace_end() -> None:
    """A last sliver of grace shorter than min_interval still waits min_interval."""
    planner = _planner(PollPolicy(probes=0, parts_grace=3.2, parts_interval=3.0))
    plan = planner.plan(0.0, now=0.0)
    planner.await_parts(plan, 0.0)
    assert planner.parts_due(plan, 3.0) == pytest.approx(4.0)


def test_probes_that_contradict_the_prior_replan_unpolled_jobs() -> None:
    """Two probes done 10x faster than the prior: it moves, and jobs not yet polled (not
    probes, not polled ones) get an earlier first poll."""
    planner = _planner(PollPolicy(probes=2, min_interval=0.1))
    probes = [planner.plan(0.0, now=0.0) for _ in range(2)]
    waiting, polled = planner.plan(0.0, now=0.0), planner.plan(0.0, now=0.0)
    planner.answered(polled, 1.0)
    before = planner.first_due(waiting, 0.0)
    moved = [planner.ended(probe, failed=False, age=3.0) for probe in probes]
    assert moved == [False, True]
    replanned = planner.replan(waiting, 4.0)
    assert replanned is not None
    assert replanned < before / 4
    assert planner.replan(polled, 4.0) is None
    assert planner.replan(probes[0], 4.0) is None


def test_a_failed_job_teaches_no_duration() -> None:
    """A job that failed may have failed fast or late: the model does not move."""
    planner = _planner()
    plan = planner.plan(0.0, now=0.0)
    mu = planner.model.mu
    for _ in range(50):
        planner.ended(planner.plan(0.0, now=0.0), failed=True, age=1.0)
    assert planner.ended(plan, failed=True, age=1.0) is False
    assert planner.model.mu == mu


answers = st.lists(
    st.tuples(
        st.sampled_from(["queued", "processing", "failure", "callbacks", "silence"]),
        st.floats(min_value=0.0, max_value=5.0),  # how late the poll went (a busy budget)
    ),
    min_size=1,
    max_size=40,
)
policies = st.builds(
    PollPolicy,
    min_interval=st.floats(min_value=0.05, max_value=5.0),
    max_interval=st.floats(min_value=5.0, max_value=120.0),
    expected_seconds=st.floats(min_value=0.5, max_value=600.0),
    jitter=st.floats(min_value=0.0, max_value=0.5),
    queued_backoff=st.floats(min_value=1.0, max_value=3.0),
    probes=st.integers(min_value=0, max_value=3),
)


@given(policies, answers, st.integers(min_value=0, max_value=2**32))
def test_never_two_polls_of_one_job_closer_than_min_interval(
    policy: PollPolicy, steps: list[tuple[str, float]], seed: int
) -> None:
    """Whatever the answers, callbacks and lateness, the next poll of a job is planned at
    least min_interval after the last, and (callbacks aside) within max_interval + jitter."""
    planner = PollPlanner(policy, Callbacks(), random.Random(seed))
    plans = [planner.plan(0.0, now=0.0) for _ in range(policy.probes + 1)]  # last: no probe
    job: JobPlan = plans[-1] if policy.probes else plans[0]
    now = max(planner.first_due(job, 0.0), 0.0)
    for kind, late in steps:
        now += late
        if kind == "callbacks":
            planner.callbacks.heard(now)
            continue
        if kind == "silence":
            planner.callbacks.flowing = False
            continue
        if kind == "failure":
            due = planner.failed(job, now)
        else:
            planner.answered(job, now)
            due = planner.running(job, QUEUEING if kind == "queued" else PROCESSING, now)
        assert due - now >= policy.min_interval - 1e-9
        if not planner.callbacks.flowing:
            assert due - now <= policy.max_interval * (1 + policy.jitter) + 1e-9
        now = due


@given(
    st.floats(min_value=0.1, max_value=100.0),
    st.floats(min_value=0.05, max_value=10.0),
    st.floats(min_value=0.05, max_value=5.0),
    st.floats(min_value=0.0, max_value=2.0),
)
def test_parts_polls_are_never_closer_than_min_interval_and_end_with_the_grace(
    grace: float, interval: float, min_interval: float, late: float
) -> None:
    """The parts wait: polls at least min_interval apart, none planned after the grace
    has passed, and the wait gives up once it has."""
    policy = PollPolicy(
        probes=0, parts_grace=grace, parts_interval=interval, min_interval=min_interval
    )
    planner = PollPlanner(policy, Callbacks(), random.Random(0))
    plan = planner.plan(0.0, now=0.0)
    until = planner.await_parts(plan, 0.0)
    now, polls = 0.0, 0
    while (due := planner.parts_due(plan, now)) is not None:
        assert due - now >= min_interval - 1e-9
        assert now < until
        now, polls = due + late, polls + 1
        assert polls <= grace / min_interval + 2  # + 1 for the sums of float steps
    assert now >= until
