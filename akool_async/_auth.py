"""Credentials: an API key (``x-api-key``) or a client id and secret exchanged once for a
bearer token. Exactly one header is ever sent: the server prefers ``Authorization`` when
both come, which would silently ignore the key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import anyio

from ._models import Token

_JSON = {"content-type": "application/json"}

FetchToken = Callable[[], Awaitable[Token]]


class ApiKeyAuth:
    """The recommended scheme: the API key in ``x-api-key``."""

    refreshable = False

    def __init__(self, api_key: str) -> None:
        self._headers = {"x-api-key": api_key}
        self._post_headers = {**self._headers, **_JSON}

    async def headers(self, *, post: bool) -> Mapping[str, str]:
        return self._post_headers if post else self._headers

    def secrets(self) -> tuple[str, ...]:
        return (self._headers["x-api-key"],)

    def __repr__(self) -> str:
        return "ApiKeyAuth(<redacted>)"


class TokenAuth:
    """The legacy scheme: getToken once (it lasts over a year), then ``Authorization: Bearer``.

    Concurrent callers share one fetch. After a 1101 answer the client calls
    ``invalidate`` with the token it used, and the next caller fetches a fresh one.
    """

    refreshable = True

    def __init__(self, client_id: str, client_secret: str, fetch: FetchToken) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self._fetch = fetch
        self._lock = anyio.Lock()
        self._token: str | None = None
        self._headers: Mapping[str, str] = {}
        self._post_headers: Mapping[str, str] = {}

    @property
    def token_payload(self) -> dict[str, str]:
        return {"clientId": self.client_id, "clientSecret": self._client_secret}

    async def headers(self, *, post: bool) -> Mapping[str, str]:
        if self._token is None:
            async with self._lock:
                if self._token is None:  # another task may have fetched it meanwhile
                    token = (await self._fetch()).token
                    self._headers = {"authorization": f"Bearer {token}"}
                    self._post_headers = {**self._headers, **_JSON}
                    self._token = token
        return self._post_headers if post else self._headers

    @property
    def current_token(self) -> str | None:
        return self._token

    def invalidate(self, used: str | None) -> None:
        """Forget ``used`` (unless another task already replaced it)."""
        if used is not None and self._token == used:
            self._token = None

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self._client_secret, self._token) if s)

    def __repr__(self) -> str:
        return f"TokenAuth(client_id={self.client_id!r}, <secret redacted>)"


Auth = ApiKeyAuth | TokenAuth
