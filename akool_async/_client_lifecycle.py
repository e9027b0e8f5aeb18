"""An ``AkoolClient``'s running parts, opened and closed in order: the background host
(poll scheduler, follow-up work), the webhook subscription, the client's ``OpenState``
(``_closing``: one owner of "closed") and the connection pool.

The client's ``__aenter__``/``aclose``/``__aexit__`` delegate here; ``check_running`` is
the one place that says whether background work (waits, watches, ``generate``) may start.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable

from ._background import Background
from ._closing import Step
from ._exceptions import ConfigurationError
from ._polling import PollScheduler
from ._requester import Requester
from .webhook import WebhookEvent, WebhookReceiver


class ClientLifecycle:
    def __init__(self, requester: Requester, scheduler: PollScheduler) -> None:
        self._requester = requester
        self._state = requester.state  # one owner of "closed", shared by all the parts
        self._scheduler = scheduler
        self._background = Background()
        self._unsubscribe: Callable[[], None] | None = None
        self._loop_thread = 0

    @property
    def closed(self) -> bool:
        return self._state.closed

    async def open(self, webhook: WebhookReceiver | None) -> None:
        """Start the poll scheduler (once), and take ``webhook``'s callbacks from now on."""
        self._requester.check_open()
        if not self._background.running:
            await self._background.start(self._scheduler.run)
            if webhook is not None:
                self._loop_thread = threading.get_ident()
                self._unsubscribe = webhook.subscribe(self._on_callback)
                self._scheduler.expect_callbacks()

    def _on_callback(self, event: WebhookEvent) -> None:
        if threading.get_ident() != self._loop_thread:  # the scheduler is not thread-safe
            raise ConfigurationError(
                "the WebhookReceiver runs in another thread than this AkoolClient's event "
                "loop: serve it from the same app (the same event loop) as the client"
            )
        self._scheduler.notify(event)

    async def close(self) -> None:
        """Refuse new requests, stop the background (``join`` waits for it), close the pool."""
        if self._state.step(Step.CLOSE):
            if self._unsubscribe is not None:
                self._unsubscribe()
            self._background.stop()
            await self._requester.transport.aclose()
            self._state.step(Step.FINISH)  # a transport of the caller's does not say so

    async def join(self) -> None:
        """Wait for the background host to end (from ``__aexit__``, after ``close``)."""
        await self._background.close()

    def check_running(self) -> None:
        """Raise unless the client is open and its background runs (entered with ``async
        with``)."""
        self._requester.check_open()
        if not self._background.running or not self._scheduler.running:
            raise ConfigurationError(
                "wait(), as_completed(), watch() and generate() poll in the background: open "
                "the client with `async with AkoolClient(...) as client`"
            )

    def spawn(self, function: Callable[[], Awaitable[object]]) -> None:
        """Run ``function()`` in the background until it ends or the client closes."""
        self.check_running()
        self._background.spawn(function)
