"""Emulator callbacks: signed and encrypted per Akool's scheme (checked here with primitives
written out, not our own code), sent on each status change, retried a bounded number of times."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from akool_async.emulator import Emulator, EmulatorConfig, Fixed, serve_asgi

from .emulated import NO_WAIT


def independent_open(body: dict[str, Any], api_key: str, client_id: str) -> dict[str, Any]:
    """Verify and decrypt a callback with hashlib and raw AES-CBC, as Akool's sample does."""
    parts = sorted([client_id, str(body["timestamp"]), str(body["nonce"]), body["dataEncrypt"]])
    assert hashlib.sha1("".join(parts).encode()).hexdigest() == body["signature"]
    iv = client_id.encode()[:16].ljust(16, b"\0")
    decryptor = Cipher(algorithms.AES(api_key.encode()), modes.CBC(iv)).decryptor()
    padded = decryptor.update(base64.b64decode(body["dataEncrypt"])) + decryptor.finalize()
    pad = padded[-1]
    assert padded[-pad:] == bytes([pad]) * pad
    event: dict[str, Any] = json.loads(padded[:-pad])
    return event


class Receiver:
    """A webhook endpoint that records callbacks and answers with ``status_for(n)``.

    It may run in another thread (on a real port), hence a threading.Event.
    """

    def __init__(self, status_for: Callable[[int], int] = lambda n: 200) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.connections: set[object] = set()  # (host, port) of each connection it was sent on
        self.status_for = status_for
        self.app = Starlette(routes=[Route("/hook", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        self.bodies.append(await request.json())
        self.connections.add(request.client)
        return Response(status_code=self.status_for(len(self.bodies)))


def fast(**fields: Any) -> EmulatorConfig:
    fields.setdefault("webhook_retry_delay", 1)
    return EmulatorConfig(time_scale=1000, durations=Fixed(30), **fields)


async def test_callbacks_for_each_status_change_decrypt_independently() -> None:
    """A batch of 2 sends processing then completed per job, each verifiable and decryptable."""
    receiver = Receiver()
    emulator = Emulator(fast(), webhook_transport=httpx.ASGITransport(app=receiver.app))
    async with emulator, emulator.client(rate_limit=None, retry=NO_WAIT) as client:
        jobs = await client.create_by_source_prompt(
            prompt="x", batch_quantity=2, webhook_url="https://hooks.test/hook"
        )
        with anyio.fail_after(10):
            await emulator.callbacks_drained()
    events = [independent_open(b, emulator.api_key, emulator.client_id) for b in receiver.bodies]
    for job in jobs:
        mine = [e for e in events if e["_id"] == job.id]
        assert [e["status"] for e in mine] == [2, 3]
        assert all(e["type"] == "image" for e in mine)
        assert mine[-1]["url"] == f"http://akool-emulator.local/_emulator/images/{job.id}.png"
        assert "url" not in mine[0]
    assert all(isinstance(b["timestamp"], int) for b in receiver.bodies)
    assert emulator.counters.callbacks_sent == 4


async def test_a_jobs_callbacks_go_one_after_another_in_status_order() -> None:
    """Both of a job's status changes fall due at once (a huge time scale): its completed
    callback still waits until its processing one was answered."""
    config = EmulatorConfig(time_scale=1e9, durations=Fixed(30), webhook_retry_delay=1)
    seen: list[tuple[str, str, int]] = []

    async def receive(request: Request) -> Response:
        event = independent_open(await request.json(), config.api_key, config.client_id)
        seen.append(("start", event["_id"], event["status"]))
        if event["status"] == 2:  # hold the answer while anything else can still happen
            await anyio.wait_all_tasks_blocked()
        seen.append(("end", event["_id"], event["status"]))
        return Response(status_code=200)

    app = Starlette(routes=[Route("/hook", receive, methods=["POST"])])
    emulator = Emulator(config, webhook_transport=httpx.ASGITransport(app=app))
    async with emulator, emulator.client(rate_limit=None, retry=NO_WAIT) as client:
        jobs = await client.create_by_source_prompt(
            prompt="x", batch_quantity=2, webhook_url="https://hooks.test/hook"
        )
        with anyio.fail_after(10):
            await emulator.callbacks_drained()
    for job in jobs:
        mine = [(phase, status) for phase, job_id, status in seen if job_id == job.id]
        assert mine == [("start", 2), ("end", 2), ("start", 3), ("end", 3)]


async def test_callbacks_over_real_http_with_short_client_id() -> None:
    """Over a real port, with a 16-byte key and a short client id (NUL-padded IV)."""
    receiver = Receiver()
    config = fast(api_key="0123456789abcdef", client_id="short")
    with serve_asgi(receiver.app) as receiver_url:
        emulator = Emulator(config)
        async with emulator, emulator.client(rate_limit=None, retry=NO_WAIT) as client:
            job = await client.create_by_prompt(prompt="x", webhook_url=f"{receiver_url}/hook")
            with anyio.fail_after(10):
                await emulator.callbacks_drained()
    events = [independent_open(b, "0123456789abcdef", "short") for b in receiver.bodies]
    assert [(e["_id"], e["status"]) for e in events] == [(job.id, 2), (job.id, 3)]


async def test_many_callbacks_due_at_once_share_a_few_connections() -> None:
    """Callbacks fell behind on a busy machine (issue 17) because each cost the emulator
    CPU that grew with the connections it held: 64 in flight, each on its own connection,
    which httpx's pool looked at on every request. Due all at once, 200 callbacks now share
    at most 4 kept-alive connections, and all arrive."""
    receiver = Receiver()
    with serve_asgi(receiver.app) as receiver_url:
        emulator = Emulator(fast(instant=True))
        async with emulator, emulator.client(rate_limit=None, retry=NO_WAIT) as client:
            async with anyio.create_task_group() as tasks:
                for n in range(50):
                    tasks.start_soon(
                        functools.partial(
                            client.create_by_source_prompt,
                            prompt=f"x{n}",
                            batch_quantity=4,
                            webhook_url=f"{receiver_url}/hook",
                        )
                    )
            with anyio.fail_after(30):
                await emulator.callbacks_drained()
    assert emulator.counters.callbacks_sent == len(receiver.bodies) == 200
    assert 1 <= len(receiver.connections) <= 4


async def test_callbacks_over_real_http_survive_closed_connections_and_errors() -> None:
    """A receiver that closes every other connection and answers the first two with 500:
    each callback still arrives (failed ones sent again), each attempt counted."""

    async def receive(request: Request) -> Response:
        bodies.append(await request.json())
        status = 500 if len(bodies) <= 2 else 200
        closing = {"connection": "close"} if len(bodies) % 2 else {}
        return Response(status_code=status, headers=closing)

    bodies: list[dict[str, Any]] = []
    app = Starlette(routes=[Route("/hook", receive, methods=["POST"])])
    with serve_asgi(app) as receiver_url:
        emulator = Emulator(fast(instant=True, webhook_attempts=3, webhook_retry_delay=0))
        async with emulator, emulator.client(rate_limit=None, retry=NO_WAIT) as client:
            for n in range(3):
                await client.create_by_source_prompt(
                    prompt=f"x{n}", batch_quantity=2, webhook_url=f"{receiver_url}/hook?k=1"
                )
                with anyio.fail_after(10):
                    await emulator.callbacks_drained()
    assert emulator.counters.callbacks_sent == 6
    assert emulator.counters.callbacks_failed == 0
    assert emulator.counters.callback_attempts == len(bodies) == 8


@pytest.mark.parametrize(("failures", "delivered"), [(2, True), (5, False)])
async def test_failed_callbacks_are_retried_a_bounded_number_of_times(
    failures: int, delivered: bool
) -> None:
    """A callback not answered 200 is sent again, up to ``webhook_attempts`` times in all."""
    receiver = Receiver(status_for=lambda n: 500 if n <= failures else 200)
    emulator = Emulator(
        fast(instant=True, webhook_attempts=3),
        webhook_transport=httpx.ASGITransport(app=receiver.app),
    )
    async with emulator, emulator.client(rate_limit=None, retry=NO_WAIT) as client:
        await client.create_by_source_prompt(prompt="x", webhook_url="https://hooks.test/hook")
        with anyio.fail_after(10):
            await emulator.callbacks_drained()
    assert len(receiver.bodies) == min(failures + 1, 3)
    assert emulator.counters.callbacks_sent == (1 if delivered else 0)
    assert emulator.counters.callbacks_failed == (0 if delivered else 1)
    assert emulator.counters.callback_attempts == len(receiver.bodies)
    bodies = {json.dumps(b, sort_keys=True) for b in receiver.bodies}
    assert len(bodies) == len(receiver.bodies), "each attempt is signed anew (fresh nonce)"


async def test_unreachable_webhook_does_not_disturb_the_api() -> None:
    """A webhook host that refuses connections costs the API nothing; the failure is counted."""
    emulator = Emulator(fast(instant=True, webhook_attempts=2, webhook_retry_delay=0))
    async with emulator, emulator.client(rate_limit=None, retry=NO_WAIT) as client:
        (job,) = await client.create_by_source_prompt(prompt="x", webhook_url="http://127.0.0.1:9/")
        assert (await client.info_by_model_id(job.id)).is_terminal
        with anyio.fail_after(10):
            await emulator.callbacks_drained()
    assert emulator.counters.callbacks_failed == 1
    assert emulator.counters.callback_attempts == 2
