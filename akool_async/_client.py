"""``AkoolClient``: one long-lived object per application, shared by all its tasks."""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from . import _protocol as api
from ._auth import ApiKeyAuth, TokenAuth
from ._converter import structure, structure_jobs, unstructure
from ._download import DownloadedImage, download
from ._exceptions import (
    AkoolError,
    ClientClosedError,
    ConfigurationError,
    ConnectError,
    InvalidTokenError,
    PayloadError,
    ServerError,
    SubmissionUncertainError,
    TransportError,
    ValidationError,
)
from ._models import Button, CreditInfo, ImageJob, Token
from ._protocol import RawResponse, RequestSpec, parse_envelope
from ._requests import (
    ButtonRequest,
    PromptRequest,
    SourcePromptRequest,
    check_job_id,
    check_url,
)
from ._retry import RetryPolicy
from ._transport import (
    DEFAULT_MAX_DOWNLOADS,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_TIMEOUT,
    HttpxTransport,
    Transport,
)

T = TypeVar("T")

DEFAULT_BASE_URL = "https://openapi.akool.com"

log = logging.getLogger("akool_async")

_JSON_ONLY = {"content-type": "application/json"}


class AkoolClient:
    """An async client for Akool's Image Generate API.

    Create one per application and share it: it holds a connection pool and a cap on
    requests in flight sized for thousands of concurrent callers. Use it as an async
    context manager, or call ``aclose()`` when done.

    Credentials: ``api_key`` (sent as ``x-api-key``), or ``client_id`` + ``client_secret``
    (exchanged once for a bearer token). Without arguments the client reads
    ``AKOOL_API_KEY`` (or ``AKOOL_CLIENT_ID`` / ``AKOOL_CLIENT_SECRET``) and
    ``AKOOL_BASE_URL`` from the environment.
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
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | Transport | None = None,
    ) -> None:
        self.base_url = _base_url(base_url)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._auth = self._make_auth(api_key, client_id, client_secret)
        if max_in_flight < 1 or max_downloads < 1:
            raise ConfigurationError("max_in_flight and max_downloads must be at least 1")
        if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
            self._transport: Transport = transport
        else:
            self._transport = HttpxTransport(
                self.base_url,
                max_in_flight=max_in_flight,
                max_downloads=max_downloads,
                http_client=http_client,
                transport=transport,
            )
        self._closed = False

    def _make_auth(
        self, api_key: str | None, client_id: str | None, client_secret: str | None
    ) -> ApiKeyAuth | TokenAuth:
        explicit = api_key is not None or client_id is not None or client_secret is not None
        if not explicit:
            api_key = os.environ.get("AKOOL_API_KEY") or None
            if api_key is None:
                client_id = os.environ.get("AKOOL_CLIENT_ID") or None
                client_secret = os.environ.get("AKOOL_CLIENT_SECRET") or None
        if api_key is not None and (client_id is not None or client_secret is not None):
            raise ConfigurationError(
                "give either api_key or client_id + client_secret, not both "
                "(the server would ignore the key)"
            )
        if api_key is not None:
            if not api_key.strip():
                raise ConfigurationError("api_key is empty")
            return ApiKeyAuth(api_key)
        if client_id and client_secret:
            return TokenAuth(client_id, client_secret, self._fetch_token)
        if client_id or client_secret:
            raise ConfigurationError("token auth needs both client_id and client_secret")
        raise ConfigurationError(
            "no credentials: pass api_key=... or set AKOOL_API_KEY "
            "(or client_id + client_secret / AKOOL_CLIENT_ID + AKOOL_CLIENT_SECRET)"
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<AkoolClient {self.base_url} auth={type(self._auth).__name__} {state}>"

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections. Further use raises ``ClientClosedError``."""
        if not self._closed:
            self._closed = True
            await self._transport.aclose()

    @property
    def is_closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("this AkoolClient is closed")

    # -- endpoints --------------------------------------------------------------------

    async def create_by_source_prompt(
        self,
        *,
        prompt: str,
        scale: str = "1:1",
        resolution: str = "4k",
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
        scale: str = "1:1",
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
        button: Button | str,
        *,
        webhook_url: str | None = None,
        timeout: float | None = None,
    ) -> ImageJob:
        """Press ``U1``-``U4`` (4K upscale) or ``V1``-``V4`` (variation) on a finished job.

        Pass the parent's result (from ``info_by_model_id``) to have the button checked
        against its ``buttons`` before any credit is spent; a bare id is sent as it is.
        """
        request = ButtonRequest.for_parent(parent, button, webhook_url=webhook_url)
        (job,) = await self.submit(request, timeout=timeout)
        return job

    async def submit(
        self,
        request: SourcePromptRequest | PromptRequest | ButtonRequest,
        *,
        timeout: float | None = None,
    ) -> tuple[ImageJob, ...]:
        """Send an already built (and so validated) create request; the jobs it created."""
        if isinstance(request, SourcePromptRequest):
            endpoint, job_id = api.CREATE_BY_SOURCE_PROMPT, None
        elif isinstance(request, PromptRequest):
            endpoint, job_id = api.CREATE_BY_PROMPT, None
        else:
            endpoint, job_id = api.CREATE_BY_BUTTON, request.job_id
        spec = RequestSpec(endpoint, payload=unstructure(request), job_id=job_id)
        return await self._call(
            spec, lambda env: structure_jobs(env.get("data"), endpoint=endpoint.name), timeout
        )

    async def info_by_model_id(
        self, job_id: str | ImageJob, *, timeout: float | None = None
    ) -> ImageJob:
        """The job as it is now (any job: v3, v4 or button); ``image`` is set once completed."""
        job_id = check_job_id(job_id.id if isinstance(job_id, ImageJob) else job_id)
        spec = RequestSpec(api.INFO_BY_MODEL_ID, params={"image_model_id": job_id}, job_id=job_id)
        return await self._call(spec, self._parse_job, timeout)

    async def credit_info(self, *, timeout: float | None = None) -> CreditInfo:
        """The account's credit balance."""
        spec = RequestSpec(api.CREDIT_INFO)
        return await self._call(
            spec,
            lambda env: structure(env.get("data"), CreditInfo, endpoint=api.CREDIT_INFO.name),
            timeout,
        )

    async def download(
        self,
        source: ImageJob | str,
        path: str | os.PathLike[str],
        *,
        timeout: float | None = None,
    ) -> DownloadedImage:
        """Save a finished job's image (or any result URL) at ``path``.

        Streamed through a temporary file, checked (HTTP status, content type, a whole PNG
        or JPEG), fsynced and renamed into place; retried like a read. No credentials are
        sent: results live on a CDN. An expired result raises ``ResultExpiredError``.
        """
        self._check_open()
        if isinstance(source, ImageJob):
            url, job_id = source.url, source.id
            if url is None:
                raise ValidationError(
                    "source",
                    source.id,
                    f"a completed job with an image (status {source.status.name})",
                )
        else:
            url, job_id = check_url("source", source), None
        return await download(
            self._transport,
            url,
            Path(path),
            retry=self.retry,
            timeout=self.timeout if timeout is None else timeout,
            job_id=job_id,
        )

    async def _fetch_token(self) -> Token:
        """getToken: the token is at the top level of the answer, not under ``data``."""
        assert isinstance(self._auth, TokenAuth)
        spec = RequestSpec(api.GET_TOKEN, payload=self._auth.token_payload)
        return await self._call(spec, _parse_token, None)

    @staticmethod
    def _parse_job(envelope: Mapping[str, Any]) -> ImageJob:
        return structure(envelope.get("data"), ImageJob, endpoint=api.INFO_BY_MODEL_ID.name)

    # -- the request path -------------------------------------------------------------

    async def _call(
        self,
        request: RequestSpec,
        parse: Callable[[Mapping[str, Any]], T],
        timeout: float | None,
    ) -> T:
        self._check_open()
        attempt = itertools.count(1)
        seconds = self.timeout if timeout is None else timeout
        return await self.retry.call(
            lambda: self._authenticated(request, parse, seconds, next(attempt)),
            creates=request.endpoint.creates,
        )

    async def _authenticated(
        self,
        request: RequestSpec,
        parse: Callable[[Mapping[str, Any]], T],
        timeout: float,
        attempt: int,
    ) -> T:
        post = request.endpoint.method == "POST"
        if request.endpoint is api.GET_TOKEN:
            return await self._exchange(request, _JSON_ONLY, parse, timeout, attempt)
        auth = self._auth
        headers = await auth.headers(post=post)
        if not isinstance(auth, TokenAuth):
            return await self._exchange(request, headers, parse, timeout, attempt)
        used = auth.current_token
        try:
            return await self._exchange(request, headers, parse, timeout, attempt)
        except InvalidTokenError:
            # The cached token expired: fetch a new one, once. 1101 proves nothing was
            # created, so even a create may be sent again.
            auth.invalidate(used)
            headers = await auth.headers(post=post)
            return await self._exchange(request, headers, parse, timeout, attempt)

    async def _exchange(
        self,
        request: RequestSpec,
        headers: Mapping[str, str],
        parse: Callable[[Mapping[str, Any]], T],
        timeout: float,
        attempt: int,
    ) -> T:
        started = time.perf_counter()
        response: RawResponse | None = None
        try:
            response = await self._transport.send(request, headers, timeout=timeout)
            result = parse(parse_envelope(request, response))
        except AkoolError as exc:
            _log_request(request, response, started, attempt, exc)
            self._redact(exc)
            if request.endpoint.creates and _may_have_created(exc):
                raise SubmissionUncertainError(
                    f"the create may have reached the server ({type(exc).__name__}: "
                    f"{exc.message}), so it was not retried",
                    request=request,
                    endpoint=request.endpoint.name,
                ) from exc
            raise
        _log_request(request, response, started, attempt, None)
        return result

    def _redact(self, exc: AkoolError) -> None:
        """Scrub credentials from a message the server wrote (it might echo them)."""
        for secret in self._auth.secrets():
            if secret in exc.message:
                exc.message = exc.message.replace(secret, "<redacted>")
                exc.args = (exc.message,)


