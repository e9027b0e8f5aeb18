"""Every business code, HTTP status and unreadable answer maps to its typed error; every
error shares the root's context, throttles share one base, and messages are redacted as built."""

from __future__ import annotations

import httpx
import pytest
import respx

import akool_async as ak
from akool_async import AkoolClient
from akool_async._api_errors import _ERRORS_BY_CODE, error_for_code

from .payloads import INFO, V4, fail

CODES = {
    1003: ak.ParameterError,
    1004: ak.VerificationRequiredError,
    1005: ak.RateLimitedError,
    1006: ak.QuotaExceededError,
    1008: ak.NotFoundError,
    1009: ak.PermissionDeniedError,
    1010: ak.OperationNotAllowedError,
    1011: ak.AlreadyOperatedError,
    1101: ak.InvalidTokenError,
    1102: ak.MissingAuthorizationError,
    1103: ak.PaymentRequiredError,
    1104: ak.InsufficientCreditError,
    1108: ak.GenerationError,
    1109: ak.AccountNotFoundError,
    1200: ak.AccountBannedError,
}


def test_every_documented_code_has_its_class() -> None:
    """The code table covers exactly the codes of the shared notes."""
    assert _ERRORS_BY_CODE == CODES


@pytest.mark.parametrize(("code", "error"), [*CODES.items(), (4242, ak.UnknownAPIError)])
async def test_code_raises_its_error_with_context(
    client: AkoolClient, api: respx.MockRouter, code: int, error: type[ak.APIError]
) -> None:
    """A business code raises its class, carrying code, message, endpoint and job id."""
    api.get(INFO).mock(return_value=fail(code, f"server says {code}"))
    with pytest.raises(error) as info:
        await client.info_by_model_id("job42")
    exc = info.value
    assert isinstance(exc, ak.APIError)
    assert isinstance(exc, ak.AkoolError)
    assert (exc.code, exc.endpoint, exc.job_id, exc.http_status) == (
        code,
        "infobymodelid",
        "job42",
        200,
    )
    assert f"server says {code}" in str(exc)
    assert f"code {code}" in str(exc)
    assert exc.hint
    assert exc.hint in str(exc)


def test_unknown_code_with_empty_message() -> None:
    """An unknown code with no message still says which code it was."""
    assert "code 7" in str(error_for_code(7, ""))


async def test_envelope_in_non_2xx_decides(client: AkoolClient, api: respx.MockRouter) -> None:
    """A non-2xx answer carrying an Akool envelope raises the code's error with the status."""
    api.get(INFO).mock(return_value=fail(1008, "not found", status=404))
    with pytest.raises(ak.NotFoundError) as info:
        await client.info_by_model_id("x")
    assert info.value.http_status == 404


@pytest.mark.parametrize(
    ("response", "error", "text"),
    [
        (httpx.Response(404, text="Not Found"), ak.HTTPStatusError, "HTTP 404"),
        (
            httpx.Response(403, html="<html><body>Forbidden</body></html>"),
            ak.HTTPStatusError,
            "HTML",
        ),
        (httpx.Response(200, text="not json"), ak.PayloadError, "not JSON"),
        (httpx.Response(200, html="<!doctype html><p>maintenance</p>"), ak.PayloadError, "HTML"),
        (httpx.Response(200, content=b""), ak.PayloadError, "empty body"),
        (httpx.Response(200, json=[1, 2]), ak.PayloadError, "not a business code"),
        (httpx.Response(200, json={"code": "x1"}), ak.PayloadError, "$.code"),
        (httpx.Response(200, json={"code": 1000, "msg": "OK"}), ak.PayloadError, "$.data"),
    ],
)
async def test_unreadable_answers(
    client: AkoolClient, api: respx.MockRouter, response: httpx.Response, error: type, text: str
) -> None:
    """Non-envelope statuses, non-JSON, HTML pages and missing data raise typed errors."""
    api.get(INFO).mock(return_value=response)
    with pytest.raises(error) as info:
        await client.info_by_model_id("x")
    assert text in str(info.value)


async def test_string_code_is_read(client: AkoolClient, api: respx.MockRouter) -> None:
    """A business code sent as a string is still a business code."""
    api.post(V4).mock(return_value=httpx.Response(200, json={"code": "1104", "msg": "no credit"}))
    with pytest.raises(ak.InsufficientCreditError):
        await client.create_by_source_prompt(prompt="x")


def test_tree_roots() -> None:
    """Every public error derives from AkoolError; a few also from the builtin users expect."""
    errors = [getattr(ak, name) for name in ak.__all__ if name.endswith("Error")]
    assert all(issubclass(e, ak.AkoolError) for e in errors)
    assert issubclass(ak.ValidationError, ValueError)
    assert issubclass(ak.RequestTimeoutError, TimeoutError)
    assert issubclass(ak.JobTimeoutError, TimeoutError)
    assert issubclass(ak.ClientClosedError, RuntimeError)
    for name in (e.__name__ for e in errors):
        assert name in (ak._exceptions.__doc__ or ""), name


