"""The follow machine (``_follow``): pure, so every test is a replay of events, no loop."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akool_async import Button, ImageJob, ImageStatus, JobFailedError, JobTimeoutError
from akool_async import _follow_events as ev
from akool_async import _journal_protocol as jp
from akool_async._exceptions import AkoolError, ValidationError
from akool_async._follow import FollowMachine, IllegalTransitionError
from akool_async._follow_states import (
    CreateState,
    ImageState,
    JobState,
    On,
    PressState,
    TreeState,
)
from akool_async._follow_table import TRANSITIONS
from akool_async._requests import PromptRequest, SourcePromptRequest

U1, U2, V1 = Button.U1, Button.U2, Button.V1
ALL_BUTTONS = (U1, Button.U2, Button.U3, Button.U4, V1, Button.V2, Button.V3, Button.V4)


def request(n: int = 1) -> SourcePromptRequest:
    return SourcePromptRequest(prompt="a lighthouse at dusk", batch_quantity=n)


def queued(job_id: str) -> ImageJob:
    return ImageJob(id=job_id, status=ImageStatus.QUEUEING)


def done(
    job_id: str,
    buttons: Sequence[Button] = ALL_BUTTONS,
    used: Sequence[Button] = (),
    parts: Sequence[str] = (),
) -> ImageJob:
    return ImageJob(
        id=job_id, status=ImageStatus.COMPLETED, image=f"https://cdn.test/{job_id}.png",
        buttons=tuple(buttons), used_buttons=tuple(used), upscaled_urls=tuple(parts),
    )  # fmt: skip


def of(actions: Sequence[ev.Action], kind: type[Any]) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def entries(actions: Sequence[ev.Action], kind: type[Any]) -> list[Any]:
    return [a.entry for a in of(actions, ev.Record) if isinstance(a.entry, kind)]


def emitted(actions: Sequence[ev.Action]) -> list[Any]:
    return [a.what for a in of(actions, ev.Emit)]


def outcomes(actions: Sequence[ev.Action]) -> list[ev.Outcome]:
    return [o for o in emitted(actions) if isinstance(o, ev.Outcome)]


class Tracing(FollowMachine):
    """Records every (state, trigger) row taken."""

    def __init__(self, *args: Any, taken: set[tuple[Any, On]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.taken = taken

    def _fire(self, item: Any, trigger: On) -> None:
        self.taken.add((item.state, trigger))
        super()._fire(item, trigger)


Make = Callable[..., FollowMachine]


def plain(*args: Any, **kwargs: Any) -> FollowMachine:
    return FollowMachine(*args, **kwargs)


def started(make: Make, n: int, follow_ups: Sequence[Button] = (), **kw: Any) -> FollowMachine:
    machine = make(request(n), follow_ups, **kw)
    machine.start(0.0)
    machine.handle(ev.Created(tuple(queued(f"j{i}") for i in range(1, n + 1))), 1.0)
    return machine


# -- scenarios, replayed from Generation and the bulk runner ---------------------------


def batch_of_four_with_u1_each(make: Make) -> None:
    """Generation: four jobs, U1 pressed on each as it finishes, eight outcomes."""
    machine = make(request(4), [U1], job_timeout=600.0)
    (create,) = machine.start(10.0)
    assert isinstance(create, ev.Create)
    assert create.intent == jp.CreateIntent({}, (U1,))
    actions = machine.handle(ev.Created(tuple(queued(f"j{i}") for i in range(1, 5))), 11.0)
    assert [w.job_id for w in of(actions, ev.Watch)] == ["j1", "j2", "j3", "j4"]
    assert {w.deadline for w in of(actions, ev.Watch)} == {611.0}
    outcomes: list[ev.Outcome] = []
    for i in range(1, 5):
        machine.handle(ev.StatusSeen(ImageJob(id=f"j{i}", status=ImageStatus.PROCESSING)), 12.0)
        actions = machine.handle(ev.StatusSeen(done(f"j{i}")), 20.0 + i)
        (press,) = of(actions, ev.Press)
        assert (press.parent_id, press.button, press.request.job_id) == (f"j{i}", U1, f"j{i}")
        assert press.intent == jp.PressIntent(f"j{i}", U1)
        assert not emitted(actions)  # the parent's outcome waits for its children's ids
        actions = machine.handle(ev.Pressed(f"j{i}", U1, (queued(f"c{i}"),)), 30.0)
        (root,) = emitted(actions)
        assert (root.job_id, root.state, root.children) == (f"j{i}", "completed", (f"c{i}",))
        assert (root.submitted_at, root.finished_at) == (10.0, 20.0 + i)
        outcomes.append(root)
    for i in range(1, 5):
        child = emitted(machine.handle(ev.StatusSeen(done(f"c{i}", buttons=())), 40.0))[0]
        assert (child.parent_id, child.button, child.submitted_at) == (f"j{i}", U1, 20.0 + i)
        outcomes.append(child)
    assert machine.settled
    assert all(o.state == "completed" and o.error is None for o in outcomes)
    assert machine.verdict() == (ev.Verdict.DONE, None)


def bulk_journals_in_order(make: Make) -> None:
    """Bulk: ids recorded before the watch, each status, images listed then saved, and
    the verdict last."""
    machine = make(request(1), [U1], save=True, payload={"prompt": "p"})
    (create,) = of(machine.start(0.0), ev.Create)
    assert create.intent == jp.CreateIntent({"prompt": "p"}, (U1,))
    actions = machine.handle(ev.Created((queued("j1"),)), 1.0)
    assert isinstance(actions[0], ev.Record)
    assert actions[0].entry == jp.CreateSettled((queued("j1"),))
    assert isinstance(actions[1], ev.Watch)
    running = ImageJob(id="j1", status=ImageStatus.PROCESSING)
    assert entries(machine.handle(ev.StatusSeen(running), 2.0), jp.JobStatus) == [
        jp.JobStatus(running)
    ]
    actions = machine.handle(ev.StatusSeen(done("j1")), 3.0)
    assert [type(a).__name__ for a in actions] == ["Record", "Record", "Download", "Press"]
    (listed,) = entries(actions, jp.ImagesListed)
    assert listed.images == (jp.ImageToSave(1, "image", "https://cdn.test/j1.png"),)
    (download,) = of(actions, ev.Download)
    assert (download.position, download.parent_position) == (1, None)
    actions = machine.handle(ev.Pressed("j1", U1, (queued("c1"),)), 4.0)
    (pressed,) = entries(actions, jp.PressSettled)
    assert (pressed.child, pressed.error) == (queued("c1"), None)
    actions = machine.handle(ev.StatusSeen(done("c1", buttons=())), 5.0)
    (download,) = of(actions, ev.Download)
    assert (download.job_id, download.position, download.parent_position) == ("c1", 1, 1)
    assert download.button == U1
    actions = machine.handle(ev.Saved("j1", 1, "/out/1.png", "ab", 10, near_expiry=True), 6.0)
    assert entries(actions, jp.ImageSaved) == [jp.ImageSaved("j1", 1, "/out/1.png", "ab", 10, True)]
    assert not machine.settled  # c1's image is still on its way
    actions = machine.handle(ev.Saved("c1", 1, "/out/1_U1.png", "cd", 11), 7.0)
    assert machine.images == {("j1", 1): ImageState.SAVED, ("c1", 1): ImageState.SAVED}
    assert entries(actions, jp.ImageSaved) == [jp.ImageSaved("c1", 1, "/out/1_U1.png", "cd", 11)]
    assert entries(actions, jp.TreeSettled) == [jp.TreeSettled("done", None)]
    assert emitted(actions)[-1] == ev.Settled(ev.Verdict.DONE, None, ())


def press_refused_when_not_offered(make: Make) -> None:
    """A button the parent does not offer is refused without a press (no credit)."""
    machine = started(make, 1, [U1, U2], save=True)
    actions = machine.handle(ev.StatusSeen(done("j1", buttons=(U2,))), 2.0)
    assert [p.button for p in of(actions, ev.Press)] == [U2]
    (refused,) = [o for o in outcomes(actions) if o.job_id is None]
    assert (refused.state, refused.button, refused.parent_id) == ("refused", U1, "j1")
    assert isinstance(refused.error, ValidationError)
    assert "offers U2" in str(refused.error)
    assert machine.presses[("j1", U1)] is PressState.REFUSED
    (settled,) = entries(actions, jp.PressSettled)
    assert (settled.child, settled.uncertain) == (None, False)
    actions = machine.handle(ev.Pressed("j1", U2, (queued("c2"),)), 3.0)
    assert [o.job_id for o in emitted(actions)] == ["j1"]
    machine.handle(ev.StatusSeen(done("c2", buttons=())), 4.0)
    machine.handle(ev.Saved("j1", 1, "/a", "x", 1), 5.0)
    machine.handle(ev.Saved("c2", 1, "/b", "y", 1), 5.0)
    assert machine.verdict()[0] is ev.Verdict.FAILED  # a follow-up is missing
    assert "offers U2" in (machine.verdict()[1] or "")


def used_button_refused(make: Make) -> None:
    """A button already used on the parent is refused as well (each works once)."""
    machine = started(make, 1, [U1])
    actions = machine.handle(ev.StatusSeen(done("j1", buttons=(U1,), used=(U1,))), 2.0)
    assert not of(actions, ev.Press)
    assert machine.presses[("j1", U1)] is PressState.REFUSED


def lookup_after_callback(make: Make) -> None:
    """A callback brings no buttons: they are looked up before pressing."""
    machine = started(make, 1, [U1])
    actions = machine.handle(ev.CallbackSeen(done("j1", buttons=())), 2.0)
    assert of(actions, ev.LookUpButtons) == [ev.LookUpButtons("j1")]
    assert machine.jobs["j1"] is JobState.LOOKING_UP
    actions = machine.handle(ev.ButtonsLookedUp(done("j1")), 3.0)
    assert [p.button for p in of(actions, ev.Press)] == [U1]


def lookup_failure_fails_each_press(make: Make) -> None:
    """The lookup failing fails every requested press; nothing is pressed."""
    machine = started(make, 1, [U1, V1])
    machine.handle(ev.CallbackSeen(done("j1", buttons=())), 2.0)
    error = AkoolError("boom")
    actions = machine.handle(ev.LookupFailed("j1", error), 3.0)
    assert not of(actions, ev.Press)
    failures = [o for o in outcomes(actions) if o.job_id is None]
    assert [(o.button, o.state, o.error) for o in failures] == [
        (U1, "failed", error),
        (V1, "failed", error),
    ]
    assert outcomes(actions)[-1].job_id == "j1"  # the parent's outcome after its presses
    assert machine.settled
    assert machine.verdict()[0] is ev.Verdict.FAILED


def create_may_have_left(make: Make) -> None:
    """A create that may have reached the server is uncertain and never sent again."""
    machine = make(request(2), [U1], save=True)
    machine.start(0.0)
    error = AkoolError("read timed out")
    actions = machine.handle(ev.CreateFailed(error, sent=True), 1.0)
    assert not of(actions, ev.Create)
    assert entries(actions, jp.CreateSettled) == [
        jp.CreateSettled((), "AkoolError: read timed out", uncertain=True)
    ]
    assert machine.create_state is CreateState.UNCERTAIN
    assert machine.settled
    assert machine.verdict() == (ev.Verdict.UNCERTAIN, "AkoolError: read timed out")
    with pytest.raises(IllegalTransitionError, match=r"CreateState\.UNCERTAIN"):
        machine.handle(ev.Created((queued("j1"),)), 2.0)


def create_refused_before_sending(make: Make) -> None:
    """A create refused before it left is failed (nothing spent), not uncertain."""
    machine = make(request(1))
    machine.start(0.0)
    error = ValidationError("prompt", "", "not empty")
    (failure,) = emitted(machine.handle(ev.CreateFailed(error, sent=False), 1.0))[:1]
    assert (failure.job_id, failure.state, failure.error) == (None, "refused", error)
    assert machine.verdict()[0] is ev.Verdict.REFUSED  # nothing made: a resume tries again


def uncertain_create_with_ids_is_followed(make: Make) -> None:
    """An answer that got as far as the ids: those jobs exist, so they are followed."""
    machine = make(request(2))
    machine.start(0.0)
    error = AkoolError("bad body")
    actions = machine.handle(ev.CreateFailed(error, sent=True, job_ids=("a", "b")), 1.0)
    assert [w.job_id for w in of(actions, ev.Watch)] == ["a", "b"]
    assert machine.create_state is CreateState.CREATED


def press_may_have_left(make: Make) -> None:
    """A press that may have left is uncertain, never pressed again; if nothing else is
    missing, the tree is uncertain."""
    machine = started(make, 1, [U1])
    machine.handle(ev.StatusSeen(done("j1")), 2.0)
    error = AkoolError("reset")
    actions = machine.handle(ev.PressFailed("j1", U1, error, sent=True), 3.0)
    assert entries(actions, jp.PressSettled)[0].uncertain
    assert machine.presses[("j1", U1)] is PressState.UNCERTAIN
    assert machine.verdict() == (ev.Verdict.UNCERTAIN, "AkoolError: reset")


def press_refused_before_sending(make: Make) -> None:
    """A press the driver did not send (its budget, say) is refused; with ids it was made."""
    machine = started(make, 2, [U1])
    machine.handle(ev.StatusSeen(done("j1")), 2.0)
    machine.handle(ev.StatusSeen(done("j2")), 2.0)
    machine.handle(ev.PressFailed("j1", U1, ValueError("budget"), sent=False), 3.0)
    assert machine.presses[("j1", U1)] is PressState.REFUSED
    error = AkoolError("x")
    actions = machine.handle(ev.PressFailed("j2", U1, error, sent=True, child_ids=("c2",)), 3.0)
    assert [w.job_id for w in of(actions, ev.Watch)] == ["c2"]


def timeouts_leave_jobs_running(make: Make) -> None:
    """A job past its deadline is left running, not ended; its follow-ups are dropped."""
    machine = started(make, 2, [U1], job_timeout=5.0)
    error = JobTimeoutError("late", job_id="j1")
    actions = machine.handle(ev.TimedOut("j1", error), 6.0)
    (outcome,) = emitted(actions)
    assert (outcome.state, outcome.error) == ("left_running", error)
    assert entries(actions, jp.JobError) == [
        jp.JobError("j1", "JobTimeoutError: late", left_running=True)
    ]
    assert machine.presses[("j1", U1)] is PressState.ABANDONED
    actions = machine.handle(ev.TimedOut("j2"), 6.0)
    assert isinstance(emitted(actions)[0].error, JobTimeoutError)  # made when not given
    assert machine.settled
    assert machine.left_running == ("j1", "j2")
    assert machine.verdict()[0] is ev.Verdict.FAILED


def cancelled_mid_tree(make: Make) -> None:
    """Stopping: jobs followed are left running, a press already sent still answers and
    its child is left running unwatched; nothing new is sent; the journal keeps the item."""
    machine = started(make, 3, [U1], save=True)
    machine.handle(ev.StatusSeen(done("j1")), 2.0)  # its U1 press is on its way
    machine.handle(ev.CallbackSeen(done("j2", buttons=())), 2.0)  # its buttons looked up
    actions = machine.handle(ev.Cancelled(), 3.0)
    assert not of(actions, ev.Create)
    assert not of(actions, ev.Press)
    assert machine.state is TreeState.STOPPING
    assert machine.jobs == {
        "j1": JobState.PRESSING, "j2": JobState.COMPLETED, "j3": JobState.LEFT_RUNNING
    }  # fmt: skip
    assert machine.presses[("j2", U1)] is PressState.ABANDONED
    assert machine.presses[("j1", U1)] is PressState.SENDING
    assert machine.handle(ev.ButtonsLookedUp(done("j2")), 3.5) == []  # late: ignored
    assert machine.handle(ev.StatusSeen(done("j3")), 3.5) == []
    actions = machine.handle(ev.Pressed("j1", U1, (queued("c1"),)), 4.0)
    assert not of(actions, ev.Watch)
    assert machine.jobs["c1"] is JobState.LEFT_RUNNING
    assert machine.settled
    assert machine.left_running == ("c1", "j3")
    assert not entries(actions, jp.TreeSettled)
    assert emitted(actions)[-1] == ev.Settled(ev.Verdict.STOPPED, None, ("c1", "j3"))
    assert machine.handle(ev.Cancelled(), 5.0) == []


def cancelled_while_creating(make: Make) -> None:
    """The create's answer still comes after a stop: its jobs are left running."""
    machine = make(request(2), [U1])
    machine.start(0.0)
    machine.handle(ev.Cancelled(), 0.5)
    assert machine.create_state is CreateState.SENDING
    actions = machine.handle(ev.Created((queued("a"), queued("b"))), 1.0)
    assert not of(actions, ev.Watch)
    assert machine.left_running == ("a", "b")


