"""A create that left is never lost: a caller cancelled while it is on the wire gets its
cancellation, the create completes and its ids are logged; and a create never leaves on a
pooled connection idle long enough for the server to be closing it."""

from __future__ import annotations

import logging
import threading
from typing import Any

import anyio
import pytest

import akool_async as ak
from akool_async import AkoolClient, RetryPolicy

from .hostile import HostileServer, Seen, job_answer, serving

KEY = "sk-safety-0123456789abcdef"
JOB = "0123456789abcdef01234567"


def _client(server: HostileServer, transport: str, **options: Any) -> AkoolClient:
    options.setdefault("retry", RetryPolicy(wait=False))
    return AkoolClient(api_key=KEY, base_url=server.url, transport=transport, **options)  # type: ignore[arg-type]


async def test_a_create_cancelled_on_the_wire_completes_and_logs_its_ids(
    transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Cancelled once the server holds the request, the caller is cancelled at once, but
    the create is not cut: it completes and its job id is logged at WARNING."""
    arrived, release = threading.Event(), threading.Event()

    def respond(_seen: Seen, _server: HostileServer) -> list[bytes]:
        arrived.set()
        release.wait(10)
        return job_answer(JOB)

    caplog.set_level(logging.WARNING, logger="akool_async")
    with serving(respond) as server:
        async with _client(server, transport, rate_limit=None) as client:
            outcome: list[object] = []
            with anyio.CancelScope() as scope:

                async def cancel_once_sent() -> None:
                    await anyio.to_thread.run_sync(arrived.wait, 10)  # the server holds it
                    scope.cancel()
                    release.set()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(cancel_once_sent)
                    outcome.append(await client.create_by_source_prompt(prompt="a fox"))
            assert scope.cancelled_caught
            assert outcome == []  # the caller got its cancellation, not the jobs
    assert len(server.seen) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(JOB in message and "cancelled" in message for message in warnings)


async def test_a_create_cancelled_before_it_left_sends_nothing(transport: str) -> None:
    """Cancelled while waiting for its rate slot, a create sends nothing and logs nothing."""
    with serving(lambda _s, _v: job_answer(JOB)) as server:
        async with _client(server, transport, rate_limit=0.01, rate_burst=1) as client:
            await client.create_by_source_prompt(prompt="first")  # the only slot for 100 s
            with anyio.move_on_after(0.05) as scope:
                await client.create_by_source_prompt(prompt="second")
    assert scope.cancelled_caught
    assert len(server.seen) == 1


EXPIRY = 0.4  # the client's keep-alive expiry, and when the server closes idle connections


async def test_no_create_leaves_on_a_connection_the_server_is_closing(transport: str) -> None:
    """The server closes connections idle for the client's keep-alive expiry, as uvicorn
    (5 s) does with httpx's old default (5 s). Creates sent after idle gaps up to just
    under it never go out on a connection idle past half the expiry: none is lost in the
    close (none uncertain), and after a long gap each gets a fresh connection."""
    gaps = [0.05, 0.7 * EXPIRY, 0.1, 0.9 * EXPIRY, 0.05, 0.97 * EXPIRY, 0.6 * EXPIRY]
    with serving(lambda _s, _v: job_answer(JOB), idle_close=EXPIRY) as server:
        async with _client(server, transport, rate_limit=None, keepalive_expiry=EXPIRY,
                           retry=RetryPolicy(attempts=1)) as client:  # fmt: skip
            await client.create_by_source_prompt(prompt="first")
            for gap in gaps:
                await anyio.sleep(gap)  # the idle time is what is under test
                try:
                    await client.create_by_source_prompt(prompt="again")
                except ak.SubmissionUncertainError:
                    pytest.fail(f"a create after {gap:.2f} s idle was lost in the close")
    creates = server.seen[1:]
    assert len(creates) == len(gaps)
    for gap, seen in zip(gaps, creates, strict=True):
        if gap > EXPIRY / 2:
            assert seen.idle_before is None, f"reused after {gap:.2f} s idle"
