"""Job ids a create (or a press) answered with that the journal could not record (a full
disk, a read-only journal): they are charged, so they are never dropped silently. A
WARNING on the ``akool_async`` logger (stderr on the command line) names them with their
line, to follow or download by id (``akool-async wait ID``)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence

from ._input import BulkItem

log = logging.getLogger("akool_async")


@contextlib.contextmanager
def said_if_unrecorded(
    item: BulkItem, job_ids: Sequence[str], what: str = "create"
) -> Iterator[None]:
    """Log ``job_ids`` if recording them (the body) fails."""
    try:
        yield
    except Exception:
        name = f"id {item.user_id}" if item.user_id is not None else f"line {item.line}"
        log.warning(
            "%s: the %s made job(s) %s, which the journal could not record: follow them by id"
            " (akool-async wait ID) or they are lost",
            name, what, ", ".join(job_ids) or "(none readable)",
        )  # fmt: skip
        raise
