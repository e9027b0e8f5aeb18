"""Token auth: fetched once and shared, refreshed once on 1101, never both headers."""

from __future__ import annotations

import json

import anyio
import pytest
import respx

from akool_async import AkoolClient, InvalidTokenError
from akool_async._protocol import GET_TOKEN

from .conftest import BASE_URL, NO_WAIT
from .payloads import INFO, TOKEN, V4, fail, finished, job, ok

SECRET = "client-secret-value-0123456789abcd"


def _token_client() -> AkoolClient:
    return AkoolClient(client_id="cid-1", client_secret=SECRET, base_url=BASE_URL, retry=NO_WAIT)


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
    client = AkoolClient(base_url=BASE_URL)
    assert "TokenAuth" in repr(client)
    assert SECRET not in repr(client)
    assert SECRET not in repr(client._auth)
