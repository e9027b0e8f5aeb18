"""Every error akool_async raises, as one tree.

    AkoolError
    ├── ConfigurationError            the client was set up wrong (credentials, options)
    │   └── InvalidSettingError       a setting's value is wrong (also a ValidationError)
    ├── ClientClosedError             the client was used after ``aclose()``
    ├── ValidationError               bad input caught before sending: nothing sent, nothing spent
    ├── PayloadError                  the server answered something we cannot read
    ├── TransportError                the request got no answer
    │   ├── ConnectError              could not connect: the request never left
    │   ├── RequestTimeoutError       no answer in time (the server may have acted)
    │   └── NetworkError              the connection broke mid-request
    ├── ThrottledError                too many requests: slow down (retried with back-off)
    │   ├── TooManyRequestsError      HTTP 429 (also an HTTPStatusError)
    │   └── RateLimitedError          code 1005 (also an APIError)
    ├── HTTPStatusError               a non-2xx status without an Akool envelope
    │   ├── ServerError               5xx
    │   └── TooManyRequestsError      429 (``retry_after`` when the server said)
    ├── SubmissionUncertainError      a create may have reached the server: never retried
    ├── SharedBudgetUnavailableError  the shared budget (Redis) unreachable: nothing sent
    ├── DownloadError                 a finished image could not be saved
    │   ├── ResultExpiredError        the result URL is gone (results live 7 days)
    │   └── ImageCheckError           what came back is not a whole PNG or JPEG
    ├── JobError                      a job did not end with an image
    │   ├── JobFailedError            the job ended with status 4 (failed)
    │   └── JobTimeoutError           the job did not finish before its deadline
    ├── WebhookError                  a callback that cannot be trusted or read
    │   ├── WebhookSignatureError     the signature does not match (or is malformed)
    │   ├── WebhookDecryptError       the ciphertext does not decrypt (key, IV, padding, base64)
    │   ├── WebhookPayloadError       the body or the decrypted event is not what Akool sends
    │   └── WebhookDeliveryError      a valid event no listener could take (Akool resends it)
    └── APIError                      the server answered with ``code != 1000``
        ├── ParameterError                1003
        ├── VerificationRequiredError     1004
        ├── RateLimitedError              1005 (also a ThrottledError)
        ├── QuotaExceededError            1006
        ├── NotFoundError                 1008
        ├── PermissionDeniedError         1009
        ├── OperationNotAllowedError      1010
        ├── AlreadyOperatedError          1011
        ├── AuthenticationError
        │   ├── InvalidTokenError         1101
        │   └── MissingAuthorizationError 1102
        ├── PaymentRequiredError          1103
        ├── InsufficientCreditError       1104
        ├── GenerationError               1108
        ├── AccountNotFoundError          1109
        ├── AccountBannedError            1200
        └── UnknownAPIError               any other code

    RuntimeError (bugs and lost races: never caught as an AkoolError, which reports a job)
    ├── IllegalTransitionError        the follow machine got an event its state forbids
    └── ClaimLostError                a journal write's claim was taken over by another worker

Every error carries the same context attributes, ``None`` when unknown: ``code`` (the
business code), ``http_status``, ``endpoint``, ``job_id`` and ``retry_after`` (seconds the
server asked us to wait); and it says what to do next. None ever holds the API key, client
secret or token: errors are built from the server's answer and our own words, never from
headers, and the message is redacted as the error is built, against the credentials of the
request under way (``redacting``, which the requester enters around each request). Nor does
anything reachable from one: an HTTP library's exception (its request holds the headers) or
a decoder's (its document may echo the key) is never chained as it is, only as a
``CauseSummary`` (its type and redacted text): see ``_redaction``.

This module imports nothing from the rest of the package: every layer may raise its errors.
The classes of the business codes (``ParameterError`` ... ``UnknownAPIError``) and
``error_for_code`` live in ``_api_errors``, which imports only this module.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any, ClassVar

_MAX_VALUE_REPR = 80
REDACTED = "<redacted>"

Secrets = Iterable[str] | Callable[[], Iterable[str]]

# The credentials of the requests under way in this task (anyio tasks copy the context, so
# a transport's helper tasks see them too). A callable is asked each time: a token fetched
# during the request is covered as soon as it is known.
_SECRETS: ContextVar[tuple[Secrets, ...]] = ContextVar("akool_async_secrets", default=())


@contextlib.contextmanager
def redacting(secrets: Secrets) -> Iterator[None]:
    """Errors built inside this block redact ``secrets`` from their messages."""
    token = _SECRETS.set((*_SECRETS.get(), secrets if callable(secrets) else tuple(secrets)))
    try:
        yield
    finally:
        _SECRETS.reset(token)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without ``secrets`` nor the credentials ``redacting`` holds, as given or as
    escaped inside a repr."""
    known = [secrets, *(s() if callable(s) else s for s in _SECRETS.get())]
    for secret in (secret for group in known for secret in group):
        for form in (secret, repr(secret)[1:-1]):
            if form and form in text:
                text = text.replace(form, REDACTED)
    return text


