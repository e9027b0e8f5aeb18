"""The manifest's paths are relative to the output folder, as ``os.path.relpath`` gives
them, whatever the folder and the path look like (the common case skips its cost)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from akool_async.bulk._manifest import _Relative


@pytest.mark.parametrize(
    ("out_dir", "path"),
    [
        ("/srv/out", "/srv/out/line-000001/1.png"),
        ("/srv/out", "/srv/out/id-a/2-V1-3.png"),
        ("/srv/out", "/srv/outside/1.png"),  # a sibling that shares the prefix's letters
        ("/srv/out", "/srv/out/../elsewhere/1.png"),
        ("/srv/../srv/out", "/srv/../srv/out/id-b/1.png"),
        ("images", "images/line-000001/1.png"),  # relative: as relpath has it, from the cwd
        ("images", "/tmp/images/line-000001/1.png"),
        ("/", "/line-000001/1.png"),
    ],
)
def test_a_path_in_the_manifest_is_what_relpath_makes_of_it(out_dir: str, path: str) -> None:
    assert _Relative(Path(out_dir))(path) == os.path.relpath(path, Path(out_dir))
