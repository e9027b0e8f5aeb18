"""Saving every image of a job (a grid's four parts, or the one image) through the client's
public ``download()``, one file each, named after the job and the image's place."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from ._download import DownloadedImage
from ._exceptions import ValidationError
from ._models import ImageJob


class _Downloads(Protocol):
    """What saving needs of ``AkoolClient`` (which calls it): no import of the client."""

    async def download(
        self, source: ImageJob | str, path: str | os.PathLike[str], *, timeout: float | None = None
    ) -> DownloadedImage: ...


def image_paths(job: ImageJob, folder: Path, *, with_grid: bool) -> list[tuple[str, Path]]:
    """``(url, path)`` of each image of ``job`` in ``folder``: ``<id>-<k>.png`` for
    ``images[k-1]`` (what ``U<k>``/``V<k>`` act on), and ``<id>-grid.png`` for its grid
    when asked for and kept apart (``ImageJob.grid``)."""
    saved = [(url, folder / f"{job.id}-{k}.png") for k, url in enumerate(job.images, 1)]
    if with_grid and job.grid is not None:
        saved.append((job.grid, folder / f"{job.id}-grid.png"))
    return saved


async def download_images(
    client: _Downloads,
    job: ImageJob,
    folder: str | os.PathLike[str],
    *,
    with_grid: bool = False,
    timeout: float | None = None,
) -> tuple[DownloadedImage, ...]:
    """What ``AkoolClient.download_images`` does (see there)."""
    if not isinstance(job, ImageJob):
        raise ValidationError("job", job, "an ImageJob (from wait or info_by_model_id)")
    if not job.images:
        raise ValidationError("job", job.id, f"a completed job with images ({job.status.name})")
    if not isinstance(folder, str | os.PathLike) or not str(folder):
        raise ValidationError("folder", folder, "a folder path")
    folder = Path(folder)  # download() makes it if need be
    # One after the other: an error is the plain error of one image, and the client's
    # download cap would queue them anyway.
    return tuple(
        [await client.download(url, path, timeout=timeout)
         for url, path in image_paths(job, folder, with_grid=with_grid)]
    )  # fmt: skip
