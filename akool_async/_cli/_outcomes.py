"""What a bulk run tells about its lines when it ends, from the results it streamed: the
lines the budget held back, why lines were invalid (also under ``--quiet``, which would
otherwise leave an exit 1 unexplained), and which lines failed or are uncertain, named by
their id or line number so that they can be found in the input."""

from __future__ import annotations

import attrs

from ..bulk import ItemResult, ItemState

SHOWN = 5  # reasons printed under --quiet; the rest are counted
NAMED = 20  # lines named per state in the summary; the rest are counted


@attrs.define
class Outcomes:
    held_back: int = 0
    invalid: int = 0
    reasons: list[str] = attrs.Factory(list)  # the first SHOWN invalid lines, with why
    failed: list[str] = attrs.Factory(list)  # names of the first NAMED
    failed_count: int = 0
    uncertain: list[str] = attrs.Factory(list)
    uncertain_count: int = 0
    timed_out: list[str] = attrs.Factory(list)
    timed_out_count: int = 0

    def add(self, result: ItemResult) -> None:
        state = result.state
        if state is ItemState.BUDGET:
            self.held_back += 1
        elif state is ItemState.INVALID:
            self.invalid += 1
            if len(self.reasons) < SHOWN:
                self.reasons.append(f"line {result.line}: invalid: {result.error}")
        elif state is ItemState.FAILED:
            self.failed_count += 1
            _name(self.failed, result)
        elif state is ItemState.UNCERTAIN:
            self.uncertain_count += 1
            _name(self.uncertain, result)
        elif state is ItemState.SUBMITTED:  # a job past --job-timeout: left running
            self.timed_out_count += 1
            _name(self.timed_out, result)

    def invalid_lines(self) -> list[str]:
        """The reasons shown under --quiet, where no line was printed as it came."""
        more = self.invalid - len(self.reasons)
        tail = [f"... and {more} more invalid lines (--dry-run lists them all)"] if more else []
        return self.reasons + tail

    def named_lines(self) -> list[str]:
        """The failed and uncertain lines of this run, by name."""
        lines = []
        for label, names, count in (
            ("failed lines", self.failed, self.failed_count),
            ("uncertain lines", self.uncertain, self.uncertain_count),
            ("timed out lines (--resume follows them)", self.timed_out, self.timed_out_count),
        ):
            if names:
                rest = count - len(names)
                more = f" and {rest} more (see the manifest)" if rest else ""
                lines.append(f"{label}: {', '.join(names)}{more}")
        return lines

    def held_back_line(self, budget: float) -> str:
        return (
            f"held back: {self.held_back} requests, not sent: the budget of {budget:g} credits"
            " (counted over every run into this folder) would be exceeded; to go on, run"
            " again with --resume and a larger --budget"
        )


def _name(names: list[str], result: ItemResult) -> None:
    if len(names) < NAMED:
        names.append(
            f"id {result.user_id}" if result.user_id is not None else f"line {result.line}"
        )