def cancelled_before_start(make: Make) -> None:
    """Stopped before the create was sent: nothing is sent at all."""
    machine = make(request(1))
    actions = machine.handle(ev.Cancelled(), 0.0)
    assert machine.create_state is CreateState.NOT_SENT
    assert machine.settled
    assert emitted(actions) == [ev.Settled(ev.Verdict.STOPPED, None, ())]


def grid_waits_for_its_parts(make: Make) -> None:
    """A V result at status 3 without its four images is not done until they come."""
    machine = started(make, 1, [V1], save=True, save_grid=True)
    machine.handle(ev.StatusSeen(done("j1")), 2.0)
    (watch,) = of(machine.handle(ev.Pressed("j1", V1, (queued("g"),)), 3.0), ev.Watch)
    assert watch.grid
    actions = machine.handle(ev.StatusSeen(done("g", buttons=())), 4.0)
    assert machine.jobs["g"] is JobState.AWAITING_PARTS
    assert not of(actions, ev.Download)
    assert not emitted(actions)
    machine.handle(ev.StatusSeen(done("g", buttons=())), 5.0)  # still none
    parts = [f"https://cdn.test/g{k}.png" for k in range(1, 5)]
    actions = machine.handle(ev.StatusSeen(done("g", buttons=(), parts=parts)), 6.0)
    (download,) = of(actions, ev.Download)
    assert [(i.index, i.kind, i.url) for i in download.images] == [
        (1, "image", parts[0]), (2, "image", parts[1]), (3, "image", parts[2]),
        (4, "image", parts[3]), (0, "grid", "https://cdn.test/g.png"),
    ]  # fmt: skip
    with pytest.raises(IllegalTransitionError):
        machine.handle(ev.StatusSeen(done("g", buttons=(), parts=parts)), 7.0)


