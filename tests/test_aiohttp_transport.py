"""The aiohttp transport's own edges, over real HTTP: what the shared emulator tests (run
on it through ``wired(mode="aiohttp")``) cannot reach."""

from __future__ import annotations

import socket
from typing import Any

import anyio
import pytest

import akool_async as ak
from akool_async import AkoolClient, RetryPolicy
from akool_async._redaction import CauseSummary
from akool_async.emulator import Emulator
from akool_async.emulator._server import serve_asgi

from .emulated import config, wired

pytest.importorskip("aiohttp")
KEY = "sk-secret-0123456789abcdef0123456789"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_nothing_listening_is_a_connect_error_and_a_create_may_be_resent() -> None:
    base_url = f"http://127.0.0.1:{_free_port()}"
    policy = RetryPolicy(attempts=3, wait=False)
    async with AkoolClient(api_key=KEY, base_url=base_url, transport="aiohttp",
                           rate_limit=None, retry=policy) as client:  # fmt: skip
        with pytest.raises(ak.ConnectError) as info:
            await client.create_by_source_prompt(prompt="a fox")
    assert KEY not in str(info.value)
    # aiohttp's error is not chained as it is (its request holds the headers): text only.
    assert isinstance(info.value.__cause__, CauseSummary)
    assert info.value.__context__ is None


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_redirects_are_not_followed() -> None:
    async def redirect(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"location", b"http://elsewhere.test/steal")]
        await send({"type": "http.response.start", "status": 302, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    with serve_asgi(redirect) as base_url:
        once = RetryPolicy(attempts=1)
        async with AkoolClient(api_key=KEY, base_url=base_url, transport="aiohttp",
                               rate_limit=None, retry=once) as client:  # fmt: skip
            with pytest.raises(ak.HTTPStatusError) as info:
                await client.credit_info()
    assert info.value.http_status == 302


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_on_trio_it_says_to_use_the_default() -> None:
    async with AkoolClient(api_key=KEY, base_url="http://127.0.0.1:9", transport="aiohttp",
                           rate_limit=None) as client:  # fmt: skip
        with pytest.raises(ak.ConfigurationError, match="asyncio only"):
            await client.credit_info()


def test_it_does_its_own_http() -> None:
    import httpx

    with pytest.raises(ak.ConfigurationError, match="drop http_client"):
        AkoolClient(api_key=KEY, transport="aiohttp", http_client=httpx.AsyncClient())


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_closing_lets_the_request_on_the_wire_answer_and_refuses_later_ones() -> None:
    emulator = Emulator(config(instant=True))
    async with wired("aiohttp", emulator) as client:
        (job,) = await client.create_by_source_prompt(prompt="a fox")
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(client.info_by_model_id, job.id)
            await anyio.wait_all_tasks_blocked()
            await client.aclose()
        with pytest.raises(ak.ClientClosedError):
            await client.info_by_model_id(job.id)
    assert emulator.counters.requests["infobymodelid"] == 1


@pytest.mark.long
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_download_checks_what_it_saves(tmp_path: Any) -> None:
    emulator = Emulator(config(instant=True, image_max_side=16))
    async with wired("aiohttp", emulator) as client:
        (job,) = await client.create_by_source_prompt(prompt="a fox")
        saved = await client.download(await client.wait(job), tmp_path / "fox.png")
    assert saved.path.read_bytes() == emulator.image_bytes(job.id)
    assert saved.kind == "png"
