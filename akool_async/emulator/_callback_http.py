"""Plain-HTTP POSTs for callbacks, on h11 over a few kept-alive connections.

A callback sent through httpx cost the emulator ~1 ms of CPU (its request and response
models, httpcore's pool), so when thousands of jobs end together on a busy machine the
emulator's share of a core was not enough and callbacks fell seconds behind their jobs
(issue 17). This sends the same bytes for ~0.1 ms. https URLs, and tests that inject a
transport, still go through httpx.
"""

from __future__ import annotations

import urllib.parse

import anyio
import anyio.abc
import h11

Address = tuple[str, int]


class CallbackError(Exception):
    """The callback could not be sent or its answer not read (counted as a failed attempt)."""


class PlainHttpPoster:
    def __init__(self, *, timeout: float) -> None:
        self._timeout = timeout
        self._idle: dict[Address, list[tuple[anyio.abc.SocketStream, h11.Connection]]] = {}

    async def post(self, url: str, body: bytes) -> int:
        """POST ``body`` (JSON) to an http:// ``url``; the answer's status code."""
        parts = urllib.parse.urlsplit(url)
        address = (parts.hostname or "127.0.0.1", parts.port or 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = h11.Request(
            method="POST",
            target=target,
            headers=[
                ("host", parts.netloc),
                ("content-type", "application/json"),
                ("content-length", str(len(body))),
            ],
        )
        idle = self._idle.setdefault(address, [])
        if idle:  # a kept-alive connection the receiver may have closed meanwhile
            stream, connection = idle.pop()
            try:
                return await self._exchange(address, stream, connection, request, body)
            except CallbackError:
                pass  # sent again on a new connection: receivers ignore duplicates
        try:
            with anyio.fail_after(self._timeout):
                stream = await anyio.connect_tcp(*address)
        except (OSError, TimeoutError) as exc:
            raise CallbackError(f"cannot connect: {exc!r}") from exc
        return await self._exchange(address, stream, h11.Connection(h11.CLIENT), request, body)

    async def _exchange(
        self,
        address: Address,
        stream: anyio.abc.SocketStream,
        connection: h11.Connection,
        request: h11.Request,
        body: bytes,
    ) -> int:
        try:
            with anyio.fail_after(self._timeout):
                await stream.send(
                    connection.send(request)
                    + connection.send(h11.Data(data=body))
                    + connection.send(h11.EndOfMessage())
                )
                status = await _read_answer(stream, connection)
        except (OSError, TimeoutError, anyio.BrokenResourceError, h11.ProtocolError) as exc:
            await stream.aclose()
            raise CallbackError(f"no answer: {exc!r}") from exc
        if connection.our_state is h11.DONE and connection.their_state is h11.DONE:
            connection.start_next_cycle()
            self._idle[address].append((stream, connection))
        else:
            await stream.aclose()
        return status

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for stream, _ in idle:
                await stream.aclose()
        self._idle.clear()


async def _read_answer(stream: anyio.abc.SocketStream, connection: h11.Connection) -> int:
    status = 0
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            try:
                connection.receive_data(await stream.receive())
            except anyio.EndOfStream:
                connection.receive_data(b"")
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.EndOfMessage):
            return status
        elif isinstance(event, h11.ConnectionClosed):
            raise anyio.BrokenResourceError("closed before the answer ended")
