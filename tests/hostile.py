"""Small hostile HTTP/1.1 servers on 127.0.0.1 (threads, so asyncio and trio clients alike
can talk to them): answers trickled byte by byte, huge bodies, deep JSON, broken images,
idle connections closed at a given age. Each request is recorded, with how long its
connection had been idle before it."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

from akool_async.emulator._images import render_png

Respond = Callable[["Seen", "HostileServer"], Iterable[bytes]]


@attrs.define
class Seen:
    """One request the server read."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int
    idle_before: float | None  # seconds since this connection's last answer; None: first


def head(status: int = 200, length: int | None = None, **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status} X"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer(body: bytes, status: int = 200, content_type: str = "application/json") -> list[bytes]:
    return [head(status, len(body), Content_Type=content_type) + body]


def job_answer(job_id: str = "0123456789abcdef01234567") -> list[bytes]:
    data = {"_id": job_id, "image_status": 1}
    return answer(json.dumps({"code": 1000, "msg": "OK", "data": data}).encode())


def png(job_id: str = "x", size: int = 4) -> bytes:
    return render_png(job_id, size, size)


def jpeg() -> bytes:
    """A structurally whole baseline JPEG (markers and lengths; the walk does not decode)."""

    def segment(marker: int, payload: bytes) -> bytes:
        return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload

    return b"".join(
        (
            b"\xff\xd8",
            segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            segment(0xDB, b"\x00" + bytes(range(64))),
            segment(0xC0, b"\x08\x00\x01\x00\x01\x01\x01\x11\x00"),
            segment(0xC4, b"\x00" + bytes(16) + b""),
            segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
            b"\x12\x34\xff\x00\x56\xff\xd0\x78",  # entropy data: a stuffed FF and an RST
            b"\xff\xd9",
        )
    )


def trickle(body: bytes, every: float = 0.02, content_type: str = "application/json") -> Respond:
    """An answer whose body comes one byte every ``every`` seconds (200 bytes: 4 s)."""

    def respond(_seen: Seen, server: HostileServer) -> Iterator[bytes]:
        yield head(200, len(body), Content_Type=content_type)
        for byte in body:
            if not server.sleep(every):
                return
            yield bytes([byte])

    return respond


def always(chunks: Iterable[bytes]) -> Respond:
    fixed = list(chunks)
    return lambda _seen, _server: fixed


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


class HostileServer:
    """Serves ``respond(seen, server)`` (the chunks of each answer; ``server.sleep`` between
    them)
    until closed. ``idle_close``: close a connection idle for that many seconds."""

    def __init__(self, respond: Respond, *, idle_close: float | None = None) -> None:
        self.respond = respond
        self.idle_close = idle_close
        self.seen: list[Seen] = []
        self.connections = 0
        self.stopped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> HostileServer:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self._listener.close()
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=10)

    def sleep(self, seconds: float) -> bool:
        """Sleep (in a handler); False once the server is closing."""
        return not self.stopped.wait(seconds)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            self._sockets.append(sock)
            self._spawn(self._serve, sock, self.connections)

    def _serve(self, sock: socket.socket, number: int) -> None:
        buffer = b""
        last_answer: float | None = None
        with sock:
            while not self.stopped.is_set():
                sock.settimeout(self.idle_close if self.idle_close and last_answer else 30)
                try:
                    request, buffer = _read_request(sock, buffer)
                except (OSError, ValueError):
                    return  # idle too long (closed, as servers do), or the client left
                if request is None:
                    return
                method, path, headers, body = request
                idle = None if last_answer is None else time.monotonic() - last_answer
                seen = Seen(method, path, headers, body, number, idle)
                self.seen.append(seen)
                try:
                    for chunk in self.respond(seen, self):
                        sock.sendall(chunk)
                except OSError:
                    return
                last_answer = time.monotonic()


def _read_request(
    sock: socket.socket, buffer: bytes
) -> tuple[tuple[str, str, dict[str, str], bytes] | None, bytes]:
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        if not data:
            return None, b""
        buffer += data
    raw_head, buffer = buffer.split(b"\r\n\r\n", 1)
    lines = raw_head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(buffer) < length:
        data = sock.recv(65536)
        if not data:
            return None, b""
        buffer += data
    return (method, path, headers, buffer[:length]), buffer[length:]


@contextlib.contextmanager
def serving(respond: Respond, **options: Any) -> Iterator[HostileServer]:
    with HostileServer(respond, **options) as server:
        yield server