def grid_given_up_on_parts(make: Make) -> None:
    """Parts that never came (the planner gave up): the grid is saved as a stand-in,
    as a grid (index 0, as bulk has always named it)."""
    machine = make(PromptRequest(prompt="v3 grid"), save=True)
    machine.start(0.0)
    (watch,) = of(machine.handle(ev.Created((queued("g"),)), 1.0), ev.Watch)
    assert watch.grid
    machine.handle(ev.StatusSeen(done("g", buttons=())), 2.0)
    late = ImageJob(id="g", status=ImageStatus.COMPLETED, image="https://cdn.test/g.png",
                    parts_missing=True)  # fmt: skip
    (download,) = of(machine.handle(ev.StatusSeen(late), 3.0), ev.Download)
    assert download.images == (jp.ImageToSave(0, "grid", "https://cdn.test/g.png", True),)


def failures_of_jobs_and_downloads(make: Make) -> None:
    """A failed job, a poll that failed for good and a failed download each fail the tree."""
    machine = started(make, 3, [U1], save=True)
    actions = machine.handle(ev.StatusSeen(ImageJob(id="j1", status=ImageStatus.FAILED)), 2.0)
    (outcome,) = emitted(actions)
    assert isinstance(outcome.error, JobFailedError)
    assert machine.presses[("j1", U1)] is PressState.ABANDONED
    error = ValueError("gone")
    (outcome,) = emitted(machine.handle(ev.WatchFailed("j2", error), 2.0))
    assert (outcome.state, outcome.error) == ("failed", error)
    machine.handle(ev.StatusSeen(done("j3", buttons=())), 3.0)  # U1 not offered
    actions = machine.handle(ev.SaveFailed("j3", 1, ValueError("disk")), 4.0)
    assert entries(actions, jp.ImageFailed) == [jp.ImageFailed("j3", 1, "ValueError: disk")]
    assert machine.images[("j3", 1)] is ImageState.FAILED
    assert machine.verdict() == (ev.Verdict.FAILED, "JobFailedError: the job failed")


