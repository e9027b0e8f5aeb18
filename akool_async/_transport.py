"""The only module that does HTTP.

It sends a ``RequestSpec`` with the headers it is given and hands back a ``RawResponse``,
turning the HTTP library's errors into ours. Requests in flight are capped by our own
limiter in front of httpx's pool (httpx degrades sharply past ~10 concurrent requests on
one client; see the shared perf notes), and the pool is sized from that cap so a request
that got past the limiter never waits for a connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import anyio
import attrs
import httpx

from ._exceptions import ConnectError, NetworkError, RequestTimeoutError, TransportError
from ._protocol import RawResponse, RequestSpec

DEFAULT_MAX_IN_FLIGHT = 8
DEFAULT_MAX_DOWNLOADS = 8
DEFAULT_TIMEOUT = 30.0


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
    """Sends requests through one long-lived ``httpx.AsyncClient``."""

    def __init__(
        self,
        base_url: str,
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_downloads: int = DEFAULT_MAX_DOWNLOADS,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._owns_client = http_client is None
        self._http = http_client or _pooled_client(transport, max_in_flight)
        # Results live on another host (a CDN): their own pool and cap, so downloads
        # never hold up API requests, and the API's credentials never go along.
        self._downloads = http_client or _pooled_client(transport, max_downloads)
        self._in_flight = anyio.CapacityLimiter(max_in_flight)
        self._downloading = anyio.CapacityLimiter(max_downloads)

    async def send(
        self, request: RequestSpec, headers: Mapping[str, str], *, timeout: float
    ) -> RawResponse:
        endpoint = request.endpoint
        async with self._in_flight:
            try:
                response = await self._http.request(
                    endpoint.method,
                    self.base_url + endpoint.path,
                    params=request.params,
                    content=request.body,
                    headers=headers,
                    timeout=timeout,
                )
            except httpx.HTTPError as exc:
                raise _translate(exc, request.endpoint.name, request.job_id) from exc
        return RawResponse(response.status_code, response.headers, response.content)

    @contextlib.asynccontextmanager
    async def stream(self, url: str, *, timeout: float) -> AsyncIterator[StreamedResponse]:
        async with self._downloading:
            try:
                async with self._downloads.stream("GET", url, timeout=timeout) as response:
                    yield StreamedResponse(
                        response.status_code, response.headers, response.aiter_bytes()
                    )
            except httpx.HTTPError as exc:
                raise _translate(exc, "download", None) from exc

    async def aclose(self) -> None:
        if self._owns_client:
            await self._http.aclose()
            await self._downloads.aclose()


def _pooled_client(transport: httpx.AsyncBaseTransport | None, size: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=transport,
        limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
        timeout=DEFAULT_TIMEOUT,
    )


def _translate(exc: httpx.HTTPError, endpoint: str, job_id: str | None) -> TransportError:
    context = {"endpoint": endpoint, "job_id": job_id}
    # A pool timeout or a refused connection means the request never left.
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return ConnectError(f"could not connect: {type(exc).__name__}", **context)
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeoutError(f"no answer in time: {type(exc).__name__}", **context)
    return NetworkError(f"the connection failed: {type(exc).__name__}: {exc}", **context)
