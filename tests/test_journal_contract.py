"""The ``FollowJournal`` contract, through the protocol only, for every journal backend.

Each test opens journals on one store (two of them: two workers) with a shared fake wall
clock, so leases expire when the test says, without waiting. A backend is one parameter
of ``open_journal``: the SQLite journal joins when ``bulk/_journal.Journal`` implements
the protocol (claims with fences), by adding its opener to ``BACKENDS``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import pytest

from akool_async import _journal_protocol as jp
from akool_async._exceptions import ClaimLostError
from akool_async._models import Button, ImageJob, ImageStatus

Opener = Callable[[], contextlib.AbstractAsyncContextManager[jp.FollowJournal]]


@attrs.define
class FakeClock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _postgres(request: pytest.FixtureRequest, clock: FakeClock) -> Opener:
    from akool_async.workers import PostgresJournal

    url = request.getfixturevalue("postgres_url")
    return lambda: PostgresJournal(url, clock=clock)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, FakeClock], Opener]] = {
    "postgres": _postgres,
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=sorted(BACKENDS))
def open_journal(request: pytest.FixtureRequest, clock: FakeClock) -> Opener:
    """Opens a journal (a worker) on this test's store."""
    return BACKENDS[request.param](request, clock)


@contextlib.asynccontextmanager
async def two_workers(open_journal: Opener) -> AsyncIterator[tuple[Any, Any]]:
    async with open_journal() as first, open_journal() as second:
        yield first, second


def job(job_id: str, status: ImageStatus = ImageStatus.QUEUEING, **fields: Any) -> ImageJob:
    return ImageJob(id=job_id, status=status, **fields)


INTENT = jp.CreateIntent({"prompt": "a lighthouse"}, (Button.U1,))


async def test_a_claim_keeps_others_out_until_released(open_journal: Opener) -> None:
    """One worker holds an item at a time; the next claim after a release has a higher
    fence."""
    async with two_workers(open_journal) as (first, second):
        claim = await first.claim("item-1", lease=30)
        assert claim is not None
        assert claim.key == "item-1"
        assert await second.claim("item-1", lease=30) is None
        assert await second.claim("item-2", lease=30) is not None  # other items are free
        await first.release(claim)
        taken = await second.claim("item-1", lease=30)
        assert taken is not None
        assert taken.fence > claim.fence


async def test_a_claim_again_by_its_holder_makes_the_earlier_one_stale(
    open_journal: Opener,
) -> None:
    """The holder may claim its item again (the protocol refuses only another worker):
    a new fence, and the earlier claim can write nothing more."""
    async with open_journal() as journal:
        first = await journal.claim("item", lease=30)
        assert first is not None
        again = await journal.claim("item", lease=30)
        assert again is not None
        assert again.fence > first.fence
        with pytest.raises(ClaimLostError):
            await journal.write(first, [INTENT])
        await journal.write(again, [INTENT])


async def test_an_expired_lease_is_taken_over_and_the_old_fence_refused(
    open_journal: Opener, clock: FakeClock
) -> None:
    """After the lease, another worker takes the item with a new fence; every call of the
    old holder then raises ``ClaimLostError``, and its late write changes nothing."""
    async with two_workers(open_journal) as (first, second):
        old = await first.claim("item", lease=10)
        assert old is not None
        assert old.lease_until == pytest.approx(clock.now + 10)
        clock.now += 9
        assert await second.claim("item", lease=10) is None  # not yet
        clock.now += 2
        new = await second.claim("item", lease=10)
        assert new is not None
        assert new.fence > old.fence
        with pytest.raises(ClaimLostError) as lost:
            await first.write(old, [jp.CreateSettled((job("stale-job"),))])
        assert (lost.value.key, lost.value.fence) == ("item", old.fence)
        with pytest.raises(ClaimLostError):
            await first.renew(old, lease=10)
        with pytest.raises(ClaimLostError):
            await first.history(old)
        await first.release(old)  # gives up nothing: the new holder keeps it
        assert await first.claim("item", lease=10) is None
        assert await second.history(new) == jp.History()


