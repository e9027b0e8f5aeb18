"""The only module that does HTTP.

It sends a ``RequestSpec`` with the headers it is given and hands back a ``RawResponse``,
turning the HTTP library's errors into ours. Requests in flight are capped by our own
limiter in front of httpx's pool (httpx degrades sharply past ~10 concurrent requests on
one client; see the shared perf notes), and the pool is sized from that cap so a request
that got past the limiter never waits for a connection; it is split in shards of two
connections (``_shards``), since httpcore's cost per request grows with a pool's size.
"""

from __future__ import annotations

import contextlib
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import anyio
import attrs
import httpx

from ._auth import AUTH_HEADERS
from ._closing import OpenState, Step
from ._defaults import (
    DEFAULT_CLOSE_GRACE,
    DEFAULT_MAX_DOWNLOADS,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    KEEPALIVE_EXPIRY,
)
from ._exceptions import (
    AkoolError,
    ConfigurationError,
    ConnectError,
    NetworkError,
    PayloadError,
    RequestTimeoutError,
)
from ._gate import Gate
from ._protocol import RawResponse, RequestSpec
from ._redaction import CauseSummary
from ._shards import CREATES, SHARD, ShardedPool


@attrs.frozen
class StreamedResponse:
    """A response whose body arrives in chunks (a download)."""

    status_code: int
    headers: Mapping[str, str]
    chunks: AsyncIterator[bytes]


class Transport(Protocol):
    """The seam between the client and an HTTP library."""

    async def send(
        self, request: RequestSpec, headers: Mapping[str, str], *, timeout: float
    ) -> RawResponse: ...

    def stream(self, url: str, *, timeout: float) -> AbstractAsyncContextManager[StreamedResponse]:
        """GET an absolute URL (a result on a CDN) without credentials, body streamed."""
        ...

    async def aclose(self) -> None: ...


