"""What each journal entry (``_journal_protocol``) writes to the queue's tables: pure,
``(sql, params)`` statements to run after the item's fence was checked (the writer
checks it and locks the item's row first, in the same transaction)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .. import _journal_protocol as jp
from .._converter import unstructure
from .._models import ImageJob
from ..bulk._states import ItemState

Statement = tuple[str, Sequence[Any]]

_JOB_INSERT = (
    "INSERT INTO akool_jobs (job_id, item_key, parent_id, button, position, status, credits,"
    " created, submitted, last, host) VALUES (%s, %s, %s, %s, {position}, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (job_id) DO NOTHING"
)


def last_json(job: ImageJob) -> str:
    return json.dumps(unstructure(job), ensure_ascii=False)


def _created(job: ImageJob) -> float | None:
    return None if job.create_time is None else job.create_time / 1000


def _job_row(key: str, job: ImageJob, parent_id: str | None, button: str | None, *, now: float,
             host: str) -> list[Any]:  # fmt: skip
    return [job.id, key, parent_id, button, int(job.status), job.deduction_credit,
            _created(job), now, last_json(job), host]  # fmt: skip


def statements(key: str, entry: jp.Entry, now: float, host: str) -> list[Statement]:  # noqa: PLR0911, PLR0912 (one case an entry)
    """The statements recording ``entry`` of item ``key`` at ``now`` (wall seconds)."""
    match entry:
        case jp.CreateIntent(request, follow_ups):
            return [(
                "UPDATE akool_items SET state = %s, request = %s, follow_ups = %s,"
                " prompt = COALESCE(prompt, %s), error = NULL, updated = %s, intent_at = %s"
                " WHERE key = %s",
                (ItemState.SUBMITTING.value, json.dumps(request, ensure_ascii=False),
                 ",".join(b.value for b in follow_ups), request.get("prompt"), now, now, key),
            )]  # fmt: skip
        case jp.CreateSettled(jobs, error, uncertain):
            rows: list[Statement] = [
                (
                    _JOB_INSERT.format(position=position),
                    _job_row(key, job, None, None, now=now, host=host),
                )
                for position, job in enumerate(jobs, start=1)
            ]
            state = (ItemState.SUBMITTED if jobs else ItemState.UNCERTAIN if uncertain
                     else ItemState.REFUSED)  # fmt: skip
            return [*rows, _item_state(key, state.value, error, now)]
        case jp.PressIntent(parent_id, button):
            return [(
                "INSERT INTO akool_presses (parent_id, button, item_key, intent_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (parent_id, button) DO NOTHING",
                (parent_id, button.value, key, now),
            )]  # fmt: skip
        case jp.PressSettled(parent_id, button, child, error, uncertain):
            press: Statement = (
                "UPDATE akool_presses SET child_id = %s, error = %s, uncertain = %s"
                " WHERE parent_id = %s AND button = %s",
                (None if child is None else child.id, error, uncertain, parent_id, button.value),
            )
            if child is None:
                return [press]
            position = "(SELECT position FROM akool_jobs WHERE job_id = %s)"
            params = _job_row(key, child, parent_id, button.value, now=now, host=host)
            return [press, (_JOB_INSERT.format(position=position), [*params[:4], parent_id,
                                                                    *params[4:]])]  # fmt: skip
        case jp.JobStatus(job):
            return [(
                "UPDATE akool_jobs SET status = %s, url = COALESCE(%s, url),"
                " credits = COALESCE(%s, credits), last = %s,"
                " finished = CASE WHEN %s THEN COALESCE(finished, %s) ELSE finished END"
                " WHERE job_id = %s",
                (int(job.status), job.url, job.deduction_credit, last_json(job),
                 job.is_terminal, now, job.id),
            )]  # fmt: skip
        case jp.JobError(job_id, error, left_running):
            return [(
                "UPDATE akool_jobs SET error = %s, finished = %s, left_running = %s"
                " WHERE job_id = %s",
                (error, now, left_running, job_id),
            )]  # fmt: skip
        case jp.ImagesListed(job_id, images):
            return [(
                "INSERT INTO akool_images (job_id, idx, kind, url, parts_missing)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (job_id, idx) DO UPDATE SET"
                " url = excluded.url, kind = excluded.kind, parts_missing = excluded.parts_missing",
                (job_id, image.index, image.kind, image.url, image.parts_missing),
            ) for image in images]  # fmt: skip
        case jp.ImageSaved(job_id, index, path, sha256, size, near_expiry):
            saved = (path, sha256, size, near_expiry, host)
            image: Statement = (
                "UPDATE akool_images SET path = %s, sha256 = %s, size = %s, near_expiry = %s,"
                " host = %s, error = NULL WHERE job_id = %s AND idx = %s",
                (*saved, job_id, index),
            )
            if index != 1:
                return [image]
            return [image, (
                "UPDATE akool_jobs SET path = %s, sha256 = %s, size = %s, near_expiry = %s,"
                " host = %s, error = NULL WHERE job_id = %s",
                (*saved, job_id),
            )]  # fmt: skip
        case jp.ImageFailed(job_id, index, error):
            return [
                ("UPDATE akool_images SET error = %s WHERE job_id = %s AND idx = %s",
                 (error, job_id, index)),
                ("UPDATE akool_jobs SET error = %s, finished = %s WHERE job_id = %s",
                 (error, now, job_id)),
            ]  # fmt: skip
        case jp.TreeSettled(state, error):
            if state == "stopped":  # the machine records no stop; kept as it was, to resume
                return []
            return [_item_state(key, state, error, now)]
    raise TypeError(f"not a journal entry: {entry!r}")  # pragma: no cover


def _item_state(key: str, state: str, error: str | None, now: float) -> Statement:
    return ("UPDATE akool_items SET state = %s, error = %s, updated = %s WHERE key = %s",
            (state, error, now, key))  # fmt: skip
