"""The one gate (in-flight cap, downloads, shards, bulk's oldest-first downloads): free
places are taken without yielding, waiters are served by priority then in order, and a
waiter cancelled as it is handed a place passes the place on."""

from __future__ import annotations

import anyio
import pytest

from akool_async._gate import Gate


async def test_free_slots_are_taken_at_once_and_then_waiters_queue_in_order() -> None:
    slots = Gate(2)
    await slots.acquire()
    await slots.acquire()
    assert slots.busy == 2
    served: list[int] = []

    async def waiter(n: int) -> None:
        async with slots:
            served.append(n)

    async with anyio.create_task_group() as tasks:
        for n in range(3):
            tasks.start_soon(waiter, n)
            await anyio.wait_all_tasks_blocked()
        assert served == []
        slots.release()  # passed from waiter to waiter, in the order they came
        await anyio.wait_all_tasks_blocked()
        assert served == [0, 1, 2]
        slots.release()
    assert slots.free == 2


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    slots = Gate(1)
    await slots.acquire()
    with anyio.move_on_after(0):
        await slots.acquire()
    slots.release()
    assert slots.free == 1


async def test_a_waiter_cancelled_as_it_is_handed_a_slot_passes_it_on() -> None:
    """However the cancellation and the hand-over interleave (trio may let the handed
    waiter run; asyncio raises in it), no slot is lost and the next waiter is served."""
    slots = Gate(1)
    await slots.acquire()
    order: list[str] = []

    async def waiter(name: str) -> None:
        async with slots:
            order.append(name)

    async with anyio.create_task_group() as tasks:
        with anyio.CancelScope() as first:
            async with anyio.create_task_group() as inner:
                inner.start_soon(waiter, "first")
                await anyio.wait_all_tasks_blocked()
                tasks.start_soon(waiter, "second")
                await anyio.wait_all_tasks_blocked()
                slots.release()  # hands the slot to the first waiter...
                first.cancel()  # ...which is cancelled before it can run
    assert order in (["second"], ["first", "second"])
    assert slots.free == 1


def test_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Gate(0)


async def test_waiters_are_served_by_priority_then_in_order() -> None:
    """Lowest priority first; equal priorities in the order they came."""
    gate = Gate(1)
    await gate.acquire()
    served: list[str] = []

    async def waiter(name: str, priority: float) -> None:
        async with gate.slot(priority):
            served.append(name)

    async with anyio.create_task_group() as tasks:
        for name, priority in (("late-b", 5.0), ("early", 1.0), ("late-c", 5.0), ("mid", 3.0)):
            tasks.start_soon(waiter, name, priority)
            await anyio.wait_all_tasks_blocked()
        gate.release()
    assert served == ["early", "mid", "late-b", "late-c"]
    assert gate.free == 1


def test_try_acquire_never_waits() -> None:
    """A free place is taken; none free (or someone waiting for it): False at once."""
    gate = Gate(1)
    assert gate.try_acquire()
    assert not gate.try_acquire()
    gate.release()
    assert gate.free == 1
