"""Saving a finished image: streamed to a temporary file beside the target, checked, fsynced
and renamed into place, so a file at the target path is always a whole, verified image."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import anyio
import attrs

from ._exceptions import (
    HTTPStatusError,
    ImageCheckError,
    ResultExpiredError,
    ServerError,
    TooManyRequestsError,
)
from ._protocol import parse_retry_after
from ._retry import RetryPolicy
from ._transport import StreamedResponse, Transport

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"
JPEG_MAGIC = b"\xff\xd8\xff"
JPEG_END = b"\xff\xd9"
_CONTENT_TYPES = ("image/png", "image/jpeg", "application/octet-stream", "binary/octet-stream")


@attrs.frozen
class DownloadedImage:
    """A saved image: where it is, its SHA-256 and size, and what the server called it."""

    path: Path
    sha256: str
    size: int
    content_type: str
    kind: str  # "png" or "jpeg", from the bytes themselves


async def download(
    transport: Transport,
    url: str,
    path: Path,
    *,
    retry: RetryPolicy,
    timeout: float,
    job_id: str | None = None,
) -> DownloadedImage:
    """Save ``url`` at ``path``; retried like a read (a cut or garbled body included)."""
    return await retry.call(
        lambda: _download_once(transport, url, path, timeout=timeout, job_id=job_id),
        creates=False,
        also=(ImageCheckError,),
    )


async def _download_once(
    transport: Transport, url: str, path: Path, *, timeout: float, job_id: str | None
) -> DownloadedImage:
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        async with transport.stream(url, timeout=timeout) as response:
            _check_status(response, url, job_id)
            content_type = response.headers.get("content-type", "").split(";")[0].strip()
            digest, size, kind = await _write(response, partial, url, job_id)
        await anyio.to_thread.run_sync(_publish, partial, path)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(lambda: partial.unlink(missing_ok=True))
        raise
    return DownloadedImage(path, digest, size, content_type, kind)


def _check_status(response: StreamedResponse, url: str, job_id: str | None) -> None:
    status = response.status_code
    if status == 200:
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type and content_type not in _CONTENT_TYPES:
            raise ImageCheckError(
                f"the result answered {content_type!r}, not an image", url=url, job_id=job_id
            )
        return
    if status in (403, 404, 410):
        raise ResultExpiredError(
            f"the result is gone (HTTP {status})", url=url, job_id=job_id, http_status=status
        )
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise TooManyRequestsError(
            "HTTP 429 on a result",
            http_status=status,
            retry_after=retry_after,
            endpoint="download",
            job_id=job_id,
        )
    error = ServerError if status >= 500 else HTTPStatusError
    raise error(
        f"HTTP {status} on a result", http_status=status, endpoint="download", job_id=job_id
    )


async def _write(
    response: StreamedResponse, partial: Path, url: str, job_id: str | None
) -> tuple[str, int, str]:
    digest = hashlib.sha256()
    head, tail, size = b"", b"", 0
    async with await anyio.open_file(partial, "wb") as file:
        async for chunk in response.chunks:
            if len(head) < len(PNG_MAGIC):
                head = (head + chunk)[: len(PNG_MAGIC)]
            tail = (tail + chunk)[-len(PNG_END) :]
            digest.update(chunk)
            size += len(chunk)
            await file.write(chunk)
        await file.flush()
        await anyio.to_thread.run_sync(os.fsync, file.wrapped.fileno())
    if size == 0:
        raise ImageCheckError("the result is empty", url=url, job_id=job_id)
    whole_png = head.startswith(PNG_MAGIC) and tail.endswith(PNG_END)
    whole_jpeg = head.startswith(JPEG_MAGIC) and tail.endswith(JPEG_END)
    if not (whole_png or whole_jpeg):
        raise ImageCheckError(
            f"the result is not a whole PNG or JPEG ({size} bytes)", url=url, job_id=job_id
        )
    return digest.hexdigest(), size, "png" if whole_png else "jpeg"


def _publish(partial: Path, path: Path) -> None:
    """Atomically replace ``path``, then make the rename itself durable."""
    os.replace(partial, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
