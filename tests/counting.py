"""A ``Transport`` that answers like Akool without any network and counts what it sends:
for bad-input tests, which must show that nothing was sent, and that what was sent is
sendable (``check_sendable``)."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from akool_async import RawResponse, RequestSpec, StreamedResponse

from .hostile import png

_ids = (f"{n:024x}" for n in itertools.count(1))


_URL_KEYS = ("source_images", "source_image", "webhookurl", "webhookUrl")


def check_sendable(request: RequestSpec) -> None:
    """What any request that is sent must be, whatever the caller passed: a body that
    encodes, ids and URLs without spaces or control characters, sizes within the limits."""
    body = request.body  # raises on what cannot be encoded (lone surrogates)
    assert body is None or len(body) < 200_000
    for value in (request.params or {}).values():
        assert value.isascii(), value
        assert value.isprintable(), value
        assert " " not in value, value
    payload: Mapping[str, Any] = request.payload or {}
    for key in _URL_KEYS:
        urls = payload.get(key) or []
        for url in [urls] if isinstance(urls, str) else urls:
            assert url.startswith(("http://", "https://")), url
            assert url.isprintable(), url
            assert " " not in url, url
            assert len(url) <= 8000, url
    if "source_images" in payload:
        assert 1 <= len(payload["source_images"]) <= 10
    for key in ("prompt", "negative_prompt"):
        text = payload.get(key)
        assert text is None or (isinstance(text, str) and len(text) <= 10_000)
    if "_id" in payload:
        assert payload["_id"].isascii()
        assert payload["_id"].isprintable()


class CountingTransport:
    def __init__(self, *, default_limits: bool = True) -> None:
        self.default_limits = default_limits  # False: a test raised the client's limits
        self.sent: list[RequestSpec] = []
        self.fetched: list[str] = []

    @property
    def requests(self) -> int:
        return len(self.sent) + len(self.fetched)

    async def send(
        self, request: RequestSpec, headers: Mapping[str, str], *, timeout: float
    ) -> RawResponse:
        if self.default_limits:
            check_sendable(request)
        self.sent.append(request)
        payload: Mapping[str, Any] = request.payload or {}
        name = request.endpoint.name
        data: Any
        if request.endpoint.creates:
            count = payload.get("batch_quantity", 1)
            jobs = [{"_id": next(_ids), "image_status": 1} for _ in range(count)]
            data = jobs[0] if count == 1 else jobs
        elif name == "infobymodelid":
            data = {"_id": request.job_id, "image_status": 3, "image": "https://cdn.test/r.png",
                    "buttons": ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4"]}  # fmt: skip
        elif name == "getToken":
            return RawResponse(200, {}, b'{"code": 1000, "token": "t0ken"}')
        else:
            data = {"credit": 5}
        return RawResponse(200, {}, json.dumps({"code": 1000, "msg": "OK", "data": data}).encode())

    @contextlib.asynccontextmanager
    async def stream(self, url: str, *, timeout: float) -> AsyncIterator[StreamedResponse]:
        self.fetched.append(url)

        async def chunks() -> AsyncIterator[bytes]:
            yield png()

        yield StreamedResponse(200, {"content-type": "image/png"}, chunks())

    async def aclose(self) -> None:
        return None
