"""Files of a bulk run's images: whether one an earlier run saved is still intact (then
it is not fetched again), and a JPEG result saved under ``.jpg``."""

from __future__ import annotations

from pathlib import Path

import anyio

from .._download import DownloadedImage
from ._folder import sha256_of


async def verified(name: str, sha256: str) -> bool:
    """Whether the file ``name`` is there and its content hashes to ``sha256``."""
    path = Path(name)

    def check() -> bool:
        return path.is_file() and sha256_of(path) == sha256

    return await anyio.to_thread.run_sync(check)


async def fix_suffix(saved: DownloadedImage) -> Path:
    """A JPEG result is saved under ``.jpg``."""
    if saved.kind == "jpeg":
        target = saved.path.with_suffix(".jpg")
        await anyio.Path(saved.path).replace(target)
        return target
    return saved.path
