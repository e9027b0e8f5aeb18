"""Bulk's gates: the credit ``Budget`` (spent, reserved for creates in flight) and the
``PriorityGate`` that caps downloads at once, oldest job first (the one ``_gate.Gate``)."""

from __future__ import annotations

from collections.abc import Sequence

from .._gate import Gate
from .._models import ImageJob


class Budget:
    """Credits: spent, reserved for creates in flight, and what a create will cost."""

    def __init__(self, limit: float | None, spent: float) -> None:
        self.limit, self.spent, self.reserved = limit, spent, 0.0
        self.image_cost, self.button_cost = 1.0, 2.0  # the docs' figures until seen
        self.exhausted = False

    def reserve(self, amount: float) -> bool:
        if self.limit is not None and self.spent + self.reserved + amount > self.limit:
            self.exhausted = True
            return False
        self.reserved += amount
        return True

    def settle(self, reserved: float, jobs: Sequence[ImageJob], *, button: bool) -> None:
        self.reserved -= reserved
        for job in jobs:
            cost = float(job.deduction_credit or 0)
            self.spent += cost
            if button:
                self.button_cost = max(self.button_cost, cost)
            else:
                self.image_cost = max(self.image_cost, cost)


PriorityGate = Gate  # the one gate primitive (``_gate``): downloads served oldest first
