"""``akool-async bulk`` at its edges, against the emulator over real HTTP: text that cannot
be encoded, the budget's held-back lines, a job past --job-timeout, reasons and names under
--quiet. In-process (``main``) where the process itself is not the point."""

from __future__ import annotations

import array
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from akool_async._cli import main
from akool_async.bulk import _folder
from akool_async.emulator import Emulator, Faults, Fixed
from akool_async.emulator._state import ScaledClock

from .test_bulk_cli import (
    CLI,
    CREATE,
    FAST,
    _jobs,
    _until,
    bulk,
    item_states,
    manifest,
    prompts,
    served,
    unmeasured,
)
from .test_cli import as_from_a_terminal

FAST_IN_PROCESS = ["--rate", "3000", "--concurrency", "8"]


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """A served emulator that in-process runs of ``main`` talk to."""
    with served() as (server, env):
        for name in ("AKOOL_CLIENT_ID", "AKOOL_CLIENT_SECRET"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AKOOL_BASE_URL", env["AKOOL_BASE_URL"])
        monkeypatch.setenv("AKOOL_API_KEY", env["AKOOL_API_KEY"])
        yield server


def run(*argv: str) -> int:
    return main(["bulk", *argv, *FAST_IN_PROCESS])


@pytest.mark.long
def test_lone_surrogates_and_nul_are_invalid_lines_and_the_run_goes_on(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A lone surrogate (JSON ``\\ud800``) or NUL in an id, a prompt or a negative prompt
    is an invalid line with its reason, printed even under -q; later lines are done."""
    source = tmp_path / "p.jsonl"
    source.write_text(
        '{"id": "a", "prompt": "a fox"}\n'
        '{"id": "\\ud800", "prompt": "a cat"}\n'
        '{"id": "b", "prompt": "a dog \\udfff"}\n'
        '{"id": "c", "prompt": "a cow", "negative_prompt": "x\\u0000"}\n'
        '{"id": "x\\u0000y", "prompt": "a hen"}\n'
        '{"id": "d", "prompt": "an owl"}\n'
    )
    out = tmp_path / "out"
    assert main(["-q", "bulk", str(source), "--out", str(out), *FAST_IN_PROCESS]) == 1
    captured = capsys.readouterr()
    reasons = [line for line in captured.err.splitlines() if ": invalid: " in line]
    assert [line.split(":")[0] for line in reasons] == ["line 2", "line 3", "line 4", "line 5"]
    assert "id='\\ud800'" in reasons[0]
    assert "lone surrogates" in reasons[1]
    assert "negative_prompt='x\\x00'" in reasons[2]
    assert "id='x\\x00y'" in reasons[3]
    assert "invalid input lines: 4" in captured.out
    assert sorted(r["id"] for r in manifest(out) if r["ok"]) == ["a", "d"]
    assert set(item_states(out)) == {"id:a", "id:d"}
    assert not emulator.counters.duplicate_creates
    # In a CSV a NUL byte is text like any other: the line is invalid, the next one done.
    table = tmp_path / "p.csv"
    table.write_bytes(b"id,prompt\ne,a b\x00ee\nf\x00,a fly\ng,a gnu\n")
    out = tmp_path / "csv"
    assert main(["-q", "bulk", str(table), "--out", str(out), *FAST_IN_PROCESS]) == 1
    err = capsys.readouterr().err
    assert "line 2: invalid: prompt='a b\\x00ee'" in err
    assert "line 3: invalid: id='f\\x00'" in err
    assert [r["id"] for r in manifest(out) if r["ok"]] == ["g"]
    invalid = [(r["line"], r["state"]) for r in manifest(out) if r["kind"] == "line"]
    assert invalid == [(2, "invalid"), (3, "invalid")]  # every input line has its row


@pytest.mark.long
def test_the_budget_holds_back_the_rest_with_its_own_exit_code(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--budget 5 on 20 one-credit prompts: 5 done, the other 15 (most never read by the
    feeder before) held back, exit 6 and a line saying how to go on; --resume with a
    larger budget does the 15, nothing created twice. 0 and less are usage errors."""
    source, out = prompts(tmp_path / "p.jsonl", 20), tmp_path / "out"
    with source.open("a") as file:
        file.write("not json\n")  # after the budget ran out, still an invalid line
    assert run(str(source), "--out", str(out), "--budget", "5") == 1
    captured = capsys.readouterr()
    assert "held back: 15 requests" in captured.err
    assert "--resume and a larger --budget" in captured.err
    assert "done: 5 images (5 requests)" in captured.out
    assert "invalid input lines: 1" in captured.out
    rows = {r["line"]: r for r in manifest(out)}
    assert sorted(rows) == list(range(1, 22))  # every line accounted for, in the manifest
    assert [n for n, r in rows.items() if r["state"] == "budget"] == list(range(6, 21))
    assert "budget" in rows[6]["error"]
    assert rows[21]["state"] == "invalid"
    source.write_text("".join(source.read_text().splitlines(keepends=True)[:20]))
    assert run(str(source), "--out", str(out), "--budget", "12", "--resume") == 6
    captured = capsys.readouterr()
    assert "held back: 8 requests" in captured.err  # the budget counts every run's credits
    assert run(str(source), "--out", str(out), "--budget", "20", "--resume", "-q") == 0
    assert {r["state"] for r in manifest(out)} == {"done"}  # the notes of earlier runs went
    assert set(item_states(out).values()) == {"done"}
    assert len(item_states(out)) == 20
    assert emulator.counters.requests[CREATE] == 20
    assert not emulator.counters.duplicate_creates
    capsys.readouterr()
    for budget in ("0", "-3", "nan"):
        assert run(str(source), "--out", str(tmp_path / budget), "--budget", budget) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert "--budget must be a number of credits above 0" in line
    assert emulator.counters.requests[CREATE] == 20


def named_lines(
    source: Path, out: Path, label: str, capsys: pytest.CaptureFixture[str]
) -> list[str]:
    """The lines a -q run (exit 1) names after ``label``, sorted."""
    assert main(["-q", "bulk", str(source), "--out", str(out), *FAST_IN_PROCESS]) == 1
    (named,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith(label)]
    return sorted(named.removeprefix(label).split(", "))


def test_quiet_still_names_failed_and_uncertain_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """-q with failed jobs and 5xx-answered creates: exit 1, the summary names each failed
    and each uncertain line by its id (or line number, for a line without one)."""
    config = attrs.evolve(FAST, fail_rate=1.0)
    with served(config) as (server, env):
        monkeypatch.setenv("AKOOL_BASE_URL", env["AKOOL_BASE_URL"])
        monkeypatch.setenv("AKOOL_API_KEY", env["AKOOL_API_KEY"])
        source = prompts(tmp_path / "p.jsonl", 1)
        with source.open("a") as file:
            file.write('{"prompt": "no id"}\n')
        assert named_lines(source, tmp_path / "a", "failed lines: ", capsys) == ["id r0", "line 2"]
        server.set_faults(Faults(http_5xx=1.0, endpoints=frozenset({CREATE})))
        source.write_text(source.read_text().replace('"a ', '"b ').replace("no id", "none"))
        uncertain = named_lines(source, tmp_path / "b", "uncertain lines: ", capsys)
        assert uncertain == ["id r0", "line 2"]
        assert not server.counters.duplicate_creates


@pytest.mark.long
def test_a_job_past_its_timeout_is_left_running_and_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Jobs that would take a day: --job-timeout 0.5 stops following them, exit 75, the
    lines named as timed out; once they are done on the server, --resume collects every
    image without a create sent twice. 0 or less is a usage error."""
    config = attrs.evolve(FAST, time_scale=1, durations=Fixed(86_400))
    with served(config) as (server, env):
        monkeypatch.setenv("AKOOL_BASE_URL", env["AKOOL_BASE_URL"])
        monkeypatch.setenv("AKOOL_API_KEY", env["AKOOL_API_KEY"])
        source, out = prompts(tmp_path / "p.jsonl", 3, batch_quantity=2), tmp_path / "out"
        assert run(str(source), "--out", str(out), "--job-timeout", "0.5", "-q") == 75
        printed = capsys.readouterr().out
        assert "timed out lines (--resume follows them): " in printed
        assert "not finished: 6 images (3 requests)" in printed
        assert set(item_states(out).values()) == {"submitted"}
        clock = server.backend.clock
        assert isinstance(clock, ScaledClock)
        clock.resume_from(clock() + 86_401)  # a day later: they are done
        assert run(str(source), "--out", str(out), "--resume", "-q") == 0
        assert set(item_states(out).values()) == {"done"}
        records = manifest(out)
        assert len(records) == 6
        assert all(r["ok"] for r in records)
        assert server.counters.requests[CREATE] == 3
        assert not server.counters.duplicate_creates
        capsys.readouterr()
        for bad in ("0", "-1", "inf"):
            assert run(str(source), "--out", str(out), "--resume", "--job-timeout", bad) == 2
            assert "--job-timeout must be seconds above 0" in capsys.readouterr().err


@pytest.mark.long
def test_a_refusal_that_proves_nothing_is_uncertain_and_never_sent_again(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Creates answered (after creating) by a proxy's bare 403 or a 1108 inside a 503 are
    uncertain, not refused: --resume does not send them again; a 1009 in a 200 (Akool's
    own refusal) is refused and --resume sends it again. No create is paid twice."""
    source, out = prompts(tmp_path / "p.jsonl", 30), tmp_path / "out"
    emulator.set_faults(Faults(proxy_4xx=0.3, code_in_5xx=0.3, code_1009=0.3,
                               endpoints=frozenset({CREATE})))  # fmt: skip
    assert run(str(source), "--out", str(out), "-q") == 1
    states = item_states(out)
    faults = emulator.counters.faults
    assert min(faults["proxy_4xx"], faults["code_in_5xx"], faults["code_1009"]) > 0
    assert list(states.values()).count("uncertain") == faults["proxy_4xx"] + faults["code_in_5xx"]
    assert list(states.values()).count("refused") == faults["code_1009"]
    emulator.set_faults(Faults())
    assert run(str(source), "--out", str(out), "--resume", "-q") == 1
    assert set(item_states(out).values()) == {"done", "uncertain"}
    assert not emulator.counters.duplicate_creates
    assert "uncertain lines: " in capsys.readouterr().out


@pytest.mark.long
def test_a_journal_belongs_to_its_output_folder(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A folder with results and a journal missing, empty or damaged is refused in one
    line (exit 2) with or without --resume: never started over, no image rewritten, no
    create sent again. A resume removes the .part files dead downloads left, looking
    into the item folders once."""
    source, out = prompts(tmp_path / "p.jsonl", 4), tmp_path / "out"
    assert run(str(source), "--out", str(out), "-q") == 0
    images = {path: path.read_bytes() for path in out.rglob("*.png")}
    assert len(images) == 4
    journal = out / "journal.sqlite"
    kept = journal.read_bytes()
    capsys.readouterr()

    def refused(*options: str) -> str:
        assert run(str(source), "--out", str(out), *options) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        return line

    assert "pass --resume to continue it" in refused()
    journal.unlink()
    assert "holds the results of an earlier run (manifest.jsonl): pass --resume" in refused()
    assert f"its journal {journal} is missing: resuming would pay" in refused("--resume")
    journal.write_bytes(b"")
    assert f"its journal {journal} is empty" in refused("--resume")
    journal.write_bytes(b"not a database, " * 512)
    line = refused("--resume")
    assert f"the journal {journal} cannot be read (file is not a database)" in line
    assert "restore it from a backup" in line
    assert {path: path.read_bytes() for path in out.rglob("*.png")} == images
    assert emulator.counters.requests[CREATE] == 4
    # The journal back, and downloads killed mid-way: their parts go, a live one's stays.
    journal.write_bytes(kept)
    folder = next(path.parent for path in images)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])  # its pid names no process now
    assert ended.wait() == 0
    dead = [folder / f".9.png.{ended.pid}-0a1b2c3d.part", folder / ".8.png.c0ffee.part"]
    live = folder / f".7.png.{os.getpid()}-0a1b2c3d.part"
    for part in (*dead, live):
        part.write_bytes(b"\x89PNG partial")
    scans: list[Path] = []
    scan = _folder.remove_dead_parts
    monkeypatch.setattr(_folder, "remove_dead_parts", lambda out: scans.append(out) or scan(out))
    assert run(str(source), "--out", str(out), "--resume", "-q") == 0
    assert scans == [out]  # the command line's check does not clean up: the run does, once
    assert [part.exists() for part in (*dead, live)] == [False, False, True]
    assert {path: path.read_bytes() for path in out.rglob("*.png")} == images
    assert not emulator.counters.duplicate_creates


# Makes a database and dies mid-transaction, its pages spilled to the file: the rollback
# journal beside it is hot (what a bulk killed while its journal turned to WAL leaves).
KILLED_MAKING_A_DATABASE = """
import os, signal, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA cache_size = 1")
db.execute("BEGIN IMMEDIATE")
db.execute("CREATE TABLE items (key TEXT PRIMARY KEY, state TEXT)")
for n in range(50):
    db.execute("INSERT INTO items VALUES (?, 'done')", (f"id:r{n}" + "-" * 4000,))
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.long
def test_a_journal_left_hot_by_a_process_killed_making_it_is_resumed(
    emulator: Emulator, tmp_path: Path
) -> None:
    """--resume after a process was killed while it made the journal: SQLite's hot rollback
    journal is rolled back (a read-only look cannot), the journal is empty and the folder
    holds no results, so the run goes on and sends each line once."""
    source, out = prompts(tmp_path / "p.jsonl", 3), tmp_path / "out"
    out.mkdir()
    journal = out / "journal.sqlite"
    made = subprocess.run([sys.executable, "-c", KILLED_MAKING_A_DATABASE, str(journal)],
                          check=False)  # fmt: skip
    assert made.returncode == -signal.SIGKILL
    assert journal.stat().st_size > 0  # pages spilled: else no journal beside it is hot
    assert journal.with_name("journal.sqlite-journal").stat().st_size > 0  # hot
    assert run(str(source), "--out", str(out), "--resume", "-q") == 0
    assert item_states(out) == {f"id:r{n}": "done" for n in range(3)}
    assert emulator.counters.requests[CREATE] == 3
    assert not emulator.counters.duplicate_creates


# Holds the journal so that no other connection can read it (an exclusive locking mode),
# until its standard input closes.
HOLDING_A_DATABASE = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA locking_mode = EXCLUSIVE")
db.execute("BEGIN EXCLUSIVE")
db.execute("UPDATE runs SET started = started")
print("held", flush=True)
sys.stdin.read()
db.execute("COMMIT")
"""


@contextlib.contextmanager
def held_locked(journal: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``journal`` locked, until the block is left."""
    holding = [sys.executable, "-c", HOLDING_A_DATABASE, str(journal)]
    with subprocess.Popen(
        holding, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline() == "held\n"
        yield holder
        holder.stdin.close()


def two_of_three_done(
    emulator: Emulator, tmp_path: Path
) -> tuple[Path, Path, Path, int, dict[str, str]]:
    """An input of three lines, a run into ``out`` having done the first two: the input,
    ``out``, its journal, the creates sent so far, and each item's state."""
    source, out = prompts(tmp_path / "p.jsonl", 3), tmp_path / "out"
    lines = source.read_text().splitlines(keepends=True)
    source.write_text("".join(lines[:2]))
    assert run(str(source), "--out", str(out), "-q") == 0
    source.write_text("".join(lines))
    journal, creates = out / "journal.sqlite", emulator.counters.requests[CREATE]
    with contextlib.closing(sqlite3.connect(journal)) as db:  # closed: a holder needs it
        before = dict(db.execute("SELECT key, state FROM items").fetchall())
    return source, out, journal, creates, before


@pytest.mark.long
def test_a_journal_another_process_holds_locked_is_refused_as_busy_not_unreadable(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """--resume while another process holds the journal locked, past the wait: a warning
    that it waits, then one error line saying so (exit 2), not "cannot be read, restore it
    from a backup"; nothing sent, the journal untouched. Once it lets go, the resume goes
    on."""
    source, out, journal, creates, before = two_of_three_done(emulator, tmp_path)
    monkeypatch.setattr("akool_async.bulk._folder.JOURNAL_WAIT", 0.2)
    with held_locked(journal) as holder:
        assert run(str(source), "--out", str(out), "--resume", "-q") == 2
    assert holder.returncode == 0
    (waiting,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert waiting.startswith(f"the journal {journal} is held locked by another process:")
    errors = capsys.readouterr().err.strip().splitlines()
    (line,) = [text for text in errors if text.startswith("error:")]
    assert line.startswith(f"error: the journal {journal} is held locked by another process")
    assert "waited 0.2 s" in line
    assert "restore" not in line
    assert emulator.counters.requests[CREATE] == creates
    assert item_states(out) == before
    assert run(str(source), "--out", str(out), "--resume", "-q") == 0
    assert item_states(out) == {f"id:r{n}": "done" for n in range(3)}
    assert emulator.counters.requests[CREATE] == creates + 1
    assert not emulator.counters.duplicate_creates


@pytest.mark.long
def test_ctrl_c_while_waiting_for_a_locked_journal_ends_at_once_with_nothing_sent(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Ctrl-C while a --resume waits for the journal another process holds locked (60 s
    by default): it ends with "interrupted" and exit 130, long before the wait is over
    (which would end with exit 2); nothing sent, the journal untouched."""
    source, out, journal, creates, before = two_of_three_done(emulator, tmp_path)
    resuming = [*CLI, str(source), "--out", str(out), "--resume", "-q", *FAST_IN_PROCESS]
    with (
        held_locked(journal),
        subprocess.Popen(resuming, env=unmeasured(dict(os.environ)), text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=as_from_a_terminal) as resume,  # noqa: PLW1509 (only signal.signal)
    ):  # fmt: skip
        try:  # a test that fails leaves no process running (nor its pipes open)
            assert resume.stderr is not None
            waiting = resume.stderr.readline()  # it waits: the warning says so
            assert f"the journal {journal} is held locked by another process" in waiting
            resume.send_signal(signal.SIGINT)
            _, rest = resume.communicate(timeout=_folder.JOURNAL_WAIT / 2)
        finally:
            resume.kill()  # nothing once it has ended
    assert resume.returncode == 130, rest
    assert rest.strip().splitlines() == ["interrupted"]
    assert emulator.counters.requests[CREATE] == creates
    assert item_states(out) == before


FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_IMMUTABLE_FL = 0x80086601, 0x40086602, 0x10


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` that no process may write in: by its mode, or, as root (whom modes do not
    stop), by the file system's immutable flag (Linux; skipped where there is none)."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    import fcntl

    descriptor = os.open(path, os.O_RDONLY)
    try:
        flags = array.array("i", [0])
        try:
            fcntl.ioctl(descriptor, FS_IOC_GETFLAGS, flags, True)
            fcntl.ioctl(descriptor, FS_IOC_SETFLAGS, array.array("i", [flags[0] | FS_IMMUTABLE_FL]))
        except OSError as exc:
            pytest.skip(f"root, on a file system without an immutable flag ({exc.strerror})")
        try:
            yield
        finally:
            fcntl.ioctl(descriptor, FS_IOC_SETFLAGS, flags)
    finally:
        os.close(descriptor)


@pytest.mark.long
def test_a_read_only_journal_is_one_line_and_exit_74(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--resume on a journal that cannot be written: one line naming it (exit 74), nothing
    sent; writable again, the resume finishes."""
    source, out = prompts(tmp_path / "p.jsonl", 3), tmp_path / "out"
    lines = source.read_text().splitlines(keepends=True)
    source.write_text("".join(lines[:2]))
    assert run(str(source), "--out", str(out), "-q") == 0
    source.write_text("".join(lines))
    journal = out / "journal.sqlite"
    with read_only(journal):
        assert run(str(source), "--out", str(out), "--resume", "-q") == 74
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: the journal {journal} cannot be written (")
    assert "readonly database" in line
    assert emulator.counters.requests[CREATE] == 2
    assert run(str(source), "--out", str(out), "--resume", "-q") == 0
    assert set(item_states(out).values()) == {"done"}
    assert emulator.counters.requests[CREATE] == 3


@pytest.mark.long
def test_an_output_folder_made_read_only_mid_run_is_one_line_and_resumes(
    tmp_path: Path,
) -> None:
    """The output folder turns read-only while images are saved: the run stops with one
    error line (exit 74), no traceback, a consistent journal; writable again, --resume
    saves every image without a create sent twice."""
    with served(attrs.evolve(FAST, time_scale=60)) as (server, env):
        source, out = prompts(tmp_path / "p.jsonl", 16), tmp_path / "out"
        argv = [str(source), "--out", str(out), "--rate", "3000", "--concurrency", "3", "-q"]
        process = subprocess.Popen([*CLI, *argv], env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        _until(lambda: _jobs(out) >= 1)
        with read_only(out):
            _, errors = process.communicate(timeout=60)
        assert process.returncode == 74, errors
        assert "Traceback" not in errors
        last = errors.strip().splitlines()[-1]
        assert last.startswith("error: cannot write ")
        assert str(out) in last
        assert "run again with --resume" in last
        with sqlite3.connect(out / "journal.sqlite") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        result = bulk(env, *argv, "--resume")
        assert result.returncode == 0, result.stderr
        assert set(item_states(out).values()) == {"done"}
        assert len(manifest(out)) == 16
        assert not server.counters.duplicate_creates


# The command line under a file-size limit: past it every write fails (EFBIG), as on a
# full disk, for root too; Python ignores SIGXFSZ, so the write fails instead of the process.
FULL_DISK = [sys.executable, "-c", "import resource, sys; from akool_async._cli import main; "
             "resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000)); "
             "sys.exit(main(sys.argv[1:]))"]  # fmt: skip


@pytest.mark.long
def test_a_full_disk_mid_run_stops_in_one_line_and_loses_no_job(tmp_path: Path) -> None:
    """The journal cannot grow mid-run: the run stops at once with one error line naming
    it (exit 74), no traceback, a consistent journal, and every job the server made either
    recorded or named on stderr; --resume then ends every line without paying twice."""
    with served(attrs.evolve(FAST, time_scale=200)) as (server, env):
        source, out = prompts(tmp_path / "p.jsonl", 40), tmp_path / "out"
        argv = [str(source), "--out", str(out), "--rate", "3000", "--concurrency", "8", "-q"]
        # Unmeasured: coverage could not write its own data under the limit either.
        full = subprocess.run([*FULL_DISK, "bulk", *argv], env=unmeasured(env), text=True,
                              timeout=120,
                              capture_output=True, check=False)  # fmt: skip
        assert full.returncode == 74, full.stderr
        assert "Traceback" not in full.stderr
        last = full.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: the journal {out / 'journal.sqlite'} cannot be written")
        with sqlite3.connect(out / "journal.sqlite") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            recorded = {job_id for (job_id,) in db.execute("SELECT job_id FROM jobs")}
        made = {job.id for job in server.backend.jobs.values()}
        assert len(made) < 40  # it stopped submitting
        assert all(job_id in recorded or job_id in full.stderr for job_id in made)
        result = bulk(env, *argv, "--resume")
        assert result.returncode in (0, 1), result.stderr
        assert set(item_states(out).values()) <= {"done", "uncertain"}
        assert len(item_states(out)) == 40
        assert not server.counters.duplicate_creates


def test_a_resume_never_replaces_an_image_with_other_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where an image is to go, a file is there already: other bytes stay and the image is
    saved beside it (``1~2.png``, named in the manifest); the same bytes (saved by a run
    that died before recording it) are kept as they are, with no copy beside them."""
    config = attrs.evolve(FAST, time_scale=1, durations=Fixed(86_400))
    with served(config) as (server, env):
        monkeypatch.setenv("AKOOL_BASE_URL", env["AKOOL_BASE_URL"])
        monkeypatch.setenv("AKOOL_API_KEY", env["AKOOL_API_KEY"])
        source, out = prompts(tmp_path / "p.jsonl", 2), tmp_path / "out"
        assert run(str(source), "--out", str(out), "--job-timeout", "0.5", "-q") == 75
        jobs = {job.prompt.rsplit(" ", 1)[-1]: job.id for job in server.backend.jobs.values()}
        (out / "id-r0").mkdir()
        (out / "id-r0" / "1.png").write_bytes(b"the user's own picture")
        (out / "id-r1").mkdir()
        (out / "id-r1" / "1.png").write_bytes(server.image_bytes(jobs["1"]))
        clock = server.backend.clock
        assert isinstance(clock, ScaledClock)
        clock.resume_from(clock() + 86_401)
        assert run(str(source), "--out", str(out), "--resume", "-q") == 0
        assert (out / "id-r0" / "1.png").read_bytes() == b"the user's own picture"
        assert (out / "id-r0" / "1~2.png").read_bytes() == server.image_bytes(jobs["0"])
        assert sorted(p.name for p in (out / "id-r1").iterdir()) == ["1.png"]
        assert sorted(r["path"] for r in manifest(out)) == ["id-r0/1~2.png", "id-r1/1.png"]


@pytest.mark.long
def test_retry_failed_sends_failed_requests_again_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A resume skips failed requests; --resume --retry-failed sends exactly those again
    (not the done ones), keeps the failed attempts in the manifest as retried, and a
    later resume sends nothing, nor calls the attempts "no longer in the input"."""
    source, out = prompts(tmp_path / "p.jsonl", 4), tmp_path / "out"
    lines = source.read_text().splitlines(keepends=True)
    source.write_text("".join(lines[:2]))

    def use(env: dict[str, str]) -> None:
        monkeypatch.setenv("AKOOL_BASE_URL", env["AKOOL_BASE_URL"])
        monkeypatch.setenv("AKOOL_API_KEY", env["AKOOL_API_KEY"])

    with served(attrs.evolve(FAST, fail_rate=1.0)) as (_, env):
        use(env)
        assert run(str(source), "--out", str(out)) == 1
    assert set(item_states(out).values()) == {"failed"}
    source.write_text("".join(lines))  # two more lines, done on the next server
    # Another server (its own job ids): failed requests are finished, nothing to follow.
    with served(attrs.evolve(FAST, seed=2)) as (second, env):
        use(env)
        assert run(str(source), "--out", str(out), "--resume") == 1  # still two failed
        assert second.counters.requests[CREATE] == 2  # the new lines only
        assert run(str(source), "--out", str(out), "--resume", "--retry-failed") == 0
        assert second.counters.requests[CREATE] == 4  # and the two failed ones, once
        assert "retried: 2 failed requests sent again" in capsys.readouterr().out
        states = item_states(out)
        assert sorted(states.values()) == ["done"] * 4 + ["retried"] * 2
        assert run(str(source), "--out", str(out), "--resume", "--retry-failed") == 0
        assert second.counters.requests[CREATE] == 4
        assert not second.counters.duplicate_creates
        assert "no longer in the input" not in capsys.readouterr().out  # the attempts: not
    rows = manifest(out)
    assert {r["id"] for r in rows if r["ok"]} == {f"r{n}" for n in range(4)}
    assert [r["state"] for r in rows if not r["ok"]] == ["retried"] * 2  # the attempts, kept
