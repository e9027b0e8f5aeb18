"""The queue's tables, created and migrated by the library.

The rows mirror the SQLite journal's (``bulk/_journal.py``: items, jobs, images, presses)
with the queue's own columns: an item's ``fingerprint`` (its identity), ``fence``,
``lease_until`` and ``holder`` (the claim), and a ``workers`` table of heartbeats. Every
table is prefixed ``akool_`` so the queue can share a database; it lives in the first
schema of the connection's ``search_path``.

Migrations are numbered and applied in order, each once, recorded in
``akool_schema_version``; any number of workers may start at once: the first takes a
transaction-scoped advisory lock, the others wait for it and then find nothing to do.
"""

from __future__ import annotations

from typing import Any

from ._pg_database import QueueError

# One number for this library's lock on the whole database (an advisory lock key).
ADVISORY_LOCK = 0x616B6F6F6C  # "akool"

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, """
CREATE TABLE akool_items (
    key TEXT PRIMARY KEY, fingerprint TEXT, line INTEGER, user_id TEXT, prompt TEXT,
    request TEXT, follow_ups TEXT, source TEXT, state TEXT, error TEXT,
    enqueued DOUBLE PRECISION, updated DOUBLE PRECISION, intent_at DOUBLE PRECISION,
    fence BIGINT NOT NULL DEFAULT 0, lease_until DOUBLE PRECISION, holder TEXT);
CREATE INDEX akool_items_claimable ON akool_items (enqueued, line)
    WHERE state IS NULL OR state = 'submitted';
CREATE INDEX akool_items_leased ON akool_items (lease_until) WHERE lease_until IS NOT NULL;
CREATE TABLE akool_jobs (
    job_id TEXT PRIMARY KEY, seq BIGSERIAL, item_key TEXT NOT NULL REFERENCES akool_items (key),
    parent_id TEXT, button TEXT, position INTEGER, status INTEGER, url TEXT,
    credits DOUBLE PRECISION, created DOUBLE PRECISION, submitted DOUBLE PRECISION,
    finished DOUBLE PRECISION, error TEXT, left_running BOOLEAN NOT NULL DEFAULT FALSE,
    last TEXT, path TEXT, sha256 TEXT, size BIGINT, near_expiry BOOLEAN, host TEXT);
CREATE INDEX akool_jobs_by_item ON akool_jobs (item_key);
CREATE INDEX akool_jobs_by_submitted ON akool_jobs (submitted);
CREATE TABLE akool_images (
    job_id TEXT NOT NULL, idx INTEGER NOT NULL, kind TEXT NOT NULL, url TEXT,
    parts_missing BOOLEAN NOT NULL DEFAULT FALSE, path TEXT, sha256 TEXT, size BIGINT,
    near_expiry BOOLEAN, error TEXT, host TEXT, PRIMARY KEY (job_id, idx));
CREATE TABLE akool_presses (
    parent_id TEXT NOT NULL, button TEXT NOT NULL, item_key TEXT NOT NULL, child_id TEXT,
    error TEXT, uncertain BOOLEAN NOT NULL DEFAULT FALSE, intent_at DOUBLE PRECISION,
    PRIMARY KEY (parent_id, button));
CREATE INDEX akool_presses_by_item ON akool_presses (item_key);
CREATE TABLE akool_workers (
    worker_id TEXT PRIMARY KEY, host TEXT, pid INTEGER, started DOUBLE PRECISION,
    heartbeat DOUBLE PRECISION, requests BIGINT NOT NULL DEFAULT 0,
    rate DOUBLE PRECISION NOT NULL DEFAULT 0, stopped DOUBLE PRECISION);
"""),
)  # fmt: skip
LATEST = MIGRATIONS[-1][0]


def check_schema(connection: Any, shown_url: str) -> int:
    """The schema's version, without creating or changing anything: a ``QueueError``
    when there is no queue there (a wrong URL, or nothing queued yet)."""
    found = connection.execute("SELECT to_regclass('akool_schema_version')").fetchone()[0]
    versions = [] if found is None else [
        row[0] for row in connection.execute("SELECT version FROM akool_schema_version")
    ]  # fmt: skip
    if LATEST not in versions:
        raise QueueError(
            f"no akool-async queue at {shown_url} (or one of an older version): put a file"
            " on it first (akool-async enqueue)"
        )
    return LATEST


def migrate(connection: Any) -> int:
    """Bring the schema to ``LATEST`` (in one transaction, under the advisory lock);
    the version it is at. Refuses a schema newer than this library knows."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK,))
        connection.execute(
            "CREATE TABLE IF NOT EXISTS akool_schema_version"
            " (version INTEGER PRIMARY KEY, applied DOUBLE PRECISION NOT NULL)"
        )
        done = {row[0] for row in connection.execute("SELECT version FROM akool_schema_version")}
        newer = sorted(v for v in done if v > LATEST)
        if newer:
            raise QueueError(
                f"the queue's schema is at version {newer[-1]}, newer than this akool-async"
                f" knows ({LATEST}): upgrade akool-async on this machine"
            )
        for version, sql in MIGRATIONS:
            if version not in done:
                connection.execute(sql)
                connection.execute(
                    "INSERT INTO akool_schema_version (version, applied)"
                    " VALUES (%s, extract(epoch FROM clock_timestamp()))",
                    (version,),
                )
    return LATEST
