"""Token auth: fetched once and shared, refreshed once on 1101, never both headers."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest
import respx

from akool_async import (
    AkoolClient,
    ConfigurationError,
    InvalidTokenError,
    PayloadError,
    RetryPolicy,
    ServerError,
)
from akool_async._protocol import GET_TOKEN

from .conftest import BASE_URL, NO_WAIT
from .payloads import INFO, TOKEN, V4, fail, finished, job, ok

SECRET = "client-secret-value-0123456789abcd"


def _token_client() -> AkoolClient:
    return AkoolClient(
        rate_limit=None, client_id="cid-1", client_secret=SECRET, base_url=BASE_URL, retry=NO_WAIT
    )


def _token(value: str) -> object:
    return ok(token=value)


async def test_token_fetched_once_for_many_callers(api: respx.MockRouter) -> None:
    """Fifty concurrent calls share one getToken and all send the Bearer header only."""
    token_route = api.post(TOKEN).mock(return_value=_token("tok-1"))
    info = api.get(INFO).mock(return_value=ok(finished("a")))
    async with _token_client() as client, anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(client.info_by_model_id, "a")
    assert token_route.call_count == 1
    assert json.loads(token_route.calls.last.request.content) == {
        "clientId": "cid-1",
        "clientSecret": SECRET,
    }
    assert "x-api-key" not in token_route.calls.last.request.headers
    assert "authorization" not in token_route.calls.last.request.headers
    for call in info.calls:
        assert call.request.headers["authorization"] == "Bearer tok-1"
        assert "x-api-key" not in call.request.headers


async def test_expired_token_is_refreshed_once(api: respx.MockRouter) -> None:
    """A 1101 answer fetches a new token and resends the request once, even a create."""
    api.post(TOKEN).mock(side_effect=[_token("old"), _token("new")])
    create = api.post(V4).mock(side_effect=[fail(1101, "token expired"), ok(job("j"))])
    async with _token_client() as client:
        (created,) = await client.create_by_source_prompt(prompt="x")
    assert created.id == "j"
    assert [c.request.headers["authorization"] for c in create.calls] == [
        "Bearer old",
        "Bearer new",
    ]


async def test_refresh_happens_only_once(api: respx.MockRouter) -> None:
    """If the fresh token is refused too, InvalidTokenError is raised (no loop)."""
    tokens = api.post(TOKEN).mock(side_effect=[_token("a"), _token("b"), _token("c")])
    info = api.get(INFO).mock(return_value=fail(1101, "invalid"))
    async with _token_client() as client:
        with pytest.raises(InvalidTokenError):
            await client.info_by_model_id("x")
    assert tokens.call_count == 2
    assert info.call_count == 2


async def test_bad_secret_raises_from_get_token(api: respx.MockRouter) -> None:
    """getToken refusing the secret raises InvalidTokenError without retrying."""
    tokens = api.post(TOKEN).mock(return_value=fail(1101, "bad secret"))
    async with _token_client() as client:
        with pytest.raises(InvalidTokenError) as info:
            await client.info_by_model_id("x")
    assert tokens.call_count == 1
    assert info.value.endpoint == GET_TOKEN.name


async def test_api_key_auth_never_fetches_token(client: AkoolClient, api: respx.MockRouter) -> None:
    """With an API key no getToken request is ever made."""
    tokens = api.post(TOKEN)
    api.get(INFO).mock(return_value=fail(1101, "invalid key"))
    with pytest.raises(InvalidTokenError):
        await client.info_by_model_id("x")
    assert not tokens.called


def test_env_token_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """AKOOL_CLIENT_ID and AKOOL_CLIENT_SECRET select token auth."""
    monkeypatch.delenv("AKOOL_API_KEY", raising=False)
    monkeypatch.setenv("AKOOL_CLIENT_ID", "cid")
    monkeypatch.setenv("AKOOL_CLIENT_SECRET", SECRET)
    client = AkoolClient(rate_limit=None, base_url=BASE_URL)
    assert "TokenAuth" in repr(client)
    assert SECRET not in repr(client)
    assert SECRET not in repr(client._requester.auth)


async def test_failing_token_fetch_is_shared_not_repeated(api: respx.MockRouter) -> None:
    """Ten callers during a failing getToken share one fetch's attempts and its failure."""
    tokens = api.post(TOKEN).mock(return_value=httpx.Response(503))
    info = api.get(INFO).mock(return_value=ok(finished("a")))
    failures: list[BaseException] = []
    policy = RetryPolicy(attempts=3, wait=False)
    async with AkoolClient(
        rate_limit=None, client_id="cid-1", client_secret=SECRET, base_url=BASE_URL, retry=policy
    ) as client:

        async def call() -> None:
            try:
                await client.info_by_model_id("a")
            except ServerError as exc:
                failures.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(call)
    assert len(failures) == 10
    assert all(f.endpoint == "getToken" for f in failures)  # type: ignore[attr-defined]
    assert tokens.call_count == 3  # one fetch's attempts, not 3 x 3 x 10
    assert not info.called