def _may_have_created(exc: AkoolError) -> bool:
    """After these a create may exist on the server: a timeout or broken connection once
    the request left, a 5xx, or a success answer we could not read."""
    if isinstance(exc, TransportError):
        return not isinstance(exc, ConnectError)
    return isinstance(exc, ServerError | PayloadError)


def _parse_token(envelope: Mapping[str, Any]) -> Token:
    fields = {k: v for k, v in envelope.items() if k not in ("code", "msg")}
    return structure(fields, Token, path="$", endpoint=api.GET_TOKEN.name)


def _log_request(
    request: RequestSpec,
    response: RawResponse | None,
    started: float,
    attempt: int,
    error: AkoolError | None,
) -> None:
    """One debug line per request; never headers or bodies (they hold credentials)."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    endpoint = request.endpoint
    status = response.status_code if response is not None else "-"
    code = getattr(error, "code", None) or ("-" if error else api.SUCCESS)
    outcome = f" {type(error).__name__}" if error else ""
    log.debug(
        "%s %s%s -> HTTP %s code %s in %.1f ms (attempt %d)%s",
        endpoint.method,
        endpoint.path,
        f" job={request.job_id}" if request.job_id else "",
        status,
        code,
        (time.perf_counter() - started) * 1000,
        attempt,
        outcome,
    )


def _base_url(explicit: str | None) -> str:
    url = explicit or os.environ.get("AKOOL_BASE_URL") or DEFAULT_BASE_URL
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"base_url must start with http:// or https://, got {url!r}")
    return url.rstrip("/")
