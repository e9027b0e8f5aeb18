"""Scale-out: 1, 2 and 4 ``akool-async worker`` processes on one PostgreSQL queue against
one emulator (its own process, jobs of ~30 ms), side by side in interleaved rounds.

- limited: the emulator allows ``--limit`` requests/s per key (burst 10, answering 1005
  past it); the workers share a ``RedisBudget`` of that rate and ``--max-jobs`` jobs in
  flight (the budget's burst 5, under the server's 10). Figures: the aggregate API request
  rate over the limit (between 20% and 80% of the requests: 1.00 is the limit fully
  used), 1005 rejections, duplicate creates, the peak of jobs in flight (from the queue's
  submitted/finished times).
- unlimited: no limit at the emulator, the workers at ``--rate 5000`` with no shared
  budget: prompts/s per worker count, and over one worker's in the same round.

Servers: ``AKOOL_TEST_POSTGRES_URL`` / ``AKOOL_TEST_REDIS_URL`` (``.ci/run`` exports
them), else a throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl``) and ``redis-server``
are started on loopback. Each run has a fresh schema and a budget name of its own.

    python benchmarks/scale_out.py [--prompts 120] [--fast-prompts 240] [--limit 20]
                                   [--rounds 2] [--json PATH]
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from _common import emulator_process  # benchmarks/ is on sys.path
from _rounds import Figures, interleave, parser, ratios

COUNTS = (1, 2, 4)
CREATE = "createBySourcePrompt"
WORKER = [sys.executable, "-m", "akool_async", "worker", "-q", "--poll-floor", "0.05",
          "--lease", "30"]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A PostgreSQL server's URL: the one given, else a throwaway cluster's."""
    given = os.environ.get("AKOOL_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    folder = Path(tempfile.mkdtemp(prefix="akool-bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", _free_port()

    def quietly(command: list[str]) -> None:
        subprocess.run(_as_postgres(command), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)  # fmt: skip

    quietly(["initdb", "-D", str(data), "-U", "postgres", "--auth=trust"])
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    quietly(["pg_ctl", "-D", str(data), "-l", str(folder / "log"), "-o", options, "-w", "start"])
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres(["pg_ctl", "-D", str(data), "-m", "immediate", "stop"]),
                       check=False, capture_output=True)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def redis() -> Iterator[str]:
    given = os.environ.get("AKOOL_TEST_REDIS_URL")
    if given:
        yield given
        return
    port = _free_port()
    with tempfile.TemporaryDirectory() as folder:
        process = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port),
                                    "--save", "", "--appendonly", "no", "--dir", folder],
                                   stdout=subprocess.DEVNULL)  # fmt: skip
        try:
            for _ in range(200):
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.kill()
            process.wait()


