"""Hostile answers from small local servers, on both transports: a trickled answer ends at
the call's deadline, a huge one is refused unread, deep JSON is unreadable (for a create:
uncertain, since it was sent once), and a broken or oversized image is never saved."""

from __future__ import annotations

import json
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import sniffio

import akool_async as ak
from akool_async import AkoolClient, RetryPolicy, _download

from .hostile import (
    HostileServer,
    Seen,
    always,
    answer,
    head,
    jpeg,
    png,
    serving,
    trickle,
)

KEY = "sk-hostile-0123456789abcdef"
CAP = 64 * 1024
JOB = "0123456789abcdef01234567"


def _client(server: HostileServer, transport: str, **options: Any) -> AkoolClient:
    options.setdefault("retry", RetryPolicy(attempts=1, wait=False))
    options.setdefault("max_response_bytes", CAP)
    options.setdefault("max_download_bytes", CAP)
    return AkoolClient(
        api_key=KEY,
        base_url=server.url,
        transport=transport,  # type: ignore[arg-type]
        rate_limit=None,
        **options,
    )


Call = Callable[[AkoolClient], Awaitable[object]]
CALLS: dict[str, tuple[Call, type[ak.AkoolError]]] = {
    "create": (lambda c: c.create_by_source_prompt(prompt="a fox"), ak.SubmissionUncertainError),
    "info": (lambda c: c.info_by_model_id(JOB), ak.PayloadError),
    "credit": (lambda c: c.credit_info(), ak.PayloadError),
}


def _job_body() -> bytes:
    return json.dumps({"code": 1000, "msg": "OK", "data": {"_id": JOB, "image_status": 1,
                                                           "credit": 5}}).encode()  # fmt: skip


@pytest.mark.parametrize("call", CALLS, ids=CALLS.keys())
async def test_a_trickled_answer_ends_at_the_deadline(transport: str, call: str) -> None:
    """A valid answer trickled one byte each 20 ms (~2 s) never completes a 1 s call: the
    deadline covers the whole attempt, not each wait for a byte. (1 s, not less: on a
    loaded machine the connection alone may take a few hundred ms, and a create that
    provably never left is not uncertain.)"""
    with serving(trickle(_job_body())) as server:
        async with _client(server, transport, timeout=1.0) as client:
            with pytest.raises((ak.RequestTimeoutError, ak.SubmissionUncertainError)) as info:
                await CALLS[call][0](client)
    error = info.value
    if call == "create":
        assert isinstance(error, ak.SubmissionUncertainError)
        assert isinstance(error.__cause__, ak.RequestTimeoutError)
    else:
        assert isinstance(error, ak.RequestTimeoutError)
    assert len(server.seen) == 1


