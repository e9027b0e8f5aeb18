"""One request of a bulk run: routed by what the journal holds of it, then driven through
THE follow machine by ``_tree.TreeDriver`` (the workflow itself is ``_follow``'s).

A finished item is skipped; one whose create answered is resumed from its journal (its
jobs followed, its missing images fetched, its follow-ups pressed unless one may have
been pressed already); one whose create may have left without an answer stays uncertain
unless asked to resubmit; any other is created, once the budget allows it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import anyio

from .. import _journal_protocol as jp
from .._client import AkoolClient
from .._converter import unstructure
from .._defaults import BULK_LEASE, SHIELD_SECONDS
from .._exceptions import AkoolError, ClaimLostError
from ._budget import HELD_BACK, held_back
from ._gates import Budget, PriorityGate
from ._input import BulkItem
from ._journal_follow import BulkJournal
from ._results import BulkStats, ImageResult, ItemResult
from ._states import FINISHED, ItemState
from ._tree import Sending, TakeClaim, TreeDriver

__all__ = [
    "SHIELD_SECONDS",
    "Budget",
    "BulkStats",
    "ImageResult",
    "ItemResult",
    "ItemRunner",
    "PriorityGate",
]

LEASE_SECONDS = BULK_LEASE  # a claim's lease; renewed while the item is worked on
TAKEN_OVER = "another process took the item over"


class ItemRunner:
    def __init__(
        self,
        client: AkoolClient,
        *,
        journal: BulkJournal,
        out_dir: Path,
        budget: Budget,
        downloads: PriorityGate,
        stats: BulkStats,
        resubmit_uncertain: bool,
        save_grid: bool = False,
        job_timeout: float | None = None,
        lease: float = LEASE_SECONDS,
        on_fatal: Callable[[AkoolError], None] = lambda error: None,
    ) -> None:
        self.client, self.journal, self.out_dir = client, journal, out_dir
        self.budget, self.downloads, self.stats = budget, downloads, stats
        self.resubmit_uncertain = resubmit_uncertain
        self.save_grid, self.job_timeout, self.lease = save_grid, job_timeout, lease
        self.on_fatal = on_fatal  # an error every other request would meet too (a bad key)
        self.sending = Sending()  # creates and presses on their way
        self.leases = Leases(journal, lease)  # the claims held, renewed together
        self.unrecorded: list[str] = []  # job ids created whose record could not be written

    def payload(self, item: BulkItem) -> dict[str, object]:
        """The request as the journal keeps it."""
        return dict(unstructure(item.request))

    async def run(
        self, item: BulkItem, state: ItemState | None, *, wait: bool = True
    ) -> ItemResult | None:
        """The item's result; None (only when not asked to ``wait``) while another
        process holds it: try it again later."""
        if state in FINISHED:
            self.stats.skipped += 1
            return _result(item, ItemState.SKIPPED)
        if state is None:  # none recorded when the input was read: claimed at its intent
            try:
                return await self._fresh(item)
            except _NotOurs as refused:
                if refused.claim is not None:  # recorded meanwhile: go by what it is now
                    return await self._held(item, refused.claim, refused.state)
        # Another process may have worked on it meanwhile: its state as the file had it
        # when the claim was taken.
        claim, state = await self._claim(item, wait=wait)
        if claim is None:
            return None
        return await self._held(item, claim, state)

    async def _held(self, item: BulkItem, claim: jp.Claim, state: ItemState | None) -> ItemResult:
        """The item's result, worked on under ``claim`` (renewed with the run's others)."""
        lost = anyio.CancelScope()
        result: ItemResult | None = None
        try:
            if state in FINISHED:
                self.stats.skipped += 1
                return _result(item, ItemState.SKIPPED)
            self.leases.hold(claim, lost)
            # A ClaimLostError: refused at its intent, nothing was sent.
            with lost, contextlib.suppress(ClaimLostError):
                result = await self._run(item, state, claim)
        finally:
            await self._let_go(claim)
        return self._ended(item, result, lost)

    async def _fresh(self, item: BulkItem) -> ItemResult:
        """A new item's create, its claim taken by its intent (``_NotOurs`` if it cannot
        be: nothing was sent)."""
        lost = anyio.CancelScope()
        claimed: jp.Claim | None = None

        async def take(intent: jp.CreateIntent) -> jp.Claim:
            nonlocal claimed
            claim, state = await self.journal.claim_and_intend(
                item.key, intent, lease=self.lease, line=item.line, user_id=item.user_id
            )
            if claim is None or state is not None:
                raise _NotOurs(claim, state)
            self.leases.hold(claim, lost)
            claimed = claim
            return claim

        result: ItemResult | None = None
        try:
            with lost, contextlib.suppress(ClaimLostError):
                result = await self._create(item, None, take)
        finally:
            if claimed is not None:
                await self._let_go(claimed)
        return self._ended(item, result, lost)

    async def _let_go(self, claim: jp.Claim) -> None:
        self.leases.drop(claim)
        await self.journal.release(claim)

    def _ended(self, item: BulkItem, result: ItemResult | None,
               lost: anyio.CancelScope) -> ItemResult:  # fmt: skip
        """``result``, unless the item was taken over (its claim lost, or refused at its
        intent: nothing was sent)."""
        if result is not None and not lost.cancelled_caught:
            return result
        self.stats.skipped += 1
        return _result(item, ItemState.SKIPPED, error=TAKEN_OVER)

    async def _claim(
        self, item: BulkItem, *, wait: bool
    ) -> tuple[jp.Claim | None, ItemState | None]:
        """Claim the item, waiting while another process holds it if asked to; and its
        state when it was taken."""
        pause = 0.05
        while True:
            claim, state = await self.journal.claim_with_state(
                item.key, lease=self.lease, line=item.line, user_id=item.user_id
            )
            if claim is not None or not wait:
                return claim, state
            await anyio.sleep(pause)  # a claim held elsewhere: wait for its release or lease
            pause = min(pause * 2, self.lease / 4, 1.0)

    async def _run(self, item: BulkItem, state: ItemState | None, claim: jp.Claim) -> ItemResult:
        # An uncertain item with jobs was created; only a follow-up of it is in doubt.
        if state in (ItemState.SUBMITTED, ItemState.UNCERTAIN):
            history = await self.journal.history(claim)
            if state == ItemState.SUBMITTED or history.jobs:
                return await TreeDriver(self, item, claim).run(history)
        if state in (ItemState.UNCERTAIN, ItemState.SUBMITTING) and not self.resubmit_uncertain:
            reason = "the create may have reached the server before the run stopped"
            await self.journal.item_state(item.key, ItemState.UNCERTAIN, reason)
            self.stats.uncertain += 1
            return _result(item, ItemState.UNCERTAIN, error=reason)
        return await self._create(item, claim)

    async def _create(self, item: BulkItem, claim: jp.Claim | None,
                      take: TakeClaim | None = None) -> ItemResult:  # fmt: skip
        """The item created and followed, once the budget allows it (else held back)."""
        cost = item.request.batch_quantity * self.budget.image_cost
        if not self.budget.reserve(cost):
            if claim is None:  # held back only once claimed (another process may do it)
                raise _NotOurs(None, None)
            self.stats.over_budget += 1
            await self.journal.note_line(item.line, ItemState.BUDGET, HELD_BACK)
            return held_back(item)
        return await TreeDriver(self, item, claim, cost, take=take).run(None)


class _NotOurs(Exception):  # not an error: the item goes another way
    """A new item's intent found it claimed by another process (``claim`` None) or
    recorded meanwhile (``claim`` taken, ``state`` what it is), or the budget would hold it
    back (both None: it is held back once claimed, as another process may do it): nothing
    was sent."""

    def __init__(self, claim: jp.Claim | None, state: ItemState | None) -> None:
        super().__init__(claim, state)
        self.claim, self.state = claim, state


class Leases:
    """The claims this process holds, renewed together every third of the lease (one
    transaction for all of them, by one task: ``keep``); an item another process took
    over (this one was stalled past its lease) is cancelled (its ``lost`` scope)."""

    def __init__(self, journal: BulkJournal, lease: float) -> None:
        self.journal, self.lease = journal, lease
        self._held: dict[str, tuple[jp.Claim, anyio.CancelScope]] = {}
        self._keeping = anyio.CancelScope()

    def hold(self, claim: jp.Claim, lost: anyio.CancelScope) -> None:
        self._held[claim.key] = (claim, lost)

    def drop(self, claim: jp.Claim) -> None:
        if self._held.get(claim.key, (None,))[0] is claim:
            del self._held[claim.key]

    async def keep(self) -> None:
        """Renew the claims held, until ``close()``."""
        with self._keeping:
            while True:
                await anyio.sleep(self.lease / 3)
                held = list(self._held.values())
                if not held:
                    continue
                lost = await self.journal.renew_all([claim for claim, _ in held], lease=self.lease)
                for claim, scope in held:
                    if claim.key in lost and self._held.get(claim.key, (None,))[0] is claim:
                        del self._held[claim.key]  # released meanwhile is not lost
                        scope.cancel()

    def close(self) -> None:
        self._keeping.cancel()


def _result(item: BulkItem, state: ItemState, error: str | None = None) -> ItemResult:
    return ItemResult(item.line, item.key, item.user_id, state, (), error)
