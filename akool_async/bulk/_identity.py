"""An item's identity: a fingerprint of its request as sent plus its follow-ups.

A line number says where a request was, not what it is: a line inserted above it moves
it. The fingerprint is the SHA-256 of canonical JSON (sorted keys, no spaces, UTF-8) of
the request as the API receives it and the buttons to press, so it changes exactly when
what would be paid for changes. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

from .._converter import unstructure
from .._models import Button
from ._input import BulkItem


def fingerprint(request: Mapping[str, object], follow_ups: Sequence[Button] = ()) -> str:
    """The hex SHA-256 of the canonical JSON of ``request`` (as sent) and ``follow_ups``
    (in the order they are pressed; a repeat counts once, as the follow machine sees it)."""
    canonical = json.dumps(
        {"request": request, "follow_ups": [b.value for b in dict.fromkeys(follow_ups)]},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def item_fingerprint(item: BulkItem) -> str:
    return fingerprint(unstructure(item.request), item.follow_ups)


class QueueKeys:
    """The key of each item of one file on a shared queue, fed in file order.

    An item with a user id is ``id:<id>/<fingerprint>``: the same id with a changed request
    is a new item. One without is ``fp:<fingerprint>#<n>``, the n-th line of the file
    asking for exactly that: a moved line keeps its key, a repeated prompt is asked for
    as many times as it is written.
    """

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def key(self, item: BulkItem) -> tuple[str, str]:
        """``(key, fingerprint)`` of the next item of the file."""
        digest = item_fingerprint(item)
        if item.user_id is not None:
            return f"id:{item.user_id}/{digest}", digest
        self._seen[digest] = self._seen.get(digest, 0) + 1
        return f"fp:{digest}#{self._seen[digest]}", digest
