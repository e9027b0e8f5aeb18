"""An account's request budget shared by every worker on every machine, kept in Redis
(the ``redis`` extra: ``pip install 'akool-async[redis]'``, coredis 6, asyncio and trio).

    async with RedisBudget.from_url("redis://:pw@host:6379/0", account="acme",
                                    rate=20, burst=10, max_jobs=4) as budget:
        async with AkoolClient(shared_budget=budget) as client:
            async with budget.job_lease():   # one of the account's 4 jobs in flight
                ...

Three parts, each one Lua script on the server's clock (``_redis_lua``): requests per
second (GCRA), jobs in flight (leases that expire unless renewed: a worker that dies frees
its share within ``lease_ttl``), and a slowdown every worker sees when any one is
throttled (1005 or HTTP 429). The client's in-process limiter stays the front gate.

Redis unreachable: fail closed. A call is tried again with growing pauses; after
``unavailable_timeout`` seconds ``SharedBudgetUnavailableError`` is raised and the request
is not sent. Never unbudgeted requests. A Redis restart loses the state: a worker that had
seen it re-makes it empty (no burst goes through twice) and new leases wait one lease time
while holders renew theirs. The URL's password is never shown (repr, errors, logs).
"""

from __future__ import annotations

import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

import anyio
import attrs

try:
    import coredis
    import coredis.exceptions
except ImportError as missing:  # pragma: no cover - the extra is installed with [test]
    raise ImportError(
        "akool_async.redis_budget needs the redis extra: pip install 'akool-async[redis]'"
    ) from missing

from . import _redis_lua as lua
from ._arguments import check_count, check_number, check_rate
from ._defaults import (
    DEFAULT_BURST,
    DEFAULT_RATE,
    MAX_RETRY_AFTER,
    REDIS_CONNECT_TIMEOUT,
    REDIS_STREAM_TIMEOUT,
    SHARED_LEASE_TTL,
    SHARED_MAX_WAIT,
    SHARED_MIN_FRACTION,
    SHARED_PAUSE,
    SHARED_RECOVERY,
    SHARED_UNAVAILABLE_TIMEOUT,
)
from ._exceptions import (
    ConfigurationError,
    InvalidSettingError,
    SharedBudgetUnavailableError,
    ValidationError,
    redact,
)

__all__ = ["Admission", "BudgetStatus", "RedisBudget", "shown_url"]

log = logging.getLogger("akool_async.redis_budget")  # messages as text: an error's frames
# (and the connections in them) are not kept alive by the records of a log handler
_SCHEMES = ("redis", "rediss", "unix")
_UNREACHABLE = (coredis.exceptions.ConnectionError, TimeoutError, OSError)
_FIRST_PAUSE = 0.05  # seconds before trying an unreachable Redis again; doubles up to:
_MAX_PAUSE = 2.0
_LEASE_POLL = 0.5  # at most this long between asks for a lease while the cap is full
_STATE_TTL_MS = 24 * 3600 * 1000  # an idle account's state is dropped after a day


