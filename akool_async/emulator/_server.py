"""The emulator on a real port: in a background thread (tests, benchmarks) or in the
foreground (``akool-async emulator``)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import attrs
import uvicorn
from starlette.types import ASGIApp

from ._config import EmulatorConfig
from ._emulator import Emulator


@attrs.frozen
class RunningEmulator:
    """An emulator served over HTTP: point a client at ``base_url`` with ``api_key``."""

    base_url: str
    emulator: Emulator

    @property
    def api_key(self) -> str:
        return self.emulator.api_key


def listening_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A bound, listening socket: connections queue in its backlog until the server runs,
    so a client may connect as soon as this returns, with no readiness race."""
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the
    # listener says TCP, and without it every answer stalls ~40 ms (Nagle, delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()  # a port in use must not leave an open socket behind
        raise
    return sock


def uvicorn_server(app: ASGIApp, *, log_level: str = "warning") -> uvicorn.Server:
    # uvicorn's own ASGI types are stricter than Starlette's; the protocol is the same.
    served: Any = app
    config = uvicorn.Config(served, log_level=log_level, access_log=False, lifespan="auto")
    return uvicorn.Server(config)


@contextlib.contextmanager
def serve_asgi(app: ASGIApp, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve an ASGI app on a free loopback port from a background thread; its base URL.

    The thread has its own event loop, so the caller may be asyncio, trio or synchronous.
    """
    sock = listening_socket(host)
    port = sock.getsockname()[1]
    server = uvicorn_server(app, log_level="critical")
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"asgi-{port}", daemon=True
    )
    thread.start()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


@contextlib.contextmanager
def serve_emulator(
    config: EmulatorConfig | None = None,
    *,
    emulator: Emulator | None = None,
    host: str = "127.0.0.1",
) -> Iterator[RunningEmulator]:
    """Serve an emulator on a free loopback port from a background thread (see serve_asgi)."""
    emulator = emulator or Emulator(config)
    with serve_asgi(emulator, host=host) as base_url:
        yield RunningEmulator(base_url, emulator)