def stopped_while_saving(make: Make) -> None:
    """A download cut off by a stop is abandoned; its late answer is still recorded."""
    machine = started(make, 1, save=True)
    machine.handle(ev.StatusSeen(done("j1")), 2.0)
    machine.handle(ev.Cancelled(), 3.0)
    assert machine.images[("j1", 1)] is ImageState.ABANDONED
    actions = machine.handle(ev.Saved("j1", 1, "/p", "s", 1), 4.0)
    assert entries(actions, jp.ImageSaved)
    machine2 = started(make, 1, save=True)
    machine2.handle(ev.StatusSeen(done("j1")), 2.0)
    machine2.handle(ev.Cancelled(), 3.0)
    machine2.handle(ev.SaveFailed("j1", 1, ValueError("cut")), 4.0)
    assert machine2.images[("j1", 1)] is ImageState.FAILED


def resumed_tree(make: Make) -> None:
    """Resume: a press whose answer was lost is pressed again only if provably not
    pressed; a job seen ended with its images saved is not fetched again."""
    history = jp.History(
        jobs=(
            jp.KnownJob("a", None, None, 1, ImageStatus.COMPLETED, done("a")),
            jp.KnownJob("b", None, None, 2, ImageStatus.COMPLETED, done("b")),
            jp.KnownJob("c", None, None, 3),  # never seen ended
            jp.KnownJob("d", None, None, 4, ImageStatus.FAILED),
            jp.KnownJob("ua", "a", U2, 1, ImageStatus.COMPLETED, done("ua", ()),
                        images=(jp.ImageToSave(1, "image", "u"),), saved=frozenset({1})),
        ),
        presses=(jp.KnownPress("a", U1, None), jp.KnownPress("a", U2, "ua"),
                 jp.KnownPress("b", U1, None), jp.KnownPress("d", U1, None)),
    )  # fmt: skip
    machine = make(request(4), [U1, U2], save=True)
    actions = machine.resume(history, 100.0)
    assert [(w.job_id, w.age) for w in of(actions, ev.Watch)] == [
        ("a", None), ("b", None), ("c", None)
    ]  # fmt: skip
    assert not of(actions, ev.Download)  # ua's image is on disk
    assert machine.jobs["d"] is JobState.FAILED
    assert machine.presses[("d", U1)] is PressState.ABANDONED
    assert machine.jobs["ua"] is JobState.COMPLETED
    assert machine.images[("ua", 1)] is ImageState.SAVED
    # a: U1 intended, now used on the server: it was pressed, its id lost.
    actions = machine.handle(ev.StatusSeen(done("a", used=(U1, U2))), 101.0)
    assert not of(actions, ev.Press)
    assert machine.presses[("a", U1)] is PressState.UNCERTAIN
    # b: U1 intended, still offered and unused: provably not pressed, so pressed now.
    actions = machine.handle(ev.StatusSeen(done("b")), 101.0)
    assert [p.button for p in of(actions, ev.Press)] == [U1, U2]
    with pytest.raises(IllegalTransitionError, match="RESUMED is not allowed"):
        machine.resume(history, 102.0)


