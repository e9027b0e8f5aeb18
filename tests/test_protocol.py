"""Reading answers: envelopes, statuses, contradictions, and what is never quoted."""

from __future__ import annotations

import email.utils

import httpx
import pytest
import respx

import akool_async as ak
from akool_async import AkoolClient
from akool_async._protocol import (
    GET_TOKEN,
    INFO_BY_MODEL_ID,
    RawResponse,
    RequestSpec,
    parse_envelope,
    parse_retry_after,
)

from .payloads import INFO, V4, job, ok

TOKEN_SPEC = RequestSpec(GET_TOKEN, payload={"clientId": "c", "clientSecret": "s"})


async def test_non_2xx_claiming_success_is_never_retried_as_a_create(
    client: AkoolClient, api: respx.MockRouter
) -> None:
    """A 429 whose body says code 1000 may hold a created job: uncertain, sent once."""
    route = api.post(V4).mock(
        side_effect=[
            httpx.Response(429, json={"code": 1000, "msg": "OK", "data": job("job1")}),
            ok(job("job2")),
        ]
    )
    with pytest.raises(ak.SubmissionUncertainError) as info:
        await client.create_by_source_prompt(prompt="a fox")
    assert route.call_count == 1
    assert info.value.job_ids == ("job1",)


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(502, json={"code": 502}), ak.ServerError),
        (httpx.Response(503, json={"code": "ServiceUnavailable"}), ak.ServerError),
        (
            httpx.Response(429, json={"code": 429}, headers={"retry-after": "7"}),
            ak.TooManyRequestsError,
        ),
        (httpx.Response(404, json={"error": "nope"}), ak.HTTPStatusError),
    ],
)  # fmt: skip
def test_non_akool_json_on_error_status_is_judged_by_status(
    response: httpx.Response, error: type[ak.AkoolError]
) -> None:
    """Only a genuine business code (>= 1000) speaks for a non-2xx answer."""
    raw = RawResponse(response.status_code, response.headers, response.content)
    with pytest.raises(error) as info:
        parse_envelope(RequestSpec(GET_TOKEN), raw)
    if isinstance(info.value, ak.TooManyRequestsError):
        assert info.value.retry_after == 7


async def test_proxy_json_502_on_a_create_is_uncertain(
    client: AkoolClient, api: respx.MockRouter
) -> None:
    """A 502 with a proxy's JSON after a create is uncertain, not an API error."""
    route = api.post(V4).mock(return_value=httpx.Response(502, json={"code": 502}))
    with pytest.raises(ak.SubmissionUncertainError):
        await client.create_by_source_prompt(prompt="x")
    assert route.call_count == 1


async def test_read_retries_a_proxy_json_503(client: AkoolClient, api: respx.MockRouter) -> None:
    """A 503 carrying a proxy's JSON is a server error, retried for a read."""
    route = api.get(INFO).mock(
        side_effect=[httpx.Response(503, json={"code": "ServiceUnavailable"}),
                     ok({"_id": "a", "image_status": 1})]
    )  # fmt: skip
    assert (await client.info_by_model_id("a")).id == "a"
    assert route.call_count == 2


def test_get_token_bodies_are_never_quoted() -> None:
    """An unreadable getToken answer is described without its body (it may hold a token)."""
    raw = RawResponse(200, {}, b'{"token": "tok-SECRET-1234", "oops": true}')
    with pytest.raises(ak.PayloadError) as info:
        parse_envelope(TOKEN_SPEC, raw)
    assert "tok-SECRET-1234" not in str(info.value)
    assert "not shown" in str(info.value)


def test_other_bodies_are_quoted_briefly() -> None:
    """An unreadable answer elsewhere quotes its start, to help diagnose."""
    raw = RawResponse(200, {}, b'{"weird": ' + b"x" * 500)
    with pytest.raises(ak.PayloadError) as info:
        parse_envelope(RequestSpec(INFO_BY_MODEL_ID), raw)
    assert '{"weird": xxx' in str(info.value)
    assert len(str(info.value)) < 400


def test_retry_after_as_http_date() -> None:
    """Retry-After may be an HTTP date: seconds from now, never negative."""
    now = 1_800_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == 30
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
