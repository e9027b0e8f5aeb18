"""Which journalled item an input line is: its fingerprint and its key.

A fingerprint is the SHA-256 of the normalised request (the request as sent, the
follow-ups), so it does not depend on where the line is. A line with an ``id`` keeps
``id:<id>`` as its key (a changed request under the same id is a new item: the old one is
set aside, see ``BulkJournal.set_aside``); a line without one is known by its
fingerprint and its occurrence among equal lines (``fp:<hash>:<n>``), never by its number,
so inserting or moving lines changes nothing of what was done. Pure functions, apart
from ``migrate`` (a journal keyed by line numbers, from before).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence

import attrs

from .._converter import unstructure
from ._input import BulkItem


def fingerprint_of(request: Mapping[str, object], follow_ups: Sequence[str]) -> str:
    """The fingerprint of a request as journalled (``unstructure``d) and its buttons."""
    text = json.dumps({"request": request, "follow_ups": list(follow_ups)}, sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"))  # fmt: skip
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def fingerprint(item: BulkItem) -> str:
    return fingerprint_of(unstructure(item.request), [b.value for b in item.follow_ups])


def line_key(digest: str, occurrence: int) -> str:
    return f"fp:{digest[:32]}:{occurrence}"


class Identities:
    """Keys for the lines of one input, in order (equal lines without an id count up)."""

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()

    def identify(self, item: BulkItem) -> tuple[BulkItem, str]:
        """``item`` under its key, and its fingerprint."""
        digest = fingerprint(item)
        if item.user_id is not None:
            return item, digest
        occurrence = self._seen[digest]
        self._seen[digest] += 1
        return attrs.evolve(item, key=line_key(digest, occurrence)), digest


def migrate(connection: sqlite3.Connection) -> None:
    """Rekey the items of a journal from before fingerprints (``line:<n>``) by their
    fingerprint, and fill in every item's fingerprint: in the caller's write transaction
    (another process opening the journal at once finds it done)."""
    rows = connection.execute(
        "SELECT key, request, follow_ups FROM items WHERE fingerprint IS NULL ORDER BY line"
    ).fetchall()
    seen: Counter[str] = Counter()
    for key, request, follow_ups in rows:
        buttons = [b for b in (follow_ups or "").split(",") if b]
        digest = fingerprint_of(json.loads(request or "{}"), buttons)
        new = key
        if key.startswith("line:"):
            new, seen[digest] = line_key(digest, seen[digest]), seen[digest] + 1
            for table, column in (("jobs", "item_key"), ("presses", "item_key")):
                connection.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?",  # noqa: S608
                                   (new, key))  # fmt: skip
        connection.execute("UPDATE items SET key = ?, fingerprint = ? WHERE key = ?",
                           (new, digest, key))  # fmt: skip
