"""The bulk journal's plain reads: its jobs, images, presses, spending and states, each
after a flush (what was written so far). ``Journal`` runs the queries (``_query``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._rows import IMAGE_COLUMNS, JOB_COLUMNS, ImageRecord, JobRecord, Press, image_of, job_of
from ._states import ItemState

# Items that may have nothing to show: failed, refused, uncertain or never answered.
_UNFINISHED = tuple(
    state.value
    for state in (ItemState.FAILED, ItemState.REFUSED, ItemState.UNCERTAIN, ItemState.SUBMITTING)
)


class JournalReads:
    """Reads that need nothing but a query (``Journal`` runs it on its one thread)."""

    async def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def images_of(self, job_id: str) -> list[ImageRecord]:
        rows = await self._query(
            f"SELECT {IMAGE_COLUMNS} FROM images WHERE job_id = ? ORDER BY idx",  # noqa: S608
            (job_id,),
        )
        return [image_of(row) for row in rows]

    async def jobs_of(self, key: str) -> list[JobRecord]:
        rows = await self._query(f"SELECT {JOB_COLUMNS} FROM jobs WHERE item_key = ?"  # noqa: S608
                                 " ORDER BY submitted, position", (key,))  # fmt: skip
        return [job_of(row) for row in rows]

    async def presses_of(self, key: str) -> list[Press]:
        rows = await self._query(
            "SELECT parent_id, button, child_id FROM presses WHERE item_key = ?", (key,)
        )
        return [Press(*row) for row in rows]

    async def credits_spent(self) -> float:
        rows = await self._query("SELECT COALESCE(SUM(credits), 0) FROM jobs", ())
        return float(rows[0][0])

    async def unfinished_without_jobs(self) -> list[tuple[Any, ...]]:
        """(line, user id, prompt, state, error) of requests that failed, were refused or are
        uncertain with no job to show, in line order (for the gallery)."""
        return await self._query(
            "SELECT line, user_id, prompt, state, error FROM items WHERE state IN (?, ?, ?, ?)"
            " AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.item_key = items.key) ORDER BY line",
            _UNFINISHED,
        )

    async def count_states(self) -> dict[ItemState, int]:
        rows = await self._query("SELECT state, COUNT(*) FROM items GROUP BY state", ())
        return {ItemState(state): count for state, count in rows}
