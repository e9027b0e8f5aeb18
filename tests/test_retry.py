"""Retries: reads retry freely, creates only when the answer proves nothing was created."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable

import anyio
import httpx
import pytest
import respx

from akool_async import (
    AkoolClient,
    AkoolError,
    ConnectError,
    GenerationError,
    NetworkError,
    RateLimitedError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    SourcePromptRequest,
    SubmissionUncertainError,
    TooManyRequestsError,
)

from .conftest import API_KEY, BASE_URL
from .payloads import BUTTON, CREDIT, INFO, V3, V4, fail, finished, job, ok

Create = Callable[[AkoolClient], Awaitable[object]]

CREATES: dict[str, tuple[str, Create]] = {
    "v4": (V4, lambda c: c.create_by_source_prompt(prompt="a fox")),
    "v3": (V3, lambda c: c.create_by_prompt(prompt="a fox")),
    "button": (BUTTON, lambda c: c.create_by_button("parent", "U1")),
}
READS: dict[str, tuple[str, Callable[[AkoolClient], Awaitable[object]]]] = {
    "info": (INFO, lambda c: c.info_by_model_id("abc")),
    "credit": (CREDIT, lambda c: c.credit_info()),
}
READ_OK = {INFO: ok(finished("abc")), CREDIT: ok({"credit": 5})}

# Failures after which the server may have acted: a create must not be sent again.
UNCERTAIN = {
    "read timeout": httpx.ReadTimeout("slow"),
    "dropped connection": httpx.RemoteProtocolError("Server disconnected"),
    "read error": httpx.ReadError("reset"),
    "write timeout": httpx.WriteTimeout("slow"),
    "502": httpx.Response(502, text="<html>Bad gateway</html>"),
    "500 json": httpx.Response(500, json={"error": "boom"}),
    "200 html": httpx.Response(
        200, text="<html>oops</html>", headers={"content-type": "text/html"}
    ),
    "200 no _id": httpx.Response(
        200, json={"code": 1000, "msg": "OK", "data": {"image_status": 1}}
    ),
}
# Answers that prove nothing was created: a create may be sent again.
NOTHING_CREATED = {
    "connect refused": httpx.ConnectError("refused"),
    "connect timeout": httpx.ConnectTimeout("slow"),
    "pool timeout": httpx.PoolTimeout("busy"),
    "429": httpx.Response(429, headers={"retry-after": "0"}),
    "1005": fail(1005, "operation too frequent"),
    "1108": fail(1108, "image generate error, please try again later"),
}


def _client(attempts: int = 3) -> AkoolClient:
    return AkoolClient(
        rate_limit=None,
        api_key=API_KEY,
        base_url=BASE_URL,
        retry=RetryPolicy(attempts=attempts, wait=False),
    )


@pytest.mark.parametrize("failure", UNCERTAIN.values(), ids=UNCERTAIN.keys())
@pytest.mark.parametrize("endpoint", CREATES.keys())
async def test_create_is_never_resent_when_it_may_have_arrived(
    api: respx.MockRouter, endpoint: str, failure: object
) -> None:
    """After a failure that may follow the server acting, a create raises uncertain, sent once."""
    path, create = CREATES[endpoint]
    route = api.post(path).mock(side_effect=[failure, ok(job())])
    async with _client() as client:
        with pytest.raises(SubmissionUncertainError) as info:
            await create(client)
    assert route.call_count == 1
    assert info.value.request.endpoint.path == path
    assert info.value.request.payload is not None
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("failure", NOTHING_CREATED.values(), ids=NOTHING_CREATED.keys())
@pytest.mark.parametrize("endpoint", CREATES.keys())
async def test_create_is_retried_when_nothing_was_created(
    api: respx.MockRouter, endpoint: str, failure: object
) -> None:
    """After an answer proving nothing was created, the create is sent again and succeeds."""
    path, create = CREATES[endpoint]
    route = api.post(path).mock(side_effect=[failure, ok(job("second"))])
    async with _client() as client:
        await create(client)
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (httpx.ConnectError("refused"), ConnectError),
        (fail(1005), RateLimitedError),
        (fail(1108), GenerationError),
        (httpx.Response(429), TooManyRequestsError),
    ],
)
async def test_create_gives_up_after_attempts(
    api: respx.MockRouter, failure: object, error: type[Exception]
) -> None:
    """A create that keeps failing safely stops after ``attempts`` with the last error."""
    route = api.post(V4).mock(side_effect=[failure] * 5)
    async with _client(attempts=3) as client:
        with pytest.raises(error):
            await client.create_by_source_prompt(prompt="a fox")
    assert route.call_count == 3


READ_FAILURES = {
    "connect": httpx.ConnectError("refused"),
    "read timeout": httpx.ReadTimeout("slow"),
    "dropped": httpx.RemoteProtocolError("gone"),
    "503": httpx.Response(503, text="unavailable"),
    "429": httpx.Response(429, headers={"retry-after": "1"}),
    "1005": fail(1005),
}


@pytest.mark.parametrize("failure", READ_FAILURES.values(), ids=READ_FAILURES.keys())
@pytest.mark.parametrize("endpoint", READS.keys())
async def test_reads_retry_transient_failures(
    api: respx.MockRouter, endpoint: str, failure: object
) -> None:
    """Reads retry connect errors, timeouts, 5xx, 429 and 1005, then succeed."""
    path, read = READS[endpoint]
    route = api.get(path).mock(side_effect=[failure, failure, READ_OK[path]])
    async with _client(attempts=3) as client:
        await read(client)
    assert route.call_count == 3


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (httpx.ReadTimeout("slow"), RequestTimeoutError),
        (httpx.RemoteProtocolError("gone"), NetworkError),
        (httpx.Response(500), ServerError),
    ],
)
async def test_reads_give_up_with_typed_error(
    api: respx.MockRouter, failure: object, error: type[Exception]
) -> None:
    """A read that keeps failing raises the typed error after ``attempts``."""
    route = api.get(INFO).mock(side_effect=[failure] * 4)
    async with _client(attempts=4) as client:
        with pytest.raises(error):
            await client.info_by_model_id("abc")
    assert route.call_count == 4


@pytest.mark.parametrize(
    "failure", [fail(1003), fail(1008), fail(1108), httpx.Response(200, text="x")]
)
async def test_reads_do_not_retry_definite_answers(api: respx.MockRouter, failure: object) -> None:
    """Parameter errors, unknown ids, 1108 and unreadable answers are not retried."""
    route = api.get(INFO).mock(side_effect=[failure, ok(finished("abc"))])
    async with _client() as client:
        with pytest.raises(AkoolError):
            await client.info_by_model_id("abc")
    assert route.call_count == 1


def test_retry_after_is_honoured_and_capped() -> None:
    """A 429's Retry-After sets the wait, capped by ``max_retry_after``; waits off means 0."""
    hook = RetryPolicy(max_retry_after=10).backoff_hook(creates=True)
    assert hook(TooManyRequestsError("x", http_status=429, retry_after=3.0)) == 3.0
    assert hook(TooManyRequestsError("x", http_status=429, retry_after=999.0)) == 10
    assert hook(TooManyRequestsError("x", http_status=429)) is True
    assert (
        RetryPolicy(wait=False).backoff_hook(creates=True)(
            TooManyRequestsError("x", http_status=429, retry_after=3.0)
        )
        == 0.0
    )


