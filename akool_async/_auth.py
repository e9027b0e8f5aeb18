"""Credentials: an API key (``x-api-key``) or a client id and secret exchanged once for a
bearer token. Exactly one auth header is ever sent: the server prefers ``Authorization``
when both come, which would silently ignore the key."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping

import anyio
import attrs

from ._arguments import is_header_safe
from ._exceptions import ConfigurationError
from ._models import Token

FetchToken = Callable[[], Awaitable[Token]]
AUTH_HEADERS = ("authorization", "x-api-key")


class ApiKeyAuth:
    """The recommended scheme: the API key in ``x-api-key``."""

    refreshable = False

    def __init__(self, api_key: str) -> None:
        self._headers = {"x-api-key": api_key}

    async def headers(self, fetch: FetchToken) -> tuple[Mapping[str, str], int]:
        return self._headers, 0

    def invalidate(self, generation: int) -> None:
        raise NotImplementedError("an API key cannot be refreshed")

    def secrets(self) -> tuple[str, ...]:
        return (self._headers["x-api-key"],)

    def __repr__(self) -> str:
        return "ApiKeyAuth(<redacted>)"


@attrs.define
class _Flight:
    """One token fetch under way; the tasks that need a token wait for its outcome."""

    done: anyio.Event = attrs.Factory(anyio.Event)
    error: Exception | None = None


class TokenAuth:
    """The legacy scheme: getToken once (it lasts over a year), then ``Authorization: Bearer``.

    However many tasks need a token at once, one fetch runs and all share its outcome, its
    failure included (a failing getToken is not tried again by every waiter in turn). After
    a 1101 the client calls ``invalidate`` with the generation of the token it used, so a
    burst of 1101s on one token causes one fetch, even if the server hands out the same
    token value again.
    """

    refreshable = True

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self._headers: Mapping[str, str] | None = None
        self._token = ""
        self._generation = 0
        self._flight: _Flight | None = None

    async def headers(self, fetch: FetchToken) -> tuple[Mapping[str, str], int]:
        while self._headers is None:
            flight = self._flight
            if flight is None:
                await self._fetch(fetch)
            else:
                await flight.done.wait()
                if flight.error is not None:
                    raise flight.error
                # A cancelled fetch leaves no token and no error: someone fetches again.
        return self._headers, self._generation

    async def _fetch(self, fetch: FetchToken) -> None:
        flight = self._flight = _Flight()
        try:
            self._token = (await fetch()).token
            self._headers = {"authorization": f"Bearer {self._token}"}
            self._generation += 1
        except Exception as exc:
            flight.error = exc
            raise
        finally:
            self._flight = None
            flight.done.set()

    def invalidate(self, generation: int) -> None:
        """Forget the token of ``generation`` (unless it was already replaced)."""
        if generation == self._generation:
            self._headers = None

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.client_secret, self._token) if s)

    def __repr__(self) -> str:
        return f"TokenAuth(client_id={self.client_id!r}, <secret redacted>)"


Auth = ApiKeyAuth | TokenAuth


def auth_from(api_key: str | None, client_id: str | None, client_secret: str | None) -> Auth:
    """The auth scheme for the given credentials, or the environment's when none are given.

    Surrounding whitespace (a key read from a file keeps its newline) is dropped; a key
    that still cannot travel in a header is refused without being echoed.
    """
    if api_key is None and client_id is None and client_secret is None:
        api_key = os.environ.get("AKOOL_API_KEY") or None
        if api_key is None:
            client_id = os.environ.get("AKOOL_CLIENT_ID") or None
            client_secret = os.environ.get("AKOOL_CLIENT_SECRET") or None
    if api_key is not None and (client_id is not None or client_secret is not None):
        raise ConfigurationError(
            "give either api_key or client_id + client_secret, not both "
            "(the server would ignore the key)"
        )
    if api_key is not None:
        api_key = api_key.strip()
        if not api_key:
            raise ConfigurationError("api_key is empty")
        if not is_header_safe(api_key):
            raise ConfigurationError(
                "api_key holds characters an HTTP header cannot carry (spaces, control or "
                "non-ASCII characters): check how it was copied"
            )
        return ApiKeyAuth(api_key)
    if client_id and client_secret:
        return TokenAuth(client_id.strip(), client_secret.strip())
    if client_id or client_secret:
        raise ConfigurationError("token auth needs both client_id and client_secret")
    raise ConfigurationError(
        "no credentials: pass api_key=... or set AKOOL_API_KEY "
        "(or client_id + client_secret / AKOOL_CLIENT_ID + AKOOL_CLIENT_SECRET)"
    )