def resumed_lookup_failure_is_uncertain(make: Make) -> None:
    """A resumed press with its answer lost, whose parent cannot be looked at: uncertain."""
    history = jp.History(
        jobs=(jp.KnownJob("a", None, None, 1, ImageStatus.COMPLETED, done("a")),),
        presses=(jp.KnownPress("a", U1, None),),
    )
    machine = make(request(1), [U1, U2])
    machine.resume(history, 0.0)
    machine.handle(ev.CallbackSeen(done("a", buttons=())), 1.0)
    machine.handle(ev.LookupFailed("a", ValueError("down")), 2.0)
    assert machine.presses == {("a", U1): PressState.UNCERTAIN, ("a", U2): PressState.FAILED}
    machine3 = make(request(1), [U1])
    machine3.resume(history, 0.0)
    machine3.handle(ev.StatusSeen(done("a", buttons=(U2,))), 1.0)
    assert machine3.presses[("a", U1)] is PressState.REFUSED


def recalled_without_images_listed(make: Make) -> None:
    """A single image recorded ended but without its image rows: listed from its answer."""
    history = jp.History(jobs=(jp.KnownJob("a", None, None, 1, ImageStatus.COMPLETED, done("a")),))
    machine = make(request(1), save=True)
    (download,) = of(machine.resume(history, 0.0), ev.Download)
    assert download.images == (jp.ImageToSave(1, "image", "https://cdn.test/a.png"),)


