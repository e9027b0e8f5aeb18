"""Where a bulk run saves each image: ``<out>/<id or line>/<n>.png``, follow-ups as
``<n>-<button>.png``. Names come from the user's input and the server's answers, so they
are sanitised, and every path is checked to stay inside the output folder."""

from __future__ import annotations

import hashlib
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


def image_name(position: int, button: str | None, parent_position: int | None, suffix: str) -> str:
    if button is None or parent_position is None:
        return f"{position}{suffix}"
    return f"{parent_position}-{safe_name(button)}{suffix}"


def inside(root: Path, path: Path) -> Path:
    """``path`` if it resolves inside ``root``; refuse anything else."""
    resolved_root, resolved = root.resolve(), path.resolve()
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise ValueError(f"refusing a path outside the output folder: {path}")
    return path
