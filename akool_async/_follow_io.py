"""What both drivers of the follow machine (``Generation``, the bulk runner) do alike: a
create's or press's answer as the machine's event, a watch set's outcome as the machine's
event, a ``Watch`` action on a watch set, a button look-up. One copy, both import it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from . import _follow_events as ev
from ._clock import wall_time
from ._exceptions import AkoolError, JobTimeoutError, SubmissionUncertainError
from ._models import ImageJob
from ._polling import Result
from ._watchset import WatchSet

Submit = Callable[[], Awaitable[tuple[ImageJob, ...]]]


async def send(action: ev.Create | ev.Press, submit: Submit) -> ev.Event:
    """Run ``submit`` (the action's create or press, as the driver sends it) and tell its
    answer as the machine's event. ``sent`` is whether it may have reached the server;
    ids a failure still holds come with it (the jobs exist)."""
    try:
        jobs = await submit()
    except AkoolError as exc:
        return failed(action, exc)
    if isinstance(action, ev.Create):
        return ev.Created(tuple(jobs))
    return ev.Pressed(action.parent_id, action.button, tuple(jobs))


def failed(action: ev.Create | ev.Press, exc: AkoolError) -> ev.CreateFailed | ev.PressFailed:
    sent = isinstance(exc, SubmissionUncertainError)
    ids = tuple(getattr(exc, "job_ids", ()) or ())
    if isinstance(action, ev.Create):
        return ev.CreateFailed(exc, sent, ids)
    return ev.PressFailed(action.parent_id, action.button, exc, sent, ids)


def watch(watch_set: WatchSet, action: ev.Watch) -> None:
    """Follow the action's job on ``watch_set`` (the machine's deadline is wall clock)."""
    deadline = action.deadline
    timeout = None if deadline is None else max(0.0, deadline - wall_time(watch_set.clock))
    watch_set.add(action.job_id, timeout=timeout, age=action.age, grid=action.grid)


async def look_up(
    job_id: str, look: Callable[[], Awaitable[ImageJob]]
) -> ev.ButtonsLookedUp | ev.LookupFailed:
    """A finished job looked at again for its buttons (a callback carries none)."""
    try:
        return ev.ButtonsLookedUp(await look())
    except AkoolError as exc:
        return ev.LookupFailed(job_id, exc)


def watched(job_id: str, result: Result, seen: dict[str, ImageJob]) -> ev.Event:
    """A watch set's outcome as the machine's event: a poll's answer has the job's buttons,
    a callback's has not (the machine then asks for a look-up). ``seen`` keeps each job's
    last answer, for that look-up."""
    if isinstance(result, ImageJob):
        seen[job_id] = result
        if result.from_callback:
            return ev.CallbackSeen(result)
        return ev.StatusSeen(result)
    if isinstance(result, JobTimeoutError):
        return ev.TimedOut(job_id, result)
    return ev.WatchFailed(job_id, result)
