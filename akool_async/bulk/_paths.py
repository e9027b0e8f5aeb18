"""Where a bulk run saves each image: ``<out>/<id or line>/<n>.png``, follow-ups as
``<n>-<button>.png``. A job with several images (a grid's four parts: a V follow-up) saves
each as ``<name>-<k>.png``, k = 1-4 the image ``U<k>``/``V<k>`` act on, and its 2x2 grid,
when asked for, as ``<name>-grid.png``; e.g. ``2-V1-3.png`` is part 3 of V1 on image 2.
Names come from the user's input and the server's answers, so they are sanitised, and
every path is checked to stay inside the output folder."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX = 80


def safe_name(text: str) -> str:
    """A file name made of ``text``: safe characters only, never hidden, ``.`` or ``..``;
    when anything had to change, a short hash of the original keeps names distinct."""
    cleaned = _UNSAFE.sub("_", text).strip("._")[:_MAX] or "_"
    if cleaned != text:
        cleaned = f"{cleaned}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return cleaned


def item_folder(out_dir: Path, user_id: str | None, line: int) -> Path:
    name = f"id-{safe_name(user_id)}" if user_id is not None else f"line-{line:06d}"
    return inside(out_dir, out_dir / name)


def image_name(
    position: int, button: str | None, parent_position: int | None, suffix: str,
    *, index: int = 1, count: int = 1,
) -> str:  # fmt: skip
    """The file name of image ``index`` of ``count`` of a job (index 0: the grid)."""
    if button is None or parent_position is None:
        name = f"{position}"
    else:
        name = f"{parent_position}-{safe_name(button)}"
    if index == GRID:
        return f"{name}-grid{suffix}"
    return f"{name}-{index}{suffix}" if count > 1 else f"{name}{suffix}"


GRID = 0  # the index of a job's 2x2 grid among its saved images


def inside(root: Path, path: Path) -> Path:
    """``path`` if it resolves inside ``root``; refuse anything else. On POSIX, an entry
    of ``root`` that is no link (one ``lstat``: an item's folder) needs no resolving (on
    Windows a junction is no link to ``is_symlink``, and is resolved)."""
    plain = path.parent == root and path.name not in ("", ".", "..")
    if plain and os.name == "posix" and not path.is_symlink():
        return path
    resolved_root, resolved = root.resolve(), path.resolve()
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise ValueError(f"refusing a path outside the output folder: {path}")
    return path
