"""Akool webhooks: verify, decrypt and read callbacks, and receive them in a web app.

The pure functions (``open_callback``, ``verify``, ``decrypt``, ``parse_event``...) follow
the scheme in ``_webhook_crypto``. ``WebhookReceiver`` is an ASGI app to mount in FastAPI or
Starlette (or serve on its own); give it to an ``AkoolClient`` and waits finish as soon as
a verified callback arrives, while polling stretches to a safety net::

    receiver = WebhookReceiver(api_key=KEY, client_id=CLIENT_ID)
    app.router.routes.append(Route("/akool/webhook", receiver, methods=["POST"]))
    client = AkoolClient(api_key=KEY, webhook=receiver,
                         webhook_url="https://my.app/akool/webhook")

Needs the ``webhooks`` extra (``cryptography``) to decrypt.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import attrs

from . import _defaults as d
from ._arguments import check_count, check_number
from ._clock import SYSTEM_CLOCK
from ._exceptions import (
    InvalidSettingError,
    WebhookDeliveryError,
    WebhookError,
    WebhookSignatureError,
)
from ._models import WebhookEvent
from ._webhook_crypto import (
    SignedCallback,
    decrypt,
    encrypt,
    open_callback,
    parse_callback,
    parse_event,
    seal_event,
    sign,
    verify,
)

__all__ = [
    "SignedCallback",
    "WebhookEvent",
    "WebhookReceiver",
    "WebhookStats",
    "decrypt",
    "encrypt",
    "open_callback",
    "parse_callback",
    "parse_event",
    "seal_event",
    "sign",
    "verify",
]

log = logging.getLogger("akool_async.webhook")


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Listener = Callable[[WebhookEvent], None]

MAX_BODY = d.WEBHOOK_MAX_BODY


@attrs.define
class WebhookStats:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    last_accepted: float | None = None  # epoch seconds


class WebhookReceiver:
    """An ASGI app for Akool's callbacks.

    A valid callback is answered 200 at once and handed to every subscriber (an
    ``AkoolClient`` subscribes itself). A bad signature, or a timestamp outside
    ``tolerance`` seconds of now (a replay), is answered 401; a malformed body 400; the
    reason is logged, never sent back. Akool retries what is not answered 200, so a
    (job, status) already handled is answered 200 and not handed on again.
    """

    def __init__(
        self,
        *,
        api_key: str,
        client_id: str,
        tolerance: float = d.WEBHOOK_TOLERANCE,
        remember: int = d.WEBHOOK_REMEMBER,
        clock: Callable[[], float] = SYSTEM_CLOCK.wall,
    ) -> None:
        for name, secret in (("api_key", api_key), ("client_id", client_id)):
            if not isinstance(secret, str) or not secret:
                raise InvalidSettingError(name, secret, "a non-empty str", secret=True)
        check_number("tolerance", tolerance)
        check_count("remember", remember, maximum=100_000_000)
        if not callable(clock):
            raise InvalidSettingError("clock", clock, "a callable giving epoch seconds")
        self._api_key = api_key
        self._client_id = client_id
        self.tolerance = tolerance
        self._clock = clock
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._remember = remember
        self._listeners: list[Listener] = []
        self.stats = WebhookStats()

    def __repr__(self) -> str:
        return "WebhookReceiver(<client id and key redacted>)"  # the client id signs, too

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for each new verified event; returns the unsubscriber."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def accept(self, body: bytes | str | dict[str, Any]) -> WebhookEvent | None:
        """Verify, decrypt and dispatch one callback body: the event, or None when it was
        a duplicate. Raises ``WebhookError`` for what cannot be trusted or read."""
        callback = parse_callback(body)
        verify(callback, client_id=self._client_id)
        if abs(self._clock() - callback.timestamp / 1000) > self.tolerance:
            raise WebhookSignatureError("the callback is outside the time window (a replay?)")
        event = parse_event(
            decrypt(callback.data_encrypt, api_key=self._api_key, client_id=self._client_id)
        )
        key = (event.job_id, int(event.status))
        if key in self._seen:
            self.stats.duplicates += 1
            return None
        failed = 0
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # the others still get it; Akool will send it again
                failed += 1
                log.exception("a webhook listener failed on job %s", event.job_id)
        if failed:
            raise WebhookDeliveryError(f"{failed} listener(s) failed on this event")
        self._seen[key] = None  # handled: a retry of it is a duplicate from now on
        if len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        self.stats.accepted += 1
        self.stats.last_accepted = self._clock()
        return event

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            status = await self._handle(scope, receive)
            await _answer(send, status, {"ok": status == 200})

    async def _handle(self, scope: Scope, receive: Receive) -> int:
        """The HTTP status for one request (the reason goes to the log, not the answer)."""
        if scope.get("method") != "POST":
            return 405
        body = await _body(receive)
        if body is None:
            return 413
        if not self._listeners:  # nobody to hand it to yet (starting up): Akool retries
            return 503
        try:
            self.accept(body)
        except WebhookDeliveryError:
            return 500  # logged where it failed; Akool sends it again
        except WebhookError as exc:
            self.stats.rejected += 1
            status = 401 if isinstance(exc, WebhookSignatureError) else 400
            log.warning("refused a webhook callback (%s): %s", status, exc.message)
            return status
        return 200


async def _body(receive: Receive) -> bytes | None:
    """The request body, or None when it is too large (read to its end, kept no further)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks) if size <= MAX_BODY else None


async def _answer(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
