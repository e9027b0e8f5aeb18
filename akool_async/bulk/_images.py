"""Files of a bulk run's images: whether one an earlier run saved is still intact (then
it is not fetched again), and a JPEG result saved under ``.jpg``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import anyio

from .._download import DownloadedImage


async def verified(name: str, sha256: str) -> bool:
    """Whether the file ``name`` is there and its content hashes to ``sha256``."""
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


async def fix_suffix(saved: DownloadedImage) -> Path:
    """A JPEG result is saved under ``.jpg``."""
    if saved.kind == "jpeg":
        target = saved.path.with_suffix(".jpg")
        await anyio.Path(saved.path).replace(target)
        return target
    return saved.path
