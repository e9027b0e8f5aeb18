"""The command line as a newcomer meets it: in-process through ``main(argv)`` where it
can be, in a subprocess for what only a process shows (the emulator's port, signals)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from akool_async import (
    AkoolClient,
    ConnectError,
    ImageStatus,
    InsufficientCreditError,
    InvalidTokenError,
    SubmissionUncertainError,
    ValidationError,
    __version__,
)
from akool_async._cli import _connect, main
from akool_async._cli._errors import describe
from akool_async.emulator import EmulatorConfig, Fixed, serve_emulator

CLI = [sys.executable, "-m", "akool_async"]
COMMANDS = ["bulk", "generate", "wait", "download", "emulator"]


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKOOL_")}
    return {**env, **extra}


def as_from_a_terminal() -> None:
    """Ctrl-C as a terminal delivers it: a suite started in the background of a script
    (``pytest &``) passes SIGINT on ignored, and Python then leaves it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AKOOL_API_KEY", "AKOOL_CLIENT_ID", "AKOOL_CLIENT_SECRET", "AKOOL_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_connect, "EMULATOR_TIME_SCALE", 3000.0)  # key-less runs: quick


@pytest.fixture
def akool(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An emulator on a loopback port, with the CLI's environment pointing at it (a grid's
    parts come with its status: the CLI's client polls at the real service's pace)."""
    config = EmulatorConfig(time_scale=1000, durations=Fixed(30), image_max_side=16,
                            parts_delay=0)  # fmt: skip
    with serve_emulator(config) as running:
        monkeypatch.setenv("AKOOL_API_KEY", running.api_key)
        monkeypatch.setenv("AKOOL_BASE_URL", running.base_url)
        yield running.base_url


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the package's version and exits 0."""
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"akool-async {__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_defaults_environment_exit_codes_and_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every subcommand's --help has its defaults, the variables, the exit codes, an example."""
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for part in ("(default: ", "AKOOL_API_KEY", "AKOOL_BASE_URL", "exit codes:", "130 ",
                 "example:", f"akool-async {command} "):  # fmt: skip
        assert part in text, part
    assert " (default: None)" not in text


@pytest.mark.parametrize(
    "argv",
    [
        ["frobnicate"],
        ["bulk", "x.jsonl", "--rate", "fast"],
        ["generate"],
        ["wait"],
        ["bulk", "x.jsonl", "--transport", "curl"],
    ],
)
def test_bad_options_are_one_line_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse's errors come as one line (not a usage block), exit code 2."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "error:" in one_line(capsys.readouterr().err)


def test_verbose_and_quiet_are_accepted_after_the_subcommand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-q after the subcommand works like before it: no emulator notice, no progress."""
    out = tmp_path / "out"
    assert main(["generate", "a fox", "--out", str(out), "-q"]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == ""
    assert main(["-q", "generate", "a fox", "--out", str(out)]) == 0
    assert capsys.readouterr().err == ""
    assert main(["generate", "a fox", "--out", str(out)]) == 0
    assert "built-in Akool emulator" in one_line(capsys.readouterr().err)


def test_generate_usage_errors_exit_2_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad values are named in one line, exit 2 like bulk, and nothing is created."""
    out = tmp_path / "out"
    assert main(["generate", "x", "--batch", "9", "--out", str(out)]) == 2
    assert "batch_quantity=9 is not valid" in one_line(capsys.readouterr().err)
    assert main(["generate", "x", "--follow-ups", "U9", "--out", str(out)]) == 2
    assert "U9" in one_line(capsys.readouterr().err)
    assert main(["generate", "x", "--follow-ups", "U1,u1", "--out", str(out)]) == 2
    assert "--follow-ups=['U1', 'U1'] is not valid" in one_line(capsys.readouterr().err)
    assert not out.exists()


