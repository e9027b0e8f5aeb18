"""``AkoolClient.download_to``: ``download`` to a path chosen in the download's own worker
thread (a bulk run picks a free file name there), checked like any other path."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from akool_async import ValidationError
from akool_async.emulator import Emulator

from .test_bulk_run import FAST


async def test_the_file_goes_where_the_chooser_says_chosen_once_in_a_worker_thread(
    tmp_path: Path,
) -> None:
    emulator = Emulator(FAST)
    threads: list[threading.Thread] = []

    def choose() -> Path:
        threads.append(threading.current_thread())
        return tmp_path / "made" / "fox.png"  # its folder is made, as for download()

    async with emulator, emulator.client(rate_limit=None) as client:
        [job] = await client.create_by_source_prompt(prompt="a red fox")
        done = await client.wait(job)
        saved = await client.download_to(done, choose)
    assert saved.path == tmp_path / "made" / "fox.png"
    assert saved.path.read_bytes() == emulator.image_bytes(done.id)
    assert len(threads) == 1
    assert threads[0] is not threading.main_thread()


async def test_a_chooser_that_fails_or_chooses_badly_stops_it_before_anything_is_fetched(
    tmp_path: Path,
) -> None:
    def taken() -> Path:
        raise FileExistsError("no free name left")

    emulator = Emulator(FAST)
    async with emulator, emulator.client(rate_limit=None) as client:
        [job] = await client.create_by_source_prompt(prompt="a red fox")
        done = await client.wait(job)
        with pytest.raises(FileExistsError, match="no free name left"):
            await client.download_to(done, taken)
        with pytest.raises(ValidationError, match="this is a folder"):
            await client.download_to(done, lambda: tmp_path)
        with pytest.raises(ValidationError, match="choose_path"):
            await client.download_to(done, tmp_path / "fox.png")  # type: ignore[arg-type]
    assert emulator.counters.requests["image"] == 0
    assert list(tmp_path.iterdir()) == []
