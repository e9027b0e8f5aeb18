"""Saving results: ``AkoolClient.download`` (one image or URL, checked and put in place
atomically) and ``download_images`` (every image of a job, named after it).

A mixin of ``AkoolClient``: the client supplies its transport (``_download_transport``,
which refuses once the client is closed), retry policy and download caps.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from ._arguments import optional_timeout
from ._download import DownloadedImage, download, prepare_target
from ._exceptions import ValidationError
from ._models import ImageJob
from ._requests import check_url
from ._save_images import download_images

if TYPE_CHECKING:
    from ._retry import RetryPolicy
    from ._transport import Transport


class DownloadsMixin:
    """``download`` and ``download_images`` for a class with a transport and caps."""

    if TYPE_CHECKING:
        download_timeout: float
        max_download_bytes: int

        @property
        def retry(self) -> RetryPolicy: ...

        def _download_transport(self) -> Transport: ...

    async def download_images(
        self,
        job: ImageJob,
        folder: str | os.PathLike[str],
        *,
        with_grid: bool = False,
        timeout: float | None = None,
    ) -> tuple[DownloadedImage, ...]:
        """Save each of ``job.images`` in ``folder`` (created if need be) as
        ``<job id>-<k>.png``, k = 1.. as ``images[k-1]`` (a grid's four parts; a single
        image is ``<id>-1.png``), with ``with_grid`` its 2x2 grid too as ``<id>-grid.png``;
        in that order. Each is saved by ``download()``, with its checks and retries."""
        return await download_images(self, job, folder, with_grid=with_grid, timeout=timeout)

    async def download(
        self,
        source: ImageJob | str,
        path: str | os.PathLike[str],
        *,
        timeout: float | None = None,
    ) -> DownloadedImage:
        """Save a finished job's image (or any result URL) at ``path``.

        Streamed through a temporary file, checked (HTTP status, content type, a whole PNG
        or JPEG), fsynced and renamed into place; retried like a read. No credentials are
        sent: results live on a CDN. An expired result raises ``ResultExpiredError``.
        """
        return await self.download_to(source, lambda: path, timeout=timeout)

    async def download_to(
        self,
        source: ImageJob | str,
        choose_path: Callable[[], str | os.PathLike[str]],
        *,
        timeout: float | None = None,
    ) -> DownloadedImage:
        """``download`` to the path ``choose_path()`` returns, called in the worker thread
        that makes the file's folder ready, once, before anything is fetched: a caller
        that looks at the disk to choose it (a free file name) needs no thread of its own.
        What it raises is raised as it is."""
        transport = self._download_transport()  # refused once the client is closed
        if isinstance(source, ImageJob):
            url, job_id = source.url, source.id
            if url is None:
                raise ValidationError(
                    "source", source.id, f"a completed job with an image ({source.status.name})"
                )
        else:
            url, job_id = check_url("source", source), None
        if not callable(choose_path):
            raise ValidationError("choose_path", choose_path, "a function giving a file path")
        timeout = optional_timeout("timeout", timeout)
        target = await anyio.to_thread.run_sync(lambda: prepare_target(choose_path()))
        return await download(
            transport,
            url,
            target,
            retry=self.retry,
            timeout=self.download_timeout if timeout is None else timeout,
            job_id=job_id,
            max_bytes=self.max_download_bytes,
        )
