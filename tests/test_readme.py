"""The README's Python examples marked ``<!-- checked: NAME -->`` run as written against
the emulator, and pass mypy --strict: a newcomer can paste them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from akool_async.emulator import EmulatorConfig, Fixed, serve_emulator

ROOT = Path(__file__).parent.parent
CHECKED = re.compile(r"<!-- checked: (\S+) -->\n```python\n(.*?)```", re.S)


def examples() -> dict[str, str]:
    return dict(CHECKED.findall((ROOT / "README.md").read_text()))


def test_the_checked_examples_are_there() -> None:
    """The quickstart and the run_bulk example are marked for checking."""
    assert set(examples()) >= {"quickstart", "run_bulk"}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("readme")
    for name, code in examples().items():
        (folder / f"{name}.py").write_text(code)
    (folder / "examples").mkdir()
    lines = (ROOT / "examples" / "prompts.jsonl").read_text().splitlines(keepends=True)
    (folder / "examples" / "prompts.jsonl").write_text("".join(lines[:4]))  # 10 images
    return folder


@pytest.mark.long
@pytest.mark.parametrize("name", ["quickstart", "run_bulk"])
def test_each_example_runs_against_the_emulator(name: str, written: Path) -> None:
    """Run from a fresh folder with AKOOL_API_KEY and AKOOL_BASE_URL set, as the README says."""
    config = EmulatorConfig(time_scale=1000, durations=Fixed(30), image_max_side=16)
    with serve_emulator(config) as running:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AKOOL_")}
        env.update(AKOOL_API_KEY=running.api_key, AKOOL_BASE_URL=running.base_url)
        result = subprocess.run([sys.executable, f"{name}.py"], cwd=written, env=env,
                                capture_output=True, text=True, timeout=120,
                                check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    if name == "quickstart":
        assert result.stdout.startswith("COMPLETED http")
        assert (written / "fox-u2.png").read_bytes()[:4] == b"\x89PNG"
        assert "None" not in result.stdout
    else:
        assert "done: 10 images (4 requests)" in result.stdout
        assert "gallery: images/index.html" in result.stdout


def test_the_examples_pass_mypy_strict(written: Path) -> None:
    """mypy --strict accepts them as they are (e.g. run.summary may be None)."""
    files = sorted(str(path) for path in written.glob("*.py"))
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", *files], cwd=ROOT,
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