@contextlib.contextmanager
def fresh_schema(server: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    parts = urllib.parse.urlsplit(server)
    query = urllib.parse.urlencode({"options": f"-c search_path={schema}"},
                                   quote_via=urllib.parse.quote)  # fmt: skip
    try:
        yield urllib.parse.urlunsplit(parts._replace(query=query))
    finally:
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


def peak_in_flight(url: str) -> int:
    """The most jobs submitted and not yet finished at once, from the queue's records."""
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT submitted, finished FROM akool_jobs").fetchall()
    events = sorted([(s, 1) for s, _ in rows] + [(f, -1) for _, f in rows if f is not None])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


def run(workers: int, *, prompts: Path, count: int, server: str, redis_url: str | None,
        limit: float | None, max_jobs: int, concurrency: int) -> dict[str, float]:  # fmt: skip
    """``workers`` worker processes draining ``count`` prompts on a fresh emulator."""
    emulator_args = ["--time-scale", "1000", "--credits", "1e9", "--image-max-side", "64"]
    if limit is not None:
        emulator_args += ["--rate-limit", str(limit), "--rate-burst", "10"]
    with emulator_process(*emulator_args) as akool, fresh_schema(server) as url, \
            tempfile.TemporaryDirectory() as out:  # fmt: skip
        env = {**os.environ, "AKOOL_API_KEY": akool.api_key, "AKOOL_BASE_URL": akool.base_url,
               "AKOOL_QUEUE_URL": url}  # fmt: skip
        subprocess.run([sys.executable, "-m", "akool_async", "enqueue", "-q", str(prompts)],
                       env=env, check=True, capture_output=True)  # fmt: skip
        extra = ["--rate", "5000", "--concurrency", str(concurrency)]
        if redis_url is not None and limit is not None:
            # The budget's burst under the server's (10): what the network's jitter bunches
            # together still fits.
            extra = ["--concurrency", str(concurrency), "--rate", str(limit), "--burst", "5",
                     "--limits", redis_url, "--account", f"bench-{uuid.uuid4().hex[:8]}",
                     "--max-jobs", str(max_jobs)]  # fmt: skip
        started = time.monotonic()
        processes = [subprocess.Popen([*WORKER, "--out", f"{out}/w{n}", *extra], env=env,
                                      stderr=subprocess.PIPE, text=True)
                     for n in range(workers)]  # fmt: skip
        samples: list[tuple[float, int]] = []  # (when, API requests so far)
        while any(p.poll() is None for p in processes):
            samples.append((time.monotonic(), api_requests(akool.counters())))
            time.sleep(0.1)
        ended = time.monotonic()
        failed = [p.stderr.read() if p.stderr else "" for p in processes if p.returncode]
        if failed:
            raise RuntimeError(f"a worker failed: {failed[0]}")
        counters = akool.counters()
        peak = peak_in_flight(url)
    api = api_requests(counters)
    first = next((when for when, sent in samples if sent), started)
    return {"API requests/s": steady_rate(samples, api), "prompts/s": count / (ended - first),
            "1005 rejections": counters["rate_limited"],
            "duplicate creates": len(counters["duplicate_creates"]),
            "creates": counters["requests"].get(CREATE, 0), "peak jobs in flight": peak,
            "seconds": ended - started}  # fmt: skip


def api_requests(counters: dict[str, Any]) -> int:
    return int(sum(counters["requests"].values()) - counters["requests"].get("image", 0))


def steady_rate(samples: list[tuple[float, int]], total: int) -> float:
    """Requests/s between the moments 20% and 80% of them had gone: the run at its pace,
    without the start-up (processes importing) and the tail (the last jobs' polls)."""
    low = next(when for when, sent in samples if sent >= 0.2 * total)
    high, sent_high = next((when, sent) for when, sent in samples if sent >= 0.8 * total)
    sent_low = next(sent for when, sent in samples if when == low)
    return (sent_high - sent_low) / (high - low) if high > low else float("nan")


def write_prompts(path: Path, count: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"p{n}", "prompt": f"a red fox, take {n}"})
                            + "\n" for n in range(count)))  # fmt: skip
    return path


def main() -> None:
    arguments = parser(__doc__, rounds=2)
    arguments.add_argument("--prompts", type=int, default=120, help="prompts, limited")
    arguments.add_argument("--fast-prompts", type=int, default=240, help="prompts, unlimited")
    arguments.add_argument("--limit", type=float, default=20.0, help="requests/s per key")
    arguments.add_argument("--max-jobs", type=int, default=48, help="jobs in flight, limited")
    arguments.add_argument("--concurrency", type=int, default=32, help="items per worker")
    args = arguments.parse_args()
    report = Figures(__file__, args, f"akool-async worker x {COUNTS}, one queue, batches of "
                     f"1, jobs of ~30 ms, {os.cpu_count()} cores shared with the emulator, "
                     "PostgreSQL and Redis")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder, postgres() as server, redis() as redis_url:
        slow = write_prompts(Path(folder) / "slow.jsonl", args.prompts)
        fast = write_prompts(Path(folder) / "fast.jsonl", args.fast_prompts)
        contenders = {}
        for n in COUNTS:
            contenders[f"limited, {n} workers"] = functools.partial(
                run, n, prompts=slow, count=args.prompts, server=server, redis_url=redis_url,
                limit=args.limit, max_jobs=args.max_jobs,
                concurrency=args.concurrency)  # fmt: skip
            contenders[f"unlimited, {n} workers"] = functools.partial(
                run, n, prompts=fast, count=args.fast_prompts, server=server, redis_url=None,
                limit=None, max_jobs=args.max_jobs,
                concurrency=args.concurrency)  # fmt: skip
        runs = interleave(args.rounds, contenders)
    for n in COUNTS:
        limited, unlimited = runs[f"limited, {n} workers"], runs[f"unlimited, {n} workers"]
        report.add(f"limited, {n} workers: API requests/s over the limit ({args.limit:g}/s)",
                   [r["API requests/s"] / args.limit for r in limited], "x")  # fmt: skip
        for figure in ("1005 rejections", "duplicate creates", "peak jobs in flight"):
            report.add(f"limited, {n} workers: {figure}", [r[figure] for r in limited], "")
        report.add(f"unlimited, {n} workers: prompts/s", [r["prompts/s"] for r in unlimited], "")
        report.add(f"unlimited, {n} workers: duplicate creates",
                   [r["duplicate creates"] for r in unlimited], "")  # fmt: skip
        if n > 1:
            one = [r["prompts/s"] for r in runs["unlimited, 1 workers"]]
            report.add(f"unlimited, {n} workers: prompts/s over 1 worker's",
                       ratios([r["prompts/s"] for r in unlimited], one), "x")  # fmt: skip
    report.close()


if __name__ == "__main__":
    main()
