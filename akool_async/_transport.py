"""The only module that does HTTP.

It sends a ``RequestSpec`` with the headers it is given and hands back a ``RawResponse``,
turning the HTTP library's errors into ours. Requests in flight are capped by our own
limiter in front of httpx's pool (httpx degrades sharply past ~10 concurrent requests on
one client; see the shared perf notes), and the pool is sized from that cap so a request
that got past the limiter never waits for a connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import anyio
import httpx

from ._exceptions import ConnectError, NetworkError, RequestTimeoutError, TransportError
from ._protocol import RawResponse, RequestSpec

DEFAULT_MAX_IN_FLIGHT = 8
DEFAULT_TIMEOUT = 30.0


class Transport(Protocol):
    """The seam between the client and an HTTP library."""

    async def send(
        self, request: RequestSpec, headers: Mapping[str, str], *, timeout: float
    ) -> RawResponse: ...

    async def aclose(self) -> None: ...


class HttpxTransport:
    """Sends requests through one long-lived ``httpx.AsyncClient``."""

    def __init__(
        self,
        base_url: str,
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._owns_client = http_client is None
        self._http = http_client or httpx.AsyncClient(
            transport=transport,
            limits=httpx.Limits(
                max_connections=max_in_flight, max_keepalive_connections=max_in_flight
            ),
            timeout=DEFAULT_TIMEOUT,
        )
        self._in_flight = anyio.CapacityLimiter(max_in_flight)

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
                raise _translate(exc, request) from exc
        return RawResponse(response.status_code, response.headers, response.content)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._http.aclose()


def _translate(exc: httpx.HTTPError, request: RequestSpec) -> TransportError:
    context = {"endpoint": request.endpoint.name, "job_id": request.job_id}
    # A pool timeout or a refused connection means the request never left.
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return ConnectError(f"could not connect: {type(exc).__name__}", **context)
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeoutError(f"no answer in time: {type(exc).__name__}", **context)
    return NetworkError(f"the connection failed: {type(exc).__name__}: {exc}", **context)