def test_hook_classifies_create_and_read() -> None:
    """The create hook refuses uncertain failures that the read hook accepts."""
    create = RetryPolicy().backoff_hook(creates=True)
    read = RetryPolicy().backoff_hook(creates=False)
    timeout = RequestTimeoutError("slow")
    assert not create(timeout)
    assert read(timeout)
    assert create(GenerationError("x"))
    assert not read(GenerationError("x"))


async def test_retry_after_delays_the_next_attempt(api: respx.MockRouter) -> None:
    """The next attempt after a 429 waits at least its Retry-After."""
    route = api.get(INFO).mock(
        side_effect=[httpx.Response(429, headers={"retry-after": "0.2"}), ok(finished("abc"))]
    )
    policy = RetryPolicy(attempts=2, wait_initial=0, wait_jitter=0, wait_max=0)
    async with AkoolClient(
        rate_limit=None, api_key=API_KEY, base_url=BASE_URL, retry=policy
    ) as client:
        started = time.monotonic()
        await client.info_by_model_id("abc")
        waited = time.monotonic() - started
    assert route.call_count == 2
    assert waited >= 0.2


async def test_create_honours_retry_after(api: respx.MockRouter) -> None:
    """A create refused with 429 + Retry-After waits that long before its second send."""
    route = api.post(V4).mock(
        side_effect=[httpx.Response(429, headers={"retry-after": "0.2"}), ok(job("j"))]
    )
    policy = RetryPolicy(attempts=2, wait_initial=0, wait_jitter=0, wait_max=0)
    async with AkoolClient(
        rate_limit=None, api_key=API_KEY, base_url=BASE_URL, retry=policy
    ) as client:
        started = time.monotonic()
        await client.create_by_source_prompt(prompt="x")
        assert time.monotonic() - started >= 0.2
    assert route.call_count == 2


def test_policy_needs_an_attempt() -> None:
    """A policy with no attempts is refused."""
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(attempts=0)


async def test_before_send_runs_once_right_before_the_first_send(api: respx.MockRouter) -> None:
    """A create's ``before_send`` hook runs before anything reaches the server, and once
    only, however many attempts the create takes."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append("sent")
        return fail(1005) if seen.count("sent") < 3 else ok(job("third"))

    api.post(V4).mock(side_effect=answer)

    async def record_intent() -> None:
        seen.append("intent")

    async with _client() as client:
        request = SourcePromptRequest(prompt="a fox")
        jobs = await client.submit(request, before_send=record_intent)
    assert [j.id for j in jobs] == ["third"]
    assert seen == ["intent", "sent", "sent", "sent"]


async def test_before_send_is_not_run_for_a_request_never_sent(api: respx.MockRouter) -> None:
    """Cancelled while waiting for its place on the wire: nothing sent, no intent recorded."""
    route = api.post(V4).mock(return_value=ok(job("a")))
    recorded: list[int] = []

    async def record_intent() -> None:
        recorded.append(1)

    async with _client() as client:
        places = client._requester.in_flight
        for _ in range(places.total):  # every place on the wire is taken
            await places.acquire()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(
                functools.partial(
                    client.submit, SourcePromptRequest(prompt="a fox"), before_send=record_intent
                )
            )
            await anyio.wait_all_tasks_blocked()
            tasks.cancel_scope.cancel()
        for _ in range(places.total):
            places.release()
        assert places.free == places.total  # the cancelled waiter gave its place back
    assert recorded == []
    assert route.call_count == 0


async def test_a_failing_before_send_sends_nothing(api: respx.MockRouter) -> None:
    route = api.post(V4).mock(return_value=ok(job("a")))

    async def journal_is_full() -> None:
        raise OSError("disk full")

    async with _client() as client:
        with pytest.raises(OSError, match="disk full"):
            await client.submit(SourcePromptRequest(prompt="a fox"), before_send=journal_is_full)
    assert route.call_count == 0
