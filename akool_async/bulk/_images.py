"""The images a completed job saves in a bulk run: each of ``ImageJob.images`` (a grid's
four parts, or the one image), and the job's 2x2 grid when asked for."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import anyio
import attrs

from .._models import ImageJob
from ._paths import GRID


@attrs.define
class JobImage:
    """One image a completed job has to save (see ``_paths`` for its name)."""

    index: int
    kind: str
    url: str
    parts_missing: bool = False
    path: Path | None = None
    sha256: str | None = None
    error: str | None = None
    recorded: Path | None = None  # saved here by an earlier run, bytes changed since


def job_images(job: ImageJob, *, save_grid: bool) -> list[JobImage]:
    """What a completed job saves: each of its images, and its grid if asked for. A grid
    whose parts never came saves its grid alone, as a grid (index 0, ``-grid.png``): no
    image k, as there is no part k to act on."""
    if job.parts_missing:
        return [JobImage(GRID, "grid", url, parts_missing=True) for url in job.images[:1]]
    images = [JobImage(k, "image", url) for k, url in enumerate(job.images, 1)]
    if save_grid and job.grid is not None:
        images.append(JobImage(GRID, "grid", job.grid))
    return images


async def reuse_saved(images: list[JobImage], saved: Mapping[int, tuple[str, str]]) -> None:
    """Mark the images an earlier run saved, ``index -> (path, sha256)``, as saved when
    the file is still there and intact: they are not fetched again. One whose file
    changed is fetched again into the same place (the journal made it)."""
    for image in images:
        path, sha256 = saved.get(image.index, ("", ""))
        if path and sha256 and await _verified(path, sha256):
            image.path, image.sha256 = Path(path), sha256
        elif path:  # the journal's own file, damaged: fetched again into its place
            image.recorded = Path(path)


async def _verified(name: str, sha256: str) -> bool:
    path = Path(name)

    def check() -> bool:
        if not path.is_file():
            return False
        digest = hashlib.sha256()
        with path.open("rb") as file:
            while block := file.read(1 << 20):
                digest.update(block)
        return digest.hexdigest() == sha256

    return await anyio.to_thread.run_sync(check)
