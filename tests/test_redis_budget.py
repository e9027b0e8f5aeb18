"""The shared account budget on a real Redis: the GCRA across processes, job leases that
expire, a throttle one client meets slowing the others, a Redis restart mid-run, failing
closed, and no password anywhere it could leak."""

from __future__ import annotations

import contextlib
import gc
import json
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from akool_async import (
    AkoolClient,
    ConfigurationError,
    InvalidSettingError,
    RateLimitedError,
    RetryPolicy,
    SharedBudgetUnavailableError,
    SubmissionUncertainError,
    TooManyRequestsError,
    ValidationError,
)
from akool_async.emulator import Emulator, Faults
from akool_async.redis_budget import RedisBudget, shown_url

from ._servers import RedisServer, free_port, server_missing
from .emulated import config, wired

WORKER = Path(__file__).with_name("_budget_worker.py")
ONCE = RetryPolicy(attempts=1, wait=False)
PASSWORD = "s3cret-Pa55word"


# coredis 6.9 closes a connection's memory streams only once it connected: each failed
# connect leaves four to the garbage collector, which warns. Tests that connect to a Redis
# that is down ignore that warning and collect them before they end (not in a later test).
LEAKS_ON_FAILED_CONNECT = pytest.mark.filterwarnings(
    "ignore:Unclosed <MemoryObject:ResourceWarning"
)


@pytest.fixture
def failed_connects() -> Iterator[None]:
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def contradictions(asks: list[tuple[bool, float]], rate: float, burst: int) -> list[str]:
    """The asks whose outcome the GCRA would not have given, replayed on the server's times
    (a cold key: the first ask sets the start). Asks within a microsecond of their slot
    follow what happened (the server's clock has that resolution)."""
    interval = 1 / rate
    ordered = sorted(asks, key=lambda ask: (ask[1], not ask[0]))
    tat = ordered[0][1]
    wrong = []
    for admitted, now in ordered:
        arrival = max(tat, now)
        allowed = arrival - (burst - 1) * interval
        if abs(allowed - now) > 1e-5 and (allowed <= now) != admitted:
            wrong.append(f"at {now:.6f}: admitted={admitted}, slot at {allowed:.6f}")
        if admitted:
            tat = max(arrival, allowed) + interval
    return wrong


