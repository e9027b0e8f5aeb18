"""``akool-async enqueue`` and ``akool-async status`` on a real PostgreSQL queue: what they
print, their exit codes, and the queue's password never shown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from akool_async._cli import main
from akool_async._cli._errors import Exit
from tests._servers import free_port


@pytest.fixture
def queue(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test's queue, named by the environment as users are told to."""
    monkeypatch.setenv("AKOOL_QUEUE_URL", postgres_url)
    return postgres_url


def prompts_file(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_enqueue_twice_then_status(
    queue: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file is queued once (again: nothing added; with other follow-ups: new items, on
    trio too); ``status`` counts its items
    and writes the manifest; ``--json`` is one object."""
    source = prompts_file(tmp_path / "p.jsonl", [json.dumps({"prompt": f"p{n}"}) for n in range(3)])
    assert main(["enqueue", str(source), "--follow-ups", "U1"]) == Exit.OK
    assert (
        capsys.readouterr().out == f"queued 3 new requests from {source} (0 already on the queue)\n"
    )
    assert main(["enqueue", str(source), "--follow-ups", "U1", "--backend", "trio"]) == Exit.OK
    assert "queued 0 new requests" in capsys.readouterr().out
    assert main(["enqueue", str(source)]) == Exit.OK  # other follow-ups: other requests
    assert "queued 3 new requests" in capsys.readouterr().out
    assert main(["status", "--manifest", str(tmp_path / "m.jsonl")]) == Exit.OK
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "items: 6 (6 pending)"
    assert out[-1] == f"manifest: 6 rows in {tmp_path / 'm.jsonl'}"
    assert "workers alive: 0 (of 0 seen)" in out
    assert main(["status", "--json"]) == Exit.OK
    status = json.loads(capsys.readouterr().out)
    assert status["counts"]["pending"] == 6
    assert (status["credits"], status["workers_alive"], status["manifest_rows"]) == (0, 0, None)


def test_retry_refused_puts_refused_items_back(
    queue: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``enqueue --retry-refused``: the file's refused items are pending again, and it says
    how many; without it, nothing changes."""
    source = prompts_file(tmp_path / "p.jsonl", [json.dumps({"prompt": f"p{n}"}) for n in range(3)])
    assert main(["enqueue", str(source)]) == Exit.OK
    with psycopg.connect(queue) as connection:
        connection.execute("UPDATE akool_items SET state = 'refused' WHERE prompt <> 'p2'")
    capsys.readouterr()
    assert main(["enqueue", str(source)]) == Exit.OK
    assert capsys.readouterr().out.endswith("(3 already on the queue)\n")
    assert main(["enqueue", str(source), "--retry-refused"]) == Exit.OK
    assert capsys.readouterr().out.endswith("(3 already on the queue, 2 refused put back)\n")
    assert main(["status"]) == Exit.OK
    assert capsys.readouterr().out.splitlines()[0] == "items: 3 (3 pending)"


def test_a_changed_request_under_a_known_id_is_said(
    queue: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A line whose id is on the queue with another request: a new item, and a notice
    that the earlier request stays queued."""
    source = prompts_file(tmp_path / "p.jsonl", ['{"id": "a", "prompt": "a fox"}'])
    assert main(["enqueue", str(source)]) == Exit.OK
    capsys.readouterr()
    prompts_file(source, ['{"id": "a", "prompt": "a red fox"}'])
    assert main(["enqueue", str(source)]) == Exit.OK
    captured = capsys.readouterr()
    assert "queued 1 new requests" in captured.out
    assert captured.err == (
        "1 of them change the request of an id already queued: the earlier request stays"
        " on the queue\n"
    )


def test_status_of_no_queue_says_so_and_creates_nothing(
    queue: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``status`` on a database with no queue (a wrong URL): one line, exit 1, and no
    table made there."""
    assert main(["status"]) == Exit.FAILED
    err = capsys.readouterr().err
    assert err.startswith("error: no akool-async queue at postgresql://postgres@127.0.0.1:")
    assert err.endswith(": put a file on it first (akool-async enqueue)\n")
    with psycopg.connect(queue) as connection:
        tables = connection.execute(
            "SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchone()
    assert tables == (0,)


def test_invalid_lines_are_listed_and_left_out(
    queue: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each invalid line is named on stderr with its reason; the valid ones are queued;
    the exit code is 1."""
    source = prompts_file(tmp_path / "p.jsonl", ['{"prompt": "ok"}', "[1]", '{"id": 1}'])
    assert main(["enqueue", str(source), "--queue", queue]) == Exit.FAILED
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"{source}:2: not a JSON object", f"{source}:3: no prompt"]
    assert captured.out.endswith("(0 already on the queue); 2 invalid lines left out\n")


@pytest.mark.parametrize(
    ("arguments", "environment", "message"),
    [
        (["status"], None, "error: no queue: pass --queue postgresql://... or set AKOOL_QUEUE_URL"),
        (["status"], "redis://u:hunter22@localhost/0",
         "error: --queue 'redis://u:***@localhost/0' is not a PostgreSQL URL"),
        (["status", "--alive-within", "0"], None, "error: --alive-within must be a positive"),
        (["enqueue", "missing.jsonl"], None, "error: missing.jsonl is not a file"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_line_and_exit_2(
    arguments: list[str], environment: str | None, message: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """No queue, a queue that is not PostgreSQL (its password hidden), a bad option or
    file: one line, exit 2, nothing connected to."""
    monkeypatch.delenv("AKOOL_QUEUE_URL", raising=False)
    if environment:
        monkeypatch.setenv("AKOOL_QUEUE_URL", environment)
    assert main(arguments) == Exit.USAGE
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert err.count("\n") == 1
    assert "hunter22" not in err


def test_an_unreachable_queue_is_exit_5_without_its_password(tmp_path: Path) -> None:
    """A queue nobody listens on: one line naming it with its password as ***, exit 5,
    no traceback (the real command, in its own process)."""
    port = free_port()
    url = f"postgresql://akool:hunter22@127.0.0.1:{port}/queue"
    done = subprocess.run([sys.executable, "-m", "akool_async", "status", "--queue", url],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == Exit.UNREACHABLE
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        f"error: cannot reach the queue: queue postgresql://akool:***@127.0.0.1:{port}/queue:"
    )
    assert "hunter22" not in done.stderr
