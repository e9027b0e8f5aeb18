"""``akool-async bulk`` as users run it: a subprocess against the emulator over real HTTP,
killed, interrupted, faulted, resumed; never paying twice, never losing an image."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from akool_async import PollPolicy
from akool_async._cli import _connect, main
from akool_async.emulator import Emulator, EmulatorConfig, Faults, Fixed, serve_emulator

CLI = [sys.executable, "-m", "akool_async", "bulk"]
CREATE = "createBySourcePrompt"
FAST_ARGS = ["--rate", "3000", "--concurrency", "32", "--quiet"]


FAST = EmulatorConfig(time_scale=2000, durations=Fixed(30), image_max_side=16)


@contextlib.contextmanager
def served(config: EmulatorConfig = FAST) -> Iterator[tuple[Emulator, dict[str, str]]]:
    """An emulator on a loopback port, and the environment that points the CLI at it."""
    emulator = Emulator(config)
    with serve_emulator(emulator=emulator) as running:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AKOOL_")}
        env.update(AKOOL_API_KEY=running.api_key, AKOOL_BASE_URL=running.base_url)
        yield emulator, env


@pytest.fixture
def emulator() -> Iterator[tuple[Emulator, dict[str, str]]]:
    with served() as pair:
        yield pair


def unmeasured(env: dict[str, str]) -> dict[str, str]:
    """``env`` without coverage (which passes itself on to subprocesses in this variable):
    tracing a big run costs 60% more CPU for lines the smaller runs here cover already."""
    return {k: v for k, v in env.items() if k != "COVERAGE_PROCESS_CONFIG"}


def prompts(path: Path, count: int, **fields: Any) -> Path:
    with path.open("w") as file:
        for n in range(count):
            file.write(json.dumps({"id": f"r{n}", "prompt": f"a fox, take {n}", **fields}) + "\n")
    return path


def bulk(
    env: dict[str, str], *arguments: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *arguments], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def manifest(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def item_states(out: Path) -> dict[str, str]:
    with sqlite3.connect(out / "journal.sqlite") as db:
        return dict(db.execute("SELECT key, state FROM items").fetchall())


def item_errors(out: Path) -> dict[str, str]:
    with sqlite3.connect(out / "journal.sqlite") as db:
        return dict(db.execute("SELECT key, error FROM items WHERE error IS NOT NULL").fetchall())


@pytest.mark.long
def test_two_hundred_prompts_of_four_with_a_follow_up_each(
    emulator: tuple[Emulator, dict[str, str]], tmp_path: Path
) -> None:
    """800 images and 800 upscales: each on disk once, byte for byte the emulator's."""
    server, env = emulator
    env = unmeasured(env)  # the suite's heaviest process
    source = prompts(tmp_path / "p.jsonl", 200, batch_quantity=4, follow_ups=["U1"])
    out = tmp_path / "out"
    result = bulk(env, str(source), "--out", str(out), "--rate", "3000", "--concurrency", "32")
    assert result.returncode == 0, result.stderr
    records = manifest(out)
    assert len(records) == 1600
    assert all(r["ok"] for r in records)
    paths = [r["path"] for r in records]
    assert len(set(paths)) == 1600
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert files == sorted(paths)
    for record in records:
        assert (out / record["path"]).read_bytes() == server.image_bytes(record["job_id"])
    assert server.counters.jobs_created == 1600
    assert not server.counters.duplicate_creates
    assert "done: 1600 images (200 requests)" in result.stdout


