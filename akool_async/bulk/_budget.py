"""What ``budget`` means at the edges of a bulk run: a limit above 0 credits, counted over
every run of an output folder (the journal's spending included), and a line the budget
holds back answered as such, so that every line of the input is accounted for."""

from __future__ import annotations

from .._arguments import check_number
from .._exceptions import ValidationError
from ._input import BulkItem
from ._results import ItemResult
from ._states import ItemState

HELD_BACK = "held back: the credit budget would be exceeded"


def check_budget(budget: object) -> float | None:
    """None (no limit) or credits: a finite number above 0 (0 or less would hold back
    every line, which is never what was meant)."""
    if budget is None:
        return None
    return check_number("budget", budget, error=ValidationError)


def held_back(item: BulkItem) -> ItemResult:
    """The answer for a line not submitted because the budget ran out before it."""
    return ItemResult(item.line, item.key, item.user_id, ItemState.BUDGET, error=HELD_BACK)
