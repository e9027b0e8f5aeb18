"""Which journalled item an input line is: by its id, else by its request's fingerprint,
never by its line number; changed, new and vanished lines reported."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from akool_async.bulk import parse_record
from akool_async.bulk._identity import Identities, fingerprint
from akool_async.bulk._input import BulkItem
from akool_async.emulator import Emulator

from .test_bulk_cli import CLI, bulk, item_errors, item_states, manifest, served, unmeasured
from .test_bulk_run import FAST, items
from .test_bulk_run import bulk as run_in_process
from .test_bulk_workers import CREATE, SLOW


def item(line: int, **record: object) -> BulkItem:
    parsed = parse_record(line, record)
    assert isinstance(parsed, BulkItem)
    return parsed


def test_a_fingerprint_is_the_request_not_the_line() -> None:
    """Equal requests on other lines are the same fingerprint; any field, option or
    follow-up changed is another; lines without an id are keyed by it, in order."""
    fox = item(1, prompt="a fox")
    assert fingerprint(fox) == fingerprint(item(7, prompt="a fox"))
    assert fingerprint(fox) != fingerprint(item(1, prompt="a fox", batch_quantity=2))
    assert fingerprint(fox) != fingerprint(item(1, prompt="a fox", follow_ups=["U1"]))
    assert fingerprint(fox) != fingerprint(item(1, prompt="a fox "))
    identities = Identities()
    keys = [identities.identify(item(n, prompt="a fox"))[0].key for n in (3, 9)]
    assert keys[0] != keys[1]
    assert keys[0] == Identities().identify(item(1, prompt="a fox"))[0].key  # not the line
    named, _ = identities.identify(item(4, id="x", prompt="a fox"))
    assert named.key == "id:x"


async def test_a_changed_request_under_its_id_is_a_new_item_and_said_so(tmp_path: Path) -> None:
    """Resumed with one request changed under its id and one line gone: the changed one
    is created as new (the old one kept in the journal), the rest skipped, both reported."""
    emulator = Emulator(FAST)
    async with emulator:
        await run_in_process(emulator, items(3), tmp_path)
        changed = [*items(2), item(3, id="req-3", prompt="a wolf instead")]
        again, run = await run_in_process(emulator, changed[1:], tmp_path)
    assert [r.state for r in again] == ["skipped", "done"]
    assert emulator.counters.requests[CREATE] == 4
    assert not emulator.counters.duplicate_creates
    lines = run.summary.lines()
    assert "new in the input: 0 requests, changed: 1" in " ".join(lines)
    assert any(line.startswith("no longer in the input: 1 requests (id:req-1") for line in lines)


@pytest.mark.long
def test_a_line_inserted_at_the_top_of_a_file_without_ids_after_a_kill(tmp_path: Path) -> None:
    """Killed mid-run; a line inserted at the top of the id-less file; --resume: nothing
    created twice, the new prompt generated, every manifest row on its line of the new file."""
    with served(SLOW) as (server, served_env):
        env = unmeasured(served_env)
        source, out = tmp_path / "p.jsonl", tmp_path / "out"
        rows = [{"prompt": f"a fox, take {n}", "batch_quantity": 2} for n in range(16)]
        source.write_text("".join(json.dumps(row) + "\n" for row in rows))
        args = [str(source), "--out", str(out), "--rate", "3000", "--concurrency", "6", "--quiet"]
        process = subprocess.Popen([*CLI, *args], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        while server.counters.requests[CREATE] < 6:
            time.sleep(0.05)  # polling for the kill point, not timing a race
        process.send_signal(signal.SIGKILL)
        process.wait()
        journalled = len(item_states(out))
        rows.insert(0, {"prompt": "a new fox at the top", "batch_quantity": 2})
        source.write_text("".join(json.dumps(row) + "\n" for row in rows))
        result = bulk(env, *args[:-1], "--resume")  # not --quiet: the summary is read
        assert result.returncode in (0, 1), result.stdout + result.stderr
        assert not server.counters.duplicate_creates
        assert server.counters.requests[CREATE] == 17
        states = item_states(out)
        assert len(states) == 17
        assert set(states.values()) <= {"done", "uncertain"}, item_errors(out)
    records = manifest(out)
    assert {r["prompt"] for r in records if r["ok"]} >= {"a new fox at the top"}
    for record in records:
        assert rows[record["line"] - 1]["prompt"] == record["prompt"]
    # The lines the killed run never reached, and the inserted one, are reported as new.
    assert f"new in the input: {17 - journalled} requests, changed: 0" in result.stdout