class AkoolError(Exception):
    """The root of every error akool_async raises, with the context every error shares."""

    hint: ClassVar[str] = ""
    code: int | None = None  # the business code; each APIError subclass sets its own

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        http_status: int | None = None,
        endpoint: str | None = None,
        job_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.http_status = http_status
        self.endpoint = endpoint
        self.job_id = job_id
        self.retry_after = retry_after

    def _context(self) -> list[str]:
        parts = []
        if self.endpoint:
            parts.append(f"endpoint {self.endpoint}")
        if self.job_id:
            parts.append(f"job {self.job_id}")
        return parts

    def __str__(self) -> str:
        context = self._context()
        text = f"{self.message} ({', '.join(context)})" if context else self.message
        return f"{text}. {self.hint}" if self.hint else text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors defeat Exception's default pickling (process pools,
        # multiprocessing queues): rebuild from the instance's state instead.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[AkoolError], args: tuple[Any, ...], state: dict[str, Any]) -> AkoolError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigurationError(AkoolError):
    """The client was configured in a way that cannot work."""


class ClientClosedError(AkoolError, RuntimeError):
    """The client was used after it was closed."""

    hint = "Create a new AkoolClient, or keep this one open for the application's lifetime"


class ValidationError(AkoolError, ValueError):
    """Bad input, caught before any request was sent: no credit was spent.

    ``secret=True`` (a credential given the wrong way) names only the value's type: the
    value itself is neither shown nor kept.
    """

    def __init__(self, field: str, value: object, allowed: str, *, secret: bool = False) -> None:
        if secret:
            shown = f"<a {type(value).__name__}, not shown>"
            value = shown
        else:
            shown = _short_repr(value)
        super().__init__(f"{field}={shown} is not valid: {allowed}")
        self.field = field
        self.value = value
        self.allowed = allowed


class InvalidSettingError(ValidationError, ConfigurationError):
    """A setting of the client or of a policy has a value that cannot work: both a
    ``ValidationError`` (field, value, what is allowed) and a ``ConfigurationError``."""


def _short_repr(value: object) -> str:
    try:
        shown = repr(value)
    except Exception:  # a hostile __repr__ must not replace the error we mean to raise
        shown = f"<{type(value).__name__}>"
    if len(shown) > _MAX_VALUE_REPR:
        shown = shown[: _MAX_VALUE_REPR - 3] + "..."
    return shown


class PayloadError(AkoolError):
    """The server's answer could not be read (not JSON, an HTML page, missing fields)."""

    hint = "The API may have changed, or a proxy answered in its place"


class TransportError(AkoolError):
    """The request got no answer from the server."""

    hint = "Check the network and AKOOL_BASE_URL; reads are retried automatically"


class ConnectError(TransportError):
    """The connection could not be opened, so the request never left this machine."""


class RequestTimeoutError(TransportError, TimeoutError):
    """No answer arrived in time."""


class NetworkError(TransportError):
    """The connection broke while the request was under way."""


