"""The endpoint coroutines against a mocked API: what is sent, and what comes back."""

from __future__ import annotations

import json

import anyio
import anyio.abc
import httpx
import pytest
import respx

from akool_async import (
    AkoolClient,
    Button,
    ClientClosedError,
    ConfigurationError,
    HTTPStatusError,
    ImageStatus,
    RequestTimeoutError,
    RetryPolicy,
    SubmissionUncertainError,
)
from akool_async._transport import HttpxTransport

from .conftest import API_KEY, BASE_URL, NO_WAIT
from .payloads import BUTTON, CREDIT, INFO, V3, V4, fail, finished, job, ok


async def test_v4_sends_every_field_with_api_casing(
    client: AkoolClient, api: respx.MockRouter
) -> None:
    """v4 sends snake_case fields and the all-lowercase ``webhookurl``."""
    route = api.post(V4).mock(return_value=ok(job()))
    await client.create_by_source_prompt(
        prompt="a fox",
        scale="Original",
        resolution="1080p",
        batch_quantity=1,
        source_images=["https://x.test/a.png"],
        similar=0.7,
        negative_prompt="blur",
        webhook_url="https://hooks.test/akool",
    )
    sent = json.loads(route.calls.last.request.content)
    assert sent == {
        "prompt": "a fox",
        "scale": "Original",
        "resolution": "1080p",
        "batch_quantity": 1,
        "source_images": ["https://x.test/a.png"],
        "similar": 0.7,
        "negative_prompt": "blur",
        "webhookurl": "https://hooks.test/akool",
    }
    assert route.calls.last.request.headers["content-type"] == "application/json"


async def test_v4_batch_returns_every_job(client: AkoolClient, api: respx.MockRouter) -> None:
    """batch_quantity 4 answers a list: four jobs, as a tuple."""
    api.post(V4).mock(return_value=ok([job(f"id{n}") for n in range(4)]))
    jobs = await client.create_by_source_prompt(prompt="a fox", batch_quantity=4)
    assert isinstance(jobs, tuple)
    assert [j.id for j in jobs] == ["id0", "id1", "id2", "id3"]
    assert all(j.status is ImageStatus.QUEUEING for j in jobs)


async def test_v4_single_is_a_tuple_too(client: AkoolClient, api: respx.MockRouter) -> None:
    """batch_quantity 1 answers one object, still returned as a tuple of one."""
    api.post(V4).mock(return_value=ok(job("only")))
    assert [j.id for j in await client.create_by_source_prompt(prompt="a fox")] == ["only"]


async def test_v3_uses_camel_case_webhook(client: AkoolClient, api: respx.MockRouter) -> None:
    """v3 sends ``webhookUrl`` and ``source_image`` and answers one job."""
    route = api.post(V3).mock(return_value=ok(job("v3job", buttons=[], used_buttons=[])))
    result = await client.create_by_prompt(
        prompt="a fox",
        scale="16:9",
        source_image="https://x.test/a.png",
        webhook_url="https://hooks.test/a",
    )
    assert result.id == "v3job"
    assert json.loads(route.calls.last.request.content) == {
        "prompt": "a fox",
        "scale": "16:9",
        "source_image": "https://x.test/a.png",
        "webhookUrl": "https://hooks.test/a",
    }


async def test_button_from_result(client: AkoolClient, api: respx.MockRouter) -> None:
    """Pressing a button on a finished result sends its id and the button."""
    api.get(INFO).mock(return_value=ok(finished("parent")))
    route = api.post(BUTTON).mock(
        return_value=ok(job("child", image_content_model_id="parent", op_button="U2"))
    )
    parent = await client.info_by_model_id("parent")
    child = await client.create_by_button(parent, "U2", webhook_url="https://hooks.test/b")
    assert child.parent_id == "parent"
    assert child.op_button is Button.U2
    assert json.loads(route.calls.last.request.content) == {
        "_id": "parent",
        "button": "U2",
        "webhookUrl": "https://hooks.test/b",
    }


async def test_button_from_bare_id(client: AkoolClient, api: respx.MockRouter) -> None:
    """A bare id and a Button member are sent as they are."""
    route = api.post(BUTTON).mock(return_value=ok(job("child")))
    await client.create_by_button("parent", Button.V4)
    assert json.loads(route.calls.last.request.content) == {"_id": "parent", "button": "V4"}


async def test_info_by_model_id(client: AkoolClient, api: respx.MockRouter) -> None:
    """The result query sends ``image_model_id`` and reads the finished image."""
    route = api.get(INFO).mock(return_value=ok(finished("abc")))
    result = await client.info_by_model_id("abc")
    assert route.calls.last.request.url.params["image_model_id"] == "abc"
    assert result.status is ImageStatus.COMPLETED
    assert result.url == "https://cdn.test/abc.png"
    assert await client.info_by_model_id(result) == result