def status_running_then_parts_rule(make: Make) -> None:
    """Statuses that go backwards are illegal; a grid awaiting parts cannot run again."""
    machine = started(make, 1, [V1])
    machine.handle(ev.StatusSeen(done("j1")), 2.0)
    machine.handle(ev.Pressed("j1", V1, (queued("g"),)), 3.0)
    machine.handle(ev.StatusSeen(done("g", buttons=())), 4.0)
    with pytest.raises(IllegalTransitionError, match="SEEN_RUNNING"):
        machine.handle(ev.StatusSeen(queued("g")), 5.0)


def stop_reaches_every_kind(make: Make) -> None:
    """A stop reaches items in every state: ended ones stay as they are, presses in
    flight keep the tree stopping until they answer, late reads are ignored."""
    machine = started(make, 4, [U1, U2], save=True)
    machine.handle(ev.StatusSeen(done("j1", buttons=(U1,))), 2.0)
    machine.handle(ev.Pressed("j1", U1, (queued("c1"),)), 2.0)
    machine.handle(ev.Saved("j1", 1, "/p", "s", 1), 2.0)
    machine.handle(ev.StatusSeen(done("j2")), 2.0)
    machine.handle(ev.PressFailed("j2", U1, ValueError(), sent=True), 2.0)
    machine.handle(ev.PressFailed("j2", U2, ValueError(), sent=False), 2.0)
    machine.handle(ev.SaveFailed("j2", 1, ValueError()), 2.0)
    machine.handle(ev.CallbackSeen(done("j3", buttons=())), 2.0)
    machine.handle(ev.LookupFailed("j3", ValueError()), 2.0)
    machine.handle(ev.StatusSeen(ImageJob(id="j4", status=ImageStatus.FAILED)), 2.0)
    machine.handle(ev.Cancelled(), 3.0)
    assert machine.images == {
        ("j1", 1): ImageState.SAVED, ("j2", 1): ImageState.FAILED, ("j3", 1): ImageState.ABANDONED
    }  # fmt: skip
    assert machine.settled
    assert machine.handle(ev.StatusSeen(done("j4")), 4.0) == []  # late
    assert machine.left_running == ("c1",)

    machine = started(make, 2, [U1, U2], job_timeout=60.0)
    machine.handle(ev.TimedOut("j1"), 2.0)
    machine.handle(ev.StatusSeen(done("j2")), 2.0)
    machine.handle(ev.Cancelled(), 3.0)
    assert machine.handle(ev.Cancelled(), 3.5) == []
    assert machine.state is TreeState.STOPPING  # j2's presses are on their way
    machine.handle(ev.Pressed("j2", U1, (queued("c2"),)), 5.0)
    machine.handle(ev.PressFailed("j2", U2, ValueError(), sent=True), 5.0)
    assert machine.settled
    assert machine.left_running == ("c2", "j1")


def grid_root_events(make: Make) -> None:
    """A v3 grid root awaiting its parts can still end every way a running job can."""
    grid = PromptRequest(prompt="v3 grid")
    parts = [f"https://cdn.test/p{k}.png" for k in range(1, 5)]
    ends: list[tuple[ev.Event, JobState]] = [
        (ev.StatusSeen(done("g", parts=parts)), JobState.PRESSING),
        (ev.CallbackSeen(done("g", buttons=(), parts=parts)), JobState.LOOKING_UP),
        (ev.StatusSeen(ImageJob(id="g", status=ImageStatus.FAILED)), JobState.FAILED),
        (ev.TimedOut("g"), JobState.LEFT_RUNNING),
        (ev.WatchFailed("g", ValueError()), JobState.FAILED),
        (ev.Cancelled(), JobState.LEFT_RUNNING),
    ]
    for end, state in ends:
        machine = make(grid, [U1])
        machine.start(0.0)
        machine.handle(ev.Created((queued("g"),)), 1.0)
        machine.handle(ev.StatusSeen(done("g")), 2.0)
        assert machine.jobs["g"] is JobState.AWAITING_PARTS
        machine.handle(end, 3.0)
        assert machine.jobs["g"] is state


def resumed_press_without_parent(make: Make) -> None:
    """A resumed press whose parent never finishes, or a stop, leaves it as recorded."""
    history = jp.History(jobs=(jp.KnownJob("a", None, None, 1),),
                         presses=(jp.KnownPress("a", U1, None),))  # fmt: skip
    machine = make(request(1), [U1])
    machine.resume(history, 0.0)
    machine.handle(ev.TimedOut("a"), 1.0)
    assert machine.presses[("a", U1)] is PressState.ABANDONED
    machine = make(request(1), [U1])
    machine.resume(history, 0.0)
    machine.handle(ev.Cancelled(), 1.0)
    assert machine.presses[("a", U1)] is PressState.ABANDONED
    assert machine.left_running == ("a",)