@pytest.mark.parametrize("command", ["generate", "bulk"])
def test_unusable_output_folders_are_one_line_and_exit_2(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out onto an existing file, or where no folder can be made: one line, exit 2."""
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "a fox"}\n')
    target = ["a fox"] if command == "generate" else [str(prompts)]
    a_file = tmp_path / "taken"
    a_file.write_text("")
    for out, expected in ((a_file, "is a file"), (Path("/proc/akool-out"), "cannot create")):
        assert main([command, *target, "--out", str(out)]) == 2
        assert expected in one_line(capsys.readouterr().err)


def test_unusable_input_and_unwritable_folders_are_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder or a missing path as the prompts file, an unreadable one, and an --out the
    user may not write in: one line naming the path, exit 2, nothing created."""
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "a fox"}\n')
    out = tmp_path / "out"
    for source in (tmp_path, tmp_path / "missing.jsonl"):
        assert main(["bulk", str(source), "--out", str(out)]) == 2
        assert f"{source} is not a file" in one_line(capsys.readouterr().err)
    # Permissions as a user meets them (the suite may run as root, who may do anything).
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != prompts)
    assert main(["bulk", str(prompts), "--out", str(out)]) == 2
    assert f"cannot read {prompts}: permission denied" in one_line(capsys.readouterr().err)
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != out)
    for command, target in (("bulk", str(prompts)), ("generate", "a fox")):
        assert main([command, target, "--out", str(out)]) == 2
        assert f"cannot write in --out {out}" in one_line(capsys.readouterr().err)
    assert not list(out.iterdir())


def test_a_missing_extra_is_one_line_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a key and without the emulator extra: what to pip install, exit 3."""
    monkeypatch.setitem(sys.modules, "akool_async.emulator", None)  # import fails
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "a fox"}\n')
    for argv in (["bulk", str(prompts), "--out", str(tmp_path / "o")],
                 ["generate", "a fox", "--out", str(tmp_path / "o")], ["emulator"]):  # fmt: skip
        assert main(argv) == 3
        assert "pip install 'akool-async[emulator]'" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()  # no journal left behind to --resume


def test_a_wrong_key_is_one_line_with_the_hint_and_exit_4(
    akool: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """generate and wait with a refused key: the AKOOL_API_KEY hint, exit 4."""
    monkeypatch.setenv("AKOOL_API_KEY", "wrong-key")
    assert main(["generate", "a fox", "--out", str(tmp_path)]) == 4
    assert "check AKOOL_API_KEY" in one_line(capsys.readouterr().err)
    assert main(["wait", "0" * 24]) == 4
    assert "check AKOOL_API_KEY" in one_line(capsys.readouterr().err)


def test_verbose_logs_one_line_per_request_and_nothing_from_httpx(
    akool: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """-v: our line for each API request the emulator saw, no httpx INFO or asyncio lines."""
    caplog.set_level(logging.DEBUG)
    assert main(["generate", "a fox", "--batch", "2", "--out", str(tmp_path), "-v"]) == 0
    ours = [r for r in caplog.records if r.name == "akool_async" and " -> HTTP " in r.message]
    creates = [r for r in ours if "createBySourcePrompt" in r.getMessage()]
    polls = [r for r in ours if "infobymodelid" in r.getMessage()]
    assert len(creates) == 1
    assert len(polls) >= 2  # each job polled at least once
    assert len(ours) == len(creates) + len(polls)
    assert len({r.getMessage() for r in ours}) == len(ours)  # never the same line twice
    assert not [r for r in caplog.records if r.name.startswith(("httpx", "httpcore", "asyncio"))]


@pytest.mark.long
def test_wait_and_download_pick_jobs_up_by_id(
    akool: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Jobs made elsewhere: wait saves them, download of a running one exits 75."""
    import anyio

    async def create(count: int) -> list[str]:
        async with AkoolClient(rate_limit=None) as client:
            jobs = await client.create_by_source_prompt(prompt="a fox", batch_quantity=count)
            return [job.id for job in jobs]

    slow = EmulatorConfig(time_scale=1, durations=Fixed(3600), image_max_side=16)
    with serve_emulator(slow) as running:
        os.environ["AKOOL_BASE_URL"] = running.base_url
        try:
            (running_id,) = anyio.run(create, 1)
            assert main(["download", running_id, "--out", str(tmp_path)]) == 75
        finally:
            os.environ["AKOOL_BASE_URL"] = akool
    assert f"{running_id}: queueing" in capsys.readouterr().err
    ids = anyio.run(create, 2)
    assert main(["wait", *ids, "--out", str(tmp_path), "--timeout", "60"]) == 0
    out = capsys.readouterr().out
    for job_id in ids:
        saved = tmp_path / f"{job_id}.png"
        assert saved.read_bytes()[:4] == b"\x89PNG"
        assert str(saved) in out
    assert main(["download", *ids, "--out", str(tmp_path / "again")]) == 0
    assert len(list((tmp_path / "again").glob("*.png"))) == 2
    assert main(["wait", ids[0]]) == 0
    assert "completed  http" in capsys.readouterr().out
    assert main(["wait", "0" * 24, ids[0]]) == 1  # an unknown id fails, the other is fine
    assert "No such job" in one_line(capsys.readouterr().err)

    async def vary(job_id: str) -> str:
        async with AkoolClient(rate_limit=None) as client:
            child = await client.create_by_button(await client.wait(job_id), "V1")
            return child.id

    varied = anyio.run(vary, ids[0])
    assert main(["wait", varied, "--out", str(tmp_path / "v")]) == 0  # a V result: four
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == [
        f"{varied}-{k}.png" for k in range(1, 5)
    ]


