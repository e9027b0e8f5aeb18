"""The bulk runner's driver of THE follow machine (``_follow``): one request's tree, from
its create (or its journal, when resuming) to its images on disk.

The loop is the one of docs/one-engine.md: run the machine's actions in order, feed it
what came of them. One task does it all: creates, presses and downloads are awaited one
at a time (the item's jobs go on being polled meanwhile: the client's scheduler follows
them, their outcomes wait in the tree's watch set). No task, stream or task group of the
tree's own: a bulk run drives thousands of trees, and each would cost more than the
script a user would write without it. Every ``Record`` goes to the journal
(``FollowJournal.write``) under the item's claim, and to the ``Tally`` the ``ItemResult``
is built from.

A new item's claim may be taken by its create's intent (``take``: one commit for both,
``BulkJournal.claim_and_intend``) rather than before the tree starts.

A create or press is shielded from cancellation from the moment its intent is written:
its answer (the ids) is let come and is journalled even when the run stops. Only a
stopping run bounds that wait (``SHIELD_SECONDS``, set by ``Sending.stop``): a create that
answers later than that is uncertain, never lost.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

import anyio
import anyio.lowlevel
import attrs

from .. import _follow_events as ev
from .. import _follow_io as fio
from .. import _journal_protocol as jp
from .._client import AkoolClient
from .._clock import SYSTEM_CLOCK
from .._defaults import NEAR_EXPIRY, SHIELD_SECONDS
from .._exceptions import AkoolError, AuthenticationError, ConnectError, SubmissionUncertainError
from .._follow import FollowMachine
from .._follow_items import GRID_INDEX
from .._models import ImageJob, ImageStatus
from .._watchset import WatchSet
from ._folder import free_target, same_or_beside
from ._gates import Budget, PriorityGate
from ._images import fix_suffix, verified
from ._input import BulkItem
from ._journal import JournalWriteError
from ._lost import said_if_unrecorded
from ._paths import image_name, item_folder
from ._results import BulkStats, ItemResult, Tally
from ._states import ItemState

_STATES = {
    ev.Verdict.DONE: ItemState.DONE,
    ev.Verdict.FAILED: ItemState.FAILED,
    ev.Verdict.UNCERTAIN: ItemState.UNCERTAIN,
    ev.Verdict.REFUSED: ItemState.FAILED,  # the journal's refused: a resume sends it again
}
_OVER_BUDGET = "the credit budget would be exceeded"
TIMED_OUT = "timed out (--job-timeout): left running on the server; --resume follows it again"
HELD_BACK_PRESS = ("held back: a follow-up would exceed the credit budget; --resume with a"
                   " larger --budget presses it")  # fmt: skip

Arrival = tuple[ev.Event, float]


class Sending:
    """The creates and presses on their way, shielded; a stopping run gives them
    ``SHIELD_SECONDS`` more to answer (never less, never before it stops)."""

    def __init__(self) -> None:
        self._scopes: set[anyio.CancelScope] = set()
        self.deadline = math.inf

    def shield(self, scope: anyio.CancelScope) -> None:
        scope.shield, scope.deadline = True, self.deadline
        self._scopes.add(scope)

    def done(self, scope: anyio.CancelScope) -> None:
        self._scopes.discard(scope)

    def stop(self) -> None:
        if self.deadline == math.inf:
            self.deadline = anyio.current_time() + SHIELD_SECONDS
        for scope in self._scopes:
            scope.deadline = min(scope.deadline, self.deadline)


def _ids(event: ev.Event) -> list[str]:
    """The job ids an answer to a create or press brought."""
    if isinstance(event, ev.Created | ev.Pressed):
        return [job.id for job in (event.jobs if isinstance(event, ev.Created) else event.children)]
    if isinstance(event, ev.CreateFailed):
        return list(event.job_ids)
    return list(event.child_ids) if isinstance(event, ev.PressFailed) else []


class TreeJournal(jp.FollowJournal, Protocol):
    """The journal a tree is driven against (``BulkJournal``, a worker's PostgreSQL
    queue): the follow machine's, and what a resumed tree reads back of its files."""

    async def saved_files(self, key: str) -> dict[tuple[str, int], tuple[str, str]]: ...

    async def job_details(
        self, key: str
    ) -> dict[str, tuple[float | None, float | None, str | None]]: ...


class Runner(Protocol):
    """What a tree's driver shares with the other items of its run (``ItemRunner``, a
    queue worker's ``workers.QueueDriver``)."""

    client: AkoolClient

    @property
    def journal(self) -> TreeJournal: ...

    out_dir: Path
    budget: Budget
    downloads: PriorityGate
    stats: BulkStats
    save_grid: bool
    job_timeout: float | None
    on_fatal: Callable[[AkoolError], None]
    sending: Sending
    unrecorded: list[str]  # job ids created whose record could not be written

    def payload(self, item: BulkItem) -> dict[str, object]: ...