SCENARIOS = [
    stop_reaches_every_kind, grid_root_events, resumed_press_without_parent,
    batch_of_four_with_u1_each, bulk_journals_in_order, press_refused_when_not_offered,
    used_button_refused, lookup_after_callback, lookup_failure_fails_each_press,
    create_may_have_left, create_refused_before_sending, uncertain_create_with_ids_is_followed,
    press_may_have_left, press_refused_before_sending, timeouts_leave_jobs_running,
    cancelled_mid_tree, cancelled_while_creating, cancelled_before_start,
    grid_waits_for_its_parts, grid_given_up_on_parts, failures_of_jobs_and_downloads,
    stopped_while_saving, resumed_tree, resumed_lookup_failure_is_uncertain,
    recalled_without_images_listed, status_running_then_parts_rule,
]  # fmt: skip


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_scenario(scenario: Callable[[Make], None]) -> None:
    """Each workflow of Generation and bulk, replayed as events."""
    scenario(plain)


def test_every_row_of_the_table_is_taken() -> None:
    """The scenarios take every row of the transition table (so each is tested)."""
    taken: set[tuple[Any, On]] = set()

    def make(*args: Any, **kwargs: Any) -> FollowMachine:
        return Tracing(*args, taken=taken, **kwargs)

    for scenario in SCENARIOS:
        scenario(make)
    missing = set(TRANSITIONS) - taken
    assert not missing, sorted(f"{s!r} {t.name}" for s, t in missing)


def test_rows_stay_within_their_kind_of_item() -> None:
    """A row leads from a state to one of the same kind; final states only stop or ignore."""
    final = {CreateState.REFUSED, CreateState.UNCERTAIN, CreateState.NOT_SENT,
             JobState.COMPLETED, JobState.FAILED, PressState.PRESSED, PressState.REFUSED,
             PressState.FAILED, PressState.UNCERTAIN, TreeState.SETTLED}  # fmt: skip
    for (state, trigger), (after, _) in TRANSITIONS.items():
        assert type(state) is type(after), (state, trigger)
        if state in final:
            assert trigger in (On.STOP, On.LATE), (state, trigger)
            assert after is state, (state, trigger)


# -- illegal transitions -----------------------------------------------------------------


def snapshot(machine: FollowMachine) -> tuple[object, ...]:
    return (machine.state, machine.create_state, dict(machine.jobs), dict(machine.presses),
            dict(machine.images))  # fmt: skip


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (
            ev.Created((queued("x"),)),
            "create: ANSWERED is not allowed in state CreateState.CREATED",
        ),
        (ev.StatusSeen(done("nope")), "job nope"),
        (ev.Pressed("j1", U1, (queued("c"),)), "PressState.WANTED"),
        (ev.Pressed("j1", V1, (queued("c"),)), "press V1 on j1"),
        (ev.Saved("j1", 1, "/p", "s", 1), "image j1#1"),
        (ev.ButtonsLookedUp(done("j1")), "LOOKED_UP is not allowed in state JobState.RUNNING"),
        (ev.LookupFailed("j1", ValueError()), "LOOKUP_FAILED"),
        (ev.CreateFailed(ValueError(), sent=True), "IN_DOUBT"),
    ],
)
def test_illegal_transitions_raise_and_change_nothing(event: ev.Event, message: str) -> None:
    """An event the state does not allow raises a clear error; the tree is as it was."""
    machine = started(plain, 1, [U1])
    before = snapshot(machine)
    with pytest.raises(IllegalTransitionError, match=message):
        machine.handle(event, 5.0)
    assert snapshot(machine) == before


def test_illegal_before_start_and_after_end() -> None:
    """Answers before the create was sent, statuses after a job ended, ids made twice."""
    machine = plain(request(1))
    with pytest.raises(IllegalTransitionError, match=r"CreateState\.PLANNED"):
        machine.handle(ev.Created((queued("a"),)), 0.0)
    machine.start(0.0)
    with pytest.raises(IllegalTransitionError, match=r"CreateState\.SENDING"):
        machine.start(0.0)
    with pytest.raises(IllegalTransitionError, match="created again"):
        machine.handle(ev.Created((queued("a"), queued("a"))), 1.0)
    machine = started(plain, 2)
    machine.handle(ev.StatusSeen(done("j1")), 2.0)
    with pytest.raises(IllegalTransitionError, match=r"JobState\.COMPLETED"):
        machine.handle(ev.TimedOut("j1"), 3.0)


# -- never twice ---------------------------------------------------------------------------


