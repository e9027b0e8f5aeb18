"""When to try a request again, and how long to wait first.

Reads retry freely. Creates spend credits, so they retry only on answers that prove
nothing was created: the connection never opened, HTTP 429, codes 1005 and 1108.
Anything else after which the server may have acted (a read timeout, a dropped connection,
a 5xx, a proxy's bare 3xx/4xx page, a business code inside a 5xx) is turned into
``SubmissionUncertainError`` by the client and never retried: a create is "refused"
(safe to send again) only when its failure proves the server did not take it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs
import stamina

from . import _defaults as d
from ._api_errors import GenerationError
from ._arguments import check_count, check_number
from ._exceptions import (
    AkoolError,
    APIError,
    ConnectError,
    InvalidSettingError,
    NetworkError,
    RequestTimeoutError,
    ServerError,
    ThrottledError,
    TooManyRequestsError,
)

T = TypeVar("T")

# The failures a create is sent again after, once ``proves_nothing_created`` let them
# through (a 1108 or a 1005 inside a 5xx does not: it is uncertain, never retried). Any
# failure not proving that nothing was created (the answer lost, a 5xx, unreadable, a
# proxy's page) is reported as SubmissionUncertainError: see ``may_have_created``.
NOTHING_CREATED = (ConnectError, ThrottledError, GenerationError)
# A read is sent again after any transient failure.
READ_RETRYABLE = (
    ConnectError,
    ThrottledError,
    RequestTimeoutError,
    NetworkError,
    ServerError,
)


def may_have_created(exc: AkoolError) -> bool:
    """Whether a create sent and failed with ``exc`` may exist on the server: unless the
    failure proves otherwise, it may."""
    return not proves_nothing_created(exc)


def proves_nothing_created(exc: AkoolError) -> bool:
    """The request never left (no connection), was throttled (HTTP 429), or Akool answered
    with its own refusal: a business code in a 2xx answer (as documented) or a 4xx. A
    bare 3xx/4xx page is some proxy's, and a business code inside a 5xx a failure met
    somewhere on the way: neither says whether the create was taken."""
    if isinstance(exc, ConnectError | TooManyRequestsError):
        return True
    if isinstance(exc, APIError):
        status = exc.http_status
        return status is None or 200 <= status < 300 or 400 <= status < 500
    return False


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How hard to try: attempts, total time, and jittered exponential back-off.

    ``max_retry_after`` caps how long a server's Retry-After may make us wait.
    ``wait=False`` removes every wait (for tests), keeping the attempts.
    """

    attempts: int = d.RETRY_ATTEMPTS
    timeout: float | None = d.RETRY_TIMEOUT
    wait_initial: float = d.RETRY_WAIT_INITIAL
    wait_max: float = d.RETRY_WAIT_MAX
    wait_jitter: float = d.RETRY_WAIT_JITTER
    wait_exp_base: float = d.RETRY_WAIT_EXP_BASE
    max_retry_after: float = d.MAX_RETRY_AFTER
    wait: bool = True

    def __attrs_post_init__(self) -> None:
        check_count("RetryPolicy.attempts", self.attempts, maximum=1000)
        if self.timeout is not None:
            check_number("RetryPolicy.timeout", self.timeout)
        for name in ("wait_initial", "wait_max", "wait_jitter", "max_retry_after"):
            check_number(f"RetryPolicy.{name}", getattr(self, name), allow_minimum=True)
        check_number("RetryPolicy.wait_exp_base", self.wait_exp_base, minimum=1, allow_minimum=True)
        if not isinstance(self.wait, bool):
            raise InvalidSettingError("RetryPolicy.wait", self.wait, "True or False")

    def backoff_hook(
        self,
        *,
        creates: bool,
        also: tuple[type[Exception], ...] = (),
        endpoint: str | None = None,
        paced: bool = False,
    ) -> Callable[[Exception], bool | float]:
        """stamina's ``on=`` hook: whether to retry ``exc``, or how many seconds to wait.

        With ``endpoint``, failures of another endpoint (a token fetch made on the way,
        which has its own retries) are not retried again here. ``paced``: a shared rate
        limiter slows everyone down after a throttle, so the retry itself need not wait.
        """
        retryable = (NOTHING_CREATED if creates else READ_RETRYABLE) + also

        def hook(exc: Exception) -> bool | float:
            if not isinstance(exc, retryable):
                return False
            if endpoint is not None and getattr(exc, "endpoint", endpoint) != endpoint:
                return False
            if paced and isinstance(exc, ThrottledError):
                return 0.0
            if isinstance(exc, ThrottledError) and exc.retry_after is not None:
                return min(exc.retry_after, self.max_retry_after) if self.wait else 0.0
            return True

        return hook

    async def call(
        self,
        send: Callable[[], Awaitable[T]],
        *,
        creates: bool,
        also: tuple[type[Exception], ...] = (),
        endpoint: str | None = None,
        paced: bool = False,
    ) -> T:
        """Run ``send`` under this policy (``also``: more errors a read may retry).

        The first attempt runs outside stamina: its set-up costs ~20 µs a call, which a
        request that succeeds (nearly all of them) should not pay.
        """
        try:
            return await send()
        except Exception as exc:
            hook = self.backoff_hook(creates=creates, also=also, endpoint=endpoint, paced=paced)
            # The hook answers False, True or a wait in seconds (which may be 0.0).
            if self.attempts == 1 or hook(exc) is False:
                raise
            first_failure: Exception | None = exc
        async for attempt in stamina.retry_context(
            on=hook,
            attempts=self.attempts,
            timeout=self.timeout,
            wait_initial=self.wait_initial if self.wait else 0.0,
            wait_max=self.wait_max if self.wait else 0.0,
            wait_jitter=self.wait_jitter if self.wait else 0.0,
            wait_exp_base=self.wait_exp_base,
        ):
            with attempt:
                if first_failure is not None:
                    # Replay the first failure so stamina schedules its back-off (or the
                    # server's Retry-After) before the second attempt.
                    failure, first_failure = first_failure, None
                    raise failure
                return await send()
        raise AssertionError("unreachable: stamina re-raises the last failure")  # pragma: no cover
