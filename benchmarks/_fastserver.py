"""A minimal, fast HTTP/1.1 server for the ceilings: it answers every request with the same
Akool envelope (a completed job with Akool's 20-odd fields), keeps connections alive, and
costs a few microseconds per request, so the client, not the server, is measured.

    python benchmarks/_fastserver.py [--hold]   # prints PORT=<n>, serves until killed

With ``--hold`` it reads requests and never answers: requests stay in flight (memory).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys

JOB = {
    "_id": "6650a1b2c3d4e5f6a7b8c9d0", "image_status": 3, "deduction_credit": 1,
    "image": "https://cdn.akool.test/6650a1b2c3d4e5f6a7b8c9d0.png",
    "buttons": ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4"], "used_buttons": [],
    "upscaled_urls": [], "uid": 101400, "create_time": 1716552371000,
    "update_time": 1716552401000, "origin_prompt": "a red fox in the snow",
    "prompt": "a red fox in the snow, 4k", "source_image": None, "type": 1, "from": 1,
    "faceswap_quality": 2, "image_sub_status": 3, "scale": "1:1", "resolution": "4k",
    "model_name": "flux", "batch_quantity": 1,
}  # fmt: skip
HOLD = "--hold" in sys.argv
BODY = json.dumps({"code": 1000, "msg": "OK", "data": JOB}).encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    + b"content-length: %d\r\n\r\n" % len(BODY)
    + BODY
)


class Answer(asyncio.Protocol):
    """Answers each complete request in the buffer (pipelining-safe, bodies skipped)."""

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if HOLD:
            return
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            length = 0
            marker = head.find(b"content-length:")
            if marker >= 0:
                length = int(head[marker + 15 :].split(b"\r\n", 1)[0])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            assert self.transport is not None
            self.transport.write(RESPONSE)


async def main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Answer, "127.0.0.1", 0, backlog=4096)
    print(f"PORT={server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
