"""The PostgreSQL queue on a real server: its schema, enqueueing files, handing out items,
the reaper, status, the manifest export, and the URL's password kept out of sight."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import attrs
import psycopg
import pytest

from akool_async import ConfigurationError, ValidationError
from akool_async import _journal_protocol as jp
from akool_async._exceptions import ClaimLostError
from akool_async._models import Button, ImageJob, ImageStatus
from akool_async.workers import (
    PostgresJournal,
    PostgresQueue,
    QueueError,
    QueueUnavailableError,
    Reaped,
    export_manifest,
    queue_status,
    redact_url,
)
from akool_async.workers._pg_schema import LATEST
from tests._servers import free_port
from tests.test_journal_contract import INTENT, FakeClock, job


def write_lines(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as connection:
        return connection.execute(sql).fetchall()  # type: ignore[arg-type]


async def test_many_workers_starting_at_once_migrate_the_schema_once(postgres_url: str) -> None:
    """Eight journals opening together on an empty schema: each migration is applied once
    (the advisory lock), and opening again changes nothing."""

    async def open_one() -> None:
        async with PostgresJournal(postgres_url):
            pass

    async with anyio.create_task_group() as tasks:
        for _ in range(8):
            tasks.start_soon(open_one)
    await open_one()
    assert rows(postgres_url, "SELECT version FROM akool_schema_version") == [(LATEST,)]
    # This test's schema only: other tests' schemas on the same server hold theirs.
    tables = ("SELECT 1 FROM pg_tables WHERE schemaname = current_schema()"
              " AND tablename LIKE 'akool_%'")  # fmt: skip
    assert len(rows(postgres_url, tables)) == 6


async def test_a_schema_newer_than_the_library_is_refused(postgres_url: str) -> None:
    """A queue migrated by a later akool-async is not written by this one."""
    async with PostgresJournal(postgres_url):
        pass
    with psycopg.connect(postgres_url) as connection:
        connection.execute("INSERT INTO akool_schema_version VALUES (%s, 0)", (LATEST + 1,))
    with pytest.raises(QueueError, match=f"version {LATEST + 1}, newer .* upgrade akool-async"):
        async with PostgresJournal(postgres_url):
            pass


async def test_a_file_is_enqueued_once_and_changes_are_new_items(
    postgres_url: str, tmp_path: Path
) -> None:
    """The same file twice adds nothing; a changed line is one new item; a line moved by
    an insertion is the same item; a repeated prompt is asked for as often as written."""
    first = [{"prompt": "a cat"}, {"prompt": "a cat"}, {"id": "x", "prompt": "a dog"}]
    async with PostgresQueue(postgres_url) as queue:
        report = await queue.enqueue_file(write_lines(tmp_path / "a.jsonl", first))
        assert (report.added, report.already, report.invalid) == (3, 0, ())
        report = await queue.enqueue_file(tmp_path / "a.jsonl")
        assert (report.added, report.already) == (0, 3)
        moved = [{"prompt": "new on top"}, *first[:2], {"id": "x", "prompt": "a wolf"}, "bad"]
        report = await queue.enqueue_file(write_lines(tmp_path / "b.jsonl", moved))
    assert (report.added, report.already, report.changed) == (2, 2, 1)
    assert [(p.line, p.reason) for p in report.invalid] == [(5, "not a JSON object")]
    prompts = rows(postgres_url, "SELECT prompt, user_id FROM akool_items ORDER BY prompt")
    assert prompts == [("a cat", None), ("a cat", None), ("a dog", "x"), ("a wolf", "x"),
                       ("new on top", None)]  # fmt: skip


async def test_claim_next_hands_each_item_to_one_worker(postgres_url: str, tmp_path: Path) -> None:
    """Five workers taking items as fast as they can: each item goes to exactly one of
    them, in the order they were put on the queue for each worker."""
    prompts = [{"prompt": f"prompt {n}", "follow_ups": ["U1"]} for n in range(30)]
    taken: dict[str, list[str]] = {}

    async def worker(name: str) -> None:
        async with PostgresQueue(postgres_url, worker_id=name) as queue:
            while (item := await queue.claim_next(lease=60)) is not None:
                taken.setdefault(name, []).append(item.request["prompt"] if item.request else "")
                assert item.follow_ups == (Button.U1,)
                assert item.state is None
                await queue.write(item.claim, [jp.CreateIntent(item.request or {}, ())])

    async with PostgresQueue(postgres_url) as queue:
        await queue.enqueue_file(write_lines(tmp_path / "p.jsonl", prompts))
    async with anyio.create_task_group() as tasks:
        for n in range(5):
            tasks.start_soon(worker, f"w{n}")
    everything = [prompt for got in taken.values() for prompt in got]
    assert sorted(everything) == sorted(p["prompt"] for p in prompts)
    for got in taken.values():
        assert got == sorted(got, key=lambda p: int(p.split()[1]))
    assert rows(postgres_url, "SELECT DISTINCT fence FROM akool_items") == [(1,)]


async def test_refused_items_go_back_on_the_queue_only_when_asked(
    postgres_url: str, tmp_path: Path
) -> None:
    """A create refused (provably never sent) leaves its item refused: no claim hands it
    out again; ``enqueue_file(retry_refused=True)`` puts back the refused items of that
    file, and no other (an uncertain one, one held by a live claim), and a claim then
    hands each out as new (its old intent forgotten: a death now is not uncertain)."""
    # p0 twice (a repeated id: one key, which one statement may upsert only once).
    source = write_lines(tmp_path / "p.jsonl", [{"id": f"p{n}", "prompt": f"a fox {n}"}
                                                for n in (0, 1, 2, 3, 0)])  # fmt: skip
    settled = {"p0": jp.CreateSettled((), "budget out of reach", uncertain=False),
               "p1": jp.CreateSettled((), "budget out of reach", uncertain=False),
               "p2": jp.CreateSettled((), "no answer", uncertain=True)}  # fmt: skip
    async with PostgresQueue(postgres_url) as queue:
        await queue.enqueue_file(source)
        held = None
        while (item := await queue.claim_next(lease=60)) is not None:
            user = item.user_id or ""
            if user in settled:
                intent = jp.CreateIntent(item.request or {}, ())
                await queue.write(item.claim, [intent, settled[user]])
                await queue.release(item.claim)
            else:
                held = item  # p3: claimed and kept
        assert held is not None
        intent = jp.CreateIntent(held.request or {}, ())
        refused = jp.CreateSettled((), "refused", uncertain=False)
        await queue.write(held.claim, [intent, refused])
        await queue.flush()
        assert await queue.claim_next(lease=60) is None  # never retried by itself
        again = await queue.enqueue_file(source)
        assert (again.added, again.already, again.retried) == (0, 5, 0)
        report = await queue.enqueue_file(source, retry_refused=True)
        assert (report.added, report.already, report.retried) == (0, 5, 2)
        states = dict(rows(postgres_url, "SELECT user_id, state FROM akool_items"))
        assert states == {"p0": None, "p1": None, "p2": "uncertain", "p3": "refused"}
        assert rows(postgres_url, "SELECT COUNT(*) FROM akool_items WHERE state IS NULL"
                    " AND (intent_at IS NOT NULL OR error IS NOT NULL)") == [(0,)]  # fmt: skip
        taken = [await queue.claim_next(lease=60) for _ in range(3)]
        assert sorted(item.user_id or "" for item in taken if item) == ["p0", "p1"]
        assert all(item.state is None for item in taken if item)


async def test_the_reaper_never_makes_a_create_that_may_have_left_pending(
    postgres_url: str, tmp_path: Path
) -> None:
    """Expired claims: one with nothing written goes back to pending, one with an intent
    and no ids becomes uncertain (and is never handed out again), one whose create
    answered goes back to be followed; the dead holder's writes are then refused."""
    clock = FakeClock()
    prompts = [{"prompt": "fresh"}, {"prompt": "sent"}, {"prompt": "answered"}]
    async with PostgresQueue(postgres_url, clock=clock) as dead:
        await dead.enqueue_file(write_lines(tmp_path / "p.jsonl", prompts))
        fresh, sent, answered = [await dead.claim_next(lease=10) for _ in prompts]
        assert fresh is not None
        assert sent is not None
        assert answered is not None
        await dead.write(sent.claim, [INTENT])
        await dead.write(answered.claim, [INTENT, jp.CreateSettled((job("j1"),))])
        assert await dead.claim_next(lease=10) is None
        assert await dead.reap() == Reaped(0, ())  # nothing expired yet
        clock.now += 11
        async with PostgresQueue(postgres_url, clock=clock) as reaper:
            assert await reaper.reap() == Reaped(pending=2, uncertain=(sent.claim.key,))
            assert await reaper.reap() == Reaped(0, ())
            handed = [await reaper.claim_next(lease=10) for _ in range(3)]
            status = await queue_status(reaper)
        with pytest.raises(ClaimLostError):
            await dead.write(sent.claim, [jp.CreateSettled((job("late"),))])
    assert [(i.line, i.state) for i in handed if i] == [(1, None), (3, "submitted")]
    assert handed[2] is None
    assert status.counts["uncertain"] == 1
    (error,) = rows(postgres_url, "SELECT error FROM akool_items WHERE state = 'uncertain'")
    assert error[0].startswith("the worker holding it stopped after recording its create's intent")