def shown_url(url: str) -> str:
    """``url`` with its password (if any) replaced: what reprs, errors and logs show."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return "<an unreadable URL, not shown>"


def _url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def _check_name(field: str, value: object) -> str:
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= 200
        or not value.isprintable()
        or any(c in value for c in "{} ")
    ):
        raise InvalidSettingError(field, value, "1-200 printable characters, no spaces or braces")
    return value


@attrs.frozen
class Admission:
    """One ask of the GCRA: ``admitted`` (a slot was reserved, due in ``wait`` seconds) or
    not (its slot would be ``wait`` seconds away); ``server_time`` of the ask (Redis's)."""

    admitted: bool
    wait: float
    server_time: float


@attrs.frozen
class BudgetStatus:
    """The account's budget as the server sees it now (``RedisBudget.status``)."""

    rate: float  # requests per second now (less than configured while recovering)
    configured_rate: float
    throttles: int  # throttle episodes since the state was made
    admitted: int  # requests admitted since the state was made
    jobs_in_flight: int  # live leases
    max_jobs: int | None
    paused_for: float  # seconds until the not-before time of a throttle


class RedisBudget:
    """The shared budget of one Akool account (``account``: a name of your choosing; every
    worker of the account uses the same). Open it with ``async with`` (it holds Redis
    connections and renews this worker's leases in the background)."""

    def __init__(
        self,
        redis: coredis.Redis[bytes],
        *,
        account: str = "default",
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        max_jobs: int | None = None,
        lease_ttl: float = SHARED_LEASE_TTL,
        max_wait: float | None = None,
        unavailable_timeout: float = SHARED_UNAVAILABLE_TIMEOUT,
        pause: float = SHARED_PAUSE,
        min_fraction: float = SHARED_MIN_FRACTION,
        recovery: float = SHARED_RECOVERY,
        max_pause: float = MAX_RETRY_AFTER,
        key_prefix: str = "akool",
        url: str | None = None,
    ) -> None:
        self.account = _check_name("account", account)
        prefix = _check_name("key_prefix", key_prefix)
        self.rate = check_rate("rate", rate)
        self.burst = check_count("burst", burst, maximum=100_000)
        self.max_jobs = None if max_jobs is None else check_count("max_jobs", max_jobs)
        self.lease_ttl = check_number("lease_ttl", lease_ttl, minimum=0.1, maximum=86_400)
        # Slots are reserved at most this far ahead: what a worker that dies holds.
        self.max_wait = (
            min(SHARED_MAX_WAIT, max(self.burst / self.rate, 1 / self.rate))
            if max_wait is None
            else check_number("max_wait", max_wait, maximum=60, allow_minimum=True)
        )
        self.unavailable_timeout = check_number(
            "unavailable_timeout", unavailable_timeout, maximum=3600, allow_minimum=True
        )
        self.pause = check_number("pause", pause, maximum=3600, allow_minimum=True)
        self._tuning = (
            check_number("min_fraction", min_fraction, maximum=1),
            check_number("recovery", recovery, maximum=86_400),
            check_number("max_pause", max_pause, maximum=3600, allow_minimum=True),
        )
        # One hash tag: both keys in one cluster slot, as a script's keys must be.
        self._keys = (f"{prefix}:{{{account}}}:budget", f"{prefix}:{{{account}}}:leases")
        self._redis = redis
        self._url = shown_url(url) if url is not None else repr(redis)
        self._secrets = tuple(p for p in (url and _url_password(url),) if p)
        self._scripts = {
            name: redis.register_script(getattr(lua, name))
            for name in ("ACQUIRE", "THROTTLED", "TAKE_LEASE", "RENEW_LEASES", "RELEASE_LEASE",
                         "STATUS")
        }  # fmt: skip
        self._known = False  # whether this worker has seen the account's state
        self._held: dict[str, tuple[str, ...]] = {}  # lease id -> its members
        self._stack: contextlib.AsyncExitStack | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        connect_timeout: float = REDIS_CONNECT_TIMEOUT,
        stream_timeout: float = REDIS_STREAM_TIMEOUT,
        **options: Any,
    ) -> RedisBudget:
        """The budget on the Redis at ``url`` (``redis://[user:password@]host:port/db``,
        ``rediss://`` for TLS, ``unix://``); ``options`` are ``RedisBudget``'s
        (``account``, ``rate``, ``burst``, ``max_jobs``...). Nothing is connected yet."""
        if not isinstance(url, str) or urlsplit_scheme(url) not in _SCHEMES:
            shown = shown_url(url) if isinstance(url, str) else url
            raise InvalidSettingError("url", shown, "a redis://, rediss:// or unix:// URL")
        for name, value in (("connect_timeout", connect_timeout),
                            ("stream_timeout", stream_timeout)):  # fmt: skip
            check_number(name, value, maximum=600)
        try:
            redis = coredis.Redis.from_url(
                url, connect_timeout=connect_timeout, stream_timeout=stream_timeout
            )
        except (ValueError, TypeError) as exc:
            text = redact(str(exc), tuple(p for p in (_url_password(url),) if p))
            unreadable = InvalidSettingError("url", shown_url(url), f"a Redis URL ({text})")
        else:
            return cls(redis, url=url, **options)
        raise unreadable  # out of the except block: the parser's error (the URL) not chained

    def __repr__(self) -> str:
        jobs = "" if self.max_jobs is None else f" max_jobs={self.max_jobs}"
        return (
            f"<RedisBudget {self._url} account={self.account!r} rate={self.rate:g}/s "
            f"burst={self.burst}{jobs}>"
        )

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self._redis)
            tasks = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tasks.cancel_scope.cancel)
            tasks.start_soon(self._renew_leases)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    # -- requests per second -------------------------------------------------------------

    async def acquire(self) -> None:
        """Wait until the account's budget lets one request go (``SharedBudget``)."""
        while True:
            admission = await self.try_acquire(self.max_wait)
            if admission.admitted:
                if admission.wait > 0:
                    await anyio.sleep(admission.wait)
                return
            # Ask again when the slot would be within reach (others may take it first).
            await anyio.sleep(max(admission.wait - self.max_wait, 0.001) * random.uniform(1, 1.1))  # noqa: S311

    async def try_acquire(self, max_wait: float = 0.0) -> Admission:
        """Reserve a slot if it is due within ``max_wait`` seconds; else reserve nothing.
        Either way, say how far away it is (``wait``)."""
        max_wait = check_number(
            "max_wait", max_wait, maximum=60, allow_minimum=True, error=ValidationError
        )
        admitted, wait, now, _ = await self._run("ACQUIRE", str(max_wait))
        return Admission(bool(admitted), float(wait), float(now))

    async def throttled(self, retry_after: float | None = None) -> None:
        """Any worker met a throttle: halve the account's rate (once per episode) and hold
        every worker until the server's Retry-After, else ``pause``, has passed. Best effort
        (``SharedBudget``): an unreachable Redis is logged, not raised."""
        after = "" if retry_after is None else str(float(retry_after))
        try:
            await self._run("THROTTLED", after, str(self.pause), patience=0.0)
        except SharedBudgetUnavailableError as exc:
            log.warning("a throttle could not be shared with the other workers: %s", str(exc))

    # -- jobs in flight ------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def job_lease(self, jobs: int = 1) -> AsyncIterator[None]:
        """Hold ``jobs`` of the account's ``max_jobs`` in flight while the block runs,
        waiting for them first. Renewed in the background; if this process dies, they
        expire after ``lease_ttl``. Without ``max_jobs``, no limit (nothing is held)."""
        if self.max_jobs is None:
            yield
            return
        jobs = check_count("jobs", jobs, maximum=self.max_jobs)
        lease = uuid.uuid4().hex
        members = tuple(f"{lease}:{i}" for i in range(jobs))
        while True:
            taken, wait, _ = await self._run("TAKE_LEASE", str(self.max_jobs), *members)
            if taken:
                break
            await anyio.sleep(min(max(float(wait), 0.01), _LEASE_POLL) * random.uniform(0.8, 1.2))  # noqa: S311
        self._held[lease] = members
        try:
            yield
        finally:
            del self._held[lease]
            with anyio.CancelScope(shield=True), anyio.move_on_after(self.unavailable_timeout):
                try:
                    await self._run("RELEASE_LEASE", *members, patience=1.0)
                except SharedBudgetUnavailableError as exc:
                    log.warning(
                        "a job lease will expire by itself in %g s: %s", self.lease_ttl, str(exc)
                    )

    async def _renew_leases(self) -> None:
        """Keep this worker's leases alive (and put them back after a Redis restart)."""
        while True:
            await anyio.sleep(self.lease_ttl / 3)
            members = [m for held in self._held.values() for m in held]
            if members:
                try:
                    await self._run("RENEW_LEASES", *members, patience=self.lease_ttl / 3)
                except SharedBudgetUnavailableError as exc:
                    log.warning("job leases could not be renewed: %s", str(exc))

    async def status(self) -> BudgetStatus:
        """The account's budget now: rate, throttles, admitted requests, jobs in flight."""
        rate, throttles, admitted, held, paused, _ = await self._run("STATUS")
        return BudgetStatus(
            float(rate), self.rate, int(throttles), int(admitted), int(held), self.max_jobs,
            float(paused),
        )  # fmt: skip

    # -- calls ---------------------------------------------------------------------------

    async def _run(self, script: str, *args: str, patience: float | None = None) -> list[Any]:
        """Run one script, trying again with growing pauses while Redis is unreachable, for
        ``patience`` seconds (``unavailable_timeout``); then fail closed."""
        if self._stack is None:
            raise ConfigurationError(
                "open the RedisBudget first: `async with budget:` around the clients using it"
            )
        min_fraction, recovery, max_pause = self._tuning
        common = (self.rate, self.burst, self.max_wait, int(self._known), self.lease_ttl,
                  min_fraction, recovery, max_pause, _STATE_TTL_MS)  # fmt: skip
        argv = [*(str(v) for v in common), *args]
        patience = self.unavailable_timeout if patience is None else patience
        deadline = anyio.current_time() + patience
        pause = _FIRST_PAUSE
        while True:
            failure: BaseException | None = None
            try:
                result: Any = await self._scripts[script](keys=self._keys, args=argv)
            except _UNREACHABLE as exc:
                failure = exc
            except coredis.exceptions.RedisError as exc:  # refused: auth, a script error...
                error = self._unavailable(exc, "refused the command")
            else:
                self._known = True
                return list(result)
            if failure is None:
                raise error  # out of the except block: the library's error is not chained
            left = deadline - anyio.current_time()
            if left <= 0:
                raise self._unavailable(failure, f"was unreachable for {patience:g} s")
            await anyio.sleep(min(pause, left) * random.uniform(0.5, 1.0))  # noqa: S311
            pause = min(pause * 2, _MAX_PAUSE)

    def _unavailable(self, exc: BaseException, what: str) -> SharedBudgetUnavailableError:
        text = redact(str(exc), self._secrets)[:300]
        error = SharedBudgetUnavailableError(
            f"the shared rate budget at {self._url} {what} ({type(exc).__name__}: {text}); "
            "the request was not sent"
        )
        return error


def urlsplit_scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme
    except ValueError:
        return ""