def _chunked(total: int) -> Callable[[Seen, HostileServer], AsyncIterator[bytes] | Any]:
    def respond(_seen: Seen, _server: HostileServer) -> Any:
        yield head(200, Transfer_Encoding="chunked", Content_Type="application/json")
        piece = b"[" * 8192
        for _ in range(total // len(piece)):
            yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        yield b"0\r\n\r\n"

    return respond


def _declared(total: int) -> Callable[[Seen, HostileServer], Any]:
    def respond(_seen: Seen, _server: HostileServer) -> Any:
        yield head(200, total, Content_Type="application/json")
        for _ in range(total // 65536):
            yield b" " * 65536

    return respond


HUGE = {"declared": _declared(50 * 1024 * 1024), "chunked": _chunked(1024 * 1024)}


@pytest.mark.parametrize("call", CALLS, ids=CALLS.keys())
@pytest.mark.parametrize("shape", HUGE, ids=HUGE.keys())
async def test_a_huge_answer_is_refused_unread(transport: str, call: str, shape: str) -> None:
    """An answer over max_response_bytes (declared or not) is a PayloadError as soon as the
    cap is passed; for a create an uncertain one."""
    with serving(HUGE[shape]) as server:
        async with _client(server, transport) as client:
            with pytest.raises(CALLS[call][1]) as info:
                await CALLS[call][0](client)
    assert "max_response_bytes" in str(info.value) + str(info.value.__cause__)


NESTED = {
    "bare": b"[" * 100_000 + b"]" * 100_000,
    "in the envelope": b'{"code":1000,"data":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
}


@pytest.mark.parametrize("call", CALLS, ids=CALLS.keys())
@pytest.mark.parametrize("body", NESTED.values(), ids=NESTED.keys())
async def test_deeply_nested_json_is_unreadable(transport: str, call: str, body: bytes) -> None:
    """JSON nested 100,000 deep is a PayloadError, not a RecursionError; a create that got
    it is uncertain (it was sent once)."""
    with serving(always(answer(body))) as server:
        async with _client(server, transport, max_response_bytes=1024 * 1024) as client:
            with pytest.raises(CALLS[call][1]):
                await CALLS[call][0](client)
    assert len(server.seen) == 1


GOOD_IMAGES = {"png": png("good", 16), "jpeg": jpeg()}


@pytest.fixture(params=["held in memory", "streamed to disk"])
def spool(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A download is held in memory up to SPOOL_BYTES (one thread hop), else streamed to
    disk chunk by chunk: every check holds either way."""
    if request.param == "streamed to disk":
        monkeypatch.setattr(_download, "SPOOL_BYTES", 0)


BAD_IMAGES = {
    "png with garbage after the signature": png()[:8] + b"\x00" * 100 + png()[8:],
    "png with a corrupt chunk": png()[:40] + b"\x00" + png()[41:],
    "png cut short": png()[:-3],
    "jpeg cut short": jpeg()[:-2],
}


@pytest.mark.parametrize("kind", GOOD_IMAGES, ids=GOOD_IMAGES.keys())
@pytest.mark.usefixtures("spool")
async def test_whole_images_are_saved(transport: str, kind: str, tmp_path: Path) -> None:
    """A whole PNG or JPEG is saved, into folders made for it."""
    body = GOOD_IMAGES[kind]
    with serving(always(answer(body, content_type=f"image/{kind}"))) as server:
        async with _client(server, transport) as client:
            saved = await client.download(f"{server.url}/r.img", tmp_path / "new" / "dir" / "r")
    assert (saved.kind, saved.size) == (kind, len(body))
    assert saved.path.read_bytes() == body


@pytest.mark.parametrize("body", BAD_IMAGES.values(), ids=BAD_IMAGES.keys())
@pytest.mark.usefixtures("spool")
async def test_broken_images_are_never_saved(transport: str, body: bytes, tmp_path: Path) -> None:
    """A body that is not one whole image fails its check on every attempt; nothing stays."""
    with serving(always(answer(body, content_type="image/png"))) as server:
        async with _client(server, transport, retry=RetryPolicy(attempts=2, wait=False)) as client:
            with pytest.raises(ak.ImageCheckError):
                await client.download(f"{server.url}/r.png", tmp_path / "r.png")
    assert len(server.seen) == 2  # retried like a read
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("shape", ["declared", "streamed"])
@pytest.mark.usefixtures("spool")
async def test_an_oversized_download_is_refused(transport: str, shape: str, tmp_path: Path) -> None:
    """A result over max_download_bytes is a DownloadError, not retried, nothing kept."""

    def respond(_seen: Seen, _server: HostileServer) -> Any:
        image = png("big", 4)
        if shape == "declared":
            yield head(200, 2 * 1024**3, Content_Type="image/png") + image
            return
        yield head(200, Transfer_Encoding="chunked", Content_Type="image/png")
        endless_chunk = image[:33] + struct.pack(">I", 2**31 - 1) + b"IDAT"  # valid so far
        for piece in (endless_chunk, *([b"\x00" * 8192] * 64)):
            yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        yield b"0\r\n\r\n"

    with serving(respond) as server:
        async with _client(server, transport, retry=RetryPolicy(attempts=3, wait=False)) as client:
            with pytest.raises(ak.DownloadError, match="max_download_bytes") as info:
                await client.download(f"{server.url}/r.png", tmp_path / "r.png")
    assert not isinstance(info.value, ak.ImageCheckError)
    assert len(server.seen) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("spool")
async def test_a_trickled_download_ends_at_its_deadline(transport: str, tmp_path: Path) -> None:
    """A result trickled byte by byte does not hold download(timeout=0.3) open."""
    with serving(trickle(png("slow", 2), content_type="image/png")) as server:
        async with _client(server, transport) as client:
            with pytest.raises(ak.RequestTimeoutError):
                await client.download(f"{server.url}/r.png", tmp_path / "r.png", timeout=0.3)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("target", ["a folder", "under a file"])
async def test_a_bad_target_is_refused_before_fetching(
    transport: str, target: str, tmp_path: Path
) -> None:
    """A folder as target, or a target under a file, raises ValidationError; nothing sent."""
    (tmp_path / "file").write_text("x")
    path = tmp_path if target == "a folder" else tmp_path / "file" / "r.png"
    with serving(always(answer(png(), content_type="image/png"))) as server:
        async with _client(server, transport) as client:
            with pytest.raises(ak.ValidationError) as info:
                await client.download(f"{server.url}/r.png", path)
    assert info.value.field == "path"
    assert server.seen == []
    assert sniffio.current_async_library() in ("asyncio", "trio")
