"""Faults with real worker processes on one queue against one emulator over real HTTP:
random SIGKILLs and restarts, a Redis restart, the queue's connections dropped by the
server. Each run ends with every item done or uncertain, uncertain only where a create
may have left (its intent recorded, no ids), and 0 duplicate creates."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import attrs
import psycopg
import pytest

from akool_async.emulator import Emulator, Faults

from ._servers import RedisServer
from .test_bulk_cli import FAST, served, unmeasured
from .workers_cli import CREATE, cli, leases_running, prompts, rows, start_worker, states

# Half the creates answer 0.4 s late, having created their jobs: a kill often finds one
# on its way (the case that must turn uncertain, never be sent again).
LATE_CREATES = Faults(slow=0.5, slow_seconds=0.4, endpoints=frozenset({CREATE}))
SETTLE = 30.0  # seconds the run gets to end after the faults (a bound, not a timing)


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + SETTLE
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)  # polling the servers for the point reached, not timing a race


def drain(env: dict[str, str], url: str, out: Path) -> None:
    """Once the leases of killed workers ran out: one last worker reaps and finishes."""
    wait_for(lambda: leases_running(url) == 0, "the killed workers' leases")
    last = start_worker(env, url, out)
    output = last.communicate(timeout=SETTLE)
    assert last.returncode in (0, 1), output


def accounted(url: str, server: Emulator, total: int) -> dict[str, int]:
    """Every item done or uncertain; each uncertain one has its create's intent recorded
    and no job (it may have left); creates seen by the emulator between the done items
    and those plus the uncertain ones; none twice. The counts by state."""
    found = states(url)
    assert len(found) == total
    assert set(found.values()) <= {"done", "uncertain"}, found
    uncertain = rows(url, "SELECT i.key, i.intent_at, COUNT(j.job_id) FROM akool_items i"
                     " LEFT JOIN akool_jobs j ON j.item_key = i.key WHERE i.state = 'uncertain'"
                     " GROUP BY i.key, i.intent_at")  # fmt: skip
    assert all(intent is not None and jobs == 0 for _, intent, jobs in uncertain), uncertain
    done = sum(state == "done" for state in found.values())
    assert done <= server.counters.requests[CREATE] <= done + len(uncertain)
    assert not server.counters.duplicate_creates
    return {"done": done, "uncertain": len(uncertain)}


@pytest.mark.long
def test_three_workers_killed_and_restarted_at_random_never_pay_twice(
    postgres_url: str, tmp_path: Path
) -> None:
    """Three workers on 45 items; five times a random one is SIGKILLed once the emulator
    has seen a few more creates, and a new one started in its place."""
    rng = random.Random(13)
    with served(attrs.evolve(FAST, faults=LATE_CREATES)) as (server, served_env):
        env = unmeasured(served_env)
        assert cli(env, "enqueue", str(prompts(tmp_path / "p.jsonl", 45)), "--queue",
                   postgres_url).returncode == 0  # fmt: skip
        workers = [start_worker(env, postgres_url, tmp_path / f"w{n}") for n in range(3)]
        kills = 0
        for round_ in range(5):
            seen = server.counters.requests[CREATE]
            step = rng.randint(2, 6)
            wait_for(lambda s=seen, n=step: server.counters.requests[CREATE] >= min(s + n, 45)
                     or all(w.poll() is not None for w in workers), "more creates")  # fmt: skip
            victim = rng.randrange(len(workers))
            if workers[victim].poll() is None:
                workers[victim].kill()
                kills += 1
            workers[victim].communicate()
            workers[victim] = start_worker(env, postgres_url, tmp_path / f"r{round_}")
        for worker in workers:
            output = worker.communicate(timeout=SETTLE)
            assert worker.returncode in (0, 1), output
        drain(env, postgres_url, tmp_path / "last")
        counts = accounted(postgres_url, server, 45)
        status = cli(env, "status", "--queue", postgres_url, "--json")
    shown = json.loads(status.stdout)["counts"]
    assert {state: shown[state] for state in counts} == counts
    assert sum(shown.values()) == 45
    print(
        f"faults: 3 workers, {kills} SIGKILLs and restarts, creates"
        f" {server.counters.requests[CREATE]}, {counts}"
    )  # the figures, with -s
    assert kills >= 3
    assert counts["done"] >= 45 - kills * 6  # at most a worker's concurrency lost per kill


@pytest.mark.long
def test_a_redis_restart_and_dropped_queue_connections_mid_run(
    postgres_url: str, own_redis: RedisServer, account: str, tmp_path: Path
) -> None:
    """Three workers sharing a Redis rate budget on 30 items (batch 2, an upscale each): Redis
    is restarted (every key lost) after 8 creates, and after 18 the queue server drops
    every connection of the workers (``pg_terminate_backend``). Every worker ends well
    and every item is done: nothing paid twice."""
    with served(FAST) as (server, served_env):
        env = unmeasured(served_env)
        source = prompts(tmp_path / "p.jsonl", 30, batch_quantity=2, follow_ups=["U1"])
        assert cli(env, "enqueue", str(source), "--queue", postgres_url).returncode == 0
        # The rate only: after a restart, new job leases wait a lease time (60 s) for
        # the holders to put theirs back (RedisBudget's design; its own tests cover it).
        limits = ["--limits", own_redis.url(), "--account", account, "--rate", "300"]
        workers = [start_worker(env, postgres_url, tmp_path / f"w{n}", *limits) for n in range(3)]
        wait_for(lambda: server.counters.requests[CREATE] >= 8, "8 creates")
        own_redis.stop()
        own_redis.start()
        wait_for(lambda: server.counters.requests[CREATE] >= 18, "18 creates")
        dropped = terminate_workers_connections(postgres_url)
        outputs = [worker.communicate(timeout=SETTLE) for worker in workers]
        assert [worker.returncode for worker in workers] == [0, 0, 0], outputs
        counts = accounted(postgres_url, server, 30)
        assert server.counters.jobs_created == 120  # 60 batch images, 60 upscales
    print(f"faults: Redis restarted, {dropped} queue connections dropped, {counts}")
    assert dropped >= 3  # each worker had at least one connection
    assert counts == {"done": 30, "uncertain": 0}


def terminate_workers_connections(url: str) -> int:
    """The server ends every other connection of this test's schema (the workers')."""
    with psycopg.connect(url, autocommit=True) as connection:
        ended = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name ="
            " current_setting('application_name') AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(ended)
