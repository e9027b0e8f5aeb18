"""A bulk item's states: the one transition table, illegal changes refused by the journal,
and whole runs against the emulator that make only the table's changes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import attrs
import pytest

from akool_async.bulk import ItemState, _journal
from akool_async.bulk._journal import Journal
from akool_async.bulk._states import (
    FINISHED,
    JOURNALED,
    TRANSITIONS,
    IllegalTransitionError,
    check_transition,
)
from akool_async.emulator import Credits, Emulator, Faults

from .test_bulk_run import FAST, bulk, items

S = ItemState
# Every change the bulk code makes, written out apart from the table it checks.
EXPECTED = {
    (None, S.SUBMITTING),
    (S.SUBMITTING, S.SUBMITTED),
    (S.SUBMITTING, S.REFUSED),
    (S.SUBMITTING, S.UNCERTAIN),
    (S.SUBMITTING, S.SUBMITTING),
    (S.SUBMITTED, S.DONE),
    (S.SUBMITTED, S.FAILED),
    (S.SUBMITTED, S.UNCERTAIN),
    (S.UNCERTAIN, S.SUBMITTING),
    (S.UNCERTAIN, S.UNCERTAIN),
    (S.UNCERTAIN, S.DONE),
    (S.UNCERTAIN, S.FAILED),
    (S.REFUSED, S.SUBMITTING),
    (S.FAILED, S.RETRIED),  # --retry-failed keeps the failed attempt aside
}
ROWS = [(before, after) for before, row in TRANSITIONS.items() for after in row]


def test_the_table_has_exactly_the_expected_rows_each_with_a_reason() -> None:
    assert set(ROWS) == EXPECTED
    assert set(TRANSITIONS) == {None, *JOURNALED}  # every journaled state has its row
    # A resume skips them; only --retry-failed sets a failed one aside, as a record.
    assert {state: set(TRANSITIONS[state]) for state in FINISHED} == {
        S.DONE: set(),
        S.FAILED: {S.RETRIED},
    }
    assert TRANSITIONS[S.RETRIED] == {}


@pytest.mark.parametrize(("before", "after"), ROWS)
def test_each_row_is_allowed_and_says_why(before: ItemState | None, after: ItemState) -> None:
    reason = check_transition(before, after)
    assert reason == TRANSITIONS[before][after]
    assert len(reason) > 10


ILLEGAL = [
    (before, after)
    for before in (None, *ItemState)
    for after in ItemState
    if (before, after) not in EXPECTED
]


@pytest.mark.parametrize(("before", "after"), ILLEGAL)
def test_every_other_change_is_refused(before: ItemState | None, after: ItemState) -> None:
    with pytest.raises(IllegalTransitionError, match="not a transition of the table") as caught:
        check_transition(before, after, key="req-7")
    message = str(caught.value)
    assert "'req-7'" in message
    assert f"-> {after.value}" in message
    assert ("no state" if before is None else before.value) in message


def test_states_are_strings_as_journals_store_them() -> None:
    """A StrEnum: older journals read back unchanged and results compare to plain text."""
    assert ItemState("done") is ItemState.DONE
    text: str = ItemState.UNCERTAIN
    assert text == "uncertain"
    assert {state.value for state in ItemState} == {
        "submitting", "submitted", "done", "failed", "refused", "uncertain",
        "retried", "skipped", "budget", "invalid",
    }  # fmt: skip


async def test_the_journal_refuses_an_illegal_write_and_keeps_the_state(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    async with Journal(path) as journal:
        with pytest.raises(IllegalTransitionError, match="'req-1': no state -> done"):
            await journal.item_state("req-1", ItemState.DONE)
        await journal.intent("req-1", 1, None, {"prompt": "a fox"}, [])
        with pytest.raises(IllegalTransitionError, match="submitting -> done"):
            await journal.item_state("req-1", ItemState.DONE)
        with pytest.raises(IllegalTransitionError, match="submitting -> skipped"):
            await journal.item_state("req-1", ItemState.SKIPPED)  # a result, never journaled
        assert await journal.states(["req-1"]) == {"req-1": (ItemState.SUBMITTING, journal.run)}
    async with Journal(path) as journal:  # a later run reads the state from the file
        with pytest.raises(IllegalTransitionError, match="submitting -> failed"):
            await journal.item_state("req-1", ItemState.FAILED)
        await journal.item_state("req-1", ItemState.UNCERTAIN, "lost")
        await journal.intent("req-1", 1, None, {"prompt": "a fox"}, [])  # asked to resubmit


async def test_whole_runs_make_only_table_transitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fresh, refused, uncertain, resumed and resubmitted runs against the emulator: every
    change the journal is asked for is checked, and together they walk most of the table."""
    seen: list[tuple[ItemState | None, ItemState]] = []

    def recording(before: ItemState | None, after: ItemState, *, key: str = "") -> str:
        seen.append((before, after))
        return check_transition(before, after, key=key)

    monkeypatch.setattr(_journal, "check_transition", recording)
    emulator = Emulator(attrs.evolve(FAST, credits=Credits(balance=3)))
    async with emulator:
        first, _ = await bulk(emulator, items(3, follow_ups=["U1"]), tmp_path / "a", concurrency=1)
        emulator.backend.default_account.credit = 100
        again, _ = await bulk(emulator, items(3, follow_ups=["U1"]), tmp_path / "a", concurrency=1)
        emulator.set_faults(
            Faults(drop_connection=1.0, endpoints=frozenset({"createBySourcePrompt"}))
        )
        lost, _ = await bulk(emulator, items(2), tmp_path / "b")
        emulator.set_faults(Faults())
        kept, _ = await bulk(emulator, items(2), tmp_path / "b")
        forced, _ = await bulk(emulator, items(2), tmp_path / "b", resubmit_uncertain=True)
    assert [r.state for r in first] == [S.DONE, S.FAILED, S.FAILED]  # 1 + 2 credits, then none
    assert [r.state for r in again] == [S.SKIPPED, S.DONE, S.DONE]
    assert [r.state for r in lost] == [r.state for r in kept] == [S.UNCERTAIN] * 2
    assert [r.state for r in forced] == [S.DONE] * 2
    assert set(seen) <= EXPECTED
    assert set(seen) >= {
        (None, S.SUBMITTING), (S.SUBMITTING, S.SUBMITTED), (S.SUBMITTED, S.DONE),
        (S.SUBMITTING, S.REFUSED), (S.REFUSED, S.SUBMITTING), (S.SUBMITTING, S.UNCERTAIN),
        (S.UNCERTAIN, S.UNCERTAIN), (S.UNCERTAIN, S.SUBMITTING),
    }  # fmt: skip
    with sqlite3.connect(tmp_path / "b" / "journal.sqlite") as connection:
        stored = connection.execute("SELECT state FROM items").fetchall()
    assert stored == [("done",), ("done",)]  # plain text, as before
