"""The API's wire protocol without I/O: the endpoint table, requests as data, and the
reading of answers into models or the typed error. Pure functions, easy to test."""

from __future__ import annotations

import email.utils
import json
import math
from collections.abc import Mapping
from typing import Any, Literal, TypeGuard

import attrs

from ._api_errors import error_for_code
from ._arguments import is_header_safe
from ._clock import SYSTEM_CLOCK
from ._converter import structure, structure_jobs, unstructure
from ._exceptions import (
    AkoolError,
    HTTPStatusError,
    PayloadError,
    ServerError,
    TooManyRequestsError,
)
from ._models import CreditInfo, ImageJob, Token
from ._requests import ButtonRequest, PromptRequest, SourcePromptRequest

SUCCESS = 1000
_SNIPPET = 120

CreateRequest = SourcePromptRequest | PromptRequest | ButtonRequest


@attrs.frozen
class Endpoint:
    """One API operation. ``creates`` marks those that spend credits: they are retried only
    when the answer proves nothing was created. ``sensitive`` ones carry credentials in
    their bodies, so no body of theirs is ever quoted."""

    name: str
    method: Literal["GET", "POST"]
    path: str
    creates: bool = False
    sensitive: bool = False


_IMAGE = "/api/open/v3/content/image"
CREATE_BY_SOURCE_PROMPT = Endpoint(
    "createBySourcePrompt", "POST", "/api/open/v4/content/image/createBySourcePrompt", True
)
CREATE_BY_PROMPT = Endpoint("createbyprompt", "POST", f"{_IMAGE}/createbyprompt", True)
CREATE_BY_BUTTON = Endpoint("createbybutton", "POST", f"{_IMAGE}/createbybutton", True)
INFO_BY_MODEL_ID = Endpoint("infobymodelid", "GET", f"{_IMAGE}/infobymodelid")
GET_TOKEN = Endpoint("getToken", "POST", "/api/open/v3/getToken", sensitive=True)
CREDIT_INFO = Endpoint("quota/info", "GET", "/api/open/v3/faceswap/quota/info")

ENDPOINTS = (
    CREATE_BY_SOURCE_PROMPT,
    CREATE_BY_PROMPT,
    CREATE_BY_BUTTON,
    INFO_BY_MODEL_ID,
    GET_TOKEN,
    CREDIT_INFO,
)
_CREATE_ENDPOINTS: dict[type, Endpoint] = {
    SourcePromptRequest: CREATE_BY_SOURCE_PROMPT,
    PromptRequest: CREATE_BY_PROMPT,
    ButtonRequest: CREATE_BY_BUTTON,
}


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


# -- requests ---------------------------------------------------------------------------


def create_request(request: CreateRequest) -> RequestSpec:
    job_id = request.job_id if isinstance(request, ButtonRequest) else None
    return RequestSpec(
        _CREATE_ENDPOINTS[type(request)], payload=unstructure(request), job_id=job_id
    )


def info_request(job_id: str) -> RequestSpec:
    return RequestSpec(INFO_BY_MODEL_ID, params={"image_model_id": job_id}, job_id=job_id)


def credit_request() -> RequestSpec:
    return RequestSpec(CREDIT_INFO)


def token_request(client_id: str, client_secret: str) -> RequestSpec:
    return RequestSpec(GET_TOKEN, payload={"clientId": client_id, "clientSecret": client_secret})


# -- answers ----------------------------------------------------------------------------


def read_jobs(
    envelope: Mapping[str, Any], request: RequestSpec, expected: int
) -> tuple[ImageJob, ...]:
    """The jobs a create made: v4 answers one object for one image and a list above."""
    jobs = structure_jobs(envelope.get("data"), endpoint=request.endpoint.name)
    if len(jobs) != expected:
        raise PayloadError(
            f"asked for {expected} image(s), the answer holds {len(jobs)} job(s)",
            endpoint=request.endpoint.name,
        )
    return jobs


def read_job(envelope: Mapping[str, Any], request: RequestSpec) -> ImageJob:
    return structure(envelope.get("data"), ImageJob, endpoint=request.endpoint.name)


def read_credit(envelope: Mapping[str, Any], request: RequestSpec) -> CreditInfo:
    return structure(envelope.get("data"), CreditInfo, endpoint=request.endpoint.name)


