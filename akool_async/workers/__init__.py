"""Workers on many machines sharing one queue and journal in PostgreSQL (the ``postgres``
extra): ``PostgresQueue`` (a ``FollowJournal``, with ``enqueue``, ``claim_next``, ``reap``
and heartbeats), ``queue_status`` and ``export_manifest``, ``run_worker``: the loop
that claims items, renews their leases, beats and reaps around a driver of one item, and
``Worker``: that loop driving each item's tree with your ``AkoolClient`` (what
``akool-async worker`` runs), to embed in your own process.

Importing this package needs no driver; opening a queue does (``pip install
'akool-async[postgres]'``, else a ``ConfigurationError`` saying so).
"""

from ._drive import QueueDriver
from ._embedded import Worker, WorkerReport
from ._pg_database import QueueError, QueueUnavailableError, redact_url
from ._pg_journal import PostgresJournal, Reaped
from ._pg_queue import EnqueueReport, PostgresQueue, QueuedItem
from ._pg_status import QueueStatus, export_manifest, queue_status
from ._worker import Driver, WorkerSettings, WorkerStats, run_worker

__all__ = [
    "Driver",
    "EnqueueReport",
    "PostgresJournal",
    "PostgresQueue",
    "QueueDriver",
    "QueueError",
    "QueueStatus",
    "QueueUnavailableError",
    "QueuedItem",
    "Reaped",
    "Worker",
    "WorkerReport",
    "WorkerSettings",
    "WorkerStats",
    "export_manifest",
    "queue_status",
    "redact_url",
    "run_worker",
]
