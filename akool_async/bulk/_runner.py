"""``run_bulk``: a stream of requests in, images on disk out, with a journal that makes the
run resumable at any moment and never pays twice.

It is an async context manager (its tasks need a scope that outlives each result) whose
value iterates the results::

    async with AkoolClient() as client:
        async with run_bulk(client, read_items(path), out_dir=Path("images")) as run:
            async for result in run:
                print(result.line, result.state)
        print(run.summary.lines())

A feeder streams the input, a fixed number of workers take one request each at a time
(``concurrency`` requests in flight bounds memory, whatever the input's size), and each
worker follows its request's jobs through the client's shared scheduler and rate budget.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path

import anyio
import anyio.abc
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._arguments import MAX_WAIT_TIMEOUT, optional_timeout
from .._client import AkoolClient
from .._clock import SYSTEM_CLOCK
from .._exceptions import AkoolError
from ._budget import check_budget, held_back
from ._folder import prepare_folder
from ._gallery import Problem, write_gallery
from ._gates import Budget, PriorityGate
from ._identity import Identities
from ._input import BulkItem, Entry, InputProblem
from ._item import LEASE_SECONDS, ItemRunner
from ._journal import Journal, JournalWriteError
from ._journal_follow import BulkJournal, Recorded
from ._manifest import Summary, summarise, write_manifest
from ._results import BulkStats, ItemResult
from ._states import ItemState
from ._tree import Sending

_LOOKUP_CHUNK = 256
log = logging.getLogger("akool_async")
MAX_LISTED = 10_000  # invalid lines kept for the gallery; the rest are only counted


class BulkRun:
    """A running bulk job: iterate it for results; ``stop()`` to stop submitting."""

    def __init__(self, stats: BulkStats, results: anyio.abc.ObjectReceiveStream[ItemResult],
                 out_dir: Path, journal: Path) -> None:  # fmt: skip
        self.stats = stats
        self.out_dir = out_dir
        self.journal_path = journal
        self.manifest_path = out_dir / "manifest.jsonl"
        self.gallery_path = out_dir / "index.html"
        self.invalid_lines: list[tuple[int, str]] = []  # the first MAX_LISTED, for the gallery
        self.summary: Summary | None = None
        self.stopping = False
        self.read_all = False  # the whole input was read (so what it lacks is known)
        self.interrupted = False
        self.error: AkoolError | None = None  # what stopped the run at once, raised at its end
        self._results = results
        self._cancel: anyio.CancelScope | None = None
        self._sending: Sending | None = None  # creates and presses on their way
        self._journal: Journal | None = None

    def __aiter__(self) -> AsyncIterator[ItemResult]:
        return self._results.__aiter__()

    def stop(self, *, cancel_in_flight: bool = False) -> None:
        """Submit nothing more. With ``cancel_in_flight``, stop following what is in flight
        too (its creates are let finish and recorded): the journal resumes it later."""
        self.stopping = True
        if cancel_in_flight and self._cancel is not None:
            self.interrupted = True
            self._stop_sending()
            self._cancel.cancel()

    def _stop_sending(self) -> None:
        """From now on, a create or press on its way has a bounded time to answer, and
        the ids it brings are committed at once."""
        if self._sending is not None:
            self._sending.stop()
        if self._journal is not None:
            self._journal.hurry()

    def _abort(self, error: AkoolError) -> None:
        """An error every request would meet (credentials refused): stop at once."""
        if self.error is None:
            self.error = error
            self.stopping = True
            self._stop_sending()
            if self._cancel is not None:
                self._cancel.cancel()


@contextlib.asynccontextmanager
async def run_bulk(
    client: AkoolClient,
    entries: AsyncIterable[Entry] | Iterable[Entry],
    *,
    out_dir: Path,
    journal: Path | None = None,
    concurrency: int = 16,
    budget: float | None = None,
    resubmit_uncertain: bool = False,
    retry_failed: bool = False,
    stats: BulkStats | None = None,
    save_grid: bool = False,
    resume: bool = False,
    job_timeout: float | None = None,
    lease: float = LEASE_SECONDS,
) -> AsyncIterator[BulkRun]:
    """Run every entry (see the module docstring); the journal defaults to
    ``<out_dir>/journal.sqlite`` and the manifest is ``<out_dir>/manifest.jsonl``.

    Every image of a job is saved: a grid job's four (a V follow-up) as ``<name>-<k>.png``,
    and with ``save_grid`` its 2x2 grid too, as ``<name>-grid.png`` (see ``_paths``); the
    manifest has one row per saved image, with its ``job_id`` and ``index``.

    An existing journal is continued only with ``resume=True`` (else
    ``JournalExistsError``), as on the command line; a folder holding results no journal
    continues is refused (``FolderHasResultsError``), as is a journal that cannot be read
    (``JournalUnreadableError``), or one another process holds locked for as long as the
    journal's own opening would wait (``JournalBusyError``): see ``_folder``. An
    authentication error stops the run at once and is raised once the manifest is written.

    ``budget``: credits (above 0) the output folder may spend over all its runs; lines it
    would exceed are answered ``ItemState.BUDGET``, to the end of the input.
    ``job_timeout``: seconds each job is followed (None: until it ends); a job past it is
    left running on the server, its item recorded as submitted, for a resume to follow.

    Several processes may run on one journal (``resume=True``): each item is claimed for
    ``lease`` seconds at a time (renewed while worked on; a stalled process's items are
    taken over once its lease runs out, a killed one's at once), so they share the work
    and never create one item twice.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    check_budget(budget)
    job_timeout = optional_timeout("job_timeout", job_timeout, maximum=MAX_WAIT_TIMEOUT)
    journal_path = journal or out_dir / "journal.sqlite"
    await anyio.to_thread.run_sync(functools.partial(
        prepare_folder, out_dir, journal_path, resume=resume))  # fmt: skip
    stats = stats or BulkStats()
    started = SYSTEM_CLOCK.now()
    async with BulkJournal(journal_path) as book:  # first: a journal it cannot open leaks nothing
        send, receive = anyio.create_memory_object_stream[ItemResult](concurrency)
        finished, relayed = anyio.create_memory_object_stream[ItemResult](concurrency)
        run = BulkRun(stats, receive, out_dir, journal_path)
        spent = Budget(budget, await book.credits_spent())
        stats.credits = spent.spent
        runner = ItemRunner(
            client, journal=book, out_dir=out_dir, budget=spent,
            downloads=PriorityGate(max(1, concurrency)), stats=stats,
            resubmit_uncertain=resubmit_uncertain, save_grid=save_grid,
            on_fatal=run._abort, job_timeout=job_timeout, lease=lease,
        )  # fmt: skip
        run._sending, run._journal = runner.sending, book
        try:
            async with anyio.create_task_group() as tasks:
                run._cancel = tasks.cancel_scope
                items, taken = anyio.create_memory_object_stream[
                    tuple[BulkItem, ItemState | None]
                ]()
                in_flight: set[str] = set()
                tasks.start_soon(_guarded, run, functools.partial(
                    _feed, entries, journal=book, items=items, results=finished.clone(), run=run,
                    budget=spent, in_flight=in_flight, retry_failed=retry_failed,
                ))  # fmt: skip
                workers = _Workers(runner, in_flight, run, active=concurrency)
                tasks.start_soon(_guarded, run, runner.leases.keep)  # until the workers are done
                for _ in range(concurrency):
                    tasks.start_soon(workers.work, taken.clone(), finished.clone())
                tasks.start_soon(_guarded, run, functools.partial(_publish, book, relayed, send))
                taken.close()
                finished.close()
                yield run
                tasks.start_soon(_drain, receive)  # results nobody reads must not block workers
        finally:
            receive.close()  # a run stopped early leaves results nobody will read
            if isinstance(run.error, JournalWriteError):
                # Chained to the file's own error (a full disk...): the command line names it.
                raise _unrecorded(run.error, runner.unrecorded) from book.failure or run.error
            with anyio.CancelScope(shield=True):
                images = await write_manifest(book, out_dir, run.manifest_path)
                gone = await book.gone() if run.read_all else []
                run.summary = await summarise(
                    book, images, invalid=stats.invalid, seconds=SYSTEM_CLOCK.now() - started,
                    new=stats.new, changed=stats.changed, retried=stats.retried,
                    gone=tuple(f"{key} (line {line})" for key, line in gone),
                )  # fmt: skip
                await _gallery(book, run, run.summary)
    if run.error is not None:
        raise run.error


async def _publish(
    journal: BulkJournal,
    finished: MemoryObjectReceiveStream[ItemResult],
    results: anyio.abc.ObjectSendStream[ItemResult],
) -> None:
    """Hand results out once their records are committed: the results finished meanwhile
    wait for one group commit together, and their workers go on to the next item."""
    async with finished, results:
        async for result in finished:
            batch = [result]
            with contextlib.suppress(anyio.WouldBlock, anyio.EndOfStream):
                while True:
                    batch.append(finished.receive_nowait())
            await journal.committed()
            for each in batch:
                await results.send(each)


async def _guarded(run: BulkRun, work: Callable[[], Awaitable[None]]) -> None:
    """``work()``; a journal that cannot be written stops the run (never a raw group)."""
    try:
        await work()
    except JournalWriteError as exc:
        run._abort(exc)


def _unrecorded(error: JournalWriteError, job_ids: list[str]) -> JournalWriteError:
    """The journal's failure, naming the jobs created whose ids it could not keep (the
    user's only record of them: they may be charged)."""
    ids = ", ".join(job_ids)  # each was logged as it was lost (``_lost``)
    lost = f"; jobs created but not journalled: {ids}" if job_ids else ""
    return JournalWriteError(f"{error.message}{lost}", job_ids=tuple(job_ids))


async def _gallery(journal: Journal, run: BulkRun, summary: Summary) -> None:
    rows = await journal.unfinished_without_jobs()
    problems = [
        Problem(line, user, prompt, ItemState(state), why)
        for line, user, prompt, state, why in rows
    ]
    problems += [
        Problem(line, None, None, ItemState.INVALID, why) for line, why in run.invalid_lines
    ]
    problems.sort(key=lambda problem: problem.line)
    await anyio.to_thread.run_sync(
        write_gallery, run.gallery_path, run.manifest_path, summary, problems
    )


async def _invalid(
    run: BulkRun, journal: BulkJournal, results: anyio.abc.ObjectSendStream[ItemResult],
    line: int, reason: str,
) -> None:  # fmt: skip
    """A line that makes no item: counted, kept for the gallery, noted for the manifest."""
    run.stats.invalid += 1
    if len(run.invalid_lines) < MAX_LISTED:
        run.invalid_lines.append((line, reason))
    await journal.note_line(line, ItemState.INVALID, reason)
    await results.send(ItemResult(line, None, None, ItemState.INVALID, error=reason))


async def _hold_back(journal: BulkJournal, results: anyio.abc.ObjectSendStream[ItemResult],
                     entry: BulkItem) -> None:  # fmt: skip
    """A line the budget holds back: noted for the manifest, answered as such."""
    result = held_back(entry)
    await journal.note_line(entry.line, result.state, result.error or "")
    await results.send(result)


async def _going_on_from(
    journal: BulkJournal, item: BulkItem, known: Recorded, digest: str, stats: BulkStats, *,
    retry_failed: bool,
) -> ItemState | None:  # fmt: skip
    """The state a line's recorded item goes on from: None (a new item) once a changed
    line's item is set aside or a failed one retried; else what the journal holds."""
    if known.fingerprint not in (None, digest):
        assert known.fingerprint is not None
        await journal.set_aside(item.key, known.fingerprint)  # a changed line: new
        stats.changed += 1
        return None
    if retry_failed and known.state == ItemState.FAILED:
        if await journal.retry(item.key, known.run):  # the attempt is kept beside it
            stats.retried += 1
            return None
        return await journal.state_of(item.key)  # retried by another process meanwhile
    await journal.saw(item.key, item.line)
    return known.state


async def _feed(
    entries: AsyncIterable[Entry] | Iterable[Entry],
    *,
    journal: BulkJournal,
    items: anyio.abc.ObjectSendStream[tuple[BulkItem, ItemState | None]],
    results: anyio.abc.ObjectSendStream[ItemResult],
    run: BulkRun,
    budget: Budget,
    in_flight: set[str],
    retry_failed: bool = False,
) -> None:
    """Stream entries to the workers, with each one's journal state, until told to stop.

    An id seen twice is refused the second time: found recorded by this run, or among the
    items read and not yet finished (a set no larger than what is in flight).
    """
    batch: list[BulkItem] = []
    identities, prints = Identities(), dict[str, str]()  # the batch's fingerprints
    resuming = bool(await journal.count_states())

    await journal.note_lines_afresh()
    problem = functools.partial(_invalid, run, journal, results)

    async def flush() -> None:
        found = await journal.recorded([item.key for item in batch])
        for item in batch:
            known, digest = found.get(item.key), prints.pop(item.key)
            if known is not None and known.run == journal.run:
                in_flight.discard(item.key)
                await problem(item.line, "an id already used earlier in this input")
                continue
            state = None
            if known is not None:
                state = await _going_on_from(journal, item, known, digest, run.stats,
                                             retry_failed=retry_failed)  # fmt: skip
            elif resuming:
                run.stats.new += 1
            await items.send((item, state))
        batch.clear()

    async with items, results:
        async for entry in _aiter(entries):
            if run.stopping:
                break
            run.stats.read += 1
            if isinstance(entry, InputProblem):
                await problem(entry.line, entry.reason)
                continue
            if budget.exhausted:  # read on, to account for every line the budget holds back
                await _hold_back(journal, results, entry)
                continue
            item, digest = identities.identify(entry)
            if item.key in in_flight:
                await problem(item.line, "an id already used earlier in this input")
                continue
            in_flight.add(item.key)
            prints[item.key] = digest
            batch.append(item)
            if len(batch) >= _LOOKUP_CHUNK:
                await flush()
        else:
            run.read_all = True
        await flush()


@attrs.define
class _Workers:
    """What the workers share: one runs items as they come; one another process holds
    is put off until the input is done (the two then work on different items), and
    waited for then."""

    runner: ItemRunner
    in_flight: set[str]
    run: BulkRun
    active: int  # workers not yet done: the last one stops renewing claims
    later: list[tuple[BulkItem, ItemState | None]] = attrs.Factory(list)

    async def work(
        self,
        items: anyio.abc.ObjectReceiveStream[tuple[BulkItem, ItemState | None]],
        results: MemoryObjectSendStream[ItemResult],
    ) -> None:
        try:
            async with items, results:
                async for item, state in items:
                    await _guarded(self.run, functools.partial(self._one, item, state, results))
                while self.later and not self.run.stopping:
                    item, state = self.later.pop(0)
                    one = functools.partial(self._one, item, state, results, wait=True)
                    await _guarded(self.run, one)
        finally:
            self.active -= 1
            if not self.active:
                self.runner.leases.close()

    async def _one(
        self,
        item: BulkItem,
        state: ItemState | None,
        results: MemoryObjectSendStream[ItemResult],
        *,
        wait: bool = False,
    ) -> None:
        try:
            result = await self.runner.run(item, state, wait=wait)
        except BaseException:
            self.in_flight.discard(item.key)
            raise
        if result is None:
            self.later.append((item, state))  # its key stays in flight: a repeat is refused
            return
        self.in_flight.discard(item.key)
        await results.send(result)


async def _drain(results: anyio.abc.ObjectReceiveStream[ItemResult]) -> None:
    async with results:
        async for _ in results:
            pass


async def _aiter(entries: AsyncIterable[Entry] | Iterable[Entry]) -> AsyncIterator[Entry]:
    if isinstance(entries, AsyncIterable):
        async for entry in entries:
            yield entry
    else:
        for entry in entries:
            yield entry
            await anyio.lowlevel.checkpoint()
