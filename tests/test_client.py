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
    ImageStatus,
    RequestTimeoutError,
)

from .conftest import API_KEY, BASE_URL, NO_WAIT
from .payloads import BUTTON, CREDIT, INFO, V3, V4, finished, job, ok


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
    async with AkoolClient(api_key=API_KEY, base_url=BASE_URL, timeout=7.0) as client:
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
                api_key=API_KEY, base_url=f"http://127.0.0.1:{port}", retry=NO_WAIT
            ) as client:
                with pytest.raises(RequestTimeoutError):
                    await client.info_by_model_id("a", timeout=0.05)
            tg.cancel_scope.cancel()


async def test_closed_client_refuses_use(api: respx.MockRouter) -> None:
    """After aclose() every call raises ClientClosedError; aclose() twice is fine."""
    client = AkoolClient(api_key=API_KEY, base_url=BASE_URL)
    await client.aclose()
    await client.aclose()
    assert client.is_closed
    with pytest.raises(ClientClosedError, match="closed"):
        await client.info_by_model_id("a")
    with pytest.raises(ClientClosedError):
        async with client:
            pass
    assert not api.calls


async def test_injected_http_client_is_used_and_left_open(api: respx.MockRouter) -> None:
    """An injected httpx.AsyncClient carries the requests and is not closed by us."""
    api.get(INFO).mock(return_value=ok(finished("a")))
    async with httpx.AsyncClient() as http:
        async with AkoolClient(api_key=API_KEY, base_url=BASE_URL, http_client=http) as client:
            await client.info_by_model_id("a")
        assert not http.is_closed
    assert api.calls.call_count == 1


async def test_many_concurrent_callers_share_one_client(api: respx.MockRouter) -> None:
    """A thousand concurrent calls on one client all succeed (no pool timeouts)."""
    api.get(INFO).mock(
        side_effect=lambda request: ok(finished(request.url.params["image_model_id"]))
    )
    results: dict[str, str] = {}
    async with AkoolClient(api_key=API_KEY, base_url=BASE_URL, max_in_flight=4) as client:

        async def one(n: int) -> None:
            results[f"id{n}"] = (await client.info_by_model_id(f"id{n}")).id

        async with anyio.create_task_group() as tg:
            for n in range(1000):
                tg.start_soon(one, n)
    assert results == {f"id{n}": f"id{n}" for n in range(1000)}


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
