"""PostgreSQL connections for the queue: psycopg's synchronous API, run in worker threads.

psycopg's async API (like asyncpg) runs on asyncio only; its synchronous one inside
``anyio.to_thread.run_sync`` works on asyncio and trio alike. A ``CapacityLimiter`` bounds
the threads, and so the connections, one per thread at a time.

The URL's password never leaves this module: ``redact_url`` is what reprs, logs and
errors show, and a driver error is never chained as it is (its ``pgconn`` holds the
connection string), only as a ``CauseSummary`` with the password taken out.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from .._defaults import QUEUE_CONNECT_TIMEOUT as CONNECT_TIMEOUT
from .._defaults import QUEUE_CONNECTIONS
from .._exceptions import AkoolError, ConfigurationError
from .._redaction import CauseSummary

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")
SCHEMES = ("postgresql", "postgres")


class QueueError(AkoolError):
    """The queue's database failed or refused a statement (the message says which)."""


class QueueUnavailableError(QueueError):
    """The queue's database cannot be reached (or refused the connection)."""


def password_of(url: str) -> str | None:
    return urllib.parse.urlsplit(url).password


def redact_url(url: str) -> str:
    """``url`` with its password (and any ``password=`` query value) shown as ``***``."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        name = user.split(":", 1)[0]
        netloc = f"{name}:***@{host}"
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    shown = [(k, "***" if k == "password" else v) for k, v in query]
    return urllib.parse.urlunsplit(
        (
            parts.scheme,
            netloc,
            parts.path,
            urllib.parse.urlencode(shown, safe="*", quote_via=urllib.parse.quote),
            "",
        )
    )


def check_url(url: str, option: str = "queue URL") -> str:
    """A ``postgresql://`` URL, or a ``ConfigurationError`` naming what is allowed."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"{option} {redact_url(url)!r} is not a PostgreSQL URL:"
            " expected postgresql://user:password@host:port/database"
        )
    return url


def import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConfigurationError(
            "the PostgreSQL queue needs the postgres extra: pip install 'akool-async[postgres]'"
        ) from None
    return psycopg


def _secrets(url: str) -> tuple[str, ...]:
    found = [password_of(url) or ""]
    found += [v for k, v in urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)
              if k == "password"]  # fmt: skip
    return tuple(s for s in found if s)


class Database:
    """Up to ``connections`` psycopg connections to ``url``, each used by one thread at a
    time; ``run(function)`` calls ``function(connection)`` in a worker thread."""

    def __init__(self, url: str, *, connections: int = QUEUE_CONNECTIONS) -> None:
        self._psycopg = import_psycopg()
        self._url = check_url(url)
        self._secrets = _secrets(url)
        # A queue that does not answer fails in seconds, not never (unless the URL says).
        given = self._psycopg.conninfo.conninfo_to_dict(url)
        self._options = {} if "connect_timeout" in given else {"connect_timeout": CONNECT_TIMEOUT}
        self.shown_url = redact_url(url)
        self.limiter = anyio.CapacityLimiter(connections)
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"<Database {self.shown_url}>"

    async def run(self, function: Callable[[psycopg.Connection[Any]], T]) -> T:
        return await anyio.to_thread.run_sync(self.call, function, limiter=self.limiter)

    def call(self, function: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``function(connection)`` in this thread; a driver error becomes a ``QueueError``
        without the driver's exception attached (it may hold the connection string).

        A connection kept from earlier that turns out dropped (a server restart, a proxy's
        timeout) is replaced, the others kept idle with it are dropped too, and
        ``function`` runs once more on a fresh one: each ``function`` is one transaction,
        which either happened or did not (one whose commit happened but whose answer was
        lost runs twice: the queue's statements are written to allow it)."""
        for attempt in range(2):
            connection, reused = self._take()
            failure: QueueError | None = None
            try:
                return function(connection)
            except self._psycopg.Error as exc:
                failure = self._failure(exc)
            finally:
                self._give_back(connection)
            if not (reused and connection.broken and attempt == 0):
                break
            self._drop_idle()
        assert failure is not None
        raise failure  # here, outside the handler: the driver's error is not its context

    def _drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _failure(self, exc: Exception) -> QueueError:
        summary = CauseSummary.of(exc, self._secrets)
        lines = [line.strip() for line in str(summary).split(": ", 1)[-1].splitlines()]
        what = next((line for line in lines if line), type(exc).__name__)
        kind = (
            QueueUnavailableError if isinstance(exc, self._psycopg.OperationalError) else QueueError
        )
        error = kind(f"queue {self.shown_url}: {what}")
        error.__cause__ = summary
        return error

    def _take(self) -> tuple[psycopg.Connection[Any], bool]:
        """A connection, and whether it was kept from earlier (it may have been dropped)."""
        with self._lock:
            if self._closed:
                raise QueueError(f"queue {self.shown_url}: closed")
            while self._idle:
                connection = self._idle.pop()
                if not connection.closed and not connection.broken:
                    return connection, True
        failure: QueueUnavailableError | None = None
        try:
            connection = self._psycopg.connect(self._url, autocommit=True, **self._options)
        except self._psycopg.Error as exc:
            error = self._failure(exc)
            failure = QueueUnavailableError(error.message)
            failure.__cause__ = error.__cause__
        if failure is not None:
            raise failure
        return connection, False

    def _give_back(self, connection: psycopg.Connection[Any]) -> None:
        with self._lock:
            if self._closed or connection.broken:
                connection.close()
            else:
                self._idle.append(connection)

    async def aclose(self) -> None:
        """Close the idle connections; one in use is closed as its thread gives it back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            await anyio.to_thread.run_sync(connection.close)