async def test_burst_of_1101_refreshes_once_even_with_same_token(api: respx.MockRouter) -> None:
    """Twenty callers refused on one token cause one new getToken, even for the same value."""
    tokens = api.post(TOKEN).mock(return_value=_token("same-token"))

    def answer(request: httpx.Request) -> httpx.Response:
        # Every request sent before the refresh is refused; none after it.
        return fail(1101, "expired") if tokens.call_count < 2 else ok(finished("a"))

    api.get(INFO).mock(side_effect=answer)
    async with _token_client() as client:
        await client._requester.auth.headers(client._requester._fetch_token)  # first token
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(client.info_by_model_id, "a")
    assert tokens.call_count == 2  # the first token, then one refresh


async def test_cancelled_token_fetch_is_redone_by_the_next_caller(api: respx.MockRouter) -> None:
    """A getToken cancelled midway leaves no poisoned state: the next caller fetches anew."""
    started = anyio.Event()
    release = anyio.Event()

    async def slow_token(request: httpx.Request) -> httpx.Response:
        started.set()
        await release.wait()
        return _token("tok")  # type: ignore[return-value]

    api.post(TOKEN).mock(side_effect=[slow_token, _token("tok-2")])
    info = api.get(INFO).mock(return_value=ok(finished("a")))
    async with _token_client() as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.info_by_model_id, "a")
            await started.wait()
            tg.cancel_scope.cancel()
        assert not info.called
        assert (await client.info_by_model_id("a")).id == "a"
    assert info.calls.last.request.headers["authorization"] == "Bearer tok-2"


@pytest.mark.parametrize("key", ["sk-with space", "sk-\x00nul", "sk-ünïcode", "sk-a\nb"])
def test_keys_a_header_cannot_carry_are_refused_unechoed(key: str) -> None:
    """A key with inner spaces, control or non-ASCII characters is refused, not echoed."""
    with pytest.raises(ConfigurationError) as info:
        AkoolClient(rate_limit=None, api_key=key, base_url=BASE_URL)
    assert key not in str(info.value)
    assert key.strip() not in repr(info.value)


async def test_key_with_trailing_newline_is_stripped(api: respx.MockRouter) -> None:
    """A key read from a file keeps its newline: it is dropped, not sent."""
    route = api.get(INFO).mock(return_value=ok(finished("a")))
    async with AkoolClient(rate_limit=None, api_key="sk-abc123\n", base_url=BASE_URL) as client:
        await client.info_by_model_id("a")
    assert route.calls.last.request.headers["x-api-key"] == "sk-abc123"


async def test_unsafe_token_from_server_is_refused(api: respx.MockRouter) -> None:
    """A token that cannot travel in a header is an unreadable answer, not a crash."""
    api.post(TOKEN).mock(return_value=_token("bad token\n"))
    async with _token_client() as client:
        with pytest.raises(PayloadError) as info:
            await client.info_by_model_id("a")
    assert "bad token" not in str(info.value)