TakeClaim = Callable[[jp.CreateIntent], Awaitable[jp.Claim]]


class TreeDriver:
    """Drives one item's tree to its end; ``run(history)`` (None: a new create).

    ``claim`` None: a new item, claimed by ``take`` with its create's intent (it raises,
    and nothing is sent, when the item is not this tree's to create); ``claim`` then holds
    the claim taken."""

    def __init__(self, runner: Runner, item: BulkItem, claim: jp.Claim | None,
                 cost: float = 0.0, *, take: TakeClaim | None = None) -> None:  # fmt: skip
        if claim is None and take is None:
            raise ValueError("a tree without a claim needs take, to claim it at its intent")
        self.runner, self.item, self.claim, self.cost = runner, item, claim, cost
        self._take = take
        self.machine = FollowMachine(
            item.request, item.follow_ups, save=True, save_grid=runner.save_grid,
            job_timeout=runner.job_timeout, payload=runner.payload(item),
        )  # fmt: skip
        self.tally = Tally()
        self.files: dict[tuple[str, int], tuple[str, str]] = {}  # saved before: path, sha256
        self.seen: dict[str, ImageJob] = {}
        self.intended = False  # the create's intent is in the journal
        self.left_running = False  # a job timed out: the item stays submitted, to resume
        self.held_back = False  # a press over budget: the item stays submitted, to resume
        self._folder: Path | None = None  # the item's folder, checked (``_place``)

    async def run(self, history: jp.History | None) -> ItemResult:
        machine, runner = self.machine, self.runner
        watch = runner.client.watch()
        try:
            if history is None:
                pending = deque(machine.start(SYSTEM_CLOCK.wall()))
            else:
                pending = deque(machine.resume(await self._recall(history), SYSTEM_CLOCK.wall()))
            while pending or not machine.settled:
                if pending:
                    await self._execute(pending.popleft(), pending, watch)
                else:
                    await self._handle(*await self._outcome(watch), pending)
        finally:
            runner.stats.running -= len(watch.close())
            if not machine.settled:
                machine.handle(
                    ev.Cancelled(), SYSTEM_CLOCK.wall()
                )  # emits only: the journal keeps it
        return self._result()

    # -- the loop's parts ---------------------------------------------------------------

    async def _outcome(self, watch: WatchSet) -> Arrival:
        """The next watched job's outcome, as the machine's event."""
        try:
            job_id, result = await watch.next()
        except LookupError:  # pragma: no cover - a bug: nothing can come
            raise RuntimeError(f"the follow machine is stuck: {self.machine.jobs}") from None
        self.runner.stats.running -= 1
        return fio.watched(job_id, result, self.seen), watch.last_arrival

    async def _handle(self, event: ev.Event, now: float, pending: deque[ev.Action]) -> None:
        self._count(event)
        pending.extend(self.machine.handle(event, now))

    async def _execute(self, action: ev.Action, pending: deque[ev.Action],
                       watch: WatchSet) -> None:  # fmt: skip
        if isinstance(action, ev.Create | ev.Press):
            await self._send(action, pending, watch)
        elif isinstance(action, ev.Watch):
            self._watch(watch, action)
        elif isinstance(action, ev.LookUpButtons):
            job = self.seen[action.job_id]
            event = await fio.look_up(action.job_id, lambda: self.runner.client.with_buttons(job))
            await self._handle(event, SYSTEM_CLOCK.wall(), pending)
        elif isinstance(action, ev.Download):  # one image a turn, recorded before the next
            image, rest = action.images[0], action.images[1:]
            outcome = await self._reuse(action.job_id, image.index) or await self._fetch(
                action, image
            )
            if rest:
                pending.appendleft(attrs.evolve(action, images=rest))
            pending.extendleft(reversed(self.machine.handle(outcome, SYSTEM_CLOCK.wall())))
        elif isinstance(action, ev.Record):
            await self._record(action.entry)

    def _watch(self, watch: WatchSet, action: ev.Watch) -> None:
        self.runner.stats.running += 1
        fio.watch(watch, action)

    async def _record(self, entry: jp.Entry) -> None:
        if isinstance(entry, jp.JobError) and entry.left_running:
            self.left_running = True  # not ended: the journal keeps it running, to resume
            return
        if isinstance(entry, jp.TreeSettled) and (self.left_running or self.held_back):
            return  # the item stays submitted: a resume follows its jobs (and presses) again
        self.tally.take(entry)
        assert self.claim is not None  # nothing is recorded before the intent
        await self.runner.journal.write(self.claim, [entry])

    # -- creates and presses ------------------------------------------------------------

    async def _send(self, action: ev.Create | ev.Press, pending: deque[ev.Action],
                    watch: WatchSet) -> None:  # fmt: skip
        """Send a create or press, its intent journalled first; its answer and what the
        machine records of it are written shielded, so a stop cannot lose its ids."""
        runner, sending = self.runner, self.runner.sending
        cost = self.cost if isinstance(action, ev.Create) else runner.budget.button_cost
        if isinstance(action, ev.Press) and not runner.budget.reserve(cost):
            runner.stats.over_budget += 1
            self.held_back = True  # never pressed, nothing recorded of it: a resume presses it
            await self._handle(
                fio.failed(action, AkoolError(_OVER_BUDGET)), SYSTEM_CLOCK.wall(), pending
            )
            return
        scope = anyio.CancelScope()

        async def intent() -> None:
            sending.shield(scope)  # from here on it is on its way: let it answer
            await self._intend(action)

        request = action.request
        event: ev.Event | None = None
        jobs: tuple[ImageJob, ...] = ()
        try:
            with scope:
                event = await fio.send(
                    action, lambda: runner.client.submit(request, before_send=intent)
                )
            if event is None:  # a stopping run's wait ran out, the answer never came
                error = SubmissionUncertainError(
                    "stopped while creating: the answer never came", request=request
                )
                event = fio.failed(action, error)
            jobs = event.jobs if isinstance(event, ev.Created) else ()
            jobs = event.children if isinstance(event, ev.Pressed) else jobs
            with anyio.CancelScope(shield=True):
                await self._answered(action, event, pending, watch)
        finally:
            sending.done(scope)
            runner.budget.settle(cost, jobs, button=isinstance(action, ev.Press))
            runner.stats.credits = runner.budget.spent

    async def _intend(self, action: ev.Create | ev.Press) -> None:
        """The action's intent, committed (and the item claimed with it, for a new one)."""
        if self.claim is None:
            assert self._take is not None
            assert isinstance(action, ev.Create)  # a press comes after the create's intent
            self.claim = await self._take(action.intent)
        else:
            await self.runner.journal.write(self.claim, [action.intent])
        self.intended = True
        # Its commit is shielded: a stop that came meanwhile must still keep it unsent.
        await anyio.lowlevel.checkpoint_if_cancelled()

    async def _answered(self, action: ev.Create | ev.Press, event: ev.Event,
                        pending: deque[ev.Action], watch: WatchSet) -> None:  # fmt: skip
        """The machine's records of an answer, written before anything else of the tree
        is done (the ids above all: synced, with the journal's next group commit). Its
        jobs are watched first: their first poll need not wait for that commit."""
        if isinstance(event, ev.CreateFailed) and not event.sent and not event.job_ids:
            if isinstance(event.error, AuthenticationError | ConnectError):
                self.runner.on_fatal(event.error)  # every other create would meet it too
            if not self.intended:  # refused before it left: its intent is recorded all the same
                await self._intend(action)
        if isinstance(event, ev.Created | ev.CreateFailed) and (
            isinstance(event, ev.Created) or event.job_ids
        ):
            self.runner.stats.submitted += 1
        actions = self.machine.handle(event, SYSTEM_CLOCK.wall())
        what = "create" if isinstance(action, ev.Create) else f"press of {action.button.value}"
        try:
            with said_if_unrecorded(self.item, _ids(event), what):  # a warning names them
                try:
                    for follow in actions:
                        if isinstance(follow, ev.Watch):
                            self._watch(watch, follow)
                finally:  # whatever came of the watches, the ids are written
                    for follow in actions:
                        if isinstance(follow, ev.Record) and follow.entry.durable:
                            await self._record(follow.entry)
                        elif not isinstance(follow, ev.Watch):
                            pending.append(follow)
        except JournalWriteError:
            # Created, and its ids cannot be recorded: they must not be lost silently.
            self.runner.unrecorded.extend(_ids(event))
            raise

    # -- downloads ----------------------------------------------------------------------

    async def _reuse(self, job_id: str, index: int) -> ev.Saved | None:
        path, sha256 = self.files.get((job_id, index), ("", ""))
        if path and sha256 and await verified(path, sha256):
            return ev.Saved(job_id, index, path, sha256, (await anyio.Path(path).stat()).st_size)
        return None

    async def _fetch(self, action: ev.Download, image: jp.ImageToSave) -> ev.Saved | ev.SaveFailed:
        runner, job_id = self.runner, action.job_id
        count = sum(1 for (job, index) in self.machine.images
                    if job == job_id and index != GRID_INDEX)  # fmt: skip
        button = None if action.button is None else action.button.value
        name = image_name(action.position, button, action.parent_position, ".png",
                          index=image.index, count=count)  # fmt: skip
        created = self.tally.created(job_id)
        near_expiry = created is not None and SYSTEM_CLOCK.wall() - created > NEAR_EXPIRY
        earlier = self.files.get((job_id, image.index), ("", ""))[0]
        placed: list[Path] = []

        def place() -> Path:  # in the download's own thread hop
            path, target = self._place(name, earlier)
            placed.append(path)
            return target

        try:
            async with runner.downloads.slot(created or SYSTEM_CLOCK.wall()):
                saved = await runner.client.download_to(image.url, place)
            target = await fix_suffix(saved)
            if target.stem != placed[0].stem:  # a file was there: never replaced by other bytes
                target = await anyio.to_thread.run_sync(
                    same_or_beside, placed[0], target, saved.sha256
                )
            path = target
        except AkoolError as exc:
            return ev.SaveFailed(job_id, image.index, exc)
        runner.stats.downloaded += 1
        return ev.Saved(job_id, image.index, str(path), saved.sha256, saved.size, near_expiry)

    def _place(self, name: str, earlier: str) -> tuple[Path, Path]:
        """Where image ``name`` goes and the free file it is saved to (``free_target``;
        ``earlier``: the file the journal recorded for it). In a thread: the item's folder
        is made and checked to stay in the output folder (``item_folder``), once per item
        (I/O); ``name`` (``image_name``: safe characters only) is a plain file name in it."""
        if name in ("", ".", "..") or Path(name).name != name:
            raise ValueError(f"refusing an image name that is not a plain file name: {name!r}")
        if self._folder is None:
            out_dir, item = self.runner.out_dir, self.item
            folder = item_folder(out_dir, item.user_id, item.line)
            # Made here, not left to ``download_to``: a folder the disk refuses is a local
            # fault (``OSError``: the run stops, to resume), not an image that failed.
            folder.mkdir(parents=True, exist_ok=True)
            self._folder = folder
        path = self._folder / name
        return path, free_target(path, ours=Path(earlier) == path)

    # -- resuming and ending ------------------------------------------------------------

    async def _recall(self, history: jp.History) -> jp.History:
        """What the journal recorded, with only the saved files still intact on disk
        counted as saved (the rest is fetched again)."""
        journal = self.runner.journal
        assert self.claim is not None  # a tree resumed is claimed before it starts
        self.files = await journal.saved_files(self.claim.key)
        details = await journal.job_details(self.claim.key)
        jobs = []
        for recorded in history.jobs:
            intact = frozenset([index for index in recorded.saved
                                if await self._reuse(recorded.job_id, index)])  # fmt: skip
            known = attrs.evolve(recorded, saved=intact)
            created, credits, error = details.get(known.job_id, (None, None, None))
            self.tally.recall(known, created, credits, error)
            for index in intact:
                path, sha256 = self.files[(known.job_id, index)]
                self.tally.jobs[known.job_id].images[index].path = Path(path)
                self.tally.jobs[known.job_id].images[index].sha256 = sha256
            jobs.append(known)
        return jp.History(tuple(jobs), history.presses)

    def _count(self, event: ev.Event) -> None:
        stats = self.runner.stats
        if isinstance(event, ev.StatusSeen | ev.CallbackSeen) and event.job.is_terminal:
            stats.finished += 1
            stats.failed += event.job.status != ImageStatus.COMPLETED
        elif isinstance(event, ev.WatchFailed | ev.TimedOut):
            stats.failed += 1
            if isinstance(event.error, AuthenticationError):
                self.runner.on_fatal(event.error)

    def _result(self) -> ItemResult:
        how, error = self.machine.verdict()
        item, stats = self.item, self.runner.stats
        if self.left_running:
            return ItemResult(item.line, item.key, item.user_id, ItemState.SUBMITTED,
                              self.tally.results(), TIMED_OUT)  # fmt: skip
        if self.held_back:
            return ItemResult(item.line, item.key, item.user_id, ItemState.BUDGET,
                              self.tally.results(), HELD_BACK_PRESS)  # fmt: skip
        if how is ev.Verdict.STOPPED:
            state = ItemState.SUBMITTED
        else:
            state = _STATES[how]
            if how is ev.Verdict.UNCERTAIN:
                stats.uncertain += 1
            elif how is not ev.Verdict.REFUSED:
                stats.items_done += 1
        return ItemResult(item.line, item.key, item.user_id, state, self.tally.results(), error)
