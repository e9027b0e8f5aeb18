"""A bulk item's states and the one table of which state may follow which, and why.

The journal keeps an item's state as text; ``ItemState`` is a ``StrEnum``, so what older
journals hold reads back unchanged and ``result.state == "done"`` still holds. The names
of the ends (done, failed, refused, uncertain) are the follow machine's verdicts.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class ItemState(enum.StrEnum):
    """Where one request of a bulk run stands, and what ``resume`` does with it."""

    SUBMITTING = "submitting"  # intent recorded, ids not: resume treats it as uncertain
    SUBMITTED = "submitted"  # ids recorded: resume follows its jobs
    DONE = "done"  # every job and image there: resume skips it
    FAILED = "failed"  # a job or image failed: resume skips it
    REFUSED = "refused"  # the create provably made nothing: resume sends it again
    UNCERTAIN = "uncertain"  # may have been created: resume sends it only if asked
    RETRIED = "retried"  # failed, then sent again (--retry-failed): kept aside as a record
    # A run's answer only, never journaled:
    SKIPPED = "skipped"  # finished (done or failed) in an earlier run
    BUDGET = "budget"  # not created: the credit budget would be exceeded
    INVALID = "invalid"  # a bad input line or a repeated id: nothing sent


FINISHED = frozenset({ItemState.DONE, ItemState.FAILED})  # a resume skips these
JOURNALED = frozenset(
    {
        ItemState.SUBMITTING,
        ItemState.SUBMITTED,
        ItemState.REFUSED,
        ItemState.UNCERTAIN,
        ItemState.RETRIED,
    }
    | FINISHED
)

_S = ItemState
_ENDS = "the item's jobs and images were followed to their end"
# (before -> after): why. ``None`` is an item the journal has no row for yet.
TRANSITIONS: Mapping[ItemState | None, Mapping[ItemState, str]] = {
    None: {_S.SUBMITTING: "a create's intent is committed before it is sent"},
    _S.SUBMITTING: {
        _S.SUBMITTED: "the create answered with its job ids",
        _S.REFUSED: "the create was answered with an error proving nothing was created",
        _S.UNCERTAIN: "the create's answer never came (or a resume found no ids)",
        _S.SUBMITTING: "a resume asked to resubmit an intent left without ids",
    },
    _S.SUBMITTED: {
        _S.DONE: _ENDS,
        _S.FAILED: _ENDS,
        _S.UNCERTAIN: _ENDS + "; only follow-ups whose ids were lost are missing",
    },
    _S.UNCERTAIN: {
        _S.SUBMITTING: "a resume asked to resubmit uncertain creates",
        _S.UNCERTAIN: "a resume keeps an uncertain create uncertain unless asked",
        _S.DONE: _ENDS + " (the create had made jobs; a follow-up was in doubt)",
        _S.FAILED: _ENDS + " (the create had made jobs; a follow-up was in doubt)",
    },
    _S.REFUSED: {_S.SUBMITTING: "a resume sends a refused create again: it cost nothing"},
    _S.DONE: {},  # finished: a resume skips it
    _S.FAILED: {
        _S.RETRIED: "--retry-failed sends it again under its key; this attempt is kept aside"
    },
    _S.RETRIED: {},  # a record of a failed attempt: its line is a new item
}


class IllegalTransitionError(RuntimeError):
    """An item's state was to change in a way the table does not allow: a bug, never bad
    input."""


def check_transition(before: ItemState | None, after: ItemState, *, key: str = "") -> str:
    """Why ``before -> after`` is allowed; raise ``IllegalTransitionError`` if it is not."""
    allowed = TRANSITIONS.get(before, {})
    reason = allowed.get(after)
    if reason is None:
        start = "no state" if before is None else before.value
        options = ", ".join(state.value for state in allowed) or "nothing"
        raise IllegalTransitionError(
            f"bulk item {key!r}: {start} -> {after.value} is not a transition of the table"
            f" (from {start} only: {options})"
        )
    return reason
