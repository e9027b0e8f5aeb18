"""A journal belongs to its output folder: before a run touches either, what is there is
checked against what was asked (``prepare_folder``).

- Without ``resume``, a folder that holds a journal or results of an earlier run (a
  manifest with rows, images in item folders) is refused: starting over there would
  overwrite its images with other bytes.
- With ``resume``, a journal that cannot be read (not a SQLite database, no permission)
  is refused, naming the file; so is a missing or empty journal while the folder holds
  results: the run would not know them and would pay for every line again. A journal a
  killed process left mid-transaction is not unreadable: it is rolled back first, as the
  run's own (read-write) opening would; with or without ``resume``. A journal another
  process holds locked is waited for as long as the run's own opening would wait
  (``JOURNAL_WAIT``; in slices, so that Ctrl-C is heard, and with a warning), then
  refused as busy, never as unreadable.
- A resume removes the ``.part`` files that downloads of a dead process left behind (a
  partial file's name carries the id of the process writing it: another live process's
  downloads are left alone).
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import re
import sqlite3
from pathlib import Path

import attrs

from .._clock import SYSTEM_CLOCK
from .._exceptions import AkoolError
from ._journal_writes import BUSY_SECONDS, is_busy

log = logging.getLogger("akool_async")

MANIFEST = "manifest.jsonl"
_ITEM_FOLDER = re.compile(r"(id|line)-")
# ``.<name>.<pid>-<hex>.part`` (``_download``); older ones have no pid: nobody writes them.
_PART = re.compile(r"\..+\.(?:(?P<pid>\d+)-)?[0-9a-f]+\.part")


class JournalExistsError(AkoolError, FileExistsError):
    """The journal exists and ``resume`` was not asked for: continuing it silently could
    mix two different inputs in one output folder."""

    hint = "Pass resume=True (--resume) to continue it, or choose another output folder"


class FolderHasResultsError(AkoolError, FileExistsError):
    """The output folder holds results no journal here continues: a run would overwrite
    them, and pay again for what they cost."""

    hint = "Restore the folder's journal and resume, or choose another output folder"


class JournalUnreadableError(AkoolError):
    """The journal is damaged or cannot be opened: nothing it recorded can be trusted."""

    hint = "Restore it from a backup, or move it aside and run into another output folder"


class JournalBusyError(AkoolError):
    """Another process holds the journal locked, and kept it so while this one waited."""

    hint = "Run again once the other process lets go of the journal"


class JournalState(enum.Enum):
    MISSING = "missing"
    EMPTY = "empty"
    KEPT = "kept"  # readable, with items recorded


@attrs.frozen
class Unreadable:
    reason: str


@attrs.frozen
class Busy:
    """Another process held the journal locked all the while it was waited for."""

    reason: str


# How long the check waits for another process's lock: as long as opening the journal would.
JOURNAL_WAIT = BUSY_SECONDS
# SQLite's own wait for a lock cannot be interrupted: the check waits in slices, Ctrl-C is
# heard between them; the first is short, so that a warning says it waits.
_FIRST_SLICE, _SLICE = 0.1, 1.0


def prepare_folder(out_dir: Path, journal: Path, *, resume: bool) -> int:
    """``check_folder``; then, on resume, remove dead downloads' ``.part`` files (a look
    into every item folder: done once a run). How many were removed."""
    check_folder(out_dir, journal, resume=resume)
    return remove_dead_parts(out_dir) if resume else 0


def check_folder(out_dir: Path, journal: Path, *, resume: bool) -> None:
    """Refuse a folder and journal that do not belong together (see the module)."""
    wait = JOURNAL_WAIT
    state = journal_state(journal, wait=wait)
    if isinstance(state, Busy):
        raise JournalBusyError(
            f"the journal {journal} is held locked by another process ({state.reason},"
            f" waited {wait:g} s): run again once that process lets go of it"
        )
    if isinstance(state, Unreadable):
        raise JournalUnreadableError(
            f"the journal {journal} cannot be read ({state.reason}): restore it from a backup,"
            f" or move it aside and choose another --out (results in {out_dir} stay as they are)"
        )
    if not resume and state is not JournalState.MISSING:
        raise JournalExistsError(f"the journal {journal} exists")
    found = first_result(out_dir)
    if found is not None and state is not JournalState.KEPT:
        if resume:
            raise FolderHasResultsError(
                f"{out_dir} holds results ({found}) but its journal {journal} is"
                f" {state.value}: resuming would pay for them again; restore the journal,"
                " or choose another --out"
            )
        raise FolderHasResultsError(
            f"{out_dir} holds the results of an earlier run ({found}): pass --resume to"
            " continue them, or choose another --out"
        )


def journal_state(path: Path, *, wait: float) -> JournalState | Unreadable | Busy:
    """Whether the journal is there, and holds items. Read only, but for the recovery any
    opening makes after a crash: a process killed while it made the journal leaves a hot
    rollback journal beside it, which a read-only connection cannot roll back. Another
    process's lock is waited for up to ``wait`` seconds."""
    try:
        if not path.exists():
            return JournalState.MISSING
        if path.is_file() and path.stat().st_size == 0:
            return JournalState.EMPTY
    except OSError as exc:
        return Unreadable(_why(exc))
    return _read_state(path, wait)