@st.composite
def runs(draw: st.DrawFn) -> tuple[FollowMachine, list[ev.Event], list[list[ev.Action]]]:
    """A machine fed random events: plausible answers to its actions, and junk."""
    n = draw(st.integers(1, 4))
    follow_ups = draw(st.lists(st.sampled_from([U1, U2, V1]), unique=True, max_size=3))
    machine = plain(request(n), follow_ups, save=draw(st.booleans()), job_timeout=5.0)
    events: list[ev.Event] = []
    if draw(st.booleans()):
        outputs = [machine.start(0.0)]
    else:  # resumed: some presses were intended and their answers lost
        roots = [f"k{i}" for i in range(n)]
        known = tuple(jp.KnownJob(r, None, None, i, draw(st.sampled_from([None, *ImageStatus])),
                                  done(r)) for i, r in enumerate(roots, 1))  # fmt: skip
        intended = draw(st.lists(st.tuples(st.sampled_from(roots), st.sampled_from(follow_ups))
                                 if follow_ups else st.nothing(), unique=True))  # fmt: skip
        presses_known = tuple(jp.KnownPress(r, b, None) for r, b in intended)
        outputs = [machine.resume(jp.History(known, presses_known), 0.0)]
    jobs: list[str] = list(machine.jobs)
    ids = itertools.count()  # new jobs' ids: the same again when hypothesis replays the run
    presses: list[tuple[str, Button]] = []
    images: list[tuple[str, int]] = []
    for step in range(draw(st.integers(0, 40))):
        for action in outputs[-1]:
            if isinstance(action, ev.Press):
                presses.append((action.parent_id, action.button))
            elif isinstance(action, ev.Download):
                images += [(action.job_id, i.index) for i in action.images]
        junk = draw(st.integers(0, 4)) == 0  # mostly answers to what was asked, some junk
        event = draw(st.sampled_from(_options(machine, jobs, presses, images, n, junk, ids)))
        events.append(event)
        before = snapshot(machine)
        try:
            outputs.append(machine.handle(event, float(step)))
        except IllegalTransitionError:
            assert snapshot(machine) == before  # refused before anything changed
            outputs.append([])
        jobs = list(machine.jobs)
    return machine, events, outputs


def _options(
    machine: FollowMachine,
    jobs: list[str],
    presses: list[tuple[str, Button]],
    images: list[tuple[str, int]],
    n: int,
    junk: bool,
    ids: Iterator[int],
) -> list[ev.Event]:
    """Events that may come next: answers to open actions, or (``junk``) any at all."""
    states, press_states = machine.jobs, machine.presses
    create_open = machine.create_state in (CreateState.PLANNED, CreateState.SENDING)
    options: list[ev.Event] = [ev.Cancelled()] if junk else []
    if junk or create_open:
        options += [
            ev.Created(tuple(queued(f"r{next(ids)}") for _ in range(n))),
            ev.CreateFailed(ValueError(), sent=True),
            ev.CreateFailed(ValueError(), sent=False),
        ]
    for j in jobs:
        if junk or states[j] in (JobState.RUNNING, JobState.AWAITING_PARTS):
            options += [
                ev.StatusSeen(done(j)),
                ev.StatusSeen(done(j, used=(U1,))),
                ev.StatusSeen(done(j, buttons=(U2,))),
                ev.StatusSeen(queued(j)),
                ev.StatusSeen(ImageJob(id=j, status=ImageStatus.FAILED)),
                ev.CallbackSeen(done(j, buttons=())),
                ev.TimedOut(j),
                ev.WatchFailed(j, ValueError()),
            ]
        if junk or states[j] is JobState.LOOKING_UP:
            options += [
                ev.ButtonsLookedUp(done(j)),
                ev.ButtonsLookedUp(done(j, used=(U1, U2, V1))),
                ev.LookupFailed(j, ValueError()),
            ]
    for p, b in presses:
        if junk or press_states.get((p, b)) is PressState.SENDING:
            options += [
                ev.Pressed(p, b, (queued(f"c{next(ids)}"),)),
                ev.PressFailed(p, b, ValueError(), sent=True),
                ev.PressFailed(p, b, ValueError(), sent=False),
            ]
    options += [ev.Saved(j, i, "/p", "s", 1) for j, i in images]
    return options or [ev.Cancelled()]


@settings(max_examples=300, deadline=None)
@given(runs())
def test_never_a_second_create_or_press(
    run: tuple[FollowMachine, list[ev.Event], list[list[ev.Action]]],
) -> None:
    """Whatever events come, in whatever order, one create and at most one press per
    (parent, button) is ever asked for, each carrying its intent."""
    machine, events, outputs = run
    actions = [a for out in outputs for a in out]
    # A press is asked for only on an answer that offers its button unused.
    for event, out in zip(events, outputs[1:], strict=True):
        for press in of(out, ev.Press):
            assert isinstance(event, ev.StatusSeen | ev.ButtonsLookedUp)
            assert event.job.id == press.parent_id
            assert press.button in event.job.buttons
            assert press.button not in event.job.used_buttons
    assert len(of(actions, ev.Create)) == len(of(outputs[0], ev.Create)) <= 1  # at start only
    pressed = [(p.parent_id, p.button) for p in of(actions, ev.Press)]
    assert len(pressed) == len(set(pressed))
    assert all(p.intent == jp.PressIntent(p.parent_id, p.button) for p in of(actions, ev.Press))
    for parent, button in pressed:
        assert button in machine.follow_ups
        assert machine.jobs[parent] is not JobState.NEW
    if machine.settled:
        assert sum(isinstance(a, ev.Emit) and isinstance(a.what, ev.Settled) for a in actions) == 1
