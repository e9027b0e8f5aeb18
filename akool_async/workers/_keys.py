"""The key of each item of a file on the shared queue, from its fingerprint
(``bulk/_identity``). Pure.

An item with a user id is ``id:<id>/<fingerprint>``: the same id with a changed request
is a new item (the queue is shared by many files and runs: an id alone would make a
changed line look queued already). One without is ``fp:<fingerprint>#<n>``, the n-th line
of the file asking for exactly that: a moved line keeps its key, a repeated prompt is
asked for as many times as it is written.
"""

from __future__ import annotations

from ..bulk._identity import fingerprint
from ..bulk._input import BulkItem


class QueueKeys:
    """Keys for the items of one file, fed in file order."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def key(self, item: BulkItem) -> tuple[str, str]:
        """``(key, fingerprint)`` of the next item of the file."""
        digest = fingerprint(item)
        if item.user_id is not None:
            return f"id:{item.user_id}/{digest}", digest
        self._seen[digest] = self._seen.get(digest, 0) + 1
        return f"fp:{digest}#{self._seen[digest]}", digest
