"""The bulk journal's tables, and opening the file: made or brought up to date (columns
and keys of older journals), in WAL mode, with a number for the run that opens it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import stamina

from .._clock import SYSTEM_CLOCK
from ._identity import migrate
from ._journal_writes import BUSY_SECONDS, is_busy

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    key TEXT PRIMARY KEY, line INTEGER, user_id TEXT, prompt TEXT, request TEXT,
    follow_ups TEXT, state TEXT NOT NULL, error TEXT, updated REAL, run INTEGER);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, item_key TEXT NOT NULL, parent_id TEXT, button TEXT,
    position INTEGER, status INTEGER, url TEXT, credits REAL, created REAL, submitted REAL,
    finished REAL, error TEXT, path TEXT, sha256 TEXT, size INTEGER, near_expiry INTEGER);
CREATE INDEX IF NOT EXISTS jobs_by_item ON jobs (item_key);
CREATE TABLE IF NOT EXISTS runs (run INTEGER PRIMARY KEY, started REAL);
CREATE TABLE IF NOT EXISTS images (
    job_id TEXT NOT NULL, idx INTEGER NOT NULL, kind TEXT NOT NULL, url TEXT,
    parts_missing INTEGER NOT NULL DEFAULT 0, path TEXT, sha256 TEXT, size INTEGER,
    near_expiry INTEGER, error TEXT, PRIMARY KEY (job_id, idx));
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY, fence INTEGER NOT NULL, owner TEXT, lease_until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS presses (
    parent_id TEXT NOT NULL, button TEXT NOT NULL, item_key TEXT NOT NULL, child_id TEXT,
    PRIMARY KEY (parent_id, button));
"""


def _in_wal_mode(connection: sqlite3.Connection) -> None:
    """``journal_mode=WAL``, tried again while another process opening a new journal holds
    its lock (for up to ``BUSY_SECONDS``): SQLite fails the switch at once, without its busy
    timeout, as two openers waiting on each other's lock could wait forever."""
    for attempt in stamina.retry_context(
        on=is_busy, attempts=None, timeout=BUSY_SECONDS, wait_initial=0.002, wait_max=0.05,
        wait_jitter=0.01,
    ):  # fmt: skip
        with attempt:
            connection.execute("PRAGMA journal_mode=WAL")


def open_journal(path: Path) -> tuple[sqlite3.Connection, int]:
    """The journal at ``path`` (made if missing), and this run's number in it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=BUSY_SECONDS
    )  # another process may hold the lock
    _in_wal_mode(connection)
    connection.execute("PRAGMA synchronous=FULL")  # until a commit needs no sync
    with connection:  # one opener at a time: two processes may open a new or old journal
        connection.execute("BEGIN IMMEDIATE")
        for statement in SCHEMA.split(";"):
            connection.execute(statement)
        columns = {row[1] for row in connection.execute("PRAGMA table_info(items)")}
        for column, kind in (("fingerprint", "TEXT"), ("seen", "INTEGER"), ("sent", "REAL")):
            if column not in columns:  # a journal from before identities
                connection.execute(f"ALTER TABLE items ADD COLUMN {column} {kind}")
        migrate(connection)
    with connection:
        connection.execute("BEGIN IMMEDIATE")
        cursor = connection.execute("INSERT INTO runs (started) VALUES (?)", (SYSTEM_CLOCK.wall(),))
    connection.execute("PRAGMA busy_timeout = 0")  # on the event loop: see ``BUSY_MS``
    return connection, int(cursor.lastrowid or 0)
