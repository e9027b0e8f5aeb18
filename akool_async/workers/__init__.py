"""Workers on many machines sharing one queue and journal in PostgreSQL (the ``postgres``
extra): ``PostgresQueue`` (a ``FollowJournal``, with ``enqueue``, ``claim_next``, ``reap``
and heartbeats), ``queue_status`` and ``export_manifest``.

Importing this package needs no driver; opening a queue does (``pip install
'akool-async[postgres]'``, else a ``ConfigurationError`` saying so).
"""

from ._pg_database import QueueError, QueueUnavailableError, redact_url
from ._pg_journal import PostgresJournal, Reaped
from ._pg_queue import EnqueueReport, PostgresQueue, QueuedItem
from ._pg_status import QueueStatus, export_manifest, queue_status

__all__ = [
    "EnqueueReport",
    "PostgresJournal",
    "PostgresQueue",
    "QueueError",
    "QueueStatus",
    "QueueUnavailableError",
    "QueuedItem",
    "Reaped",
    "export_manifest",
    "queue_status",
    "redact_url",
]
