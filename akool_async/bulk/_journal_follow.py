"""The SQLite journal as the follow machine's ``FollowJournal`` (``_journal_protocol``):
each entry a ``Record`` action carries becomes the rows ``Journal`` keeps, and a resumed
item's ``History`` is read back from them.

``write`` returns once every durable entry (an intent, the ids an answer brought) is
committed; the others ride along with the writer's next group commit.
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import attrs

from .. import _journal_protocol as jp
from .._clock import SYSTEM_CLOCK
from .._exceptions import ClaimLostError
from .._models import Button, ImageJob, ImageStatus
from ._folder import pid_alive
from ._journal import Journal
from ._journal_writes import Guard, waiting_out_locks
from ._results import failed_job
from ._rows import JobRecord
from ._states import ItemState, check_transition

_VERDICTS = {"done": ItemState.DONE, "failed": ItemState.FAILED,
             "uncertain": ItemState.UNCERTAIN, "refused": ItemState.REFUSED}  # fmt: skip


# The item is in this run's input: not "no longer in the input" (``gone``).
_SEEN = "UPDATE items SET seen = MAX(COALESCE(seen, 0), ?) WHERE key = ?"

_LINE_NOTES = """CREATE TABLE IF NOT EXISTS line_notes (
    line INTEGER PRIMARY KEY, state TEXT NOT NULL, reason TEXT NOT NULL)"""


@attrs.frozen
class _About:
    line: int
    user_id: str | None
    lease: float  # how long its claim is taken, and renewed, for


class BulkJournal(Journal):
    """``Journal`` implementing ``FollowJournal``: processes on one machine sharing one
    file claim items under a lease (``BEGIN IMMEDIATE``: one claim at a time), each claim
    with a fence one higher than the last; an intent is written only while its claim
    holds, so a process that lost an item sends nothing more for it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        # This process's journal, in the claims it holds: host and pid say when it is gone.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(6)}"
        self._about: dict[str, _About] = {}  # items claimed: where they are in the input

    # -- input lines that made no item (invalid, or held back by the budget) -------------

    async def note_lines_afresh(self) -> None:
        """A run reads its whole input again: the last run's notes of lines go."""
        await self._write(_LINE_NOTES, (), durable=True)
        await self._write("DELETE FROM line_notes", (), durable=False)

    async def note_line(self, line: int, state: ItemState, reason: str) -> None:
        """Line ``line`` made no item, and why: it gets a row in the manifest."""
        await self._write("INSERT OR REPLACE INTO line_notes VALUES (?, ?, ?)",
                          (line, state.value, reason), durable=False)  # fmt: skip

    async def claim(self, key: str, *, lease: float, line: int = 0,
                    user_id: str | None = None) -> jp.Claim | None:  # fmt: skip
        """Take ``key`` for ``lease`` seconds; None while another process's lease runs."""
        claim, _ = await self.claim_with_state(key, lease=lease, line=line, user_id=user_id)
        return claim

    async def claim_with_state(
        self, key: str, *, lease: float, line: int = 0, user_id: str | None = None
    ) -> tuple[jp.Claim | None, ItemState | None]:
        """``claim``, and the item's state as the file held it when it was taken (read in
        the claim's own transaction: what ``state_of`` would answer, without a second trip
        to the file), remembered as the state its next change is checked against."""
        taken, recorded = await self._applied(lambda connection: self._take(connection, key, lease))
        state = None if recorded is None else ItemState(recorded)
        if taken is not None:
            self._about[key] = _About(line, user_id, lease)
            self._states[key] = state
        return taken, state

    def _take(
        self, connection: sqlite3.Connection, key: str, lease: float
    ) -> tuple[jp.Claim | None, str | None]:
        """In the writer's transaction (``BEGIN IMMEDIATE``: one claim at a time). An item
        recorded already (another process's, maybe since this one read its input) is
        marked seen by this run, whoever takes it: it is in this run's input."""
        row = connection.execute(
            "SELECT fence, owner, lease_until FROM claims WHERE key = ?", (key,)
        ).fetchone()
        now = SYSTEM_CLOCK.wall()
        if row is not None and row[1] != self.owner and row[2] > now and _alive(row[1]):
            self._seen_here(connection, key)
            return None, None
        fence, until = (0 if row is None else int(row[0])) + 1, now + lease
        connection.execute(
            "INSERT INTO claims (key, fence, owner, lease_until) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET fence = excluded.fence,"
            " owner = excluded.owner, lease_until = excluded.lease_until",
            (key, fence, self.owner, until),
        )
        state = connection.execute("SELECT state FROM items WHERE key = ?", (key,)).fetchone()
        if state is not None:
            self._seen_here(connection, key)
        return jp.Claim(key, fence, until), None if state is None else str(state[0])

    def _seen_here(self, connection: sqlite3.Connection, key: str) -> None:
        connection.execute(_SEEN, (self.run, key))

    async def claim_and_intend(
        self, key: str, intent: jp.CreateIntent, *, lease: float, line: int = 0,
        user_id: str | None = None,
    ) -> tuple[jp.Claim | None, ItemState | None]:  # fmt: skip
        """A new item's claim and its create's intent in one commit: ``(claim, None)``
        once both are written. ``(None, None)`` while another process holds the item, and
        ``(claim, state)`` without the intent if the file holds the item already (another
        process recorded it meanwhile): the caller sends nothing and goes by ``state``."""
        request, buttons = dict(intent.request), [button.value for button in intent.follow_ups]

        def step(connection: sqlite3.Connection) -> tuple[jp.Claim | None, str | None]:
            claim, recorded = self._take(connection, key, lease)
            if claim is not None and recorded is None:
                self._first_intent(connection, key, line=line, user_id=user_id,
                                   request=request, follow_ups=buttons)  # fmt: skip
            return claim, recorded

        claim, recorded = await self._applied(step, sync=True)  # an intent: synced
        state = None if recorded is None else ItemState(recorded)
        if claim is not None:
            self._about[key] = _About(line, user_id, lease)
            if state is not None:  # not written: its next change is checked against it
                self._states[key] = state
        return claim, state

    async def renew(self, claim: jp.Claim, *, lease: float) -> jp.Claim:
        if await self.renew_all([claim], lease=lease):
            raise ClaimLostError(claim.key, claim.fence)
        return attrs.evolve(claim, lease_until=SYSTEM_CLOCK.wall() + lease)

    async def renew_all(self, claims: Sequence[jp.Claim], *, lease: float) -> set[str]:
        """Extend the lease of each of ``claims`` (one transaction for all); the keys of
        those another process took over (their lease ran out: this one was stalled). One
        whose lease ran out but that nobody took (this one waited for another's lock) is
        extended: its fence and owner are unchanged (``holds``)."""

        def extend() -> set[str]:
            connection, lost = self._open(), set()
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                until = SYSTEM_CLOCK.wall() + lease  # after any wait for another's lock
                for claim in claims:
                    if not connection.execute(
                        "UPDATE claims SET lease_until = ? WHERE key = ? AND fence = ?"
                        " AND owner = ? AND lease_until > 0",  # not released
                        (until, claim.key, claim.fence, self.owner),
                    ).rowcount:
                        lost.add(claim.key)
            return lost

        try:
            attempt = functools.partial(self._run, extend)
            found: set[str] = await waiting_out_locks(attempt, self.path, lambda: self._hurried)
        except (sqlite3.Error, OSError) as exc:  # as a failed commit: the run stops, cleanly
            self._failure = exc
            self._check_failure()
        return found

    async def release(self, claim: jp.Claim) -> None:
        self._about.pop(claim.key, None)
        await self._write(
            "UPDATE claims SET lease_until = 0 WHERE key = ? AND fence = ? AND owner = ?",
            (claim.key, claim.fence, self.owner),
            durable=False,
        )

    def _guard(self, claim: jp.Claim) -> Guard:
        about = self._about.get(claim.key)
        return Guard(claim.key, claim.fence, self.owner, 0.0 if about is None else about.lease)

    async def write(self, claim: jp.Claim, entries: Sequence[jp.Entry]) -> None:
        for entry in entries:
            await self._entry(claim, entry)

    async def _entry(self, claim: jp.Claim, entry: jp.Entry) -> None:  # noqa: PLR0912
        key = claim.key
        match entry:
            case jp.CreateIntent(request, follow_ups):
                about, buttons = (
                    self._about.get(key, _About(0, None, 0.0)),
                    [b.value for b in follow_ups],
                )
                await self.intent(key, about.line, about.user_id, dict(request), buttons,
                                  guard=self._guard(claim))  # fmt: skip
            case jp.CreateSettled(jobs, error, uncertain):
                if jobs:
                    await self.submitted(key, jobs)
                else:
                    state = ItemState.UNCERTAIN if uncertain else ItemState.REFUSED
                    await self.item_state(key, state, error)
                    await self.flush(sync=True)  # as durable as the ids would be
            case jp.PressIntent(parent_id, button):
                await self.press_intent(key, parent_id, button.value, guard=self._guard(claim))
            case jp.PressSettled(parent_id, button, child, _, uncertain):
                if child is not None:
                    await self.pressed(key, parent_id, button.value, child)
                elif not uncertain:  # provably not pressed: a resume may press it
                    await self.forget_press(parent_id, button.value)
            case jp.JobStatus(job) if job.is_terminal:
                error = None if job.status == ImageStatus.COMPLETED else failed_job(job.status)
                await self.job_ended(job, error)
            case jp.JobError(job_id, error):
                await self.job_error(job_id, error)
            case jp.ImagesListed(job_id, images):
                listed = [(i.index, i.kind, i.url) for i in images]
                missing = any(i.parts_missing for i in images)
                await self.job_images(job_id, listed, parts_missing=missing)
            case jp.ImageSaved(job_id, index, path, sha256, size, near_expiry):
                await self.image_saved(job_id, index, path, sha256, size=size,
                                       near_expiry=near_expiry)  # fmt: skip
            case jp.ImageFailed(job_id, index, error):
                await self.image_error(job_id, index, error)
            case jp.TreeSettled(verdict, error) if verdict != "refused":  # the create said so
                await self.item_state(key, _VERDICTS[verdict], error)

    # -- identities ---------------------------------------------------------------------

    async def recorded(self, keys: Sequence[str]) -> dict[str, Recorded]:
        """What the journal holds of each of ``keys`` that it has."""
        found = await self.states(keys)
        if not found:
            return {}
        marks = ",".join("?" * len(found))
        sql = f"SELECT key, fingerprint FROM items WHERE key IN ({marks})"  # noqa: S608 - marks
        prints = dict(await self._query(sql, list(found)))
        return {key: Recorded(state, run, prints.get(key)) for key, (state, run) in found.items()}

    async def saw(self, key: str, line: int) -> None:
        """The item is on ``line`` of this run's input (manifest rows point there)."""
        await self._write("UPDATE items SET line = ?, seen = MAX(COALESCE(seen, 0), ?)"
                          " WHERE key = ?", (line, self.run, key), durable=False)  # fmt: skip

    async def set_aside(self, key: str, old: str) -> None:
        """The line of ``key`` now asks for another request: the item recorded under it
        is kept under ``<key>~<old fingerprint>`` (the line is a new item)."""
        aside = f"{key}~{old[:12]}"
        owned = "EXISTS (SELECT 1 FROM items WHERE key = ? AND fingerprint = ?)"
        for table in ("jobs", "presses"):
            await self._write(f"UPDATE {table} SET item_key = ? WHERE item_key = ? AND {owned}",  # noqa: S608
                              (aside, key, key, old), durable=False)  # fmt: skip
        await self._write("UPDATE items SET key = ?, seen = ? WHERE key = ? AND fingerprint = ?",
                          (aside, self.run, key, old), durable=True)  # fmt: skip
        self._states[key] = None

    async def retry(self, key: str, run: int | None) -> bool:
        """``--retry-failed``: the failed item under ``key`` is kept as
        ``<key>~failed<run>``, state retried (its jobs and presses with it, out of the
        counts); the line is a new item. Only while it is the failed attempt that ``run``
        wrote and this one read: False, nothing changed, if another process on the folder
        retried it meanwhile (that one retry is the line's)."""
        check_transition(ItemState.FAILED, ItemState.RETRIED, key=key)
        aside, failed = f"{key}~failed{self.run}", ItemState.FAILED.value

        def step(connection: sqlite3.Connection) -> bool:
            read = "SELECT 1 FROM items WHERE key = ? AND state = ? AND run IS ?"
            if connection.execute(read, (key, failed, run)).fetchone() is None:
                return False
            for table in ("jobs", "presses"):
                connection.execute(f"UPDATE {table} SET item_key = ? WHERE item_key = ?",  # noqa: S608
                                   (aside, key))  # fmt: skip
            connection.execute("UPDATE items SET key = ?, seen = ?, state = ? WHERE key = ?",
                               (aside, self.run, ItemState.RETRIED.value, key))  # fmt: skip
            return True

        moved: bool = await self._applied(step)
        if moved:
            self._states[key] = None
        return moved

    async def gone(self) -> list[tuple[str, int | None]]:
        """``(key, line)`` of the items no input line of this run was (earlier runs' input
        had them), in line order; a retried line's failed attempts are not (its line is
        the item that retried them)."""
        rows = await self._query("SELECT key, line FROM items WHERE COALESCE(seen, 0) < ?"
                                 " AND state != ? ORDER BY line",
                                 (self.run, ItemState.RETRIED.value))  # fmt: skip
        return [(str(key), line) for key, line in rows]

    async def history(self, claim: jp.Claim) -> jp.History:
        """The item's jobs (their last recorded status, images, what was saved) and its
        presses, as an earlier run left them."""
        records = await self.jobs_of(claim.key)
        jobs = []
        for record in records:
            images = await self.images_of(record.job_id)
            last = _last(record)
            listed = tuple(jp.ImageToSave(i.index, i.kind, i.url, i.parts_missing)
                           for i in images if i.url)  # fmt: skip
            jobs.append(jp.KnownJob(
                record.job_id, record.parent_id,
                None if record.button is None else Button(record.button), record.position,
                None if last is None else last.status, last, listed or None,
                frozenset(i.index for i in images if i.path and i.sha256),
            ))  # fmt: skip
        presses = tuple(jp.KnownPress(p.parent_id, Button(p.button), p.child_id)
                        for p in await self.presses_of(claim.key))  # fmt: skip
        return jp.History(tuple(jobs), presses)

    async def saved_files(self, key: str) -> dict[tuple[str, int], tuple[str, str]]:
        """``(job, index) -> (path, sha256)`` of the item's images recorded as saved (a
        journal from before per-image rows: the job's own file as its image 1)."""
        found: dict[tuple[str, int], tuple[str, str]] = {}
        for record in await self.jobs_of(key):
            if record.path and record.sha256:
                found[(record.job_id, 1)] = (record.path, record.sha256)
            for image in await self.images_of(record.job_id):
                if image.path and image.sha256:
                    found[(record.job_id, image.index)] = (image.path, image.sha256)
        return found

    async def job_details(self, key: str) -> dict[str, tuple[float | None, float | None,
                                                             str | None]]:  # fmt: skip
        """``job -> (created, credits, error)`` as recorded."""
        return {r.job_id: (r.created, r.credits, r.error) for r in await self.jobs_of(key)}


def _alive(owner: str | None) -> bool:
    """Whether a claim's owner may still be at work: a process of this machine that no
    longer exists (killed) is not, so its items are taken over at once rather than when
    its lease runs out; one of another machine is trusted to its lease."""
    host, _, rest = (owner or "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    return pid_alive(pid)


@attrs.frozen
class Recorded:
    """What the journal holds of an item: its state, the run that wrote it last, and the
    fingerprint of the request it was created for."""

    state: ItemState
    run: int | None
    fingerprint: str | None


def _last(record: JobRecord) -> ImageJob | None:
    """A job's last recorded answer, as far as the journal keeps it (ended ones only)."""
    if record.status is None or not record.is_terminal:
        return None
    created = None if record.created is None else int(record.created * 1000)
    return ImageJob(id=record.job_id, status=ImageStatus(record.status), image=record.url,
                    deduction_credit=record.credits, create_time=created)  # fmt: skip