async def test_taking_over_an_intent_without_ids_makes_it_uncertain(postgres_url: str) -> None:
    """A claim taking over from a holder that recorded an intent and no ids finds the
    item uncertain: the next holder is told, through the state, not to send it again."""
    clock = FakeClock()
    async with PostgresQueue(postgres_url, clock=clock) as first:
        claim = await first.claim("item", lease=10)
        assert claim is not None
        await first.write(claim, [INTENT])
        clock.now += 11
        assert await first.claim("item", lease=10) is not None
        status = await queue_status(first)
    assert status.counts["uncertain"] == 1
    assert status.counts["submitting"] == 0


async def test_an_intent_is_committed_when_write_returns(postgres_url: str) -> None:
    """Another connection sees the intent (and the request as sent) the moment ``write``
    returns: the create may leave then."""
    async with PostgresQueue(postgres_url) as queue:
        claim = await queue.claim("item", lease=60)
        assert claim is not None
        await queue.write(claim, [INTENT])
        seen = rows(postgres_url, "SELECT state, request, follow_ups FROM akool_items")
    assert seen == [("submitting", '{"prompt": "a lighthouse"}', "U1")]


async def test_no_intent_is_recorded_under_a_lease_that_ran_out(postgres_url: str) -> None:
    """Past its lease, even before anyone took the item over, a worker may not record an
    intent (so it sends nothing), while the answer of what it already sent is recorded."""
    clock = FakeClock()
    async with PostgresQueue(postgres_url, clock=clock) as queue:
        claim = await queue.claim("item", lease=10)
        assert claim is not None
        await queue.write(claim, [INTENT])
        clock.now += 11
        with pytest.raises(ClaimLostError):
            await queue.write(claim, [jp.PressIntent("j1", Button.U1)])
        await queue.write(claim, [jp.CreateSettled((job("j1"),))])
        assert [j.job_id for j in (await queue.history(claim)).jobs] == ["j1"]
        renewed = await queue.claim("item", lease=10)  # nobody else came: it can be taken
    assert renewed is not None
    assert renewed.fence == claim.fence + 1


