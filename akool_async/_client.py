"""``AkoolClient``: one long-lived object per application, shared by all its tasks.

The facade: construction, endpoints, ``watch``/``generate``. Opening and closing its
running parts is ``_client_lifecycle``'s; ``wait``/``as_completed`` come from
``_client_waiting`` and ``download``/``download_images`` from ``_client_downloads``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Literal, Self

import attrs
import httpx

from . import _protocol as api
from ._arguments import (
    MAX_WAIT_TIMEOUT,
    optional_timeout,
)
from ._auth import auth_from
from ._client_downloads import DownloadsMixin
from ._client_lifecycle import ClientLifecycle
from ._client_waiting import WaitingMixin
from ._clock import Clock, SystemClock
from ._closing import OpenState
from ._defaults import (
    DEFAULT_BASE_URL,
    DEFAULT_BURST,
    DEFAULT_DOWNLOAD_TIMEOUT,
    DEFAULT_MAX_DOWNLOAD_BYTES,
    DEFAULT_MAX_DOWNLOADS,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_RATE,
    DEFAULT_TIMEOUT,
    KEEPALIVE_EXPIRY,
)
from ._exceptions import (
    ValidationError,
)
from ._grid import request_makes_grid
from ._models import Button, CreditInfo, ImageJob, ImageStatus
from ._orchestrator import Generation
from ._poll_policy import PollPolicy, PollStats
from ._polling import PollScheduler
from ._ratelimit import RateLimiter
from ._requester import Requester
from ._requests import (
    DEFAULT_LIMITS,
    ButtonName,
    ButtonRequest,
    PromptRequest,
    RequestLimits,
    Resolution,
    Scale,
    SourcePromptRequest,
    check_job_id,
    check_limits,
    check_url,
    parse_buttons,
)
from ._retry import RetryPolicy
from ._settings import base_url as base_url_from
from ._settings import check_client_settings, check_generate_options
from ._shared_budget import SharedBudget
from ._transport import Transport
from ._transport_choice import make_transport
from ._watchset import WatchSet
from .webhook import WebhookReceiver


class AkoolClient(WaitingMixin, DownloadsMixin):
    """An async client for Akool's Image Generate API.

    Create one per application and share it: it holds a connection pool and a cap on
    requests in flight sized for thousands of concurrent callers. Use it as an async
    context manager, or call ``aclose()`` when done.

    Credentials: ``api_key`` (sent as ``x-api-key``), or ``client_id`` + ``client_secret``
    (exchanged once for a bearer token). Without arguments the client reads
    ``AKOOL_API_KEY`` (or ``AKOOL_CLIENT_ID`` / ``AKOOL_CLIENT_SECRET``) and
    ``AKOOL_BASE_URL`` from the environment.

    ``timeout`` (and every call's ``timeout=``; ``download_timeout`` for a download) is
    the deadline of one attempt, connect to last byte: a trickling server cannot hold a
    call open. Slot waits and retry back-off come on top, bounded by ``RetryPolicy.timeout``.
    Answers over ``max_response_bytes`` and results over ``max_download_bytes`` are refused
    as soon as the cap is passed; ``limits`` caps what a create sends. Pooled connections
    idle for ``keepalive_expiry`` close, and creates never reuse one idle half as long.

    ``transport="aiohttp"`` (the ``aiohttp`` extra; asyncio only) sends requests through
    aiohttp at a fraction of httpx's CPU per request; the default is httpx, which also
    runs on trio. An ``httpx`` transport or client may be injected (tests: respx).

    ``shared_budget`` (for example ``akool_async.redis_budget.RedisBudget``, the ``redis``
    extra) is an account's request budget shared by every process that uses the account:
    each request takes its slot there too, after the in-process ``rate_limit`` slot, and a
    throttle any process meets slows them all. Open it before the client and close it after.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_downloads: int = DEFAULT_MAX_DOWNLOADS,
        rate_limit: float | None = DEFAULT_RATE,
        rate_burst: int = DEFAULT_BURST,
        poll_policy: PollPolicy | None = None,
        webhook: WebhookReceiver | None = None,
        webhook_url: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | Transport | Literal["httpx", "aiohttp"] | None = None,
        clock: Clock | None = None,
        limits: RequestLimits | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
        shared_budget: SharedBudget | None = None,
    ) -> None:
        check_client_settings({k: v for k, v in locals().items() if k != "self"})
        self.base_url = base_url_from(base_url, DEFAULT_BASE_URL)
        self.limits = limits or DEFAULT_LIMITS
        self.download_timeout = float(download_timeout)
        auth = auth_from(api_key, client_id, client_secret)
        state = OpenState()  # open or closed: one owner, shared by every part below
        transport = make_transport(
            transport,
            self.base_url,
            http_client=http_client,
            max_in_flight=max_in_flight,
            max_downloads=max_downloads,
            max_response_bytes=max_response_bytes,
            keepalive_expiry=keepalive_expiry,
            state=state,
        )
        self.clock = clock or SystemClock()
        limiter = (
            None
            if rate_limit is None
            else RateLimiter(rate_limit, rate_burst, clock=self.clock, shared=shared_budget)
        )
        self._requester = Requester(
            transport, auth, retry or RetryPolicy(), timeout, limiter,
            max_in_flight=max_in_flight, state=state,
        )  # fmt: skip
        self._scheduler = PollScheduler(
            self.info_by_model_id, self.clock, poll_policy, senders=max_in_flight, state=state
        )
        self._lifecycle = ClientLifecycle(self._requester, self._scheduler)
        self.max_download_bytes = max_download_bytes
        self.webhook = webhook
        self.webhook_url = None if webhook_url is None else check_url("webhook_url", webhook_url)

    @property
    def retry(self) -> RetryPolicy:
        return self._requester.retry

    @property
    def timeout(self) -> float:
        return self._requester.timeout

    @property
    def requests_sent(self) -> int:
        """API requests sent so far (each retry counts; downloads do not)."""
        return self._requester.sent

    def __repr__(self) -> str:
        state = "closed" if self.is_closed else "open"
        auth = type(self._requester.auth).__name__
        return f"<AkoolClient {self.base_url} auth={auth} {state}>"

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Open the client and start its poll scheduler (for wait, as_completed, generate)."""
        await self._lifecycle.open(self.webhook)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.aclose()
        finally:
            await self._lifecycle.join()

    async def aclose(self) -> None:
        """Refuse new requests, stop polling (pending waits raise ClientClosedError), let
        requests on the wire finish (briefly), close the pool. Safe from any task."""
        await self._lifecycle.close()

    @property
    def is_closed(self) -> bool:
        return self._lifecycle.closed

    # -- endpoints --------------------------------------------------------------------

    async def create_by_source_prompt(
        self,
        *,
        prompt: str,
        scale: Scale = "1:1",
        resolution: Resolution = "4k",
        batch_quantity: int = 1,
        source_images: Sequence[str] | None = None,
        similar: float | None = None,
        negative_prompt: str | None = None,
        model_name: str | None = None,
        webhook_url: str | None = None,
        timeout: float | None = None,
    ) -> tuple[ImageJob, ...]:
        """v4 text-to-image (or image-to-image with ``source_images``): one job per image.

        Always a tuple, whether the server answered one object or a list.
        """
        request = SourcePromptRequest(
            prompt=prompt,
            scale=scale,
            resolution=resolution,
            batch_quantity=batch_quantity,
            source_images=source_images,  # the converter makes a tuple
            similar=similar,
            negative_prompt=negative_prompt,
            model_name=model_name,
            webhook_url=webhook_url,
        )
        return await self.submit(request, timeout=timeout)

    async def create_by_prompt(
        self,
        *,
        prompt: str,
        scale: Scale = "1:1",
        source_image: str | None = None,
        webhook_url: str | None = None,
        timeout: float | None = None,
    ) -> ImageJob:
        """v3 (legacy) text-to-image, or image-to-image from one ``source_image``."""
        request = PromptRequest(
            prompt=prompt, scale=scale, source_image=source_image, webhook_url=webhook_url
        )
        (job,) = await self.submit(request, timeout=timeout)
        return job

    async def create_by_button(
        self,
        parent: ImageJob | str,
        button: Button | ButtonName,
        *,
        webhook_url: str | None = None,
        timeout: float | None = None,
    ) -> ImageJob:
        """Press ``U1``-``U4`` (4K upscale) or ``V1``-``V4`` (variation) on a finished job.

        Pass the parent's result (from ``info_by_model_id`` or ``wait``) to have the button
        checked against its ``buttons`` before any credit is spent; a bare id is sent as it
        is. A result that a webhook callback delivered carries no buttons: the parent is
        looked at once more first.
        """
        optional_timeout("timeout", timeout)
        parent_id = parent.id if isinstance(parent, ImageJob) else parent
        ButtonRequest(job_id=parent_id, button=button, webhook_url=webhook_url)  # before a look
        if isinstance(parent, ImageJob):
            parent = await self.with_buttons(parent)
        request = ButtonRequest.for_parent(parent, button, webhook_url=webhook_url)
        (job,) = await self.submit(request, timeout=timeout)
        return job

    async def submit(
        self,
        request: SourcePromptRequest | PromptRequest | ButtonRequest,
        *,
        timeout: float | None = None,
        before_send: Callable[[], Awaitable[object]] | None = None,
    ) -> tuple[ImageJob, ...]:
        """Send an already built (and so validated) create request; the jobs it created.

        A request without a webhook URL gets the client's ``webhook_url``, if it has one.
        ``before_send`` is awaited once, right before the request first leaves (it holds
        its place on the wire and its rate slot by then): record the intent to create
        there, and a crash before that point provably created nothing.
        """
        if not isinstance(request, SourcePromptRequest | PromptRequest | ButtonRequest):
            raise ValidationError(
                "request", request, "a SourcePromptRequest, PromptRequest or ButtonRequest"
            )
        timeout = optional_timeout("timeout", timeout)
        if before_send is not None and not callable(before_send):
            raise ValidationError("before_send", before_send, "an async callable or None")
        if request.webhook_url is None and self.webhook_url is not None:
            request = attrs.evolve(request, webhook_url=self.webhook_url)
        check_limits(request, self.limits)
        expected = request.batch_quantity if isinstance(request, SourcePromptRequest) else 1
        read = functools.partial(api.read_jobs, expected=expected)
        jobs = await self._requester.call(api.create_request(request), read, timeout, before_send)
        self._scheduler.remember_shapes((job.id for job in jobs), grid=request_makes_grid(request))
        if request.webhook_url is not None:
            self._scheduler.submitted(job.id for job in jobs)
        return jobs

    async def info_by_model_id(
        self, job_id: str | ImageJob, *, timeout: float | None = None
    ) -> ImageJob:
        """The job as it is now (any job: v3, v4 or button); ``image`` is set once completed."""
        job_id = check_job_id(job_id.id if isinstance(job_id, ImageJob) else job_id)
        timeout = optional_timeout("timeout", timeout)
        return await self._requester.call(api.info_request(job_id), api.read_job, timeout)

    async def credit_info(self, *, timeout: float | None = None) -> CreditInfo:
        """The account's credit balance."""
        timeout = optional_timeout("timeout", timeout)
        return await self._requester.call(api.credit_request(), api.read_credit, timeout)

    # -- following jobs (wait and as_completed: _client_waiting) ---------------------------

    def generate(
        self,
        *,
        prompt: str,
        batch_quantity: int = 1,
        follow_ups: Sequence[Button | ButtonName] = (),
        fail_fast: bool = False,
        job_timeout: float | None = None,
        **options: Any,
    ) -> Generation:
        """Create a v4 batch, follow it and press ``follow_ups`` on each finished image.

        ``async for outcome in client.generate(...)`` yields each job's ``JobOutcome`` as it
        ends; ``await client.generate(...).collect()`` gives the whole ``GenerationTree``.
        ``options`` are those of ``create_by_source_prompt``. Validated here, before anything
        is sent.
        """
        check_generate_options(options)
        request = SourcePromptRequest(prompt=prompt, batch_quantity=batch_quantity, **options)
        check_limits(request, self.limits)
        job_timeout = optional_timeout("job_timeout", job_timeout, maximum=MAX_WAIT_TIMEOUT)
        if isinstance(follow_ups, str) or not isinstance(follow_ups, Sequence):
            raise ValidationError("follow_ups", follow_ups, 'a list of buttons such as ["U1"]')
        if not isinstance(fail_fast, bool):
            raise ValidationError("fail_fast", fail_fast, "True or False")
        buttons = parse_buttons(follow_ups)
        self._lifecycle.check_running()  # fail now, not on first iteration, if not open
        return Generation(self, request, buttons, fail_fast=fail_fast, job_timeout=job_timeout)

    def watch(self) -> WatchSet:
        """A new, empty ``WatchSet``: jobs followed together on the client's shared poll
        scheduler (and its webhook callbacks), each outcome as it comes.

        ``wait``, ``as_completed`` and ``generate`` are built on it; use it for workflows
        of your own (``add`` a job, ``await next()`` its outcome, ``add`` the jobs it led
        to). Close it when done (``async with client.watch() as watch:``): the jobs still
        pending stop being polled. Needs the client opened with ``async with``.
        """
        self._lifecycle.check_running()
        return WatchSet(self._scheduler)

    async def with_buttons(self, job: ImageJob, *, timeout: float | None = None) -> ImageJob:
        """``job`` with its ``buttons`` (and ``used_buttons``), to press follow-ups on.

        A completed job that a webhook callback brought carries none: it is looked up once
        (``info_by_model_id``); any other job is returned as it is, with no request.
        """
        if not isinstance(job, ImageJob):
            raise ValidationError("job", job, "an ImageJob (from a create, a wait or a look-up)")
        timeout = optional_timeout("timeout", timeout)
        if job.from_callback and job.status == ImageStatus.COMPLETED:
            return await self.info_by_model_id(job.id, timeout=timeout)
        return job

    def start_soon(self, function: Callable[[], Awaitable[object]]) -> None:
        """Run ``function()`` in the client's background: work that must go on however
        slowly its caller reads (``generate`` presses follow-ups there the moment an image
        finishes). It is cancelled when the client closes; an exception it raises is logged,
        never raised: report failures through your own channel. Needs the client opened
        with ``async with``.
        """
        if not callable(function):
            raise ValidationError("function", function, "an async function taking no arguments")
        self._lifecycle.spawn(function)

    def _download_transport(self) -> Transport:
        """The transport downloads go through (``DownloadsMixin``), once the client is open."""
        self._requester.check_open()
        return self._requester.transport

    @property
    def poll_stats(self) -> PollStats:
        """Counts of the scheduler's polls (``polls``, ``finished``, ``failed_polls``)."""
        return self._scheduler.stats