@pytest.mark.long
def test_processes_share_one_gcra_on_the_servers_clock(redis_url: str, account: str) -> None:
    """Four processes (two on asyncio, two on trio) ask one account's budget (50/s, burst
    5) as fast as they can for 2 s: every answer is the GCRA's on Redis's clock, so over
    the run at most burst + rate x elapsed went, however the processes interleaved."""
    rate, burst = 50.0, 5
    with contextlib.ExitStack() as stack:  # each worker's pipes closed, each one waited for
        workers = [
            stack.enter_context(
                subprocess.Popen(
                    [sys.executable, str(WORKER), "ask", redis_url, account, backend, "2"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
            )
            for backend in ("asyncio", "trio", "asyncio", "trio")
        ]
        pipes = [(worker.stdin, worker.stdout) for worker in workers]
        for _, out in pipes:  # all connected: start them together
            assert out is not None
            assert out.readline().strip() == b"ready"
        for into, _ in pipes:
            assert into is not None
            into.write(b"go\n")
            into.close()
        asks = [
            (bool(admitted), float(at))
            for _, out in pipes
            for admitted, at in json.loads(out.read())  # type: ignore[union-attr]
        ]
    assert [worker.returncode for worker in workers] == [0] * 4
    admitted = sorted(at for ok, at in asks if ok)
    start = min(at for _, at in asks)
    elapsed = max(at for _, at in asks) - start
    first_2s = sum(at < start + 2 for at in admitted)
    print(f"\n{len(asks)} asks, {len(admitted)} admitted over {elapsed:.3f} s of server time "
          f"(bound burst + rate x elapsed = {burst + rate * elapsed:.1f}); "
          f"{first_2s} in the first 2 s (bound 105)")  # fmt: skip
    assert first_2s <= burst + rate * 2
    assert contradictions(asks, rate, burst) == []
    assert len(admitted) <= burst + rate * elapsed + 1
    assert len(admitted) < len(asks)  # they asked faster than the budget: some were refused
    for k, at in enumerate(admitted):  # the k-th admission: not before burst, then the rate
        assert at >= start + (k + 1 - burst) / rate - 1e-3  # sums of 1/rate drift by µs


async def test_a_cold_budget_admits_a_burst_then_refuses(redis_url: str, account: str) -> None:
    """A cold account lets ``burst`` go at once; the next slot is a whole interval away
    and is refused (nothing reserved) by an ask that will not wait."""
    async with RedisBudget.from_url(redis_url, account=account, rate=0.01, burst=3) as budget:
        asks = [await budget.try_acquire() for _ in range(5)]
        assert [ask.admitted for ask in asks] == [True, True, True, False, False]
        assert asks[3].wait > 90
        status = await budget.status()
        assert (status.admitted, status.jobs_in_flight, status.throttles) == (3, 0, 0)


async def test_every_client_request_takes_a_shared_slot(redis_url: str, account: str) -> None:
    """Requests sent through an ``AkoolClient`` with the budget are counted on Redis."""
    async with RedisBudget.from_url(redis_url, account=account, rate=100, burst=10) as budget:
        emulator = Emulator(config())
        async with wired("in-process", emulator, rate_limit=50, shared_budget=budget) as client:
            for _ in range(3):
                await client.credit_info()
            await client.create_by_source_prompt(prompt="a lighthouse")
            assert client.requests_sent == 4
        assert (await budget.status()).admitted == 4


@pytest.mark.parametrize(
    ("fault", "paused"), [("code_1005", (20, 30)), ("http_429", (40, 45))]
)  # fmt: skip
async def test_a_throttle_one_client_meets_slows_every_worker(
    redis_url: str, account: str, fault: str, paused: tuple[float, float]
) -> None:
    """Client A is throttled (1005: no Retry-After, the budget's ``pause``; 429: the
    server's Retry-After); worker B, on its own connection, sees the rate halved and
    waits out the pause before its next request."""
    emulator = Emulator(config(faults=Faults(**{fault: 1.0}, retry_after=45)))
    options = {"account": account, "rate": 40, "burst": 4, "pause": 30, "recovery": 86_400}
    async with (
        RedisBudget.from_url(redis_url, **options) as budget_a,
        RedisBudget.from_url(redis_url, **options) as budget_b,
    ):
        async with wired(
            "in-process", emulator, rate_limit=40, shared_budget=budget_a, retry=ONCE
        ) as client:
            with pytest.raises(RateLimitedError if fault == "code_1005" else TooManyRequestsError):
                await client.credit_info()
        status = await budget_b.status()
        assert status.throttles == 1
        assert status.rate == pytest.approx(20, rel=0.01)
        assert paused[0] < status.paused_for <= paused[1]
        ask = await budget_b.try_acquire()
        assert not ask.admitted
        assert ask.wait > paused[0]


@LEAKS_ON_FAILED_CONNECT
@pytest.mark.usefixtures("failed_connects")
async def test_it_fails_closed_when_redis_is_unreachable(
    account: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No Redis: the request is not sent, and after the bound a clear error says so; no
    password in it, its chain, or the budget's repr. A throttle that cannot be shared is
    logged (the caller's own error stands)."""
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    emulator = Emulator(config())
    budget = RedisBudget.from_url(url, account=account, unavailable_timeout=0.2)
    assert PASSWORD not in repr(budget)
    assert "redis://:***@127.0.0.1" in repr(budget)
    async with budget, wired("in-process", emulator, rate_limit=10, shared_budget=budget) as c:
        with pytest.raises(SharedBudgetUnavailableError) as caught:
            await c.create_by_source_prompt(prompt="a lighthouse")
        await budget.throttled(5.0)
    assert not isinstance(caught.value, SubmissionUncertainError)
    assert emulator.counters.jobs_created == 0
    assert "unreachable" in str(caught.value)
    assert "not sent" in str(caught.value)
    assert_no_password(caught.value)
    (warning,) = [r for r in caplog.records if r.name == "akool_async.redis_budget"]
    assert "could not be shared" in warning.getMessage()
    assert PASSWORD not in warning.getMessage()


def assert_no_password(error: BaseException) -> None:
    seen: BaseException | None = error
    while seen is not None:
        assert PASSWORD not in str(seen)
        assert PASSWORD not in repr(seen)
        assert PASSWORD not in repr(vars(seen))
        seen = seen.__cause__ or seen.__context__


async def test_a_wrong_password_is_refused_without_showing_it(own_redis: RedisServer) -> None:
    """A server that wants a password: the right one works, a wrong one is a clear error
    at once (no waiting out the bound), and neither is ever shown."""
    own_redis.stop()
    own_redis.command += ["--requirepass", PASSWORD]
    own_redis.start()
    async with RedisBudget.from_url(own_redis.url(PASSWORD), account="a") as budget:
        assert (await budget.try_acquire()).admitted
        assert PASSWORD not in repr(budget)
    wrong = "not-" + PASSWORD
    async with RedisBudget.from_url(own_redis.url(wrong), account="a") as budget:
        with pytest.raises(SharedBudgetUnavailableError) as caught:
            await budget.try_acquire()
    assert "refused" in str(caught.value)
    assert wrong not in str(caught.value)
    assert_no_password(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://:{PASSWORD}@h:6379/0", "redis://:***@h:6379/0"),
        (f"rediss://user:{PASSWORD}@h/1", "rediss://user:***@h/1"),
        (f"unix://:{PASSWORD}@/run/redis.sock?db=2", "unix://:***@/run/redis.sock?db=2"),
        ("redis://h:6379/0", "redis://h:6379/0"),
    ],
)
def test_urls_are_shown_without_their_password(url: str, shown: str) -> None:
    assert shown_url(url) == shown
    assert shown in repr(RedisBudget.from_url(url))


def test_a_missing_server_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        server_missing("redis-server is not installed")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="redis-server is not installed"):
        server_missing("redis-server is not installed")


def test_the_core_does_not_import_the_extra() -> None:
    """``import akool_async`` (the client included) loads no Redis library."""
    code = "import sys, akool_async; print('coredis' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)  # fmt: skip
    assert result.stdout.strip() == "False"


def test_bad_settings_are_refused_before_anything_connects() -> None:
    with pytest.raises(InvalidSettingError) as caught:
        RedisBudget.from_url(f"http://:{PASSWORD}@host/0")
    assert PASSWORD not in str(caught.value)
    assert "redis://" in str(caught.value)
    budget = RedisBudget.from_url("redis://127.0.0.1:1/0")
    with pytest.raises(InvalidSettingError, match="rate_limit"):
        AkoolClient(api_key="k", rate_limit=None, shared_budget=budget)
    with pytest.raises(InvalidSettingError, match="shared_budget"):
        AkoolClient(api_key="k", shared_budget=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="async with"):
        anyio.run(budget.try_acquire)
    with pytest.raises(ValidationError, match="max_wait"):
        anyio.run(budget.try_acquire, -1)
    with pytest.raises(InvalidSettingError, match="url") as unreadable:
        RedisBudget.from_url(f"redis://:{PASSWORD}@host:notaport/0")
    assert_no_password(unreadable.value)
    for field, value in [("account", ""), ("account", "a{b}"), ("rate", 0), ("max_jobs", 0)]:
        with pytest.raises(InvalidSettingError, match=field):
            RedisBudget.from_url("redis://127.0.0.1:1/0", **{field: value})


async def test_job_leases_cap_the_jobs_in_flight(redis_url: str, account: str) -> None:
    """Two workers, an account cap of 2: while A holds both, B waits; when A lets go,
    B gets its job."""
    options = {"account": account, "max_jobs": 2}
    b_holds = anyio.Event()
    async with (
        RedisBudget.from_url(redis_url, **options) as worker_a,
        RedisBudget.from_url(redis_url, **options) as worker_b,
    ):

        async def b_job() -> None:
            async with worker_b.job_lease():
                b_holds.set()
                assert (await worker_b.status()).jobs_in_flight == 1

        async with anyio.create_task_group() as tasks:
            async with worker_a.job_lease(jobs=2):
                assert (await worker_b.status()).jobs_in_flight == 2
                tasks.start_soon(b_job)
                await anyio.sleep(0.6)  # B asks (polls: half a second) and must be refused
                assert not b_holds.is_set()
            await b_holds.wait()
        assert (await worker_a.status()).jobs_in_flight == 0


def test_a_dead_holders_lease_expires(redis_url: str, account: str) -> None:
    """A worker holding the account's one job is killed: its lease expires (it no longer
    renews), and another worker gets the job."""
    with subprocess.Popen(
        [sys.executable, str(WORKER), "lease", redis_url, account, "trio", "1.5"],
        stdout=subprocess.PIPE,
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == b"held"
        finally:
            holder.kill()

    async def take_over() -> int:
        async with (
            RedisBudget.from_url(redis_url, account=account, max_jobs=1) as budget,
            budget.job_lease(),
        ):
            return (await budget.status()).jobs_in_flight

    assert anyio.run(take_over) == 1


@pytest.mark.long
@LEAKS_ON_FAILED_CONNECT
@pytest.mark.usefixtures("failed_connects")
async def test_a_redis_restart_mid_run_lets_no_burst_through(own_redis: RedisServer) -> None:
    """Redis restarts (its state gone) while workers run: an ask made during the outage
    waits for the server and is then answered; a worker that had seen the budget re-makes
    it empty, so no second burst goes; a lease held across the restart is put back by its
    holder's renewal, and no other worker takes the account's one job meanwhile."""
    options = {"account": "acme", "rate": 0.5, "burst": 3, "max_jobs": 1, "lease_ttl": 6,
               "max_wait": 30}  # fmt: skip
    b_holds = anyio.Event()
    async with (
        RedisBudget.from_url(own_redis.url(), **options) as worker_a,
        RedisBudget.from_url(own_redis.url(), **options) as worker_b,
    ):
        assert [(await worker_a.try_acquire()).admitted for _ in range(4)] == [True] * 3 + [False]

        async def b_job() -> None:
            async with worker_b.job_lease():
                b_holds.set()

        async with anyio.create_task_group() as tasks:
            async with worker_a.job_lease():
                own_redis.stop()
                async with anyio.create_task_group() as during:
                    during.start_soon(restart_soon, own_redis)
                    ask = await worker_a.try_acquire()  # waits for the server, then answers
                assert not ask.admitted  # re-made empty: slots reserved before may still go
                assert ask.wait > 20  # ~max_wait since whichever call of A's re-made it
                tasks.start_soon(b_job)
                with anyio.fail_after(30):  # A's renewal (every 2 s) puts its lease back
                    while (await worker_b.status()).jobs_in_flight != 1:  # noqa: ASYNC110
                        await anyio.sleep(0.1)
                await anyio.sleep(0.6)  # B asks (polls: half a second) and must be refused
                assert not b_holds.is_set()
            await b_holds.wait()
    async with RedisBudget.from_url(own_redis.url(), **{**options, "account": "new"}) as fresh:
        # A worker that never saw a state cannot tell a restart from a new account.
        assert [(await fresh.try_acquire()).admitted for _ in range(4)] == [True] * 3 + [False]


async def restart_soon(server: RedisServer) -> None:
    await anyio.sleep(0.3)  # the ask above is made while the server is down
    await anyio.to_thread.run_sync(server.start)