async def test_status_counts_credits_rate_and_workers(postgres_url: str, tmp_path: Path) -> None:
    """Counts by state, credits of every job, the request rate of the workers alive (from
    their heartbeats) and how many are alive."""
    clock = FakeClock()
    prompts = [{"prompt": f"p{n}"} for n in range(4)]
    async with PostgresQueue(postgres_url, clock=clock, worker_id="w1") as one:
        await one.enqueue_file(write_lines(tmp_path / "p.jsonl", prompts))
        await one.register_worker()
        item = await one.claim_next(lease=60)
        assert item is not None
        await one.write(item.claim, [INTENT, jp.CreateSettled((job("j", deduction_credit=4),))])
        done = job("j", ImageStatus.COMPLETED, image="https://cdn.test/j.png", deduction_credit=4)
        await one.write(item.claim, [jp.JobStatus(done), jp.TreeSettled("done", None)])
        await one.release(item.claim)
        assert await one.claim_next(lease=1000) is not None  # still held at the end
        async with PostgresQueue(postgres_url, clock=clock, worker_id="w2") as two:
            await two.register_worker()
            clock.now += 100  # w2 falls silent, w1 sends 50 requests in 10 s
            await one.heartbeat(0)
            clock.now += 10
            await one.heartbeat(50)
            status = await queue_status(one)
            await one.stop_worker()
            stopped = await queue_status(two)
    assert {k: v for k, v in status.counts.items() if v} == {"pending": 2, "claimed": 1, "done": 1}
    assert status.credits == 4
    assert status.request_rate == pytest.approx(5.0)
    assert (status.workers_alive, status.workers_seen) == (1, 2)
    assert status.sends_last_minute == 0  # the create was 110 s ago
    assert status.lines()[0] == "items: 4 (2 pending, 1 claimed, 1 done)"
    assert (stopped.workers_alive, stopped.request_rate) == (0, 0)