@pytest.mark.long
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_killed_at_random_resumes_without_paying_twice_or_losing_an_image(
    emulator: tuple[Emulator, dict[str, str]], tmp_path: Path, seed: int
) -> None:
    """SIGKILL at a seeded random moment, then --resume until done: no create twice, every
    image of every certain request on disk, and few uncertain requests (creates in flight)."""
    server, env = emulator
    if seed != 1:  # one seed's runs are measured: the others go the same ways
        env = unmeasured(env)
    source = prompts(tmp_path / "p.jsonl", 80, batch_quantity=2, follow_ups=["V1"])
    out = tmp_path / "out"
    chance = random.Random(seed)
    process = subprocess.Popen([*CLI, str(source), "--out", str(out), *FAST_ARGS], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(chance.uniform(0.5, 3.0))  # the kill point under test, not a wait for a race
    process.send_signal(signal.SIGKILL)
    process.wait()
    for _ in range(3):
        result = bulk(env, str(source), "--out", str(out), "--resume", *FAST_ARGS)
        if result.returncode == 0:
            break
    assert result.returncode in (0, 1), result.stderr  # done, or some lines uncertain
    states = item_states(out)
    uncertain = [key for key, state in states.items() if state == "uncertain"]
    assert len(uncertain) <= 8  # the client's cap on requests in flight at the kill
    assert set(states.values()) <= {"done", "uncertain"}, item_errors(out)
    assert not server.counters.duplicate_creates
    saved = {r["job_id"] for r in manifest(out) if r["ok"]}
    for job in server.backend.jobs.values():
        key = f"id:r{job.prompt.rsplit(' ', 1)[-1]}"
        if states.get(key) == "done":
            assert job.id in saved
    done = [key for key, state in states.items() if state == "done"]
    assert len(saved) >= len(done) * 4 - len(uncertain) * 2


@pytest.mark.long
def test_bulk_over_the_aiohttp_transport(
    emulator: tuple[Emulator, dict[str, str]], tmp_path: Path
) -> None:
    """--transport aiohttp: the same run, the same bytes on disk."""
    server, env = emulator
    source = prompts(tmp_path / "p.jsonl", 20, batch_quantity=2)
    out = tmp_path / "out"
    result = bulk(env, str(source), "--out", str(out), "--transport", "aiohttp", *FAST_ARGS)
    assert result.returncode == 0, result.stdout + result.stderr
    records = manifest(out)
    assert len(records) == 40
    for record in records:
        assert (out / record["path"]).read_bytes() == server.image_bytes(record["job_id"])


@pytest.mark.long
def test_faults_end_in_the_manifest_with_their_reasons(tmp_path: Path) -> None:
    """5xx, dropped connections, 1005, 1108 and failed jobs: the run completes, every
    failure recorded with its reason, everything else done."""
    faults = Faults(http_5xx=0.04, drop_connection=0.04, code_1005=0.05, code_1108=0.05)
    with served(attrs.evolve(FAST, faults=faults, fail_rate=0.1)) as (server, env):
        source = prompts(tmp_path / "p.jsonl", 60, batch_quantity=2)
        out = tmp_path / "out"
        result = bulk(env, str(source), "--out", str(out), *FAST_ARGS)
    assert result.returncode == 1
    records = manifest(out)
    failed = [r for r in records if not r["ok"]]
    assert failed
    assert all(r["error"] or r["status"] == "failed" for r in failed)
    states = item_states(out)
    assert set(states.values()) <= {"done", "failed", "uncertain"}
    assert sum(1 for s in states.values() if s == "done") > 20
    assert sum(server.counters.faults.values()) > 0
    assert not server.counters.duplicate_creates


@pytest.mark.long
def test_ctrl_c_stops_records_and_resumes(tmp_path: Path) -> None:
    """One Ctrl-C exits 130 having recorded what was in flight: --resume finishes every item
    without creating anything twice."""
    with served(attrs.evolve(FAST, time_scale=20)) as (server, env):
        source, out = prompts(tmp_path / "p.jsonl", 40), tmp_path / "out"
        _interrupt(env, source, out, presses=1, when=lambda: _runs(out) >= 1)
        result = bulk(env, str(source), "--out", str(out), "--resume", *FAST_ARGS)
        assert result.returncode == 0, result.stdout + result.stderr
        assert set(item_states(out).values()) == {"done"}
        assert not server.counters.duplicate_creates


@pytest.mark.long
def test_second_ctrl_c_quits_at_once_with_a_consistent_journal(tmp_path: Path) -> None:
    """A second Ctrl-C exits at once: a create then in flight may or may not have reached
    the server, so its item is uncertain (never resubmitted silently); the rest resumes, and
    --resubmit-uncertain finishes the run, paying twice at most for those uncertain items."""
    with served(attrs.evolve(FAST, time_scale=20)) as (server, env):
        source, out = prompts(tmp_path / "p.jsonl", 40), tmp_path / "out"
        _interrupt(env, source, out, presses=1, when=lambda: _runs(out) >= 1)
        # Creates now answer late (having created), so the exit finds one in flight.
        server.set_faults(Faults(slow=1.0, slow_seconds=10, endpoints=frozenset({CREATE})))
        sent = server.counters.requests[CREATE]
        _interrupt(
            env, source, out, presses=2, when=lambda: server.counters.requests[CREATE] > sent
        )
        server.set_faults(Faults())
        with sqlite3.connect(out / "journal.sqlite") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        result = bulk(env, str(source), "--out", str(out), "--resume", *FAST_ARGS)
        states = item_states(out)
        uncertain = {key for key, state in states.items() if state == "uncertain"}
        assert set(states.values()) <= {"done", "uncertain"}
        assert 1 <= len(uncertain) <= 8  # the client's cap on requests in flight at the exit
        assert result.returncode == (1 if uncertain else 0), result.stdout + result.stderr
        assert not server.counters.duplicate_creates
        result = bulk(env, str(source), "--out", str(out), "--resume", "--resubmit-uncertain",
                      *FAST_ARGS)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert set(item_states(out).values()) == {"done"}
        assert len(server.counters.duplicate_creates) <= len(uncertain)


def _interrupt(
    env: dict[str, str], source: Path, out: Path, *, presses: int, when: Callable[[], bool]
) -> None:
    """Start a run, press Ctrl-C ``presses`` times once ``when()``, and expect exit 130."""
    process = subprocess.Popen([*CLI, str(source), "--out", str(out), "--resume", *FAST_ARGS],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    _until(when)
    process.send_signal(signal.SIGINT)
    if presses == 2:  # once the first is handled (two signals at once may arrive as one)
        assert process.stderr is not None
        for line in process.stderr:
            if "stopping" in line:
                break
        else:  # it ended before saying so: the second press would test nothing
            pytest.fail("the run never said it was stopping after the first Ctrl-C")
        process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 130, errors


@pytest.mark.long
def test_usage_errors_and_bad_lines(
    emulator: tuple[Emulator, dict[str, str]], tmp_path: Path
) -> None:
    """Missing files, a journal without --resume and bad buttons exit 2; bad lines are named."""
    _, env = emulator
    assert bulk(env, str(tmp_path / "missing.jsonl")).returncode == 2
    source = tmp_path / "p.jsonl"
    source.write_text('{"prompt": "a fox"}\nnot json\n{"prompt": "x", "scale": "5:4"}\n')
    out = tmp_path / "out"
    assert bulk(env, str(source), "--out", str(out), "--follow-ups", "Z9").returncode == 2
    result = bulk(env, str(source), "--out", str(out), "--rate", "1000")
    assert result.returncode == 1
    assert "line 2: invalid: not JSON" in result.stderr
    assert "line 3: invalid" in result.stderr
    assert "scale" in result.stderr
    assert "done: 1 images (1 requests)" in result.stdout
    assert bulk(env, str(source), "--out", str(out)).returncode == 2


def _runs(out: Path) -> int:
    """Runs recorded in the journal (a run records itself once it listens for Ctrl-C)."""
    try:
        with sqlite3.connect(out / "journal.sqlite") as db:
            return int(db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def _until(condition: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _jobs(out: Path) -> int:
    """Jobs recorded so far (read-only: connecting must not create the journal first)."""
    try:
        with sqlite3.connect(f"file:{out / 'journal.sqlite'}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_a_repeated_follow_up_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--follow-ups U1,u1`` names the option and exits 2 before any line is read: a
    button works once per image, as in the input file and ``client.generate``."""
    source = tmp_path / "p.jsonl"
    source.write_text('{"prompt": "a fox"}\n')
    argv = ["bulk", str(source), "--out", str(tmp_path / "out"), "--dry-run"]
    assert main([*argv, "--follow-ups", "U1,u1"]) == 2
    err = capsys.readouterr().err
    assert "--follow-ups" in err
    assert "at most once" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.long
def test_a_keyless_run_interrupted_and_resumed_saves_every_image_once(tmp_path: Path) -> None:
    """No key: the built-in emulator keeps its jobs beside the journal, so Ctrl-C and
    --resume end with every image of the example's first six prompts (one with a
    follow-up), none created twice, and the jobs still running at the interrupt reported
    as not finished, never failed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKOOL_")}
    example = Path(__file__).parent.parent / "examples" / "prompts.jsonl"
    source = tmp_path / "prompts.jsonl"
    source.write_text("".join(example.read_text().splitlines(keepends=True)[:6]))
    out = tmp_path / "images"
    args = [str(source), "--out", str(out), "--rate", "100"]
    process = subprocess.Popen([*CLI, *args], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    _until(lambda: _jobs(out) >= 3)
    process.send_signal(signal.SIGINT)
    stopped, errors = process.communicate(timeout=60)
    assert process.returncode == 130, errors
    assert "Traceback" not in errors
    assert "not finished: " in stopped
    assert "failed: 0 images (0 requests)" in stopped
    assert (out / "emulator-state.json").is_file()
    resumed = bulk(env, *args, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "done: 14 images (6 requests)" in resumed.stdout  # 6 x 2, and U1 on demo-04's two
    records = manifest(out)
    assert len(records) == 14
    assert all(r["ok"] for r in records)
    assert len({r["job_id"] for r in records}) == 14
    assert len({r["path"] for r in records}) == 14
    state = json.loads((out / "emulator-state.json").read_text())
    assert max(state["creates"].values()) == 1  # no create or press sent twice
    assert state["jobs_created"] == 14


@pytest.mark.long
def test_a_wrong_key_stops_at_once_and_resume_retries_after_the_fix(
    emulator: tuple[Emulator, dict[str, str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """A refused key: one line with the hint, exit 4, a handful of creates (not one per
    line); with the key fixed, --resume tries the refused lines again and finishes."""
    server, env = emulator
    source, out = prompts(tmp_path / "p.jsonl", 100), tmp_path / "out"
    monkeypatch.setenv("AKOOL_BASE_URL", env["AKOOL_BASE_URL"])
    monkeypatch.setenv("AKOOL_API_KEY", "wrong-key-wrong-key-wrong-key-00")
    argv = [str(source), "--out", str(out), "--rate", "3000", "--concurrency", "4"]
    assert main(["bulk", *argv]) == 4
    (line,) = capsys.readouterr().err.strip().splitlines()  # no line per refused request
    assert "check AKOOL_API_KEY" in line
    assert "--resume" in line
    assert server.counters.requests[CREATE] <= 8  # the workers' first tries, no more
    assert set(item_states(out).values()) == {"refused"}
    monkeypatch.setenv("AKOOL_API_KEY", env["AKOOL_API_KEY"])
    assert main(["bulk", *argv, "--resume", "-q", "--concurrency", "100"]) == 0
    assert set(item_states(out).values()) == {"done"}
    assert len(manifest(out)) == 100


def test_dry_run_counts_checks_and_sends_nothing(
    emulator: tuple[Emulator, dict[str, str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Requests, images and credits at the given prices, every refused line with its
    reason, exit 1 for refused lines; no request sent, no folder made."""
    server, env = emulator
    monkeypatch.setenv("AKOOL_BASE_URL", env["AKOOL_BASE_URL"])
    monkeypatch.setenv("AKOOL_API_KEY", env["AKOOL_API_KEY"])
    source = tmp_path / "p.jsonl"
    source.write_text(
        '{"id": "a", "prompt": "a fox", "batch_quantity": 4}\n'
        "\n"
        "not json\n"
        '{"id": "b", "prompt": "a cat", "follow_ups": ["V1"]}\n'
        '{"id": "a", "prompt": "a fox again"}\n'
        '{"prompt": "x", "scale": "5:4"}\n'
    )
    out = tmp_path / "out"
    argv = ["bulk", str(source), "--out", str(out), "--follow-ups", "U1", "--dry-run"]
    assert main([*argv, "--image-price", "3"]) == 1
    printed = capsys.readouterr().out.splitlines()
    assert printed[:3] == [
        "line 3: refused: not JSON (Expecting value)",
        "line 5: refused: an id already used earlier in this input",
        printed[2],
    ]
    assert printed[2].startswith("line 6: refused: ")
    assert "scale" in printed[2]
    assert "would send 2 requests for 10 images (5 created, 5 follow-ups)" in printed
    assert "expected credits: 25 (3 per image, 2 per follow-up; --image-price/--button-price)" \
        in printed  # fmt: skip
    assert "refused lines: 3" in printed
    assert sum(server.counters.requests.values()) == 0
    assert not out.exists()
    source.write_text('{"prompt": "a fox"}\n')
    assert main(argv) == 0
    assert "expected credits: 3 (1 per image, 2 per follow-up; " in capsys.readouterr().out
    source.write_bytes(b'{"prompt": "caf\xe9"}\n')  # Latin-1, not UTF-8
    assert main(argv) == 2
    assert "cannot be read as UTF-8" in capsys.readouterr().err


def test_a_keyless_csv_run_ends_on_a_frame_that_matches_its_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CSV's header and blank lines are not requests: the last frame reads 3/3 100%,
    its image count is the summary's, and the summary names the gallery."""
    for name in ("AKOOL_API_KEY", "AKOOL_CLIENT_ID", "AKOOL_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_connect, "EMULATOR_TIME_SCALE", 3000.0)
    source = tmp_path / "p.csv"
    source.write_text('prompt,batch_quantity\n"a fox,\nin snow",2\n\na cat,1\n\na dog,1\n\n')
    out = tmp_path / "out"
    assert main(["bulk", str(source), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    frame = captured.err.strip().splitlines()[-1]
    assert frame.startswith("3/3 100%, 4 images, 0 failed, 4 credits, ")
    assert "done: 4 images (3 requests)" in captured.out
    assert f"gallery: {out / 'index.html'}" in captured.out
    assert (out / "index.html").is_file()
    assert main(["-q", "bulk", str(source), "--out", str(tmp_path / "quiet")]) == 0
    assert capsys.readouterr() == ("", "")  # -q: no notice, no frames, no summary


def test_a_keyless_run_quit_at_once_still_keeps_the_emulators_jobs(tmp_path: Path) -> None:
    """A second Ctrl-C exits at once, but first writes the emulator's state: every job the
    journal recorded is there for a resume to find."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKOOL_")}
    source, out = prompts(tmp_path / "p.jsonl", 40), tmp_path / "out"
    process = subprocess.Popen([*CLI, str(source), "--out", str(out), "--rate", "100"],
                               env=env, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)  # fmt: skip
    _until(lambda: _jobs(out) >= 3)
    process.send_signal(signal.SIGINT)
    assert process.stderr is not None
    for line in process.stderr:  # the first is handled: the second quits at once
        if "stopping" in line:
            break
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert process.returncode == 130
    with sqlite3.connect(out / "journal.sqlite") as db:
        recorded = {job_id for (job_id,) in db.execute("SELECT job_id FROM jobs")}
    saved = json.loads((out / "emulator-state.json").read_text())
    assert recorded
    assert recorded <= {job["id"] for job in saved["jobs"]}


def test_an_unreadable_emulator_state_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key-less --resume whose emulator state is damaged says which file, and what to do."""
    for name in ("AKOOL_API_KEY", "AKOOL_CLIENT_ID", "AKOOL_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_connect, "EMULATOR_TIME_SCALE", 3000.0)
    source, out = prompts(tmp_path / "p.jsonl", 2), tmp_path / "out"
    assert main(["-q", "bulk", str(source), "--out", str(out)]) == 0
    (out / "emulator-state.json").write_text("{not json")
    assert main(["-q", "bulk", str(source), "--out", str(out), "--resume"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "emulator-state.json cannot be read" in line
    assert "remove it" in line


@pytest.mark.parametrize("keyless", [False, True], ids=["served", "keyless"])
def test_poll_floor_is_the_clients_shortest_poll_interval(
    keyless: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--poll-floor`` becomes the client's ``PollPolicy.min_interval``, against a served
    API and against the built-in emulator, and the run completes."""
    from akool_async import _client

    given: list[Any] = []
    real_init = _client.AkoolClient.__init__

    def recording_init(self: Any, *args: Any, **options: Any) -> None:
        given.append(options.get("poll_policy"))
        real_init(self, *args, **options)

    monkeypatch.setattr(_client.AkoolClient, "__init__", recording_init)
    for name in _connect.CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    source, out = prompts(tmp_path / "p.jsonl", 4, batch_quantity=2), tmp_path / "out"
    argv = ["-q", "bulk", str(source), "--out", str(out), "--rate", "1000", "--poll-floor", "0.02"]
    with contextlib.ExitStack() as stack:
        if keyless:
            monkeypatch.setattr(_connect, "EMULATOR_TIME_SCALE", 3000.0)
        else:
            _, env = stack.enter_context(served())
            monkeypatch.setenv("AKOOL_BASE_URL", env["AKOOL_BASE_URL"])
            monkeypatch.setenv("AKOOL_API_KEY", env["AKOOL_API_KEY"])
        assert main(argv) == 0
    assert len(list(out.glob("id-*/*.png"))) == 8
    (policy,) = given
    assert policy.min_interval == 0.02
    assert policy.max_interval >= 0.02


def test_a_poll_floor_above_the_longest_wait_raises_it() -> None:
    """A floor above ``max_interval`` (60 s) lifts it: the policy would refuse it otherwise."""
    policy = _connect.with_floor(PollPolicy(), 90.0)
    assert (policy.min_interval, policy.max_interval) == (90.0, 90.0)
    assert _connect.with_floor(PollPolicy(), None) == PollPolicy()


@pytest.mark.parametrize("floor", ["0", "-1", "nan", "inf"])
def test_a_poll_floor_not_above_zero_is_a_usage_error(
    floor: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = prompts(tmp_path / "p.jsonl", 1)
    out = tmp_path / "out"
    assert main(["bulk", str(source), "--out", str(out), "--poll-floor", floor]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "--poll-floor" in line
    assert floor in line
    assert not out.exists()
