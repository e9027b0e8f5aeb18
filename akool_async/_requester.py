"""The request path every endpoint shares: retries, auth headers (and the one token refresh
a 1101 allows), the exchange through the transport under one deadline per attempt, reading
the answer, redaction (the credentials, for errors built on the way and the foreign
exceptions chained to them), and one debug line per attempt. A create, once it is on its
way, is shielded from cancellation: it completes (or fails) within its deadline, and if the
caller was cancelled meanwhile the ids it created are logged at WARNING, so that a charged
job is never lost without a trace."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio
import anyio.lowlevel

from ._api_errors import InvalidTokenError
from ._auth import Auth, TokenAuth
from ._clock import SYSTEM_CLOCK
from ._closing import OpenState
from ._defaults import DEFAULT_MAX_IN_FLIGHT
from ._exceptions import (
    AkoolError,
    RequestTimeoutError,
    SubmissionUncertainError,
    ThrottledError,
    redacting,
)
from ._gate import Gate
from ._models import Token
from ._protocol import (
    GET_TOKEN,
    SUCCESS,
    RawResponse,
    RequestSpec,
    job_ids_in,
    parse_envelope,
    read_token,
    token_request,
)
from ._ratelimit import RateLimiter
from ._redaction import detach_causes
from ._retry import RetryPolicy, may_have_created
from ._transport import Transport

T = TypeVar("T")
Reader = Callable[[Mapping[str, Any], RequestSpec], T]
BeforeSend = Callable[[], Awaitable[object]]

log = logging.getLogger("akool_async")
_NO_HEADERS: Mapping[str, str] = {}


class Requester:
    def __init__(
        self,
        transport: Transport,
        auth: Auth,
        retry: RetryPolicy,
        timeout: float,
        limiter: RateLimiter | None = None,
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        state: OpenState | None = None,
    ) -> None:
        self.transport = transport
        self.auth = auth
        self.retry = retry
        self.timeout = timeout
        self.limiter = limiter
        # A transport whose own timeout covers the whole exchange spares a cancel scope
        # per request (~10 µs: a tenth of an aiohttp request).
        self._own_deadline = not getattr(transport, "enforces_deadline", False)
        # Requests on the wire at once. The rate slot is taken only once a request holds
        # one of these, right before it is sent: taken earlier, requests would queue here
        # after their slots and reach the server bunched, past its own bucket.
        self.in_flight = Gate(max_in_flight)
        self.state = state or OpenState()  # the client's, shared with transport and scheduler
        self.sent = 0  # requests sent to the API (every attempt), for progress displays

    @property
    def closed(self) -> bool:
        return self.state.closed

    def check_open(self) -> None:
        self.state.check_open()

    async def call(
        self,
        request: RequestSpec,
        read: Reader[T],
        timeout: float | None,
        before_send: BeforeSend | None = None,
    ) -> T:
        """Send ``request`` under the retry policy and read its answer with ``read``.

        ``before_send`` is awaited once, when the request first holds its place on the wire
        and its rate slot: until then nothing was sent, so a caller that records its intent
        there knows a crash before it left nothing on the server.
        """
        self.check_open()
        attempt = itertools.count(1)
        seconds = self.timeout if timeout is None else timeout
        announce = None if before_send is None else _once(before_send)
        with redacting(self.auth.secrets):  # no error built on the way holds them (a token too)
            return await self.retry.call(
                lambda: self._attempt(request, read, seconds, next(attempt), announce),
                creates=request.endpoint.creates,
                endpoint=request.endpoint.name,
                paced=self.limiter is not None,
            )

    async def _fetch_token(self) -> Token:
        assert isinstance(self.auth, TokenAuth)
        request = token_request(self.auth.client_id, self.auth.client_secret)
        return await self.call(request, read_token, None)

    async def _attempt(
        self,
        request: RequestSpec,
        read: Reader[T],
        timeout: float,
        attempt: int,
        announce: BeforeSend | None = None,
    ) -> T:
        self.check_open()  # also between retries: a closed client sends nothing more
        if request.endpoint is GET_TOKEN:
            return await self._exchange(request, _NO_HEADERS, read, timeout, attempt)
        auth = self.auth
        headers, generation = await auth.headers(self._fetch_token)
        try:
            return await self._exchange(request, headers, read, timeout, attempt, announce=announce)
        except InvalidTokenError:
            if not auth.refreshable:
                raise
            # The token expired: fetch a new one, once. A 1101 proves nothing was created,
            # so even a create may be sent again.
            auth.invalidate(generation)
            headers, _ = await auth.headers(self._fetch_token)
            return await self._exchange(request, headers, read, timeout, attempt)

    async def _exchange(
        self,
        request: RequestSpec,
        headers: Mapping[str, str],
        read: Reader[T],
        timeout: float,
        attempt: int,
        *,
        announce: BeforeSend | None = None,
    ) -> T:
        started = SYSTEM_CLOCK.now()
        response: RawResponse | None = None
        left = False  # whether the request was handed to the transport
        try:
            async with self.in_flight:
                if self.limiter is not None:
                    await self.limiter.acquire()
                if announce is not None:
                    await announce()
                self.sent += 1
                left = True
                if request.endpoint.creates:
                    # On its way, a create completes even if the caller is cancelled: a
                    # cancelled send would leave a charged job nobody knows of.
                    with anyio.CancelScope(shield=True):
                        response = sent = await self._send(request, headers, timeout)
                    await _created_despite_cancel(request, sent)
                else:
                    response = sent = await self._send(request, headers, timeout)
            result = read(parse_envelope(request, sent), request)
        except AkoolError as exc:
            _log_request(request, response, started, attempt, exc)
            self._detach_causes(exc)
            if self.limiter is not None and isinstance(exc, ThrottledError):
                await self.limiter.report_throttled(exc.retry_after)
            if request.endpoint.creates and left and may_have_created(exc):
                raise SubmissionUncertainError(
                    f"the create may have reached the server ({type(exc).__name__}: "
                    f"{exc.message}), so it was not retried",
                    request=request,
                    job_ids=job_ids_in(response),
                    endpoint=request.endpoint.name,
                ) from exc
            raise
        _log_request(request, response, started, attempt, None)
        return result

    async def _send(
        self, request: RequestSpec, headers: Mapping[str, str], timeout: float
    ) -> RawResponse:
        """One exchange under one deadline, however slowly the answer trickles in."""
        if not self._own_deadline:
            return await self.transport.send(request, headers, timeout=timeout)
        with anyio.move_on_after(timeout) as deadline:
            return await self.transport.send(request, headers, timeout=timeout)
        assert deadline.cancelled_caught
        raise RequestTimeoutError(
            f"no whole answer within {timeout:g} s",
            endpoint=request.endpoint.name,
            job_id=request.job_id,
        )

    def _detach_causes(self, exc: AkoolError) -> None:
        """Keep credentials out of what is chained to the error (an HTTP library's request
        holds them in its headers); its own message left them out as it was built."""
        detach_causes(exc, self.auth.secrets())


async def _created_despite_cancel(request: RequestSpec, response: RawResponse) -> None:
    """Deliver a cancellation that came while a create was shielded, after logging what
    it created (the answer is otherwise dropped with the cancelled call)."""
    try:
        await anyio.lowlevel.checkpoint_if_cancelled()
    except anyio.get_cancelled_exc_class():
        ids = job_ids_in(response)
        log.warning(
            "%s was cancelled after it was sent; it created job(s) %s (HTTP %s): follow "
            "them with wait() or info_by_model_id(), they may be charged",
            request.endpoint.name,
            ", ".join(ids) or "(none readable)",
            response.status_code,
        )
        raise


def _once(hook: BeforeSend) -> BeforeSend:
    """``hook`` on the first call only (a retry or a token refresh sends the request again)."""
    pending: list[BeforeSend] = [hook]

    async def announce() -> None:
        if pending:
            await pending.pop()()

    return announce


def _log_request(
    request: RequestSpec,
    response: RawResponse | None,
    started: float,
    attempt: int,
    error: AkoolError | None,
) -> None:
    """One debug line per request; never headers or bodies (they hold credentials)."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    endpoint = request.endpoint
    status = response.status_code if response is not None else "-"
    code = (error.code or "-") if error else SUCCESS
    log.debug(
        "%s %s%s -> HTTP %s code %s in %.1f ms (attempt %d)%s",
        endpoint.method,
        endpoint.path,
        f" job={request.job_id}" if request.job_id else "",
        status,
        code,
        (SYSTEM_CLOCK.now() - started) * 1000,
        attempt,
        f" {type(error).__name__}" if error else "",
    )