async def test_a_renewed_lease_keeps_the_item(open_journal: Opener, clock: FakeClock) -> None:
    """``renew`` moves the lease on from now; the item stays its holder's past the first
    lease."""
    async with two_workers(open_journal) as (first, second):
        claim = await first.claim("item", lease=10)
        assert claim is not None
        clock.now += 8
        renewed = await first.renew(claim, lease=10)
        assert renewed.fence == claim.fence
        assert renewed.lease_until == pytest.approx(clock.now + 10)
        clock.now += 8
        assert await second.claim("item", lease=10) is None
        await first.write(renewed, [INTENT, jp.CreateSettled((job("j1"),))])


async def test_durable_entries_are_committed_when_write_returns(
    open_journal: Opener, clock: FakeClock
) -> None:
    """A create's answer is in the store as soon as ``write`` returns: a worker that takes
    the item over (the first never released it, nor flushed, nor closed) sees its jobs."""
    async with open_journal() as first:
        claim = await first.claim("item", lease=5)
        assert claim is not None
        await first.write(claim, [INTENT])
        await first.write(claim, [jp.CreateSettled((job("j1"), job("j2")))])
        clock.now += 6
        async with open_journal() as second:
            taken = await second.claim("item", lease=5)
            assert taken is not None
            history = await second.history(taken)
    assert [(j.job_id, j.position, j.parent_id) for j in history.jobs] == [
        ("j1", 1, None),
        ("j2", 2, None),
    ]


async def test_history_returns_what_earlier_runs_recorded(
    open_journal: Opener, clock: FakeClock
) -> None:
    """Statuses, images listed and saved, presses answered and one whose answer was lost
    come back as ``History`` for the next holder to resume the tree."""
    done = job("root", ImageStatus.COMPLETED, image="https://cdn.test/root.png",
               buttons=(Button.U1, Button.U2), deduction_credit=4)  # fmt: skip
    child = job("child", ImageStatus.QUEUEING)
    images = (
        jp.ImageToSave(1, "image", "https://cdn.test/root.png"),
        jp.ImageToSave(0, "grid", "https://cdn.test/grid.png", parts_missing=True),
    )
    async with open_journal() as first:
        claim = await first.claim("item", lease=30)
        assert claim is not None
        await first.write(claim, [INTENT, jp.CreateSettled((job("root"),))])
        await first.write(claim, [jp.JobStatus(done), jp.ImagesListed("root", images)])
        await first.write(claim, [jp.ImageSaved("root", 1, "/out/root.png", "ab" * 32, 123)])
        await first.write(claim, [jp.ImageFailed("root", 0, "DownloadError: gone")])
        await first.write(claim, [jp.PressIntent("root", Button.U1)])
        await first.write(claim, [jp.PressSettled("root", Button.U1, child)])
        await first.write(claim, [jp.PressIntent("root", Button.U2)])  # its answer lost
        await first.release(claim)
    async with open_journal() as second:
        claim = await second.claim("item", lease=30)
        assert claim is not None
        history = await second.history(claim)
    root, born = history.jobs
    assert (root.job_id, root.status, root.position) == ("root", ImageStatus.COMPLETED, 1)
    assert root.last == done
    assert root.images == images
    assert root.saved == frozenset({1})
    assert (born.job_id, born.parent_id, born.button) == ("child", "root", Button.U1)
    assert born.position == 1
    assert born.status == ImageStatus.QUEUEING
    assert born.images is None
    assert set(history.presses) == {
        jp.KnownPress("root", Button.U1, "child"),
        jp.KnownPress("root", Button.U2, None),
    }


async def test_entries_that_need_no_commit_land_by_release(open_journal: Opener) -> None:
    """Statuses ride along with a later commit; releasing the item commits them."""
    finished = job("j1", ImageStatus.COMPLETED, image="https://cdn.test/1.png")
    async with open_journal() as first:
        claim = await first.claim("item", lease=30)
        assert claim is not None
        await first.write(claim, [INTENT, jp.CreateSettled((job("j1"),))])
        await first.write(claim, [jp.JobStatus(finished), jp.TreeSettled("done", None)])
        await first.release(claim)
        async with open_journal() as second:
            taken = await second.claim("item", lease=30)
            assert taken is not None
            (known,) = (await second.history(taken)).jobs
    assert known.status == ImageStatus.COMPLETED
    assert known.last == finished