def test_every_error_pickles_with_its_context() -> None:
    """Errors cross process boundaries (process pools) with their message and context."""
    import pickle

    from akool_async import RequestSpec
    from akool_async._protocol import CREATE_BY_PROMPT

    samples: list[ak.AkoolError] = [
        ak.ValidationError("scale", "5:4", "one of ..."),
        ak.NotFoundError("gone", code=1008, endpoint="infobymodelid", job_id="j1", http_status=200),
        ak.TooManyRequestsError("slow down", http_status=429, retry_after=3.0),
        ak.SubmissionUncertainError(
            "maybe", request=RequestSpec(CREATE_BY_PROMPT, payload={"prompt": "x"}), job_ids=("a",)
        ),
        ak.ResultExpiredError("gone", url="https://cdn.test/a.png", http_status=404),
        ak.WebhookSignatureError("bad signature"),
    ]
    for error in samples:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert copy.__dict__.keys() == error.__dict__.keys()


CONTEXT = ("code", "http_status", "endpoint", "job_id", "retry_after")


def test_every_error_has_the_shared_context() -> None:
    """The root carries code, http_status, endpoint, job_id and retry_after, None unknown."""
    bare = ak.AkoolError("x")
    assert [getattr(bare, name) for name in CONTEXT] == [None] * 5
    samples = [
        ak.ValidationError("scale", "5:4", "one of ..."),
        ak.ConnectError("down", endpoint="infobymodelid", job_id="j"),
        ak.JobTimeoutError("late", job_ids=("a", "b")),
        ak.ResultExpiredError("gone", url="https://cdn.test/a.png", http_status=410),
        ak.ServerError("boom", http_status=502),
        error_for_code(1008, "gone", http_status=200, endpoint="infobymodelid", job_id="j"),
    ]
    for error in samples:
        assert all(hasattr(error, name) for name in CONTEXT), error
    assert (samples[2].job_id, samples[3].http_status, samples[3].endpoint) == (
        "a",
        410,
        "download",
    )
    assert (samples[5].code, samples[5].http_status, samples[5].retry_after) == (1008, 200, None)
    assert samples[4].code is None


SLOW_DOWN = httpx.Response(429, text="slow down", headers={"retry-after": "7"})


@pytest.mark.parametrize(
    ("answer", "error", "retry_after"),
    [
        (SLOW_DOWN, ak.TooManyRequestsError, 7.0),
        (fail(1005, "rate limited"), ak.RateLimitedError, None),
    ],
)
async def test_http_429_and_code_1005_are_one_throttling_error(
    client: AkoolClient,
    api: respx.MockRouter,
    answer: httpx.Response,
    error: type[ak.AkoolError],
    retry_after: float | None,
) -> None:
    """Both throttles are a ThrottledError with retry_after; a create is sent again after
    either (nothing was created), never reported as uncertain."""
    route = api.post(V4).mock(return_value=answer)
    with pytest.raises(ak.ThrottledError) as info:
        await client.create_by_source_prompt(prompt="x")
    assert type(info.value) is error
    assert info.value.retry_after == retry_after
    assert route.call_count == client.retry.attempts > 1


def test_the_throttling_errors_keep_their_other_bases() -> None:
    """429 is still an HTTPStatusError and 1005 still an APIError."""
    assert issubclass(ak.TooManyRequestsError, ak.HTTPStatusError)
    assert issubclass(ak.RateLimitedError, ak.APIError)
    assert not issubclass(ak.ServerError, ak.ThrottledError)


async def test_errors_built_while_redacting_leave_the_credentials_out() -> None:
    """An error's message is redacted as it is built (escaped forms too), in tasks started
    within the block as well; outside it nothing is touched."""
    import anyio

    from akool_async._exceptions import redacting

    key, other = "ke\\y-123", "tok-456"  # a backslash: its repr differs
    built: list[ak.AkoolError] = []

    async def build() -> None:
        built.append(ak.NetworkError(f"peer said {key!r} and {other}"))

    with redacting([key]), redacting([other, ""]):
        built.append(ak.ParameterError(f"bad key {key}", code=1003))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(build)
    for error in built:
        text = f"{error} {error!r} {error.args} {error.message}"
        assert key not in text
        assert repr(key)[1:-1] not in text
        assert other not in text
        assert "<redacted>" in error.message
    assert key in ak.ParameterError(f"bad key {key}").message


def test_bugs_and_lost_claims_are_not_akool_errors() -> None:
    """A driver bug or a lost claim is a RuntimeError: code that reports an AkoolError as
    a job's failure never swallows one."""
    from akool_async._exceptions import ClaimLostError, IllegalTransitionError
    from akool_async._follow_states import CreateState, On

    bug = IllegalTransitionError("create", CreateState.PLANNED, On.ANSWERED)
    assert str(bug) == "create: ANSWERED is not allowed in state CreateState.PLANNED"
    lost = ClaimLostError("id:fox", 3)
    assert (lost.key, lost.fence) == ("id:fox", 3)
    for error in (bug, lost):
        assert isinstance(error, RuntimeError)
        assert not isinstance(error, ak.AkoolError)
