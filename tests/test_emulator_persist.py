"""The emulator's state saved and loaded: jobs, balances, create counts and the clock go
on in a new emulator (what a key-less bulk run resumes from)."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from akool_async import ImageStatus, NotFoundError
from akool_async.emulator import Emulator, EmulatorConfig, Fixed


async def test_jobs_balances_and_counts_outlive_the_emulator(tmp_path: Path) -> None:
    """Saved with a job finished, a press made and one job still queued; loaded, the
    first two read the same, the queued one goes on, and a repeat counts as a duplicate."""
    state = tmp_path / "emulator-state.json"
    first = Emulator(EmulatorConfig(time_scale=1e6, durations=Fixed(30), image_max_side=16))
    async with first, first.client(rate_limit=None) as client:
        (done,) = await client.create_by_source_prompt(prompt="a fox")
        finished = await client.wait(done, timeout=30)
        child = await client.create_by_button(finished, "U1")
        balance = (await client.credit_info()).credit
    first.config = first.backend.config = attrs.evolve(first.config, durations=Fixed(1e12))
    async with first.client(rate_limit=None) as client:
        (queued,) = await client.create_by_source_prompt(prompt="a slow fox")
    first.save_state(state)

    # A clock a million times slower: were the saved time not taken up, the finished job
    # (done in emulated hours that took real milliseconds) would read as running again.
    second = Emulator(EmulatorConfig(time_scale=1, image_max_side=16))
    second.load_state(state)
    async with second.client(rate_limit=None) as client:
        again = await client.info_by_model_id(done.id)
        assert again.status is ImageStatus.COMPLETED
        assert again.url == finished.url
        assert "U1" in again.used_buttons
        assert (await client.info_by_model_id(child.id)).id == child.id
        assert (await client.info_by_model_id(queued.id)).status is ImageStatus.QUEUEING
        assert (await client.credit_info()).credit == balance - 1
        with pytest.raises(NotFoundError):
            await client.info_by_model_id("0" * 24)
        await client.create_by_source_prompt(prompt="a fox")  # sent before the save too
    assert second.image_bytes(done.id) == first.image_bytes(done.id)
    assert len(second.counters.duplicate_creates) == 1
    assert second.counters.jobs_created == 4


def test_the_state_file_holds_no_credentials(tmp_path: Path) -> None:
    """Accounts are named by uid: no API key, client id or token in the file."""
    emulator = Emulator(EmulatorConfig())
    token = emulator.backend.issue_token(emulator.client_id, emulator.api_key)
    emulator.save_state(tmp_path / "state.json")
    text = (tmp_path / "state.json").read_text()
    for secret in (emulator.api_key, emulator.client_id, token):
        assert secret not in text
    assert json.loads(text)["format"] == 1
