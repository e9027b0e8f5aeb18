"""One owner of "closed": the client's ``OpenState`` and its one table, shared by the
requester, the transport and the poll scheduler."""

from __future__ import annotations

import itertools

import pytest

from akool_async import ClientClosedError
from akool_async._closing import TRANSITIONS, OpenState, Phase, Step
from akool_async.emulator import Emulator, Fixed

from .emulated import config

SLOW = config(time_scale=1, durations=Fixed(600))  # nothing ends while a test runs


def test_every_phase_and_step_follows_the_table() -> None:
    """A listed (phase, step) moves to its row's phase; any other is refused, unchanged."""
    assert TRANSITIONS == {
        (Phase.OPEN, Step.CLOSE): Phase.CLOSING,
        (Phase.OPEN, Step.DRAIN): Phase.DRAINING,
        (Phase.CLOSING, Step.DRAIN): Phase.DRAINING,
        (Phase.CLOSING, Step.FINISH): Phase.CLOSED,
        (Phase.DRAINING, Step.FINISH): Phase.CLOSED,
    }
    for phase, step in itertools.product(Phase, Step):
        state = OpenState()
        state.phase = phase
        moved = state.step(step)
        assert moved == ((phase, step) in TRANSITIONS)
        assert state.phase is TRANSITIONS.get((phase, step), phase)
        assert state.closed == (state.phase is not Phase.OPEN)


def test_only_an_open_state_lets_work_start() -> None:
    state = OpenState()
    state.check_open()
    assert state.step(Step.CLOSE)
    with pytest.raises(ClientClosedError, match="closed"):
        state.check_open()
    assert repr(state) == "OpenState(closing)"


async def test_the_client_and_its_parts_share_one_state() -> None:
    """Requester, transport and scheduler read the client's one state: closing the client
    closes them all at once, and the state ends closed, its pool with it."""
    emulator = Emulator(SLOW)
    async with emulator:
        client = emulator.client()
        async with client:
            state = client._requester.state
            assert client._scheduler.state is state
            assert client._requester.transport._wire.state is state  # type: ignore[attr-defined]
            assert state.phase is Phase.OPEN
            await client.credit_info()
        assert client.is_closed
        assert state.phase is Phase.CLOSED
        with pytest.raises(ClientClosedError):
            await client.credit_info()


async def test_a_job_watched_after_the_client_closed_ends_at_once() -> None:
    """A watch set outliving its client: a job added then is told the client is closed,
    instead of waiting for polls that never come."""
    emulator = Emulator(SLOW)
    async with emulator:
        client = emulator.client()
        async with client:
            watch = client.watch()
        watch.add("6651a1c2e4b0a8f3d2c1b0a9")
        job_id, outcome = await watch.next()
    assert job_id == "6651a1c2e4b0a8f3d2c1b0a9"
    assert isinstance(outcome, ClientClosedError)
