"""The emulator's jobs, balances and create counts to a JSON file and back, so that a demo
run against the built-in emulator can stop and resume like one against Akool.

Jobs are written field by field from their attrs definition (new fields come along, and a
file without them loads with their defaults). Accounts are named by uid, never by key;
tokens are not kept (a client fetches a new one). The emulated clock resumes where it
stopped, so a job that was running goes on from there.
"""

from __future__ import annotations

import enum
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import attrs

from .._models import ImageStatus
from ._state import Backend, Job, ScaledClock

FORMAT = 1


def save(backend: Backend, path: Path) -> None:
    """Write the state atomically (a temporary file renamed into place)."""
    state = {
        "format": FORMAT,
        "now": backend.clock(),
        "accounts": {str(a.uid): a.credit for a in backend.accounts.values()},
        "jobs": [_job(job) for job in backend.jobs.values()],
        "creates": dict(backend.counters.creates),
        "jobs_created": backend.counters.jobs_created,
        "credits_charged": backend.counters.credits_charged,
    }
    partial = path.with_name(f".{path.name}.part")
    with partial.open("w", encoding="utf-8") as file:
        json.dump(state, file)
        file.flush()
        os.fsync(file.fileno())
    partial.replace(path)


def load(backend: Backend, path: Path) -> None:
    """Add the saved jobs to ``backend``; restore balances and the clock."""
    state = json.loads(path.read_text(encoding="utf-8"))
    if state.get("format") != FORMAT:
        raise ValueError(f"{path}: not an emulator state file of format {FORMAT}")
    accounts = {str(a.uid): a for a in backend.accounts.values()}
    for uid, credit in state["accounts"].items():
        if uid in accounts:
            accounts[uid].credit = credit
    names = {field.name for field in attrs.fields(Job)}
    for saved in state["jobs"]:
        account = accounts.get(str(saved.pop("account")))
        if account is None:
            continue
        saved["outcome"] = ImageStatus(saved["outcome"])
        job = Job(account=account, **{k: v for k, v in saved.items() if k in names})
        backend.jobs[job.id] = job
    backend.counters.creates.update(Counter(state["creates"]))
    backend.counters.jobs_created += state["jobs_created"]
    backend.counters.credits_charged += state["credits_charged"]
    if isinstance(backend.clock, ScaledClock):
        backend.clock.resume_from(state["now"])


def _job(job: Job) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for field in attrs.fields(Job):
        value = getattr(job, field.name)
        if field.name == "account":
            value = job.account.uid
        elif isinstance(value, enum.Enum):
            value = value.value
        record[field.name] = value
    return record
