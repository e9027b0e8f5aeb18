"""``Emulator``: a fake Akool service to run in-process, on a port, or under pytest."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import anyio
import attrs
import httpx
from starlette.types import Receive, Scope, Send

from .._poll_policy import PollPolicy
from . import _persist
from ._app import ConnectionDropped, EmulatorApp
from ._config import EmulatorConfig, Faults, Fixed, LogNormal
from ._state import Backend, Clock, Counters
from ._webhooks import WebhookDispatcher

if TYPE_CHECKING:  # the return type of the client() convenience only
    from .._client import AkoolClient

IN_PROCESS_URL = "http://akool-emulator.local"


class EmulatorTransport(httpx.ASGITransport):
    """httpx's ASGI transport, with a dropped connection surfacing as httpx's own error."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except ConnectionDropped as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc


class Emulator:
    """A faithful local Akool service (see ``akool_async.emulator`` for the semantics).

    In-process::

        async with Emulator(EmulatorConfig(time_scale=1000)) as emulator:
            async with emulator.client() as client:
                jobs = await client.create_by_source_prompt(prompt="a fox", batch_quantity=4)

    ``async with`` runs the webhook dispatcher; without webhooks it is optional. The ASGI
    app is ``emulator`` itself (it runs the dispatcher from the ASGI lifespan), so it can be
    served by uvicorn: see ``serve_emulator``.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Clock | None = None,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        on_ready: Callable[[], object] | None = None,
    ) -> None:
        self.config = config or EmulatorConfig()
        self._on_ready = on_ready
        self.backend = Backend(self.config, clock)
        self._app = EmulatorApp(self.backend)
        self._dispatcher = WebhookDispatcher(self.backend, webhook_transport)
        self._running: contextlib.AsyncExitStack | None = None
        self._starlette_app = self._app.starlette
        self._starlette_app.router.lifespan_context = self._lifespan

    # -- credentials and state -----------------------------------------------------------

    @property
    def api_key(self) -> str:
        return self.config.api_key

    @property
    def client_id(self) -> str:
        return self.config.client_id

    @property
    def counters(self) -> Counters:
        return self.backend.counters

    def set_faults(self, faults: Faults) -> None:
        """Change the faults injected from now on."""
        self.config = self.backend.config = self._evolve(faults=faults)

    def _evolve(self, **changes: Any) -> EmulatorConfig:
        return attrs.evolve(self.config, **changes)

    def expire_tokens(self) -> None:
        self.backend.expire_tokens()

    async def callbacks_drained(self) -> None:
        """Wait until every webhook callback scheduled so far was delivered or given up on."""
        await self._dispatcher.drained()

    def save_state(self, path: Path) -> None:
        """Write the jobs, balances and create counts to ``path`` (JSON, atomically)."""
        _persist.save(self.backend, path)

    def load_state(self, path: Path) -> None:
        """Take up the jobs, balances and clock saved by ``save_state``."""
        _persist.load(self.backend, path)

    @property
    def client_secret(self) -> str:
        """What getToken accepts as ``clientSecret`` with ``client_id``: the API key, as
        on Akool (the API key is the old clientSecret)."""
        return self.config.api_key

    def image_bytes(self, job_id: str, part: int | None = None) -> bytes:
        """The exact bytes the emulator serves for a finished job's image (the grid, for a
        grid job), or for part 1-4 of a grid."""
        return self._app.image_bytes(self.backend.jobs[job_id], part)

    # -- running ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        stack = contextlib.AsyncExitStack()
        tasks = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tasks.cancel_scope.cancel)
        await tasks.start(self._dispatcher.run)
        self.backend.on_job_created = self._dispatcher.schedule
        self._running = stack
        if self._on_ready is not None:
            self._on_ready()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.backend.on_job_created = None
        if self._running is not None:
            stack, self._running = self._running, None
            await stack.aclose()

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: object) -> AsyncIterator[None]:
        async with self:
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._starlette_app(scope, receive, send)

    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport that reaches this emulator in-process (no sockets)."""
        return EmulatorTransport(app=self)

    def client(self, **options: Any) -> AkoolClient:
        """An ``AkoolClient`` wired to this emulator in-process, with its test API key.

        With ``instant=True`` the client does not wait either: no retry back-off, no rate
        limit (a rate limit is then the emulator's ``rate_limit`` to test against). Its poll
        policy follows the emulator's speed (see ``poll_policy``).
        """
        # Imported here: the emulator serves the API with models and the wire protocol
        # only; this convenience alone needs the client (tests/test_layers.py).
        from .._client import AkoolClient
        from .._retry import RetryPolicy

        options.setdefault("api_key", self.api_key)
        options.setdefault("base_url", IN_PROCESS_URL)
        if "http_client" not in options:
            options.setdefault("transport", self.transport())
        if self.config.instant:
            options.setdefault("retry", RetryPolicy(wait=False))
            options.setdefault("rate_limit", None)
        options.setdefault("poll_policy", self.poll_policy())
        return AkoolClient(**options)

    def poll_policy(self) -> PollPolicy:
        """A client poll policy matched to this emulator's speed (its own durations, its
        clock's scale), so a sped-up emulator is not polled at real-service intervals."""
        config = self.config
        if config.instant:
            return PollPolicy(
                expected_seconds=0.001, spread=0.1, min_interval=0.001, parts_interval=0.001
            )
        durations = config.durations
        if isinstance(durations, LogNormal):
            median, spread = durations.median, durations.sigma
        elif isinstance(durations, Fixed):
            median, spread = durations.seconds, 0.1
        else:  # a distribution of the user's: start from Akool's typical figures
            median, spread = 30.0, 0.35
        expected = max(median / config.time_scale, 0.001)
        return PollPolicy(
            expected_seconds=expected,
            spread=spread,
            min_interval=min(1.0, max(0.001, expected / 30)),
            webhook_silence=2 * expected,  # the real default (60 s) is two typical jobs
            # Grids' parts: polled as Akool's demo does (every 3 s), for long enough.
            parts_interval=max(0.001, 3.0 / config.time_scale),
            parts_grace=max(60.0, 10 * config.parts_delay) / config.time_scale,
        )
