"""The tasks an open client runs for as long as it is open: the poll scheduler, and work
started for callers that must go on without them (follow-up presses of ``generate``).

They run in a task group of their own, hosted by one task under its own cancel scope: a
task group entered in ``__aenter__`` would put the user's ``async with`` body inside its
cancel scope, and closing would cancel the body too. ``stop()`` only signals, so it is
safe from any task and any scope; ``close()`` ends the host, from ``__aexit__``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio
import anyio.abc

log = logging.getLogger("akool_async")


class Background:
    def __init__(self) -> None:
        self._stack: contextlib.AsyncExitStack | None = None
        self._scope: anyio.CancelScope | None = None  # made in the host: it needs a loop
        self._tasks: anyio.abc.TaskGroup | None = None
        self._stopped = False

    @property
    def running(self) -> bool:
        return self._tasks is not None and not self._stopped

    async def start(self, *services: Callable[..., Coroutine[Any, Any, Any]]) -> None:
        """Start the host and, under it, each of ``services`` (``task_status``-aware)."""
        stack = contextlib.AsyncExitStack()
        host = await stack.enter_async_context(anyio.create_task_group())
        await host.start(self._host, services)
        self._stack = stack

    async def _host(
        self,
        services: tuple[Callable[..., Coroutine[Any, Any, Any]], ...],
        *,
        task_status: anyio.abc.TaskStatus[None],
    ) -> None:
        with anyio.CancelScope() as self._scope:
            if self._stopped:  # stopped before it even started
                self._scope.cancel()
            async with anyio.create_task_group() as tasks:
                for service in services:
                    await tasks.start(service)
                self._tasks = tasks
                task_status.started()
                await anyio.sleep_forever()
        self._tasks = None

    def spawn(self, function: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``function(*args)`` in the background; an error is logged, never raised."""
        if self._tasks is None:
            raise RuntimeError("the client's background is not running")
        self._tasks.start_soon(self._guarded, function, *args)

    @staticmethod
    async def _guarded(function: Callable[..., Awaitable[Any]], *args: Any) -> None:
        try:
            await function(*args)
        except Exception:
            log.exception("a background task of the client failed")

    def stop(self) -> None:
        self._stopped = True
        if self._scope is not None:
            self._scope.cancel()

    async def close(self) -> None:
        """Stop and wait for the host to end (from the task that called ``start``)."""
        self.stop()
        if self._stack is not None:
            stack, self._stack = self._stack, None
            # Not under a shield scope of its own: a task group must be exited in the
            # scope it was entered in. The host is cancelled, so this returns promptly.
            await stack.aclose()
