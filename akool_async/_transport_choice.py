"""Which transport a client gets: httpx (the default), aiohttp (an extra, asyncio only)
or the caller's own. Above both transport modules, so that neither imports the other."""

from __future__ import annotations

from typing import Any, Literal

import httpx

from ._closing import OpenState
from ._exceptions import ConfigurationError
from ._transport import HttpxTransport, Transport


def make_transport(
    choice: httpx.AsyncBaseTransport | Transport | Literal["httpx", "aiohttp"] | None,
    base_url: str,
    *,
    http_client: httpx.AsyncClient | None,
    max_in_flight: int,
    max_downloads: int,
    max_response_bytes: int,
    keepalive_expiry: float,
    state: OpenState | None = None,
) -> Transport:
    """The client's transport: httpx (default; around a given httpx transport or client),
    aiohttp (asyncio only), or a ``Transport`` of the caller's, used as it is."""
    sizes: dict[str, Any] = {
        "max_in_flight": max_in_flight,
        "max_downloads": max_downloads,
        "max_response_bytes": max_response_bytes,
        "keepalive_expiry": keepalive_expiry,
        "state": state,  # the client's: one owner of "closed" (``_closing``)
    }
    if choice == "aiohttp":
        if http_client is not None:
            raise ConfigurationError("the aiohttp transport does its own HTTP: drop http_client")
        try:
            from ._aiohttp import AiohttpTransport
        except ImportError as exc:
            raise ConfigurationError(
                "transport='aiohttp' needs aiohttp: pip install 'akool-async[aiohttp]'"
            ) from exc
        return AiohttpTransport(base_url, **sizes)
    if choice is None or choice == "httpx" or isinstance(choice, httpx.AsyncBaseTransport):
        given = choice if isinstance(choice, httpx.AsyncBaseTransport) else None
        return HttpxTransport(base_url, http_client=http_client, transport=given, **sizes)
    if http_client is not None:
        raise ConfigurationError("a custom Transport does its own HTTP: drop http_client")
    return choice