def read_token(envelope: Mapping[str, Any], request: RequestSpec) -> Token:
    """getToken answers the token at the top level, not under ``data``."""
    fields = {k: v for k, v in envelope.items() if k not in ("code", "msg")}
    token = structure(fields, Token, path="$", endpoint=request.endpoint.name)
    if not is_header_safe(token.token):
        raise PayloadError("getToken answered a token a header cannot carry", endpoint="getToken")
    return token


def job_ids_in(response: RawResponse | None) -> tuple[str, ...]:
    """Whatever job ids an answer holds, even one that did not read as a success."""
    try:
        data = json.loads(response.content).get("data") if response is not None else None
    except (ValueError, AttributeError, RecursionError):
        return ()
    items = data if isinstance(data, list) else [data]
    return tuple(i["_id"] for i in items if isinstance(i, dict) and isinstance(i.get("_id"), str))


def parse_envelope(request: RequestSpec, response: RawResponse) -> dict[str, Any]:
    """The envelope ``{"code", "msg", "data"}`` of a successful answer, or the typed error.

    Non-2xx answers are undocumented: a genuine Akool envelope (a business code above 1000)
    still decides the error; otherwise the status does. A non-2xx answer that claims
    success is contradictory, so it is unreadable (for a create: uncertain, never retried).
    """
    context: dict[str, Any] = {"endpoint": request.endpoint.name, "job_id": request.job_id}
    status = response.status_code
    ok = 200 <= status < 300
    decoded = _decode(response.content)
    if decoded is _UNREADABLE:
        if not ok:
            raise _status_error(request, response, context)
        raise PayloadError(
            f"the answer is not JSON ({_describe_body(request, response)})",
            http_status=status,
            **context,
        )
    envelope: dict[str, Any] = decoded if isinstance(decoded, dict) else {}
    code = envelope.get("code")
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code)  # numbers sent as strings
    if not ok:
        if _is_business_code(code) and code != SUCCESS:
            raise _api_error(code, envelope, status, context)
        if code == SUCCESS:
            raise PayloadError(
                f"HTTP {status} with a success answer", http_status=status, **context
            )
        raise _status_error(request, response, context)
    if not _is_business_code(code):
        raise PayloadError(
            f"$.code is missing or not a business code ({_describe_body(request, response)})",
            http_status=status,
            **context,
        )
    if code != SUCCESS:
        raise _api_error(code, envelope, status, context)
    return envelope


_UNREADABLE = object()


def _decode(content: bytes) -> object:
    """The JSON value, or ``_UNREADABLE``. The decoder's error is dropped, not chained: it
    holds the whole document, which may echo a credential. Nesting too deep for Python's
    recursion limit is unreadable too, not a crash."""
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        return _UNREADABLE


def _is_business_code(code: object) -> TypeGuard[int]:
    return isinstance(code, int) and not isinstance(code, bool) and code >= SUCCESS


def _api_error(
    code: int, envelope: dict[str, Any], status: int, context: dict[str, Any]
) -> AkoolError:
    message = envelope.get("msg")
    return error_for_code(
        code, message if isinstance(message, str) else "", http_status=status, **context
    )


def _status_error(
    request: RequestSpec, response: RawResponse, context: dict[str, Any]
) -> AkoolError:
    status = response.status_code
    message = f"HTTP {status} without an Akool answer ({_describe_body(request, response)})"
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return TooManyRequestsError(message, http_status=status, retry_after=retry_after, **context)
    if status >= 500:
        return ServerError(message, http_status=status, **context)
    return HTTPStatusError(message, http_status=status, **context)


def _describe_body(request: RequestSpec, response: RawResponse) -> str:
    content = response.content.strip()
    if not content:
        return "empty body"
    content_type = response.headers.get("content-type", "")
    if "html" in content_type or content[:1] == b"<":
        return "an HTML page, probably from a proxy or an error page"
    if request.endpoint.sensitive:
        return f"{len(content)} bytes, not shown: they may hold credentials"
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
        seconds = when.timestamp() - (SYSTEM_CLOCK.wall() if now is None else now)
    return None if math.isnan(seconds) else max(0.0, seconds)
