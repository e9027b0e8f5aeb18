"""Local faults (a full disk, a read-only folder, a journal that cannot be written or is
damaged) found anywhere in what ended a command: in any error of a task group's
``ExceptionGroup`` and along each error's causes. They end in one line and exit 74,
however deep the error that reported them."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from .._exceptions import AkoolError

# What the disk or the file system refuses: not the network (its errors are AkoolErrors).
_LOCAL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                    errno.EFBIG, errno.EIO, errno.ENOTDIR, errno.EISDIR})  # fmt: skip
_DAMAGED = ("not a database", "malformed", "corrupt")


def local_fault(error: BaseException) -> OSError | sqlite3.Error | None:
    """The innermost local fault inside ``error`` (its groups and causes), if any: the
    first to strike, which the others (a manifest not written after it) followed."""
    found: OSError | sqlite3.Error | None = None
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, sqlite3.Error):
            found = current
        elif _is_local(current):
            assert isinstance(current, OSError)
            found = current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        context = None if current.__suppress_context__ else current.__context__
        pending.extend(e for e in (current.__cause__, context) if e is not None)
    return found


def fault_line(fault: OSError | sqlite3.Error, journal: Path | None = None) -> str:
    """What went wrong, where, and what to do: one line."""
    again = "then run again with --resume" if journal is not None else "then run again"
    if isinstance(fault, sqlite3.Error):
        where = f"the journal {journal}" if journal is not None else "the journal"
        if any(word in str(fault) for word in _DAMAGED):
            return (f"{where} is damaged ({fault}): restore it from a backup, or move it"
                    " aside and choose another --out")  # fmt: skip
        return (
            f"{where} cannot be written ({fault}): free some space or fix its permissions, {again}"
        )
    what = fault.strerror or str(fault)
    where = f" {fault.filename}" if fault.filename else ""
    journal_note = f" (the journal is {journal})" if journal is not None else ""
    return f"cannot write{where}: {what}: {_remedy(fault.errno)}, {again}{journal_note}"


def _remedy(number: int | None) -> str:
    if number in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "free some space"
    if number in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "fix the permissions"
    return "check the path"


def _is_local(error: BaseException) -> bool:
    """An error of the disk or the file system (never an AkoolError: those that are also
    OSErrors, such as ``JournalExistsError``, are our own refusals)."""
    return (
        isinstance(error, OSError)
        and not isinstance(error, AkoolError)
        and (error.errno in _LOCAL or error.filename is not None)
    )
