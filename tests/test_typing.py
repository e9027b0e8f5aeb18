"""The public signatures carry Literal types: a scale, resolution or button that does not
exist fails the type check, before the runtime check would refuse it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent

SNIPPET = """
from akool_async import AkoolClient, Button
async def use(client: AkoolClient) -> None:
    await client.create_by_source_prompt(prompt="x", scale="16:9", resolution="1080p")
    await client.create_by_button("id", "V2")
    await client.create_by_button("id", Button.U1)
    await client.create_by_source_prompt(prompt="x", scale="5:4")  # line 7
    await client.create_by_source_prompt(prompt="x", resolution="720p")  # line 8
    await client.create_by_button("id", "U5")  # line 9
    await client.create_by_prompt(prompt="x", scale="Square")  # line 10
"""


def test_bad_literals_fail_the_type_check(tmp_path: Path) -> None:
    """mypy --strict flags exactly the four lines with values that do not exist."""
    snippet = tmp_path / "use_literals.py"
    snippet.write_text(SNIPPET)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(snippet)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    flagged = sorted(
        int(line.split(":")[1]) for line in result.stdout.splitlines() if ": error:" in line
    )
    assert flagged == [7, 8, 9, 10], result.stdout
