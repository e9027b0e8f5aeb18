"""Credentials never reach logs, reprs or errors; each request logs one debug line."""

from __future__ import annotations

import logging
import re

import httpx
import pytest
import respx

from akool_async import AkoolClient, AkoolError, RequestSpec, SubmissionUncertainError
from akool_async import _requester as requester_module
from akool_async._protocol import GET_TOKEN

from .conftest import API_KEY, BASE_URL, NO_WAIT
from .payloads import BUTTON, INFO, TOKEN, V4, fail, finished, job, ok

SECRET = "client-secret-ABCDEFGHIJKLMNOPQRSTUV"
TOKEN_VALUE = "bearer-token-0123456789-zyxw"
LINE = re.compile(
    r"^(GET|POST) /api/open/\S+( job=\S+)? -> HTTP (\d{3}|-) code (\d+|-) in \d+\.\d ms "
    r"\(attempt \d+\)( \w+)?$"
)


def _all_text(records: list[logging.LogRecord]) -> str:
    return "\n".join(r.getMessage() for r in records)


async def test_one_debug_line_per_request(
    client: AkoolClient, api: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """Every attempt logs method, path, status, code, duration and attempt number."""
    api.post(V4).mock(return_value=ok(job("j1")))
    api.get(INFO).mock(side_effect=[httpx.Response(503), ok(finished("j1"))])
    api.post(BUTTON).mock(return_value=fail(1011, "already operated"))
    caplog.set_level(logging.DEBUG, logger="akool_async")
    await client.create_by_source_prompt(prompt="a fox")
    await client.info_by_model_id("j1")
    with pytest.raises(AkoolError):
        await client.create_by_button("j1", "U1")
    lines = [r.getMessage() for r in caplog.records if r.name == "akool_async"]
    assert len(lines) == 4, lines
    assert all(LINE.match(line) for line in lines), lines
    assert "HTTP 200 code 1000" in lines[0]
    assert "job=j1 -> HTTP 503 code - " in lines[1]
    assert "(attempt 1) ServerError" in lines[1]
    assert "(attempt 2)" in lines[2]
    assert "code 1011" in lines[3]
    assert API_KEY not in _all_text(caplog.records)


async def test_no_log_work_when_debug_is_off(
    client: AkoolClient,
    api: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At INFO the request path does not even call the logger (no arguments built)."""
    calls: list[object] = []
    monkeypatch.setattr(requester_module.log, "debug", lambda *args: calls.append(args))
    api.get(INFO).mock(return_value=ok(finished("a")))
    caplog.set_level(logging.INFO, logger="akool_async")
    await client.info_by_model_id("a")
    assert calls == []
    caplog.set_level(logging.DEBUG, logger="akool_async")
    await client.info_by_model_id("a")
    assert len(calls) == 1


async def test_token_flow_leaks_nothing(
    api: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """Secret and token appear in no log (ours or httpx's), repr or error of a token session."""
    api.post(TOKEN).mock(return_value=ok(token=TOKEN_VALUE))
    api.get(INFO).mock(return_value=fail(1009, f"no permission for {TOKEN_VALUE} / {SECRET}"))
    api.post(V4).mock(side_effect=httpx.ReadTimeout("slow"))
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    async with AkoolClient(
        rate_limit=None, client_id="cid", client_secret=SECRET, base_url=BASE_URL, retry=NO_WAIT
    ) as client:
        for call in (
            lambda: client.info_by_model_id("x"),
            lambda: client.create_by_source_prompt(prompt="x"),
        ):
            with pytest.raises(AkoolError) as info:
                await call()
            errors.append(info.value)
        texts = [repr(client), repr(client._requester.auth), _all_text(caplog.records)]
    for error in errors:
        texts += [
            str(error),
            repr(error),
            repr(getattr(error, "request", None)),
            str(error.__cause__),
        ]
    assert isinstance(errors[1], SubmissionUncertainError)
    joined = "\n".join(texts)
    assert SECRET not in joined
    assert TOKEN_VALUE not in joined
    assert "<redacted>" in str(errors[0])


async def test_api_key_echoed_by_server_is_redacted(
    client: AkoolClient, api: respx.MockRouter
) -> None:
    """A server message that echoes the API key is scrubbed before it reaches the user."""
    api.get(INFO).mock(return_value=fail(1101, f"invalid key {API_KEY}"))
    with pytest.raises(AkoolError) as info:
        await client.info_by_model_id("x")
    assert API_KEY not in str(info.value)
    assert API_KEY not in repr(info.value)
    assert all(API_KEY not in str(arg) for arg in info.value.args)


def test_token_request_repr_hides_secret() -> None:
    """A getToken request's repr does not show its body."""
    spec = RequestSpec(GET_TOKEN, payload={"clientId": "c", "clientSecret": SECRET})
    assert SECRET not in repr(spec)
