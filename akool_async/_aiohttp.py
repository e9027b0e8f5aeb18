"""A transport on aiohttp (the ``aiohttp`` extra; asyncio only).

It talks to aiohttp directly, request spec in, status + headers + bytes out, without
building httpx's request and response models: per request it costs a fraction of httpx's
CPU (see the shared perf notes and ``benchmarks/overhead.py``). Behaviour is the
``HttpxTransport``'s: the same error translation (a failure before the request left is a
``ConnectError``, so a create may be sent again; any later one is not), no redirects
followed, downloads on their own pool without credentials, and a graceful close.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import anyio
import sniffio
import yarl

from ._closing import OpenState
from ._defaults import (
    DEFAULT_CLOSE_GRACE,
    DEFAULT_MAX_DOWNLOADS,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_RESPONSE_BYTES,
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
from ._transport import (
    StreamedResponse,
    Wire,
    read_capped,
)

_JSON = {"content-type": "application/json"}
_CHUNK = 64 * 1024


class AiohttpTransport:
    """Sends requests through one long-lived ``aiohttp.ClientSession`` (made on first use,
    inside the running event loop), its pool sized to the client's cap on requests in
    flight so a request never waits for a connection."""

    enforces_deadline = True  # aiohttp's total timeout: the requester needs no scope of its own

    def __init__(
        self,
        base_url: str,
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_downloads: int = DEFAULT_MAX_DOWNLOADS,
        close_grace: float = DEFAULT_CLOSE_GRACE,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
        state: OpenState | None = None,
    ) -> None:
        self.base_url = base_url
        self.max_response_bytes = max_response_bytes
        # Creates get a session of their own that never reuses a connection idle for more
        # than half the keep-alive expiry (see ``_shards``: a server closing it just then
        # would make the create uncertain).
        self._plan = (
            (max_in_flight, keepalive_expiry),
            (max_in_flight, keepalive_expiry / 2),
            (max_downloads, keepalive_expiry),
        )
        self._api: aiohttp.ClientSession | None = None
        self._creates: aiohttp.ClientSession | None = None
        self._cdn: aiohttp.ClientSession | None = None
        self._downloading = Gate(max_downloads)
        self._wire = Wire(close_grace, state)
        self._urls: dict[str, yarl.URL] = {}

    def _sessions(
        self,
    ) -> tuple[aiohttp.ClientSession, aiohttp.ClientSession, aiohttp.ClientSession]:
        if self._api is None or self._creates is None or self._cdn is None:
            if sniffio.current_async_library() != "asyncio":
                raise ConfigurationError(
                    "the aiohttp transport runs on asyncio only; use the default (httpx) on trio"
                )
            self._api, self._creates, self._cdn = (self._session(*plan) for plan in self._plan)
        return self._api, self._creates, self._cdn

    def _session(self, size: int, keepalive: float) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=size, limit_per_host=size, keepalive_timeout=keepalive
            ),
            cookie_jar=aiohttp.DummyCookieJar(),  # the API sets none; a CDN's must not stick
            trust_env=False,
        )

    @staticmethod
    @functools.lru_cache(maxsize=32)  # a handful of values; one object each, not one a call
    def _timeout(seconds: float) -> aiohttp.ClientTimeout:
        # The whole exchange (``total``: a trickling server cannot hold it open), and each
        # of connecting and every wait for data within it.
        return aiohttp.ClientTimeout(total=seconds, sock_connect=seconds, sock_read=seconds)

    def _url(self, path: str) -> yarl.URL:
        """The endpoint's URL, parsed once (aiohttp would parse a string on every call)."""
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = yarl.URL(self.base_url + path)
        return url

    async def send(
        self, request: RequestSpec, headers: Mapping[str, str], *, timeout: float
    ) -> RawResponse:
        endpoint = request.endpoint
        body = request.body
        with self._wire.entered():
            api, creates, _ = self._sessions()
            try:
                async with (creates if endpoint.creates else api).request(
                    endpoint.method,
                    self._url(endpoint.path),
                    params=request.params,
                    data=body,
                    headers={**headers, **_JSON} if body is not None else headers,
                    allow_redirects=False,
                    timeout=self._timeout(timeout),
                ) as response:
                    content = await self._read(response)
                    if content is not None:
                        return RawResponse(response.status, response.headers, content)
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                error, cause = self._translate(exc, endpoint.name, request.job_id), exc
            else:
                raise PayloadError(
                    f"the answer is larger than max_response_bytes ({self.max_response_bytes})",
                    endpoint=endpoint.name,
                    job_id=request.job_id,
                    http_status=status,
                )
        # Raised out of the except clause, so aiohttp's error (it may quote the request,
        # whose headers hold the credentials) is not our error's __context__.
        raise error from _summary(cause)

    async def _read(self, response: aiohttp.ClientResponse) -> bytes | None:
        """The body, or None past ``max_response_bytes``. A declared length under the cap
        with no content coding is read at once (the usual answer: the fast path)."""
        length = response.content_length
        plain = "content-encoding" not in response.headers
        if plain and length is not None and length <= self.max_response_bytes:
            return await response.read()
        chunks = response.content.iter_chunked(_CHUNK)
        return await read_capped(response.headers, chunks, self.max_response_bytes)

    @contextlib.asynccontextmanager
    async def stream(self, url: str, *, timeout: float) -> AsyncIterator[StreamedResponse]:
        async with self._downloading:
            with self._wire.entered():
                *_, cdn = self._sessions()
                try:
                    async with cdn.get(
                        url, allow_redirects=False, timeout=self._timeout(timeout)
                    ) as response:
                        chunks = response.content.iter_chunked(_CHUNK)
                        yield StreamedResponse(response.status, response.headers, chunks)
                        return
                except (aiohttp.ClientError, TimeoutError) as exc:
                    error, cause = self._translate(exc, "download", None), exc
                raise error from _summary(cause)

    async def aclose(self) -> None:
        if not await self._wire.close():
            return
        with anyio.CancelScope(shield=True):
            for session in (self._api, self._creates, self._cdn):
                if session is not None:
                    await session.close()
        self._wire.finish()

    @staticmethod
    def _translate(exc: BaseException, endpoint: str, job_id: str | None) -> AkoolError:
        """aiohttp's errors as ours, by whether the request can have left the client. The
        cause is dropped: aiohttp's messages may quote the request, and its headers hold
        the credentials."""
        context: dict[str, Any] = {"endpoint": endpoint, "job_id": job_id}
        name = type(exc).__name__
        if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
            return ConfigurationError(f"the request could not be built ({name})")
        if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
            return ConnectError(f"could not connect: {name}", **context)
        if isinstance(exc, TimeoutError):  # aiohttp's read timeouts are TimeoutErrors too
            return RequestTimeoutError(f"no answer in time: {name}", **context)
        return NetworkError(f"the connection failed: {name}", **context)


def _summary(exc: BaseException) -> CauseSummary | None:
    """The cause as text, except for errors that may quote our own request."""
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return None
    return CauseSummary.of(exc)