class HttpxTransport:
    """Sends requests through one long-lived ``httpx.AsyncClient``.

    Closing waits (up to ``close_grace`` seconds) for requests on the wire to finish, so
    shutting down does not turn in-flight creates into uncertain ones; requests not yet on
    the wire are refused with ``ClientClosedError``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_downloads: int = DEFAULT_MAX_DOWNLOADS,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        close_grace: float = DEFAULT_CLOSE_GRACE,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
        state: OpenState | None = None,
    ) -> None:
        if http_client is not None and transport is not None:
            raise ConfigurationError("give http_client or transport, not both")
        self.base_url = base_url
        self._owns_client = http_client is None
        # Our own pool, split in shards, unless the caller brought a client or transport,
        # or the environment names a proxy (httpx's own pool then routes by it).
        sharded = not (http_client or transport or urllib.request.getproxies())
        self._shards = ShardedPool(max_in_flight, keepalive_expiry) if sharded else None
        self._http = http_client or _pooled_client(
            self._shards or transport, max_in_flight, keepalive_expiry
        )
        # Results live on another host (a CDN): their own pool and cap, so downloads
        # never hold up API requests, and the API's credentials never go along.
        self._downloads = http_client or _pooled_client(transport, max_downloads, keepalive_expiry)
        self._downloading = Gate(max_downloads)
        self._wire = Wire(close_grace, state)
        self._on_the_wire = self._wire.entered
        self._urls: dict[str, httpx.URL] = {}
        self._default_headers = dict(self._http.headers)  # accept, user-agent...
        self._timeouts: dict[float, dict[str, float | None]] = {}
        self.max_response_bytes = max_response_bytes

    async def send(
        self, request: RequestSpec, headers: Mapping[str, str], *, timeout: float
    ) -> RawResponse:
        """Send one request. The cap on requests in flight is the caller's (the client's),
        and the pool is sized to it, so a request here never waits for a connection."""
        endpoint = request.endpoint
        body = request.body
        with self._on_the_wire():
            shards = self._shards
            if shards is None:
                http_request = self._client_request(request, body, headers, timeout)
            else:
                http_request = self._direct_request(request, body, headers, timeout)
                # A create on its own pool, which never reuses a connection idle for long.
                shard = CREATES if endpoint.creates else shards.take()
                http_request.extensions[SHARD] = shard
            error: AkoolError | None = None
            try:
                response = await self._http.send(http_request, follow_redirects=False, stream=True)
                try:
                    content = await read_capped(
                        response.headers,
                        response.aiter_bytes(),
                        self.max_response_bytes,
                        response.aclose,
                    )
                finally:
                    await response.aclose()
            except httpx.HTTPError as exc:
                error = _translate(exc, endpoint.name, request.job_id)
                cause = _summary(exc)
            finally:
                if shards is not None:
                    shards.give_back(shard)  # the body is read: the connection is free
            if error is not None:
                # Raised here, not in the except clause: the httpx error (its request holds
                # the credentials) must not become our error's __context__.
                raise error from cause
            if content is None:
                raise PayloadError(
                    f"the answer is larger than max_response_bytes ({self.max_response_bytes})",
                    endpoint=endpoint.name,
                    job_id=request.job_id,
                    http_status=response.status_code,
                )
        return RawResponse(response.status_code, response.headers, content)

    def _direct_request(
        self, request: RequestSpec, body: bytes | None, headers: Mapping[str, str], timeout: float
    ) -> httpx.Request:
        """A request of our own client's, built directly: ``build_request`` would merge in
        defaults this client never sets and parse the whole URL again (~20 µs)."""
        endpoint = request.endpoint
        url = self._urls.get(endpoint.path)
        if url is None:
            url = self._urls[endpoint.path] = httpx.URL(self.base_url + endpoint.path)
        timeouts = self._timeouts.get(timeout)
        if timeouts is None:
            if len(self._timeouts) > 32:  # a timeout computed per call must not pile up
                self._timeouts.clear()
            timeouts = self._timeouts[timeout] = httpx.Timeout(timeout).as_dict()
        all_headers = {**self._default_headers, **headers}
        if body is not None:
            all_headers["content-type"] = "application/json"
        http_request = httpx.Request(
            endpoint.method,
            url,
            params=request.params,
            content=body,
            headers=all_headers,
            extensions={"timeout": timeouts},
        )
        if self._http.cookies:  # a load balancer's affinity cookie, say: sent back
            self._http.cookies.set_cookie_header(http_request)
        return http_request

    def _client_request(
        self, request: RequestSpec, body: bytes | None, headers: Mapping[str, str], timeout: float
    ) -> httpx.Request:
        """A request of a client the caller gave, with its defaults (and its cookies)."""
        endpoint = request.endpoint
        http_request = self._http.build_request(
            endpoint.method,
            self.base_url + endpoint.path,
            params=request.params,
            content=body,
            headers=headers,
            timeout=timeout,
        )
        if body is not None:
            http_request.headers["content-type"] = "application/json"
        # An injected client's default headers must not add the other credential.
        for name in AUTH_HEADERS:
            if name not in headers and name in http_request.headers:
                del http_request.headers[name]
        return http_request

    @contextlib.asynccontextmanager
    async def stream(self, url: str, *, timeout: float) -> AsyncIterator[StreamedResponse]:
        async with self._downloading:
            with self._on_the_wire():
                error: AkoolError | None = None
                try:
                    async with self._downloads.stream("GET", url, timeout=timeout) as response:
                        chunks = response.aiter_bytes()
                        try:
                            yield StreamedResponse(response.status_code, response.headers, chunks)
                        finally:
                            if not response.is_closed:  # left before its end
                                await drop_body(chunks, response.aclose)
                except httpx.HTTPError as exc:
                    error, cause = _translate(exc, "download", None), _summary(exc)
                if error is not None:
                    raise error from cause

    async def aclose(self) -> None:
        if not await self._wire.close():
            return
        if self._owns_client:
            with anyio.CancelScope(shield=True):
                await self._http.aclose()
                await self._downloads.aclose()
        self._wire.finish()


class Wire:
    """Requests on the wire, for a graceful close: closing refuses new requests and waits
    (up to ``grace`` seconds) for those already sent, so shutting down does not turn
    in-flight creates into uncertain ones. Open or closed is ``state``'s (the client's,
    shared with its requester and scheduler: ``_closing``)."""

    def __init__(self, grace: float = DEFAULT_CLOSE_GRACE, state: OpenState | None = None) -> None:
        self.grace = grace
        self.state = state or OpenState()
        self._active = 0
        self._idle: anyio.Event | None = None

    @property
    def closed(self) -> bool:
        return self.state.closed

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        self.state.check_open()
        self._active += 1
        try:
            yield
        finally:
            self._active -= 1
            if self._idle is not None and not self._active:
                self._idle.set()

    async def close(self) -> bool:
        """Refuse new requests and let those on the wire finish; False if already closing
        (then ``finish`` once the pool is closed)."""
        if not self.state.step(Step.DRAIN):
            return False
        if self._active:
            self._idle = anyio.Event()
            with anyio.CancelScope(shield=True), anyio.move_on_after(self.grace):
                await self._idle.wait()
        return True

    def finish(self) -> None:
        """The pool is closed."""
        self.state.step(Step.FINISH)


def _pooled_client(
    transport: httpx.AsyncBaseTransport | None, size: int, keepalive_expiry: float
) -> httpx.AsyncClient:
    # The limits size httpx's own pool; a given transport has its own.
    limits = httpx.Limits(
        max_connections=size, max_keepalive_connections=size, keepalive_expiry=keepalive_expiry
    )
    return httpx.AsyncClient(transport=transport, limits=limits, timeout=DEFAULT_TIMEOUT)


async def read_capped(
    headers: Mapping[str, str],
    chunks: AsyncIterator[bytes],
    limit: int,
    abort: Callable[[], Awaitable[None]] | None = None,
) -> bytes | None:
    """The whole body, or None as soon as it is known to be larger than ``limit`` bytes
    (decoded: a small gzip bomb counts at its real size). ``abort`` closes the response
    when the body is left unread."""
    length = headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return None
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            await drop_body(chunks, abort)
            return None
        parts.append(chunk)
    return b"".join(parts)


async def drop_body(
    chunks: AsyncIterator[bytes], abort: Callable[[], Awaitable[None]] | None
) -> None:
    """Leave a body unread: close the response, then run its iterator to the error that
    closing causes. httpx's body is a chain of async generators; one left suspended is
    finalised by the garbage collector outside its event loop (trio warns), and closing
    the outermost does not close the ones inside."""
    with anyio.CancelScope(shield=True):
        if abort is not None:
            await abort()
        with contextlib.suppress(Exception):
            async for _ in chunks:
                pass


_LOCAL_ERRORS = (httpx.LocalProtocolError, httpx.UnsupportedProtocol)


def _summary(exc: httpx.HTTPError) -> CauseSummary | None:
    # A local protocol error quotes our own request (its header values: credentials).
    return None if isinstance(exc, _LOCAL_ERRORS) else CauseSummary.of(exc)


def _translate(exc: httpx.HTTPError, endpoint: str, job_id: str | None) -> AkoolError:
    if isinstance(exc, _LOCAL_ERRORS):
        # Its message quotes our own request (header values: credentials): not repeated.
        return ConfigurationError(f"the request could not be built ({type(exc).__name__})")
    # A pool timeout or a refused connection means the request never left.
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return ConnectError(
            f"could not connect: {type(exc).__name__}", endpoint=endpoint, job_id=job_id
        )
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeoutError(
            f"no answer in time: {type(exc).__name__}", endpoint=endpoint, job_id=job_id
        )
    return NetworkError(
        f"the connection failed: {type(exc).__name__}: {exc}", endpoint=endpoint, job_id=job_id
    )
