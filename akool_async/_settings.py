"""Checks of ``AkoolClient``'s settings and of the values its calls take that are not
requests (jobs to wait on, ``generate`` options): table-driven, raising before anything
is built or sent. Pure functions."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import httpx

from ._arguments import check_count, check_optional, check_rate, check_secret, check_timeout
from ._exceptions import InvalidSettingError, ValidationError
from ._models import ImageJob
from ._poll_policy import PollPolicy
from ._requests import RequestLimits, SourcePromptRequest, check_job_id, check_url
from ._retry import RetryPolicy
from .webhook import WebhookReceiver

_setting_timeout = functools.partial(check_timeout, error=InvalidSettingError)
_bytes_cap = functools.partial(check_count, minimum=1024, maximum=2**62)


def _optional_rate(field: str, value: object) -> object:
    return None if value is None else check_rate(field, value)


def _optional(cls: type | tuple[type, ...], what: str) -> Callable[[str, object], object]:
    return lambda field, value: check_optional(field, value, cls, what)


def _optional_url(field: str, value: object) -> object:
    return None if value is None else setting_url(field, value)


def setting_url(field: str, value: object) -> str:
    try:
        return check_url(field, value)
    except ValidationError as exc:
        raise InvalidSettingError(field, value, exc.allowed) from None


def _transport(field: str, value: object) -> object:
    if (
        value is None
        or value in ("httpx", "aiohttp")
        or isinstance(value, httpx.AsyncBaseTransport)
    ):
        return value
    if all(callable(getattr(value, name, None)) for name in ("send", "stream", "aclose")):
        return value
    raise InvalidSettingError(
        field, value, "'httpx', 'aiohttp', an httpx transport, a Transport or None"
    )


def _shared_budget(field: str, value: object) -> object:
    if value is None or all(callable(getattr(value, n, None)) for n in ("acquire", "throttled")):
        return value
    raise InvalidSettingError(
        field, value, "a SharedBudget (async acquire() and throttled()), such as a RedisBudget"
    )


def _clock(field: str, value: object) -> object:
    if value is None or all(callable(getattr(value, n, None)) for n in ("now", "wait")):
        return value
    raise InvalidSettingError(field, value, "a Clock (now() and wait()) or None")


_CLIENT_SETTINGS: Mapping[str, Callable[[str, Any], object]] = {
    "api_key": check_secret,
    "client_id": check_secret,
    "client_secret": check_secret,
    "timeout": _setting_timeout,
    "download_timeout": _setting_timeout,
    "keepalive_expiry": functools.partial(_setting_timeout, maximum=3600),
    "max_in_flight": functools.partial(check_count, maximum=10_000),
    "max_downloads": functools.partial(check_count, maximum=10_000),
    "max_response_bytes": _bytes_cap,
    "max_download_bytes": _bytes_cap,
    "rate_limit": _optional_rate,
    "rate_burst": functools.partial(check_count, maximum=100_000),
    "retry": _optional(RetryPolicy, "a RetryPolicy"),
    "poll_policy": _optional(PollPolicy, "a PollPolicy"),
    "webhook": _optional(WebhookReceiver, "a WebhookReceiver"),
    "http_client": _optional(httpx.AsyncClient, "an httpx.AsyncClient"),
    "limits": _optional(RequestLimits, "a RequestLimits"),
    "webhook_url": _optional_url,
    "transport": _transport,
    "clock": _clock,
    "shared_budget": _shared_budget,
}


def check_client_settings(settings: Mapping[str, object]) -> None:
    """Raise ``InvalidSettingError`` for the first setting whose value cannot work;
    credentials are never shown."""
    for name, value in settings.items():
        check = _CLIENT_SETTINGS.get(name)
        if check is not None:
            check(name, value)
    if settings.get("shared_budget") is not None and settings.get("rate_limit") is None:
        raise InvalidSettingError(
            "rate_limit", None, "a rate (requests per second) when shared_budget is set: the "
            "in-process limiter is the shared budget's front gate",
        )  # fmt: skip


def base_url(explicit: object, default: str) -> str:
    """The API's base URL: the one given, else ``AKOOL_BASE_URL``, else ``default``."""
    if explicit is not None and not isinstance(explicit, str):
        raise InvalidSettingError("base_url", explicit, "an http:// or https:// URL, or None")
    url = explicit or os.environ.get("AKOOL_BASE_URL") or default
    return setting_url("base_url", url).rstrip("/")


def check_job(job: object, field: str = "job") -> None:
    """A job to follow: an ``ImageJob`` or a job id."""
    if isinstance(job, str):
        check_job_id(job, field)
    elif not isinstance(job, ImageJob):
        raise ValidationError(field, job, "an ImageJob or a job id (str)")


GENERATE_OPTIONS = frozenset(
    a.name for a in attrs.fields(SourcePromptRequest) if a.name not in ("prompt", "batch_quantity")
)


def check_generate_options(options: Mapping[str, object]) -> None:
    """``generate``'s ``**options`` are ``create_by_source_prompt``'s (a typo must not be
    a ``TypeError`` from deep inside)."""
    for name in sorted(set(options) - GENERATE_OPTIONS):
        raise ValidationError(
            name, options[name], f"an option of create_by_source_prompt: "
            f"{', '.join(sorted(GENERATE_OPTIONS))}",
        )  # fmt: skip
