"""Checks of the plain arguments of the public entry points (timeouts, counts, rates,
option objects): each bad value raises ``ValidationError`` naming the argument, the value
and what is allowed, before anything is sent. Pure functions. Settings (the client's and
the policies') raise ``InvalidSettingError``, a ``ValidationError`` that is also a
``ConfigurationError``; a call's own arguments plain ``ValidationError``."""

from __future__ import annotations

import math
from typing import TypeVar

from ._exceptions import InvalidSettingError, ValidationError

T = TypeVar("T")

# A longer timeout is surely a mistake, and sockets refuse timeouts past what a C timeval
# holds: a day for one request, ten years for waiting on jobs.
MAX_REQUEST_TIMEOUT = 86_400.0
MAX_WAIT_TIMEOUT = 10 * 365 * 86_400.0


def check_number(
    field: str, value: object, *, minimum: float = 0.0, maximum: float = math.inf,
    allow_minimum: bool = False, error: type[ValidationError] = InvalidSettingError,
) -> float:  # fmt: skip
    """A finite real number (not a bool, not a string) above ``minimum``, at most ``maximum``."""
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value >= minimum if allow_minimum else value > minimum)
        and value <= maximum
    ):
        return float(value)
    low = f"at least {minimum:g}" if allow_minimum else f"more than {minimum:g}"
    high = "" if maximum == math.inf else f" and at most {maximum:g}"
    raise error(field, value, f"a finite number {low}{high}")


def check_timeout(
    field: str, value: object, *, maximum: float = MAX_REQUEST_TIMEOUT,
    error: type[ValidationError] = ValidationError,
) -> float:  # fmt: skip
    """Seconds: a finite number above 0, at most ``maximum``."""
    return check_number(field, value, maximum=maximum, error=error)


def optional_timeout(
    field: str, value: object, *, maximum: float = MAX_REQUEST_TIMEOUT
) -> float | None:
    """A call's timeout: None (the client's) or seconds."""
    return None if value is None else check_timeout(field, value, maximum=maximum)


def check_count(
    field: str, value: object, *, minimum: int = 1, maximum: int = 1_000_000,
    error: type[ValidationError] = InvalidSettingError,
) -> int:  # fmt: skip
    """An ``int`` (not a bool, not a string, not a float) from ``minimum`` to ``maximum``."""
    if isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= maximum:
        return value
    raise error(field, value, f"an integer, at least {minimum} and at most {maximum}")


def check_rate(field: str, value: object) -> float:
    """Requests per second: a finite number above zero."""
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    ):
        return float(value)
    raise InvalidSettingError(field, value, "a positive, finite number of requests per second")


def check_optional(
    field: str, value: T | None, cls: type[T] | tuple[type, ...], what: str
) -> T | None:
    """``value`` if it is None or an instance of ``cls``."""
    if value is None or isinstance(value, cls):
        return value
    raise InvalidSettingError(field, value, f"{what} or None")


def check_secret(field: str, value: object) -> str | None:
    """A credential: None or a str. Never shown or kept in the error (only its type)."""
    if value is None or isinstance(value, str):
        return value
    raise InvalidSettingError(field, value, "a str (or None to read the environment)", secret=True)


def is_header_safe(value: str) -> bool:
    """Visible ASCII only: what an API key or token may hold in an HTTP header."""
    return bool(value) and value.isascii() and value.isprintable() and " " not in value