async def test_the_manifest_export_accounts_for_every_item(
    postgres_url: str, tmp_path: Path
) -> None:
    """One line per image (credits on a job's first), one per item without a job, with
    its state; written in one pass to the file."""
    clock = FakeClock()
    prompts = [{"id": "a", "prompt": "saved"}, {"id": "b", "prompt": "lost"}, {"prompt": "todo"}]
    grid = job("g", ImageStatus.COMPLETED, image="https://cdn.test/g.png",
               upscaled_urls=("https://cdn.test/1.png", "https://cdn.test/2.png"),
               deduction_credit=2)  # fmt: skip
    async with PostgresQueue(postgres_url, clock=clock, host="box-1") as queue:
        await queue.enqueue_file(write_lines(tmp_path / "p.jsonl", prompts))
        first = await queue.claim_next(lease=60)
        second = await queue.claim_next(lease=60)
        assert first is not None
        assert second is not None
        listed = (jp.ImageToSave(1, "image", grid.upscaled_urls[0]),
                  jp.ImageToSave(2, "image", grid.upscaled_urls[1]))  # fmt: skip
        await queue.write(first.claim, [INTENT, jp.CreateSettled((job("g"),))])
        clock.now += 5
        await queue.write(first.claim, [
            jp.JobStatus(grid), jp.ImagesListed("g", listed),
            jp.ImageSaved("g", 1, "/out/g_1.png", "aa" * 32, 10),
            jp.ImageFailed("g", 2, "DownloadError: 404"), jp.TreeSettled("failed", "404"),
        ])  # fmt: skip
        await queue.write(second.claim, [INTENT, jp.CreateSettled((), "ReadTimeout", True)])
        count = await export_manifest(queue, tmp_path / "manifest.jsonl")
    lines = [json.loads(t) for t in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert count == len(lines) == 4
    saved, failed, uncertain, todo = lines
    assert (saved["id"], saved["index"], saved["ok"], saved["path"]) == (
        "a",
        1,
        True,
        "/out/g_1.png",
    )
    assert (saved["host"], saved["credits"], saved["seconds"], saved["state"]) == (
        "box-1",
        2,
        5.0,
        "failed",
    )
    assert (failed["index"], failed["ok"], failed["error"], failed["credits"]) == (
        2,
        False,
        "DownloadError: 404",
        None,
    )
    assert (uncertain["id"], uncertain["job_id"], uncertain["state"]) == ("b", None, "uncertain")
    assert uncertain["error"] == "ReadTimeout"
    assert (todo["prompt"], todo["state"], todo["line"]) == ("todo", "pending", 3)


async def test_dropped_connections_are_replaced_without_losing_a_write(
    postgres_url: str,
) -> None:
    """The server drops every connection of the queue (a restart, a proxy's timeout)
    between two writes: the next write, claim and read go through on new connections,
    and what was committed before is there."""
    async with PostgresQueue(postgres_url) as queue:
        claim = await queue.claim("item", lease=60)
        assert claim is not None
        await queue.write(claim, [INTENT])
        schema = postgres_url.rsplit("application_name=", 1)[1]
        dropped = rows(postgres_url.replace(schema, f"{schema}_killer"),
                       "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                       f" WHERE application_name = '{schema}'")  # fmt: skip
        assert dropped
        assert all(ok for (ok,) in dropped)
        await queue.write(claim, [jp.CreateSettled((job("j1"),))])
        assert await queue.claim("other", lease=60) is not None
        assert [j.job_id for j in (await queue.history(claim)).jobs] == ["j1"]


def _chain(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    link: BaseException | None = error
    while link is not None and link not in found:
        found.append(link)
        link = link.__cause__ or link.__context__
    return found


async def test_the_password_is_never_shown(postgres_url: str) -> None:
    """Not in reprs, not in a connection failure's message nor anywhere in its chain
    (attributes included): the URL is shown with ``***``."""
    secret = "s3cr3t-pass-word"
    url = f"postgresql://akool:{secret}@127.0.0.1:{free_port()}/queue?password={secret}"
    assert secret not in redact_url(url)
    assert redact_url(url).startswith("postgresql://akool:***@127.0.0.1:")
    journal = PostgresJournal(url)
    assert secret not in repr(journal)
    with pytest.raises(QueueUnavailableError) as raised:
        async with journal:
            pass
    for link in _chain(raised.value):
        assert secret not in str(link)
        assert secret not in repr(vars(link))
    assert "akool:***@127.0.0.1" in str(raised.value)
    wrong = postgres_url.replace("postgresql://postgres@", f"postgresql://nobody:{secret}@")
    with pytest.raises(QueueError) as refused:
        async with PostgresJournal(wrong):
            pass
    assert all(secret not in str(link) for link in _chain(refused.value))


async def test_bad_arguments_are_refused_before_connecting() -> None:
    """A URL that is not PostgreSQL, and a lease that is not positive, are usage errors."""
    with pytest.raises(ConfigurationError, match="not a PostgreSQL URL"):
        PostgresJournal("redis://localhost:6379/0")
    journal = PostgresJournal("postgresql://127.0.0.1:1/none")
    with pytest.raises(ValidationError, match="lease"):
        await journal.claim("x", lease=0)


def test_claim_and_image_records_are_frozen_values() -> None:
    """Claims are values: a renewal is a new one (nothing shared to change under a task)."""
    claim = jp.Claim("k", 1, 2.0)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        claim.fence = 2  # type: ignore[misc]
    assert ImageJob(id="x", status=ImageStatus.QUEUEING).is_terminal is False
