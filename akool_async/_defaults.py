"""Every default of the package in one place: timeouts, poll intervals, limits,
concurrency, expiry figures. The modules that use one import it from here (and keep
their old names for importers); a change of a default is a change of this file only.

Data only: nothing here imports from the package.
"""

from __future__ import annotations

# The service.
DEFAULT_BASE_URL = "https://openapi.akool.com"
IMAGE_LIFETIME = 7 * 24 * 3600.0  # seconds Akool keeps a result downloadable
NEAR_EXPIRY = 6 * 24 * 3600.0  # a result older than this has a day or less left

# One request: the deadline of one attempt (connect to last byte) and what it may bring.
DEFAULT_TIMEOUT = 30.0
DEFAULT_DOWNLOAD_TIMEOUT = 300.0  # one attempt, whole transfer: 4K PNGs are tens of MB
# Real answers are a few KB (a job, a batch of four): a bigger one is a proxy's page or a
# hostile server, and is refused before it fills memory.
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024

# Concurrency and connections.
DEFAULT_MAX_IN_FLIGHT = 8  # API requests on the wire at once
DEFAULT_MAX_DOWNLOADS = 8  # downloads at once (their own pool, on the CDN)
DEFAULT_BULK_CONCURRENCY = 16  # bulk items in progress at once
DEFAULT_CLOSE_GRACE = 10.0  # seconds a closing client waits for requests on the wire
KEEPALIVE_EXPIRY = 2.0  # seconds; under uvicorn's and Node's 5 s, nginx's 75 s

# The account's request rate (requests per second, and how many may go at once).
DEFAULT_RATE = 10.0
DEFAULT_BURST = 10

# The account's budget shared by many processes (``redis_budget.RedisBudget``).
SHARED_LEASE_TTL = 60.0  # seconds a dead worker's jobs in flight stay counted
SHARED_MAX_WAIT = 1.0  # the furthest ahead a slot is reserved (default: burst / rate, <= this)
SHARED_UNAVAILABLE_TIMEOUT = 30.0  # seconds of Redis unreachable before a request fails
SHARED_PAUSE = 1.0  # seconds every worker holds after a throttle without Retry-After
SHARED_MIN_FRACTION = 0.1  # a throttled rate halves down to this fraction, no lower
SHARED_RECOVERY = 30.0  # seconds to regain the configured rate after a throttle
REDIS_CONNECT_TIMEOUT = 2.0
REDIS_STREAM_TIMEOUT = 2.0  # seconds for Redis's answer to one command

# Retries (``RetryPolicy``).
RETRY_ATTEMPTS = 5
RETRY_TIMEOUT = 120.0  # seconds for all attempts of one call, back-off included
RETRY_WAIT_INITIAL = 0.5
RETRY_WAIT_MAX = 15.0
RETRY_WAIT_JITTER = 1.0
RETRY_WAIT_EXP_BASE = 2.0
MAX_RETRY_AFTER = 60.0  # the longest a server's Retry-After may make us wait

# Polling (``PollPolicy``): seconds of the scheduler's clock.
POLL_EXPECTED_SECONDS = 30.0  # the log-normal prior of a job's duration, until jobs finish
POLL_SPREAD = 0.35
POLLS_PER_JOB = 1.45  # target average; leaves room for the first jobs probed densely
POLL_MIN_INTERVAL = 1.0
POLL_MAX_INTERVAL = 60.0
POLL_QUEUED_BACKOFF = 1.5
POLL_JITTER = 0.1
POLL_PROBES = 2
WEBHOOK_SAFETY = 4.0  # callbacks flowing: poll no sooner than this many first ages
WEBHOOK_SILENCE = 60.0  # callbacks count as flowing until this long without one
# A grid completed without its parts: followed this long after its status 3, polled
# every PARTS_INTERVAL (Akool's demo polls every 3 s; how late parts come is unknown).
PARTS_GRACE = 60.0
PARTS_INTERVAL = 3.0

# What a create may send (``RequestLimits``; why these figures: its docstring).
MAX_PROMPT_CHARS = 10_000
MAX_URL_CHARS = 8_000
MAX_SOURCE_IMAGES = 10

# Webhooks (``WebhookReceiver``).
WEBHOOK_TOLERANCE = 300.0  # seconds a callback's timestamp may be off now (replays)
WEBHOOK_REMEMBER = 100_000  # (job, status) pairs remembered to answer duplicates
WEBHOOK_MAX_BODY = 64 * 1024  # bytes of a callback's body

# Bulk runs.
SHIELD_SECONDS = 60.0  # the longest a stopping run waits for a create already sent
BULK_LEASE = 60.0  # an item's claim in a bulk journal, renewed every third of it

# The shared PostgreSQL queue (``akool_async.workers``): seconds, and connections.
QUEUE_CONNECTIONS = 3  # per process: threads (and connections) on the queue at once
QUEUE_CONNECT_TIMEOUT = 10  # a queue that does not answer fails in this long (libpq's)
WORKER_LEASE = 120.0  # a claim's lease, renewed every third of it while its item runs
WORKER_HEARTBEAT = 10.0
WORKER_ALIVE_WITHIN = 30.0  # a worker silent longer than this is not counted alive
WORKER_REAP_EVERY = 30.0  # each worker gives up dead workers' expired claims this often
WORKER_IDLE = 2.0  # a worker that found nothing to claim looks again after this
