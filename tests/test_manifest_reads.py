"""The manifest is read from the journal in one read transaction: another process
writing meanwhile (a worker on the same folder) never leaves an item out of it."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from akool_async.bulk import _manifest
from akool_async.bulk._journal_follow import BulkJournal

REAL_CONNECT = sqlite3.connect


class AnotherProcessWrites:
    """The manifest's connection to the journal, but for one thing: just before the query
    of the requests without a job, another connection records item ``id:a``'s first job
    (as another process on the folder would)."""

    def __init__(self, connection: sqlite3.Connection, journal: Path) -> None:
        self._connection, self._journal = connection, journal

    def execute(self, sql: str, *params: Any) -> sqlite3.Cursor:
        if sql == _manifest._REQUESTS:
            with contextlib.closing(REAL_CONNECT(self._journal, isolation_level=None)) as other:
                other.execute("INSERT INTO jobs (job_id, item_key, status, credits)"
                              " VALUES ('j1', 'id:a', 1, 1)")  # fmt: skip
        return self._connection.execute(sql, *params)

    def close(self) -> None:
        self._connection.close()


async def test_a_first_job_recorded_while_the_manifest_is_read_leaves_no_item_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item ``id:a`` has no job when the manifest reads the jobs' rows, and one when it
    reads the requests without a job: it is in the manifest once, as the journal was when
    the reading began (it used to be in neither)."""
    journal_path = tmp_path / "journal.sqlite"
    async with BulkJournal(journal_path) as journal:
        await journal.intent("id:a", 1, "a", {"prompt": "a red fox"}, ())

        def connect(path: Path, **options: Any) -> AnotherProcessWrites:
            return AnotherProcessWrites(REAL_CONNECT(path, **options), journal_path)

        monkeypatch.setattr(_manifest.sqlite3, "connect", connect)
        await _manifest.write_manifest(journal, tmp_path, tmp_path / "manifest.jsonl")
    lines = (tmp_path / "manifest.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [(row["id"], row["state"], row["job_id"]) for row in rows] == [("a", "submitting", None)]
