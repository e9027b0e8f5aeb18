"""``akool-async worker``: worker processes on a real PostgreSQL queue (and a Redis
budget) against one emulator over real HTTP: the queue drained once, images on disk with
host, path and SHA-256 in the manifest, SIGTERM a clean stop (exit 143, claims released),
one-line errors with documented codes, URLs never shown with their password."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import time
from pathlib import Path

import attrs
import pytest

from akool_async.emulator import Faults

from .test_bulk_cli import FAST, served, unmeasured
from .workers_cli import CREATE, cli, prompts, rows, start_worker, states

SLOW_CREATES = Faults(slow=1.0, slow_seconds=3, endpoints=frozenset({CREATE}))


@pytest.mark.long
def test_two_workers_with_a_shared_budget_drain_the_queue_once(
    postgres_url: str, redis_url: str, account: str, tmp_path: Path
) -> None:
    """``enqueue`` 12 prompts (batch 2, an upscale each); two workers sharing a Redis
    budget drain it: exit 0 both, 12 done in ``status``, 48 images in the manifest, each
    on disk under its worker's --out with this host and its SHA-256; 0 duplicate creates."""
    with served(FAST) as (server, served_env):
        env = unmeasured(served_env)
        source = prompts(tmp_path / "p.jsonl", 12, batch_quantity=2, follow_ups=["U1"])
        queued = cli(env, "enqueue", str(source), "--queue", postgres_url)
        assert queued.returncode == 0, queued.stderr
        limits = ["--limits", redis_url, "--account", account, "--max-jobs", "8"]
        workers = [start_worker(env, postgres_url, tmp_path / name, *limits) for name in "ab"]
        for worker in workers:
            out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, out + err
        status = cli(env, "status", "--queue", postgres_url, "--json",
                     "--manifest", str(tmp_path / "m.jsonl"))  # fmt: skip
        assert status.returncode == 0, status.stderr
        assert server.counters.requests[CREATE] == 12
        assert not server.counters.duplicate_creates
    report = json.loads(status.stdout)
    assert report["counts"]["done"] == 12
    assert report["workers_seen"] == 2
    images = [row for row in map(json.loads, (tmp_path / "m.jsonl").read_text().splitlines())
              if row.get("path")]  # fmt: skip
    assert len(images) == 48  # 24 batch images, 24 upscales
    assert {row["host"] for row in images} == {socket.gethostname()}
    for row in images:  # each under the --out of the worker that saved it
        assert any(Path(row["path"]).is_relative_to(tmp_path / name) for name in "ab")
    for row in images:
        path = Path(row["path"])
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"]


@pytest.mark.long
def test_sigterm_stops_cleanly_and_the_next_worker_finishes_without_paying_twice(
    postgres_url: str, tmp_path: Path
) -> None:
    """SIGTERM while 6 creates are on their way (the emulator holds their answers 3 s,
    the jobs created): the worker lets them answer, records their ids, releases every
    claim and exits 143. A second worker follows those jobs and does the rest: all done,
    each create sent once."""
    with served(attrs.evolve(FAST, time_scale=200)) as (server, served_env):
        env = unmeasured(served_env)
        assert cli(env, "enqueue", str(prompts(tmp_path / "p.jsonl", 12)), "--queue",
                   postgres_url).returncode == 0  # fmt: skip
        server.set_faults(SLOW_CREATES)
        worker = start_worker(env, postgres_url, tmp_path / "a")
        while server.counters.requests[CREATE] < 6:
            time.sleep(0.05)  # polling for the point to stop at, not timing a race
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 143, out + err
        assert "stopped" in err
        server.set_faults(Faults())
        held = rows(postgres_url, "SELECT COUNT(*) FROM akool_items WHERE lease_until IS NOT NULL")
        assert held == [(0,)]  # released, not left to run out
        assert set(states(postgres_url).values()) <= {None, "submitted", "done"}
        assert sum(state == "submitted" for state in states(postgres_url).values()) >= 6
        second = start_worker(env, postgres_url, tmp_path / "b")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, out + err
        assert set(states(postgres_url).values()) == {"done"}
        assert server.counters.requests[CREATE] == 12
        assert not server.counters.duplicate_creates


@pytest.mark.long
def test_errors_are_one_line_with_their_codes_and_no_password(
    postgres_url: str, tmp_path: Path
) -> None:
    with served(FAST) as (_, served_env):
        env = unmeasured(served_env)
        out = str(tmp_path / "out")
        cases = [
            (["worker", "--out", out], 2, "no queue"),
            (["worker", "--out", out, "--queue", postgres_url, "--max-jobs", "3"], 2,
             "--max-jobs needs --limits"),
            (["worker", "--out", out, "--queue", postgres_url, "--lease", "0"], 2, "--lease"),
            (["worker", "--out", out, "--queue", postgres_url, "--limits",
              "http://u:hunter2@h/0"], 2, "--limits"),
            (["worker", "--out", out, "--queue",
              "postgresql://u:hunter2@127.0.0.1:1/db?connect_timeout=2"], 5,
             "cannot reach the queue"),
        ]  # fmt: skip
        for arguments, code, says in cases:
            done = cli(env, *arguments)
            assert done.returncode == code, (arguments, done.stderr)
            assert says in done.stderr
            assert len(done.stderr.strip().splitlines()) == 1, done.stderr
            assert "hunter2" not in done.stderr + done.stdout