async def test_credit_info(client: AkoolClient, api: respx.MockRouter) -> None:
    """The credit balance is read from ``data.credit``."""
    api.get(CREDIT).mock(return_value=ok({"credit": 1234.5, "currency": "credits"}))
    credit = await client.credit_info()
    assert credit.credit == 1234.5
    assert credit.extra["currency"] == "credits"


async def test_api_key_header_only(client: AkoolClient, api: respx.MockRouter) -> None:
    """With an API key, ``x-api-key`` is sent and ``Authorization`` never is."""
    route = api.get(INFO).mock(return_value=ok(finished("a")))
    await client.info_by_model_id("a")
    headers = route.calls.last.request.headers
    assert headers["x-api-key"] == API_KEY
    assert "authorization" not in headers


async def test_per_call_timeout_overrides_client(api: respx.MockRouter) -> None:
    """A per-call timeout reaches httpx; the client's applies otherwise."""
    route = api.get(INFO).mock(return_value=ok(finished("a")))
    async with AkoolClient(
        rate_limit=None, api_key=API_KEY, base_url=BASE_URL, timeout=7.0
    ) as client:
        await client.info_by_model_id("a")
        assert route.calls.last.request.extensions["timeout"]["read"] == 7.0
        await client.info_by_model_id("a", timeout=1.5)
        assert route.calls.last.request.extensions["timeout"]["read"] == 1.5


async def test_timeout_raises_typed_error() -> None:
    """A server that accepts but never answers gives RequestTimeoutError (after the retries)."""
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)

        async def silent(stream: anyio.abc.SocketStream) -> None:
            async with stream:
                await anyio.sleep_forever()

        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, silent)
            async with AkoolClient(
                rate_limit=None, api_key=API_KEY, base_url=f"http://127.0.0.1:{port}", retry=NO_WAIT
            ) as client:
                with pytest.raises(RequestTimeoutError):
                    await client.info_by_model_id("a", timeout=0.05)
            tg.cancel_scope.cancel()


async def test_closed_client_refuses_use(api: respx.MockRouter) -> None:
    """After aclose() every call raises ClientClosedError; aclose() twice is fine."""
    client = AkoolClient(rate_limit=None, api_key=API_KEY, base_url=BASE_URL)
    await client.aclose()
    await client.aclose()
    assert client.is_closed
    with pytest.raises(ClientClosedError, match="closed"):
        await client.info_by_model_id("a")
    with pytest.raises(ClientClosedError):
        async with client:
            pass
    assert not api.calls


