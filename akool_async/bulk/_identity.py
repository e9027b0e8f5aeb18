"""An item's identity: a fingerprint of its normalised request.

The fingerprint is the SHA-256 of canonical JSON (sorted keys, no spaces, UTF-8) of the
request as the API receives it and the buttons to press: it changes exactly when what
would be paid for changes, and not with where the line is in its file. Pure: no I/O.

(The same functions as the bulk journal's identity module of issue 12, which adds the
SQLite journal's keys; both journals fingerprint alike.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

from .._converter import unstructure
from ._input import BulkItem


def fingerprint_of(request: Mapping[str, object], follow_ups: Sequence[str]) -> str:
    """The fingerprint of a request as journalled (``unstructure``d) and its buttons."""
    text = json.dumps({"request": request, "follow_ups": list(follow_ups)}, sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"))  # fmt: skip
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def fingerprint(item: BulkItem) -> str:
    return fingerprint_of(unstructure(item.request), [b.value for b in item.follow_ups])
