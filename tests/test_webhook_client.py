"""Waits that finish on a verified callback, polling stretched to a safety net while they
flow, and polling back when they stop: the emulator sends real, encrypted callbacks."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import attrs
import httpx
import pytest

from akool_async import AkoolClient, Button, ImageStatus, PollPolicy, WebhookDeliveryError
from akool_async.emulator import Emulator, EmulatorConfig, Faults, Fixed
from akool_async.webhook import WebhookReceiver, seal_event

HOOK = "http://hooks.test/akool"


class Switch:
    """An ASGI app passing callbacks to the receiver, or failing them when switched off."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver, self.on = receiver, True

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.on:
            await self.receiver(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 503, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def wired(config: EmulatorConfig) -> tuple[Emulator, WebhookReceiver, Switch]:
    emulator_config = config
    receiver = WebhookReceiver(api_key=emulator_config.api_key, client_id=emulator_config.client_id)
    switch = Switch(receiver)
    emulator = Emulator(emulator_config, webhook_transport=httpx.ASGITransport(app=switch))
    return emulator, receiver, switch


FAST = EmulatorConfig(time_scale=1000, durations=Fixed(30), webhook_retry_delay=0.1)


@contextlib.asynccontextmanager
async def hooked(
    config: EmulatorConfig = FAST, **options: Any
) -> AsyncIterator[tuple[Emulator, AkoolClient, Switch]]:
    """A running emulator and a client whose receiver gets its callbacks (via ``Switch``).

    The safety-net poll and the silence after which callbacks count as stopped are pushed
    far out: jobs last 30 ms of real time, so the emulator's defaults (four durations, two
    durations) race each callback, and a loaded machine loses those races either way. These
    tests count polls; the net and the silence are tested where callbacks stop.
    """
    emulator, receiver, switch = wired(config)
    policy = attrs.evolve(emulator.poll_policy(), webhook_safety=1e4, webhook_silence=1e4)
    options.setdefault("poll_policy", policy)
    async with (
        emulator,
        emulator.client(rate_limit=None, webhook=receiver, webhook_url=HOOK, **options) as client,
    ):
        yield emulator, client, switch


async def test_a_wait_ends_on_the_callback_without_a_poll() -> None:
    """With callbacks flowing, waits finish on them: no job is polled."""
    async with hooked() as (emulator, client, _):
        jobs = await client.create_by_source_prompt(prompt="a fox", batch_quantity=4)
        results = [await client.wait(job) for job in jobs]
    assert all(r.status is ImageStatus.COMPLETED and r.url for r in results)
    assert client.poll_stats.polls == 0
    assert client.poll_stats.by_callback == 4
    assert emulator.counters.requests["infobymodelid"] == 0


class AnswerAfterCallbacks(httpx.AsyncBaseTransport):
    """The emulator in-process, holding each create's answer until the job's callbacks were
    delivered: a busy loop or a slow network, made certain."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator, self.inner = emulator, emulator.transport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/createBySourcePrompt"):
            await self.emulator.callbacks_drained()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_callback_that_beats_its_create_answer_still_ends_the_wait() -> None:
    """The job ended, and its callback landed, before its create's answer came back: the
    wait ends on that callback, with no poll."""
    emulator, receiver, _ = wired(FAST)
    transport = AnswerAfterCallbacks(emulator)
    async with (
        emulator,
        emulator.client(
            rate_limit=None, webhook=receiver, webhook_url=HOOK, transport=transport
        ) as client,
    ):
        (job,) = await client.create_by_source_prompt(prompt="a fox")
        assert emulator.counters.callbacks_sent == 2  # processing, completed: both came first
        result = await client.wait(job)
    assert result.status is ImageStatus.COMPLETED
    assert result.url
    assert client.poll_stats.polls == 0
    assert emulator.counters.requests["infobymodelid"] == 0


async def test_a_button_pressed_on_a_result_a_callback_brought() -> None:
    """A callback carries no buttons: pressing one looks the parent up once, then checks."""
    async with hooked() as (emulator, client, _):
        (job,) = await client.create_by_source_prompt(prompt="a fox")
        result = await client.wait(job)
        assert result.extra.get("via") == "webhook"
        child = await client.create_by_button(result, "U1")
        assert (await client.wait(child)).status is ImageStatus.COMPLETED
    assert emulator.counters.requests["infobymodelid"] == 1


async def test_generate_on_callbacks_looks_once_at_each_parent_for_its_buttons() -> None:
    """Follow-ups need the parent's buttons, which a callback lacks: one look per parent."""
    async with hooked() as (emulator, client, _):
        tree = await client.generate(prompt="a fox", batch_quantity=4, follow_ups=["U1"]).collect()
    assert len(tree.outcomes) == 8
    assert all(o.ok for o in tree.outcomes)
    assert emulator.counters.requests["infobymodelid"] == 4


async def test_generate_on_callbacks_gets_the_four_parts_of_v_results() -> None:
    """A V result is a grid whose parts a callback lacks: its outcome still carries them."""
    async with hooked() as (_, client, _):
        tree = await client.generate(
            prompt="a fox", batch_quantity=2, follow_ups=["V1", "U2"]
        ).collect()
    assert len(tree.outcomes) == 6
    assert all(o.ok for o in tree.outcomes)
    variations = [o for o in tree.outcomes if o.button is Button.V1]
    assert [len(o.images) for o in variations] == [4, 4]


async def test_generate_stopped_while_looking_up_buttons_leaves_nothing_running() -> None:
    """Stopped while a finished parent's buttons are looked up: that parent completed on
    the server, so it is not among the jobs left running, and nothing is pressed."""
    slow_lookups = Faults(slow=1.0, slow_seconds=30, endpoints=frozenset({"infobymodelid"}))
    async with hooked(attrs.evolve(FAST, faults=slow_lookups)) as (emulator, client, _):
        generation = client.generate(prompt="a fox", follow_ups=["U1"])
        async with anyio.create_task_group() as tg:
            tg.start_soon(generation.collect)
            with anyio.fail_after(10):
                while not emulator.counters.faults["slow"]:  # noqa: ASYNC110 - no signal
                    await anyio.sleep(0.005)
            tg.cancel_scope.cancel()
    assert emulator.counters.jobs_created == 1
    assert generation.left_running == ()
    assert not emulator.counters.requests["createbybutton"]


async def test_polling_takes_over_when_callbacks_stop() -> None:
    """Callbacks flowing, then failing: after the silence, jobs finish by polling."""
    config = EmulatorConfig(time_scale=100, durations=Fixed(30), webhook_attempts=1)
    # A wide safety net (20 typical durations): the callback is never outrun by a poll.
    policy = PollPolicy(
        expected_seconds=0.3, min_interval=0.02, webhook_silence=0.5, webhook_safety=20
    )
    async with hooked(config, poll_policy=policy) as (emulator, client, switch):
        (first,) = await client.create_by_source_prompt(prompt="a fox")
        await client.wait(first)
        assert client.poll_stats.polls == 0
        switch.on = False
        jobs = await client.create_by_source_prompt(prompt="a fox", batch_quantity=3)
        with anyio.fail_after(10):
            results = [await client.wait(job) for job in jobs]
    assert all(r.status is ImageStatus.COMPLETED for r in results)
    assert client.poll_stats.polls >= 3
    assert emulator.counters.callbacks_failed >= 3


async def test_a_receiver_on_another_thread_is_refused_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The scheduler lives on the client's event loop: a callback handed over from another
    thread is logged as a configuration error, never applied unsafely."""
    config = EmulatorConfig()
    receiver = WebhookReceiver(api_key=config.api_key, client_id=config.client_id)
    body = seal_event({"_id": "abc", "status": 3, "url": "https://cdn.test/a.png"},
                      api_key=config.api_key, client_id=config.client_id,
                      timestamp=int(time.time() * 1000), nonce=1)  # fmt: skip
    async with Emulator(config) as emulator, emulator.client(webhook=receiver) as client:
        with pytest.raises(WebhookDeliveryError):  # the receiver answers 500: Akool retries
            await anyio.to_thread.run_sync(receiver.accept, body)
    assert client.poll_stats.callbacks == 0
    assert "another thread" in caplog.text