async def test_injected_http_client_is_used_and_left_open() -> None:
    """An injected httpx.AsyncClient carries the requests and is not closed by us."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok(finished("a"))

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        async with AkoolClient(
            rate_limit=None, api_key=API_KEY, base_url=BASE_URL, http_client=http
        ) as client:
            await client.info_by_model_id("a")
        assert not http.is_closed
    assert [r.url.path for r in seen] == [INFO]


class _CountingTransport(httpx.AsyncBaseTransport):
    """Answers after a pause, recording the most requests it ever held at once."""

    def __init__(self) -> None:
        self.active = self.peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.active += 1
        self.peak = max(self.peak, self.active)
        await anyio.sleep(0.001)
        self.active -= 1
        return ok(finished(request.url.params["image_model_id"]))


async def test_many_concurrent_callers_stay_within_the_cap() -> None:
    """A thousand concurrent calls all succeed with never more than max_in_flight on the wire."""
    transport = _CountingTransport()
    results: dict[str, str] = {}
    async with AkoolClient(
        rate_limit=None, api_key=API_KEY, base_url=BASE_URL, max_in_flight=4, transport=transport
    ) as client:

        async def one(n: int) -> None:
            results[f"id{n}"] = (await client.info_by_model_id(f"id{n}")).id

        async with anyio.create_task_group() as tg:
            for n in range(1000):
                tg.start_soon(one, n)
    assert results == {f"id{n}": f"id{n}" for n in range(1000)}
    assert transport.peak == 4


async def test_redirects_are_not_followed(api: respx.MockRouter) -> None:
    """A redirect is an error, and the credential never travels to the other host."""
    elsewhere = respx.get("https://evil.test/steal").mock(return_value=ok({"credit": 1}))
    api.get(CREDIT).mock(
        return_value=httpx.Response(302, headers={"location": "https://evil.test/steal"})
    )
    http = httpx.AsyncClient(follow_redirects=True)
    async with (
        http,
        AkoolClient(
            rate_limit=None, api_key=API_KEY, base_url=BASE_URL, http_client=http
        ) as client,
    ):
        with pytest.raises(HTTPStatusError):
            await client.credit_info()
    assert not elsewhere.called


async def test_aclose_lets_requests_on_the_wire_finish_and_refuses_the_rest() -> None:
    """Closing waits for in-flight requests; queued and later ones get ClientClosedError."""
    on_the_wire = anyio.Event()
    release = anyio.Event()
    sent: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.params["image_model_id"])
        on_the_wire.set()
        await release.wait()
        return ok(finished(request.url.params["image_model_id"]))

    client = AkoolClient(
        rate_limit=None,
        api_key=API_KEY,
        base_url=BASE_URL,
        max_in_flight=1,
        transport=httpx.MockTransport(handler),
    )
    outcomes: dict[str, object] = {}

    async def call(job_id: str) -> None:
        try:
            outcomes[job_id] = (await client.info_by_model_id(job_id)).id
        except ClientClosedError as exc:
            outcomes[job_id] = exc

    async with anyio.create_task_group() as tg:
        tg.start_soon(call, "first")
        await on_the_wire.wait()
        tg.start_soon(call, "queued")
        tg.start_soon(client.aclose)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert outcomes["first"] == "first"
    assert isinstance(outcomes["queued"], ClientClosedError)
    assert sent == ["first"]


async def test_retry_after_close_sends_nothing(api: respx.MockRouter) -> None:
    """A create waiting out a back-off when the client closes is not sent again."""
    backing_off = anyio.Event()

    def throttled(request: httpx.Request) -> httpx.Response:
        backing_off.set()
        return fail(1005)

    route = api.post(V4).mock(side_effect=throttled)
    policy = RetryPolicy(attempts=3, wait_initial=0.2, wait_jitter=0, wait_max=0.2)
    client = AkoolClient(rate_limit=None, api_key=API_KEY, base_url=BASE_URL, retry=policy)

    async def close_when_backing_off() -> None:
        await backing_off.wait()
        await client.aclose()

    async with anyio.create_task_group() as tg:
        tg.start_soon(close_when_backing_off)
        with pytest.raises(ClientClosedError):
            await client.create_by_source_prompt(prompt="x")
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("data", "call"),
    [
        ([], lambda c: c.create_by_prompt(prompt="x")),
        ([job("a"), job("b")], lambda c: c.create_by_button("p", "U1")),
        ([job("a"), job("b")], lambda c: c.create_by_source_prompt(prompt="x", batch_quantity=3)),
    ],
)
async def test_answer_with_the_wrong_number_of_jobs_is_uncertain(
    client: AkoolClient, api: respx.MockRouter, data: list[dict[str, object]], call: object
) -> None:
    """A create answered with more or fewer jobs than asked is uncertain, ids kept."""
    for path in (V3, BUTTON, V4):
        api.post(path).mock(return_value=ok(data))
    with pytest.raises(SubmissionUncertainError) as info:
        await call(client)  # type: ignore[operator]
    assert info.value.job_ids == tuple(item["_id"] for item in data)


def test_conflicting_transport_options() -> None:
    """http_client with transport, or a custom Transport with http_client, is refused."""
    with pytest.raises(ConfigurationError, match="not both"):
        AkoolClient(
            rate_limit=None,
            api_key=API_KEY,
            http_client=httpx.AsyncClient(),
            transport=httpx.MockTransport(ok),
        )
    custom = HttpxTransport(BASE_URL, transport=httpx.MockTransport(ok))
    with pytest.raises(ConfigurationError, match="drop http_client"):
        AkoolClient(
            rate_limit=None, api_key=API_KEY, http_client=httpx.AsyncClient(), transport=custom
        )


async def test_empty_webhook_url_means_none(client: AkoolClient, api: respx.MockRouter) -> None:
    """Akool's samples send ``webhookUrl: ""``; here it means no webhook, nothing sent."""
    route = api.post(V3).mock(return_value=ok(job()))
    await client.create_by_prompt(prompt="x", webhook_url="", source_image="")
    assert json.loads(route.calls.last.request.content) == {"prompt": "x", "scale": "1:1"}


def test_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without arguments the key and base URL come from the environment."""
    monkeypatch.setenv("AKOOL_API_KEY", "env-key")
    monkeypatch.setenv("AKOOL_BASE_URL", "http://localhost:9/")
    client = AkoolClient()
    assert client.base_url == "http://localhost:9"
    assert "env-key" not in repr(client)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "no credentials"),
        ({"api_key": "k", "client_id": "i", "client_secret": "s"}, "not both"),
        ({"client_id": "i"}, "both client_id and client_secret"),
        ({"api_key": " "}, "empty"),
        ({"api_key": "k", "base_url": "openapi.akool.com"}, "http"),
        ({"api_key": "k", "max_in_flight": 0}, "max_in_flight"),
    ],
)
def test_bad_configuration(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, object], message: str
) -> None:
    """A client that cannot work is refused at construction, saying why."""
    for name in ("AKOOL_API_KEY", "AKOOL_CLIENT_ID", "AKOOL_CLIENT_SECRET", "AKOOL_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match=message):
        AkoolClient(**kwargs)  # type: ignore[arg-type]
