"""The API's wire protocol without I/O: the endpoint table, requests as data, and the
reading of answers into data or the typed error. Pure functions, easy to test."""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from ._exceptions import (
    AkoolError,
    HTTPStatusError,
    PayloadError,
    ServerError,
    TooManyRequestsError,
    error_for_code,
)

SUCCESS = 1000
_SNIPPET = 120


@attrs.frozen
class Endpoint:
    """One API operation. ``creates`` marks those that spend credits: they are retried only
    when the answer proves nothing was created."""

    name: str
    method: Literal["GET", "POST"]
    path: str
    creates: bool = False


CREATE_BY_SOURCE_PROMPT = Endpoint(
    "createBySourcePrompt", "POST", "/api/open/v4/content/image/createBySourcePrompt", True
)
CREATE_BY_PROMPT = Endpoint(
    "createbyprompt", "POST", "/api/open/v3/content/image/createbyprompt", True
)
CREATE_BY_BUTTON = Endpoint(
    "createbybutton", "POST", "/api/open/v3/content/image/createbybutton", True
)
INFO_BY_MODEL_ID = Endpoint("infobymodelid", "GET", "/api/open/v3/content/image/infobymodelid")
GET_TOKEN = Endpoint("getToken", "POST", "/api/open/v3/getToken")
CREDIT_INFO = Endpoint("quota/info", "GET", "/api/open/v3/faceswap/quota/info")

ENDPOINTS = (
    CREATE_BY_SOURCE_PROMPT,
    CREATE_BY_PROMPT,
    CREATE_BY_BUTTON,
    INFO_BY_MODEL_ID,
    GET_TOKEN,
    CREDIT_INFO,
)


@attrs.frozen
class RequestSpec:
    """A request as data: what to send, before credentials are added by the transport.

    ``payload`` is the JSON body with the API's own key names. It is kept out of the repr
    because getToken's body holds the client secret.
    """

    endpoint: Endpoint
    params: Mapping[str, str] | None = None
    payload: Mapping[str, Any] | None = attrs.field(default=None, repr=False, hash=False)
    job_id: str | None = None

    @property
    def body(self) -> bytes | None:
        if self.payload is None:
            return None
        return json.dumps(self.payload, separators=(",", ":"), ensure_ascii=False).encode()


@attrs.frozen
class RawResponse:
    """What came back, before interpretation."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes


def parse_envelope(request: RequestSpec, response: RawResponse) -> dict[str, Any]:
    """The envelope ``{"code", "msg", "data"}`` of a successful answer, or the typed error.

    Non-2xx answers are undocumented: an Akool envelope in the body still decides the
    error; otherwise the status does.
    """
    context: dict[str, Any] = {"endpoint": request.endpoint.name, "job_id": request.job_id}
    status = response.status_code
    ok = 200 <= status < 300
    try:
        envelope = json.loads(response.content)
    except ValueError as exc:
        if not ok:
            raise _status_error(response, context) from None
        raise PayloadError(
            f"the answer is not JSON ({_describe_body(response)})", http_status=status, **context
        ) from exc
    if not isinstance(envelope, dict) or "code" not in envelope:
        if not ok:
            raise _status_error(response, context)
        raise PayloadError(
            f"the answer has no business code ({_describe_body(response)})",
            http_status=status,
            **context,
        )
    code = _code_of(envelope, status, context)
    if code != SUCCESS:
        message = envelope.get("msg")
        raise error_for_code(
            code, message if isinstance(message, str) else "", http_status=status, **context
        )
    if not ok:
        raise _status_error(response, context)
    return envelope


def _code_of(envelope: Mapping[str, Any], status: int, context: dict[str, Any]) -> int:
    code = envelope["code"]
    if isinstance(code, str) and code.strip().isdigit():
        return int(code)  # numbers sent as strings
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    raise PayloadError(f"$.code is not an integer: {code!r}", http_status=status, **context)


def _status_error(response: RawResponse, context: dict[str, Any]) -> AkoolError:
    status = response.status_code
    message = f"HTTP {status} without an Akool answer ({_describe_body(response)})"
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return TooManyRequestsError(message, http_status=status, retry_after=retry_after, **context)
    if status >= 500:
        return ServerError(message, http_status=status, **context)
    return HTTPStatusError(message, http_status=status, **context)


def _describe_body(response: RawResponse) -> str:
    content = response.content.strip()
    if not content:
        return "empty body"
    content_type = response.headers.get("content-type", "")
    if "html" in content_type or content[:1] == b"<":
        return "an HTML page, probably from a proxy or an error page"
    snippet = content[:_SNIPPET].decode("utf-8", "replace")
    return f"body starts {snippet!r}"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return None if math.isnan(seconds) else max(0.0, seconds)
