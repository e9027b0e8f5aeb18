"""Injected faults reach the client as the right errors, over real HTTP and in-process;
faults after handling leave a created (and charged) job, so creates must not retry."""

from __future__ import annotations

import time

import pytest

import akool_async as ak
from akool_async import RetryPolicy
from akool_async.emulator import Emulator, Faults

from .emulated import MODES, config, wired

# Faults that strike after the request was handled: the create happened.
AFTER_HANDLING = {
    "http_5xx": ak.ServerError,
    "drop_connection": ak.NetworkError,
    "malformed_json": ak.PayloadError,
    "html_error": ak.HTTPStatusError,
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", AFTER_HANDLING)
async def test_create_after_handling_is_uncertain_and_charged_once(mode: str, fault: str) -> None:
    """The job was created; the client reports uncertainty and never sends the create again."""
    emulator = Emulator(config(faults=Faults(**{fault: 1.0})))
    async with wired(mode, emulator) as client:
        with pytest.raises(ak.SubmissionUncertainError) as info:
            await client.create_by_source_prompt(prompt="a fox", batch_quantity=2)
    assert isinstance(info.value.__cause__, AFTER_HANDLING[fault])
    assert emulator.counters.requests["createBySourcePrompt"] == 1
    assert emulator.counters.jobs_created == 2
    assert emulator.counters.faults[fault] == 1


# Answers after handling that look like refusals but prove nothing: a proxy's bare 403
# page, a business code (1108, "try again") inside a 503.
LOOK_REFUSED = {"proxy_4xx": ak.HTTPStatusError, "code_in_5xx": ak.GenerationError}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", LOOK_REFUSED)
async def test_a_refusal_that_proves_nothing_is_uncertain(mode: str, fault: str) -> None:
    """The job was created: a bare 4xx page or a business code inside a 5xx makes the
    create uncertain, never retried (a 1108 in a 200 would be)."""
    emulator = Emulator(config(faults=Faults(**{fault: 1.0})))
    async with wired(mode, emulator) as client:
        with pytest.raises(ak.SubmissionUncertainError) as info:
            await client.create_by_source_prompt(prompt="a fox")
    assert type(info.value.__cause__) is LOOK_REFUSED[fault]
    assert emulator.counters.requests["createBySourcePrompt"] == 1
    assert emulator.counters.jobs_created == 1
    assert not emulator.counters.duplicate_creates


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", AFTER_HANDLING)
async def test_reads_recover_from_faults(mode: str, fault: str) -> None:
    """Reads hit by transient faults are retried until one gets through (1 in 2 faulty)."""
    emulator = Emulator(
        config(instant=True, faults=Faults(**{fault: 0.5}, endpoints=frozenset({"infobymodelid"})))
    )
    async with wired(mode, emulator, retry=RetryPolicy(attempts=12, wait=False)) as client:
        (job,) = await client.create_by_source_prompt(prompt="x")
        for _ in range(10):
            if fault == "malformed_json":
                # Unreadable 200 answers are not retried (a proxy page would not change).
                try:
                    await client.info_by_model_id(job.id)
                except ak.PayloadError:
                    continue
            else:
                await client.info_by_model_id(job.id)
    assert emulator.counters.faults[fault] > 0


@pytest.mark.parametrize("mode", MODES)
async def test_429_retry_after_is_honoured(mode: str) -> None:
    """An injected 429 carries Retry-After; the client waits that long, then succeeds."""
    emulator = Emulator(config(faults=Faults(http_429=1.0, retry_after=0.3)))
    policy = RetryPolicy(attempts=2, wait_initial=0, wait_jitter=0, wait_max=0)
    async with wired(mode, emulator, retry=policy) as client:
        emulator.set_faults(Faults(http_429=1.0, retry_after=0.3))
        started = time.monotonic()
        with pytest.raises(ak.TooManyRequestsError) as info:
            await client.credit_info()
        assert time.monotonic() - started >= 0.3
    assert info.value.retry_after == 0.3
    assert emulator.counters.requests["quota/info"] == 2


@pytest.mark.parametrize("fault", ["http_429", "code_1005"])
async def test_both_throttles_are_one_error_and_charge_nothing(fault: str) -> None:
    """Over HTTP, a 429 and a 1005 are both a ThrottledError, never an uncertain create:
    refused before handling, the create is sent again up to the attempts, charging nothing."""
    emulator = Emulator(config(instant=True, faults=Faults(**{fault: 1.0}, retry_after=2.0)))
    async with wired("http", emulator, retry=RetryPolicy(attempts=3, wait=False)) as client:
        with pytest.raises(ak.ThrottledError) as info:
            await client.create_by_source_prompt(prompt="a fox")
    assert info.value.retry_after == (2.0 if fault == "http_429" else None)
    assert emulator.counters.requests["createBySourcePrompt"] == 3
    assert emulator.counters.jobs_created == 0


@pytest.mark.parametrize("mode", ["http", "aiohttp"])
async def test_slow_answer_times_out(mode: str) -> None:
    """A slow answer past the per-call timeout is a RequestTimeoutError (a create: uncertain).

    Over real HTTP only: httpx applies timeouts in its network layer, which ASGI bypasses.
    """
    emulator = Emulator(config(faults=Faults(slow=1.0, slow_seconds=1.0)))
    async with wired(mode, emulator, retry=RetryPolicy(attempts=1)) as client:
        with pytest.raises(ak.RequestTimeoutError):
            await client.credit_info(timeout=0.2)
        with pytest.raises(ak.SubmissionUncertainError):
            await client.create_by_source_prompt(prompt="x", timeout=0.2)


async def test_faults_are_seeded() -> None:
    """The same seed injects the same faults on the same requests."""

    async def run() -> list[str]:
        emulator = Emulator(config(seed=7, instant=True, faults=Faults(http_5xx=0.5)))
        outcomes = []
        async with wired("in-process", emulator, retry=RetryPolicy(attempts=1)) as client:
            for _ in range(20):
                try:
                    await client.credit_info()
                    outcomes.append("ok")
                except ak.ServerError:
                    outcomes.append("5xx")
        return outcomes

    first, second = await run(), await run()
    assert first == second
    assert "ok" in first
    assert "5xx" in first
