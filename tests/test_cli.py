"""The command line end to end, in subprocesses, as a user runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from akool_async import AkoolClient, ImageStatus

CLI = [sys.executable, "-m", "akool_async"]


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKOOL_")}
    return {**env, **extra}


def as_from_a_terminal() -> None:
    """Ctrl-C as a terminal delivers it: a suite started in the background of a script
    (``pytest &``) passes SIGINT on ignored, and Python then leaves it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def emulator_process() -> Iterator[dict[str, str]]:
    """``akool-async emulator --port 0`` in its own process; the settings it prints."""
    process = subprocess.Popen(
        [*CLI, "emulator", "--port", "0", "--instant", "--seed", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environment(),
        preexec_fn=as_from_a_terminal,  # noqa: PLW1509 (only signal.signal: no lock taken)
    )  # fmt: skip
    assert process.stdout is not None
    settings = dict(process.stdout.readline().strip().split("=", 1) for _ in range(4))
    try:
        yield settings
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=20)
        assert process.returncode == 130  # interrupted, like every command here
        assert "Traceback" not in errors


def test_generate_without_key_uses_the_emulator(tmp_path: Path) -> None:
    """No AKOOL_API_KEY: one line says so, four PNGs are downloaded and listed."""
    result = subprocess.run(
        [*CLI, "generate", "a red fox in snow", "--batch", "4", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env=_environment(), timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("built-in Akool emulator") == 1
    assert len(result.stderr.strip().splitlines()) == 1
    saved = sorted((tmp_path / "out").glob("*.png"))
    assert len(saved) == 4
    for path in saved:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(path) in result.stdout


async def test_emulator_command_serves_the_api(emulator_process: dict[str, str]) -> None:
    """The emulator command prints a base URL and key that a client can use."""
    async with AkoolClient(
        rate_limit=None,
        api_key=emulator_process["AKOOL_API_KEY"],
        base_url=emulator_process["AKOOL_BASE_URL"],
    ) as client:
        (job,) = await client.create_by_source_prompt(prompt="x")
        assert (await client.info_by_model_id(job.id)).status is ImageStatus.COMPLETED


async def test_emulator_command_prints_the_credentials_get_token_accepts(
    emulator_process: dict[str, str],
) -> None:
    """The printed client id and secret log in through getToken (as Akool's demo does)."""
    async with AkoolClient(
        rate_limit=None,
        client_id=emulator_process["AKOOL_CLIENT_ID"],
        client_secret=emulator_process["AKOOL_CLIENT_SECRET"],
        base_url=emulator_process["AKOOL_BASE_URL"],
    ) as client:
        job = await client.create_by_prompt(prompt="x")
        assert (await client.wait(job)).upscaled_urls


def test_generate_with_key_talks_to_the_configured_api(
    emulator_process: dict[str, str], tmp_path: Path
) -> None:
    """With AKOOL_API_KEY the command uses AKOOL_BASE_URL, not the built-in emulator."""
    result = subprocess.run(
        [*CLI, "generate", "a fox", "--batch", "2", "--out", str(tmp_path), "--follow-ups", "U1"],
        capture_output=True, text=True, timeout=60, check=False,
        env=_environment(**emulator_process),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "emulator" not in result.stderr
    assert len(list(tmp_path.glob("*.png"))) == 4  # two images, an upscale of each


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    """An invalid option value fails with the validation message, exit code 1."""
    result = subprocess.run(
        [*CLI, "generate", "x", "--batch", "9", "--out", str(tmp_path)],
        capture_output=True, text=True, env=_environment(), timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "batch_quantity=9 is not valid" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_error_exits_2() -> None:
    """An unknown command is a usage error (exit 2)."""
    result = subprocess.run([*CLI, "frobnicate"], capture_output=True, text=True, check=False)
    assert result.returncode == 2