def test_wait_reports_failed_jobs_and_those_still_running(
    akool: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job that failed: its line, exit 1; one still running at --timeout: the command that
    picks it up, exit 75; a --timeout that is not positive: a usage error."""
    import anyio

    async def create() -> str:
        async with AkoolClient(rate_limit=None) as client:
            (job,) = await client.create_by_source_prompt(prompt="a fox")
            return job.id

    assert main(["wait", "0" * 24, "--timeout", "0"]) == 2
    assert "--timeout must be positive" in one_line(capsys.readouterr().err)
    failing = EmulatorConfig(time_scale=1000, durations=Fixed(30), fail_rate=1.0)
    slow = EmulatorConfig(time_scale=1, durations=Fixed(3600))
    for config, code in ((failing, 1), (slow, 75)):
        with serve_emulator(config) as running:
            monkeypatch.setenv("AKOOL_BASE_URL", running.base_url)
            monkeypatch.setenv("AKOOL_API_KEY", running.api_key)
            job_id = anyio.run(create)
            assert main(["wait", job_id, "--timeout", "0.5"]) == code
        line = one_line(capsys.readouterr().err)
        expected = f"{job_id}: failed" if code == 1 else f"still running: akool-async wait {job_id}"
        assert line.startswith(expected)


def test_wait_without_a_key_says_why_it_cannot(capsys: pytest.CaptureFixture[str]) -> None:
    """The built-in emulator's jobs end with their command: wait needs the real API."""
    assert main(["wait", "abc"]) == 2
    assert "set AKOOL_API_KEY" in one_line(capsys.readouterr().err)


def test_generate_timeout_prints_the_wait_command(
    akool: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Jobs still running at --timeout: exit 75 and the command that picks them up."""
    assert main(["generate", "a fox", "--batch", "2", "--timeout", "0.001",
                 "--out", str(tmp_path)]) == 75  # fmt: skip
    line = one_line(capsys.readouterr().err)
    assert line.startswith("still running: akool-async wait ")
    ids = line.split("wait ")[1].split(" --out")[0].split()
    assert len(ids) == 2
    assert main(["wait", *ids, "--out", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("*.png"))) == 2


def test_generate_without_key_uses_the_emulator(tmp_path: Path) -> None:
    """No AKOOL_API_KEY: one line says so, four PNGs are downloaded and listed."""
    result = subprocess.run(
        [*CLI, "generate", "a red fox in snow", "--batch", "4", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env=_environment(), timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "built-in Akool emulator" in one_line(result.stderr)
    saved = sorted((tmp_path / "out").glob("*.png"))
    assert len(saved) == 4
    for path in saved:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(path) in result.stdout


@pytest.mark.long
def test_emulator_command_serves_the_api_and_a_taken_port_is_one_line() -> None:
    """The emulator command's URL and key work, and so do the client id and secret it prints
    through getToken (as Akool's demo logs in); its port taken, a second one says so."""
    process = subprocess.Popen(
        [*CLI, "emulator", "--port", "0", "--instant", "--seed", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environment(),
        preexec_fn=as_from_a_terminal,  # noqa: PLW1509 (only signal.signal: no lock taken)
    )  # fmt: skip
    assert process.stdout is not None
    try:
        settings = dict(process.stdout.readline().strip().split("=", 1) for _ in range(4))
        port = settings["AKOOL_BASE_URL"].rsplit(":", 1)[1]
        taken = subprocess.run([*CLI, "emulator", "--port", port], capture_output=True,
                               text=True, env=_environment(), timeout=60, check=False)  # fmt: skip

        async def use() -> None:
            async with AkoolClient(rate_limit=None, api_key=settings["AKOOL_API_KEY"],
                                   base_url=settings["AKOOL_BASE_URL"]) as client:  # fmt: skip
                (job,) = await client.create_by_source_prompt(prompt="x")
                assert (await client.info_by_model_id(job.id)).status is ImageStatus.COMPLETED
            async with AkoolClient(rate_limit=None, client_id=settings["AKOOL_CLIENT_ID"],
                                   client_secret=settings["AKOOL_CLIENT_SECRET"],
                                   base_url=settings["AKOOL_BASE_URL"]) as client:  # fmt: skip
                legacy = await client.create_by_prompt(prompt="x")
                assert (await client.wait(legacy)).upscaled_urls

        import anyio

        anyio.run(use)
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=20)
    assert process.returncode == 130  # interrupted, like every command here
    assert "Traceback" not in errors
    assert taken.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in one_line(taken.stderr)


def test_emulator_command_injects_answers_that_prove_nothing() -> None:
    """``--fault-code-in-5xx 1``: each create is made, then answered by a 1108 inside a
    503; the client calls it uncertain and sends it once (the emulator's count), as it
    does a proxy's bare 403 (``--fault-proxy-4xx 1``)."""
    import anyio
    import httpx

    for flag in ("--fault-code-in-5xx", "--fault-proxy-4xx"):
        command = [*CLI, "emulator", "--port", "0", "--instant", flag, "1"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=_environment())
        assert process.stdout is not None
        try:
            settings = dict(process.stdout.readline().strip().split("=", 1) for _ in range(4))
            url = settings["AKOOL_BASE_URL"]

            async def create(key: str = settings["AKOOL_API_KEY"], url: str = url) -> None:
                async with AkoolClient(rate_limit=None, api_key=key, base_url=url) as client:
                    with pytest.raises(SubmissionUncertainError):
                        await client.create_by_source_prompt(prompt="x")

            anyio.run(create)
            counters = httpx.get(f"{url}/_emulator/counters", timeout=30).json()
            assert counters["requests"]["createBySourcePrompt"] == 1, flag
        finally:
            process.terminate()
            process.communicate(timeout=20)


def test_port_in_use_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    """The same refusal without a subprocess: a bound socket, the emulator told to use it."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert main(["emulator", "--port", str(port)]) == 2
    assert "is in use" in one_line(capsys.readouterr().err)


def test_tracebacks_only_with_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    """The same failure: one line, or with -v the traceback too."""
    assert main(["emulator", "--fail-rate", "2"]) == 2
    assert "fail_rate must be between 0 and 1" in one_line(capsys.readouterr().err)
    assert main(["emulator", "--fail-rate", "2", "-v"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.strip().splitlines()[-1] == "error: fail_rate must be between 0 and 1"


def _chained(error: Exception, cause: Exception) -> Exception:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "code", "says"),
    [
        (ConnectError("could not connect"), 5, "cannot reach https://openapi.akool.com"),
        (InvalidTokenError("bad", code=1101), 4, "check AKOOL_API_KEY"),
        (ValidationError("scale", "5:4", "one of 1:1"), 2, "scale='5:4' is not valid"),
        (InsufficientCreditError("no credit", code=1104), 1, "top up"),
        (ExceptionGroup("g", [ExceptionGroup("h", [OSError(28, "No space left", "x")])]),
         74, "error: cannot write x: No space left: free some space"),
        (ExceptionGroup("two", [ValueError("other"), _chained(
            RuntimeError("the journal cannot be written"),
            sqlite3.OperationalError("database or disk is full"))]),
         74, "error: the journal cannot be written (database or disk is full)"),
        (sqlite3.DatabaseError("file is not a database"), 74, "is damaged (file is not a"),
        (RuntimeError("bug"), 1, "run with -v for the traceback"),
    ],
)  # fmt: skip
def test_every_error_has_its_line_and_exit_code(error: Exception, code: int, says: str) -> None:
    """What main prints for each kind of failure, wrapped in task groups or not."""
    line, exit_code = describe(error)
    assert exit_code == code
    assert says in line
    assert "\n" not in line
