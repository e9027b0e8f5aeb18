"""Callbacks as Akool sends them: signed, encrypted, POSTed when a job's status changes,
and tried again (a bounded number of times) until the receiver answers 200.

One task keeps a heap of due callbacks, so ten thousand jobs with webhooks cost one
sleeping task, not ten thousand.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import secrets

import anyio
import anyio.abc
import httpx

from .._gate import Gate
from .._models import ImageStatus
from .._webhook_crypto import seal_event
from ._callback_http import CallbackError, PlainHttpPoster
from ._state import Backend, Job

log = logging.getLogger("akool_async.emulator")

# httpx's pool looks at every one of its connections on each request and response, so a
# callback's CPU grows with the connections held: at 64 in flight a callback cost the
# emulator ~3 ms of CPU (that look a third of it) and, on a busy machine, callbacks fell
# seconds behind their jobs (issue 17); at 4, ~0.6 ms, and 2-4x the callbacks per second.
MAX_DELIVERIES_IN_FLIGHT = 4


class WebhookDispatcher:
    def __init__(self, backend: Backend, transport: httpx.AsyncBaseTransport | None) -> None:
        self.backend = backend
        self._transport = transport
        self._due: list[tuple[float, int, Job, ImageStatus]] = []
        self._order = itertools.count()
        self._wake = anyio.Event()
        self._http: httpx.AsyncClient | None = None
        self._plain = PlainHttpPoster(timeout=10.0)
        self._pending = 0  # callbacks scheduled and not yet delivered or given up
        # Per job, the end of its latest delivery: a job's callbacks go one after another,
        # in the order of its statuses, as a sender with one queue per job would send them.
        self._latest: dict[str, anyio.Event] = {}
        self._drained = anyio.Event()
        self._drained.set()

    def schedule(self, job: Job) -> None:
        """Queue a new job's status changes (called by the backend when it is created)."""
        now_emulated, now_real = self.backend.clock(), self.backend.real.now()
        for at, status in self.backend.transitions(job):
            real_due = now_real + max(0.0, at - now_emulated) / self.backend.config.time_scale
            heapq.heappush(self._due, (real_due, next(self._order), job, status))
            if self._pending == 0:
                self._drained = anyio.Event()
            self._pending += 1
        self._wake.set()

    async def drained(self) -> None:
        """Return once every scheduled callback was delivered or given up on."""
        while self._pending:
            await self._drained.wait()

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        limiter = Gate(MAX_DELIVERIES_IN_FLIGHT)
        limits = httpx.Limits(
            max_connections=MAX_DELIVERIES_IN_FLIGHT,
            max_keepalive_connections=MAX_DELIVERIES_IN_FLIGHT,
        )
        async with httpx.AsyncClient(
            transport=self._transport, timeout=10.0, limits=limits
        ) as http:
            self._http = http
            try:
                await self._dispatch(limiter, task_status)
            finally:
                with anyio.CancelScope(shield=True):
                    await self._plain.aclose()

    async def _dispatch(self, limiter: Gate, task_status: anyio.abc.TaskStatus[None]) -> None:
        async with anyio.create_task_group() as deliveries:
            task_status.started()
            while True:
                while self._due and self._due[0][0] <= self.backend.real.now():
                    _, _, job, status = heapq.heappop(self._due)
                    after, done = self._latest.get(job.id), anyio.Event()
                    self._latest[job.id] = done
                    deliveries.start_soon(self._deliver, job, status, limiter, after, done)
                self._wake = anyio.Event()
                wait = self._due[0][0] - self.backend.real.now() if self._due else None
                with anyio.move_on_after(wait):
                    await self._wake.wait()

    async def _deliver(
        self,
        job: Job,
        status: ImageStatus,
        limiter: Gate,
        after: anyio.Event | None,
        done: anyio.Event,
    ) -> None:
        try:
            if after is not None:  # the job's earlier status first, delivered or given up
                await after.wait()
            await self._attempts(job, status, limiter)
        finally:
            done.set()
            if self._latest.get(job.id) is done:
                del self._latest[job.id]
            self._pending -= 1
            if self._pending == 0:
                self._drained.set()

    async def _post(self, url: str, body: dict[str, object]) -> int:
        assert self._http is not None
        if self._transport is None and url.startswith("http://"):
            return await self._plain.post(url, json.dumps(body, separators=(",", ":")).encode())
        return (await self._http.post(url, json=body)).status_code

    async def _attempts(self, job: Job, status: ImageStatus, limiter: Gate) -> None:
        assert self._http is not None
        assert job.webhook_url is not None
        counters, config = self.backend.counters, self.backend.config
        event: dict[str, object] = {"_id": job.id, "status": int(status), "type": "image"}
        if status == ImageStatus.COMPLETED:
            event["url"] = job.image_url
        for attempt in range(1, config.webhook_attempts + 1):
            async with limiter:
                body = seal_event(  # its timestamp says when it was sent, as Akool's does
                    event,
                    api_key=job.account.api_key,
                    client_id=job.account.client_id,
                    timestamp=int(self.backend.real.wall() * 1000),
                    nonce=secrets.randbelow(10**6),
                )
                counters.callback_attempts += 1
                try:
                    delivered = await self._post(job.webhook_url, body) == 200
                except (httpx.HTTPError, CallbackError) as exc:
                    log.debug("callback for %s failed: %s", job.id, exc)
                    delivered = False
            if delivered:
                counters.callbacks_sent += 1
                return
            if attempt < config.webhook_attempts:
                await anyio.sleep(config.webhook_retry_delay / config.time_scale)
        counters.callbacks_failed += 1
