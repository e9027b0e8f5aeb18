"""Saving a finished image: streamed to a temporary file beside the target, checked, fsynced
and renamed into place, so a file at the target path is always a whole, verified image.

An image of up to ``SPOOL_BYTES`` is held in memory as it arrives and written, synced and
renamed in one worker-thread hop; a larger one goes to its file chunk by chunk as it
streams (each write a hop), so memory stays bounded by downloads at once x the spool.

Each attempt has one deadline (a server trickling bytes cannot hold it open) and a size cap
(a result larger than ``max_bytes`` is refused as it streams, never written whole); the
bytes are walked as PNG chunks or JPEG markers as they arrive (``_imagecheck``).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import anyio
import attrs

from ._defaults import DEFAULT_MAX_DOWNLOAD_BYTES
from ._exceptions import (
    DownloadError,
    HTTPStatusError,
    ImageCheckError,
    RequestTimeoutError,
    ResultExpiredError,
    ServerError,
    TooManyRequestsError,
    ValidationError,
)
from ._imagecheck import ImageWalker
from ._protocol import parse_retry_after
from ._retry import RetryPolicy
from ._transport import StreamedResponse, Transport

SPOOL_BYTES = 4 * 1024 * 1024  # what an image may take in memory before it streams to disk
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
    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
) -> DownloadedImage:
    """Save ``url`` at ``path``; retried like a read (a cut or garbled body included).
    ``timeout`` bounds each attempt as a whole."""
    return await retry.call(
        lambda: _download_once(transport, url, path, timeout, job_id=job_id, max_bytes=max_bytes),
        creates=False,
        also=(ImageCheckError,),
    )


# What the temporary file's name adds to the target's: ".", ".<pid>-<8 hex>.part".
_PART_EXTRA = len("..") + len("4194304-") + 8 + len(".part")


def prepare_target(path: object) -> Path:
    """``path`` as a file path whose folder exists (created if missing), or
    ``ValidationError`` before anything is fetched. Blocking: run it in a thread."""
    if not isinstance(path, str | os.PathLike):
        raise ValidationError("path", path, "a file path (str or os.PathLike)")
    try:
        target = Path(path)
    except TypeError:  # a PathLike giving bytes
        raise ValidationError("path", path, "a file path (str or os.PathLike)") from None
    text = str(target)
    if "\0" in text or not target.name or text.isspace():
        raise ValidationError("path", path, "a file path with a file name, without NUL")
    try:
        whole = os.fsencode(text)
    except UnicodeError:
        raise ValidationError("path", path, "a path the file system can encode") from None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        name_room = _limit(target.parent, "PC_NAME_MAX", 255) - _PART_EXTRA
        path_room = _limit(target.parent, "PC_PATH_MAX", 4096) - 1 - _PART_EXTRA
        is_dir = target.is_dir()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValidationError("path", path, f"a path whose folder can be made ({reason})") from None
    # The temporary file beside it has the longer name: it must fit too.
    if len(os.fsencode(target.name)) > name_room:
        raise ValidationError("path", path, f"a file name of at most {name_room} bytes")
    if len(whole) > path_room:
        raise ValidationError("path", path, f"a path of at most {path_room} bytes")
    if is_dir:
        raise ValidationError("path", path, "a file path; this is a folder")
    return target


def _limit(folder: Path, name: str, default: int) -> int:
    """The file system's limit ``name`` at ``folder``; ``default`` where it names none."""
    try:
        value = os.pathconf(folder, name)
    except (AttributeError, ValueError):  # no pathconf (Windows), or no such limit here
        return default
    return value if value > 0 else default


async def _download_once(
    transport: Transport, url: str, path: Path, timeout: float, *, job_id: str | None,
    max_bytes: int,
) -> DownloadedImage:  # fmt: skip
    # The writer's pid in the name: a resume removes the parts of dead processes only.
    partial = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.part")
    try:
        digest, size, content_type, kind, whole = await _fetch(
            transport, url, partial, timeout, job_id=job_id, max_bytes=max_bytes
        )
        await anyio.to_thread.run_sync(_publish, partial, path, whole)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(lambda: partial.unlink(missing_ok=True))
        raise
    return DownloadedImage(path, digest, size, content_type, kind)


async def _fetch(
    transport: Transport, url: str, partial: Path, timeout: float, *, job_id: str | None,
    max_bytes: int,
) -> tuple[str, int, str, str, bytes | None]:  # fmt: skip
    """Stream the result within one deadline: digest, size, type, kind, and the bytes
    (None: they are in ``partial``, synced)."""
    with anyio.move_on_after(timeout):
        async with transport.stream(url, timeout=timeout) as response:
            _check_status(response, url, job_id, max_bytes)
            content_type = response.headers.get("content-type", "").split(";")[0].strip()
            digest, size, kind, whole = await _write(
                response, partial, url=url, job_id=job_id, max_bytes=max_bytes
            )
            return digest, size, content_type, kind, whole
    raise RequestTimeoutError(
        f"the result did not arrive within {timeout:g} s", endpoint="download", job_id=job_id
    )


def _check_status(response: StreamedResponse, url: str, job_id: str | None, max_bytes: int) -> None:
    status = response.status_code
    length = response.headers.get("content-length", "")
    if status == 200 and length.isdigit() and int(length) > max_bytes:
        raise _too_large(url, job_id, max_bytes)
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


def _too_large(url: str, job_id: str | None, max_bytes: int) -> DownloadError:
    return DownloadError(
        f"the result is larger than max_download_bytes ({max_bytes} bytes): not saved",
        url=url,
        job_id=job_id,
    )


async def _write(
    response: StreamedResponse, partial: Path, *, url: str, job_id: str | None, max_bytes: int
) -> tuple[str, int, str, bytes | None]:
    """Check the body as it streams; digest, size, kind and the bytes, held up to
    ``SPOOL_BYTES`` (None: larger, written to ``partial`` and synced)."""
    digest = hashlib.sha256()
    walker = ImageWalker()
    size = 0
    spooled: list[bytes] = []
    file: anyio.AsyncFile[bytes] | None = None
    try:
        try:
            async for chunk in response.chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(url, job_id, max_bytes)
                walker.feed(chunk)  # fails as soon as the structure is wrong
                digest.update(chunk)
                if file is None and size <= SPOOL_BYTES:
                    spooled.append(chunk)
                    continue
                if file is None:  # too large to hold: to disk from here on
                    file = await anyio.open_file(partial, "wb")
                    await file.write(b"".join(spooled))
                    spooled.clear()
                await file.write(chunk)
            if size == 0:
                raise ImageCheckError("the result is empty", url=url, job_id=job_id)
            kind = walker.finish()
            if file is not None:
                await file.flush()
                await anyio.to_thread.run_sync(os.fsync, file.wrapped.fileno())
        finally:
            if file is not None:
                with anyio.CancelScope(shield=True):
                    await file.aclose()
    except ValueError as exc:
        problem = str(exc)
    else:
        return digest.hexdigest(), size, kind, None if file is not None else b"".join(spooled)
    raise ImageCheckError(
        f"the result is not a whole PNG or JPEG ({problem}; {size} bytes)", url=url, job_id=job_id
    )


def _publish(partial: Path, path: Path, whole: bytes | None = None) -> None:
    """Write ``whole`` (if given) to ``partial`` and sync it; atomically replace ``path``
    with it, then make the rename itself durable."""
    if whole is not None:
        with partial.open("wb") as file:
            file.write(whole)
            file.flush()
            os.fsync(file.fileno())
    os.replace(partial, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