def _read_state(path: Path, wait: float) -> JournalState | Unreadable | Busy:
    """``_read_once`` until it finds the journal not busy, or ``wait`` seconds are over."""
    deadline, step, warned = SYSTEM_CLOCK.now() + wait, min(_FIRST_SLICE, wait), False
    while True:
        state = _read_once(path, step)
        left = deadline - SYSTEM_CLOCK.now()
        if not isinstance(state, Busy) or left <= 0:
            return state
        if not warned:  # say why nothing happens
            log.warning("the journal %s is held locked by another process: waiting up to"
                        " %g s for it", path, wait)  # fmt: skip
            warned = True
        step = min(_SLICE, left)


def _read_once(path: Path, wait: float) -> JournalState | Unreadable | Busy:
    """Read only; read-write when only that can clear what a crash left (see below)."""
    try:
        return _recorded(path, mode="ro", wait=wait)
    except (OSError, sqlite3.Error) as exc:
        if getattr(exc, "sqlite_errorname", None) not in _NEEDS_RECOVERY:
            return _failed(exc)
    try:
        return _recorded(path, mode="rw", wait=wait)  # rolled back, as the run's opening would
    except (OSError, sqlite3.Error) as exc:
        return _failed(exc)


def _failed(error: OSError | sqlite3.Error) -> Unreadable | Busy:
    """Why the journal could not be read: busy (another process holds it locked), or not."""
    if is_busy(error):
        return Busy(_why(error))
    return Unreadable(_why(error))


# A crash's leftovers that only a connection that may write can clear: a hot rollback
# journal; a WAL index to rebuild when the ``-shm`` file cannot be written (then the
# read-write retry fails too, and the journal is reported unreadable).
_NEEDS_RECOVERY = frozenset({"SQLITE_READONLY_ROLLBACK", "SQLITE_READONLY_RECOVERY"})


def _recorded(path: Path, *, mode: str, wait: float) -> JournalState:
    """What a connection opened in ``mode`` (``ro``, ``rw``: never made) finds recorded,
    waiting up to ``wait`` seconds for another process's lock."""
    uri = f"{path.resolve().as_uri()}?mode={mode}"
    connection = sqlite3.connect(uri, uri=True, timeout=wait)
    try:
        tables = {name for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}  # fmt: skip
        if "items" not in tables:
            return JournalState.EMPTY
        kept = connection.execute("SELECT 1 FROM items LIMIT 1").fetchone() is not None
    finally:
        connection.close()
    return JournalState.KEPT if kept else JournalState.EMPTY


def _why(error: BaseException) -> str:
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return str(error)


def first_result(out_dir: Path) -> str | None:
    """The first result of a run found in ``out_dir`` (its path inside), if any: a
    manifest with rows, or a file in an item's folder."""
    try:
        entries = list(os.scandir(out_dir))
    except (FileNotFoundError, NotADirectoryError):
        return None
    for entry in entries:  # a run that recorded nothing writes an empty manifest
        if entry.name == MANIFEST and entry.is_file() and entry.stat().st_size > 0:
            return entry.name
    for entry in entries:
        if entry.is_dir() and _ITEM_FOLDER.match(entry.name):
            with os.scandir(entry.path) as files:
                for file in files:
                    if not _PART.fullmatch(file.name):
                        return f"{entry.name}/{file.name}"
    return None


def remove_dead_parts(out_dir: Path) -> int:
    """Remove the ``.part`` files of downloads whose process is gone."""
    removed = 0
    if not out_dir.is_dir():
        return removed
    folders = [out_dir] + [
        Path(entry.path) for entry in os.scandir(out_dir)
        if entry.is_dir() and _ITEM_FOLDER.match(entry.name)
    ]  # fmt: skip
    for folder in folders:
        for entry in os.scandir(folder):
            match = _PART.fullmatch(entry.name)
            if match and entry.is_file() and not pid_alive(match["pid"]):
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
    return removed


def pid_alive(pid: str | None) -> bool:
    """Whether process ``pid`` of this machine exists (this one does)."""
    if pid is None:
        return False
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def free_target(path: Path, ours: bool = False) -> Path:
    """``path`` (in a folder that exists), or the first free ``<stem>~<n><suffix>`` beside it when
    a file is there already: a save never replaces a file it did not make (``ours``: the
    journal recorded this file as this image, now damaged: it is replaced)."""
    target, n = path, 1
    while target.exists() and not (ours and target == path):
        n += 1
        target = path.with_name(f"{path.stem}~{n}{path.suffix}")
    return target


def same_or_beside(wanted: Path, saved: Path, sha256: str) -> Path:
    """Where an image saved beside ``wanted`` (taken) ends: at ``wanted`` when that holds
    the same bytes (an earlier run saved it, and died before recording it), else beside."""
    existing = wanted.with_suffix(saved.suffix)
    if saved != existing and existing.is_file() and sha256_of(existing) == sha256:
        saved.unlink()
        return existing
    return saved


def sha256_of(path: Path) -> str:
    """The SHA-256 of the file at ``path``, in hex (read a MiB at a time)."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