class HTTPStatusError(AkoolError):
    """The server (or a proxy) answered a non-2xx status without an Akool envelope."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int,
        endpoint: str | None = None,
        job_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message,
            http_status=http_status,
            endpoint=endpoint,
            job_id=job_id,
            retry_after=retry_after,
        )
        self.http_status: int = http_status  # always known here: narrower than the root's

    def _context(self) -> list[str]:
        return [f"HTTP {self.http_status}", *super()._context()]


class ServerError(HTTPStatusError):
    """A 5xx answer: the server failed, possibly after acting on the request."""

    hint = "Reads are retried automatically; a create is reported as uncertain instead"


class ThrottledError(AkoolError):
    """The server asked us to slow down: HTTP 429 (``TooManyRequestsError``) or business
    code 1005 (``RateLimitedError``). Nothing was created, so even a create is retried;
    ``retry_after`` is the wait the server asked for, when it said."""


class TooManyRequestsError(HTTPStatusError, ThrottledError):
    """HTTP 429: too many requests."""

    hint = "Lower the request rate; the client waits Retry-After before retrying"


class SharedBudgetUnavailableError(AkoolError):
    """The rate budget shared with other processes (``akool_async.redis_budget``) could not
    be reached within its bound, or refused our commands: the request was not sent (the
    budget fails closed, never letting requests through unbudgeted)."""

    hint = "Check that the Redis server is up and reachable; the request may be sent again"


class SubmissionUncertainError(AkoolError):
    """A create may have reached the server, so it was not retried (a retry could charge twice).

    ``request`` is the request that was sent (it holds no credentials), so the caller can
    look for the job before deciding to submit again. ``job_ids`` holds the ids the answer
    carried when it could be read that far (then the jobs exist: poll them).
    """

    hint = (
        "The job may exist and may have been charged: check before submitting again "
        "(the bulk runner lists such items as uncertain)"
    )

    def __init__(
        self,
        message: str,
        *,
        request: Any,  # a RequestSpec (this module imports nothing to name it)
        job_ids: tuple[str, ...] = (),
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint, job_id=request.job_id)
        self.request = request
        self.job_ids = job_ids


class DownloadError(AkoolError):
    """A finished image could not be saved."""

    def __init__(
        self, message: str, *, url: str, job_id: str | None = None, http_status: int | None = None
    ) -> None:
        super().__init__(message, http_status=http_status, endpoint="download", job_id=job_id)
        self.url = url


class ResultExpiredError(DownloadError):
    """The result URL answers 403/404/410: Akool keeps results for 7 days only."""

    hint = "Results expire after 7 days: download them as soon as the job completes"


class ImageCheckError(DownloadError):
    """The body is empty, not a PNG or JPEG, or cut short. Retried like a read."""

    hint = "A proxy may have answered, or the transfer was cut; it is retried automatically"


class JobError(AkoolError):
    """A job did not end with an image."""


class JobFailedError(JobError):
    """The job ended with status 4 (failed). Akool gives no reason. ``job`` is its last state."""

    hint = "Akool gives no reason for failures; submit again or change the prompt"

    def __init__(self, message: str, *, job: Any) -> None:  # an ImageJob
        super().__init__(message, job_id=job.id)
        self.job = job


class JobTimeoutError(JobError, TimeoutError):
    """Jobs did not finish before their deadline. They go on: wait on their ids again later.

    ``job_ids`` lists every job that timed out (``job_id`` is the first).
    """

    hint = "The jobs are still on the server: wait on their ids later to pick them up"

    def __init__(self, message: str, *, job_id: str | None = None,
                 job_ids: tuple[str, ...] = ()) -> None:  # fmt: skip
        job_ids = job_ids or ((job_id,) if job_id else ())
        super().__init__(message, job_id=job_id or (job_ids[0] if job_ids else None))
        self.job_ids = job_ids


class WebhookError(AkoolError):
    """A webhook callback that cannot be trusted or read (answer 4xx: retrying will not
    help), or, for ``WebhookDeliveryError``, one that was not taken (answer 5xx)."""


class WebhookDeliveryError(WebhookError):
    """A verified event that a listener failed to take (a bug, a misconfiguration): it is
    not marked handled, and the receiver answers 500 so that Akool sends it again."""


class WebhookSignatureError(WebhookError):
    """The callback's signature does not match: it did not come from Akool, or the client id
    differs. Nothing was decrypted."""

    hint = "Check the client id given to the webhook verifier"


class WebhookDecryptError(WebhookError):
    """The signed ciphertext did not decrypt: wrong API key, client id (IV) or corrupt data."""

    hint = "Check the API key (clientSecret) and client id given to the webhook verifier"


class WebhookPayloadError(WebhookError):
    """The callback body, or the event inside it, is not shaped as Akool sends it."""


class APIError(AkoolError):
    """The server answered with a business code other than 1000."""

    code: int = 0
    hint = "See the message for the reason"

    def _context(self) -> list[str]:
        return [f"code {self.code}", *super()._context()]


class AuthenticationError(APIError):
    hint = "Check the API key (or client id and secret)"


class IllegalTransitionError(RuntimeError):
    """An event the item's state does not allow (a driver bug: an answer twice, a status
    for a job that already ended, an id the tree never made). ``state`` and an enum
    ``trigger`` are the follow machine's (``_follow_states``)."""

    def __init__(self, item: str, state: enum.Enum | None, trigger: enum.Enum | str) -> None:
        shown = "unknown" if state is None else f"{type(state).__name__}.{state.name}"
        why = trigger.name if isinstance(trigger, enum.Enum) else trigger
        super().__init__(f"{item}: {why} is not allowed in state {shown}")
        self.item, self.state, self.trigger = item, state, trigger


class ClaimLostError(RuntimeError):
    """A write carried a fence older than the item's: another worker holds it now."""

    def __init__(self, key: str, fence: int) -> None:
        super().__init__(f"item {key!r}: claim with fence {fence} was taken over; stop writing")
        self.key, self.fence = key, fence
