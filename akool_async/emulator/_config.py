"""How the emulator behaves: durations, failures, faults, limits and credits. Seeded."""

from __future__ import annotations

import math
import random
from typing import Protocol

import attrs

from .._defaults import IMAGE_LIFETIME

SEVEN_DAYS = IMAGE_LIFETIME  # the service's figure


class Durations(Protocol):
    """Draws how long one image takes, in emulated seconds."""

    def draw(self, rng: random.Random) -> float: ...


@attrs.frozen
class LogNormal:
    """Log-normal durations around ``median`` seconds (the real service: ~30 s per image)."""

    median: float = 30.0
    sigma: float = 0.35

    def draw(self, rng: random.Random) -> float:
        return rng.lognormvariate(math.log(self.median), self.sigma)


@attrs.frozen
class Fixed:
    """Every image takes exactly ``seconds``."""

    seconds: float

    def draw(self, rng: random.Random) -> float:
        return self.seconds


@attrs.frozen(kw_only=True)
class Faults:
    """Per-request probabilities of misbehaving, drawn from the seeded generator.

    Faults that mean "nothing was done" (429, 1005, 1108, 1009, 1200) strike before the
    request is handled. Faults of the transport or the answer (5xx, a dropped connection, malformed
    JSON, an HTML page, slowness) strike after it was handled: a create has then created and
    charged its jobs, which is the case a client must never retry blindly.
    """

    http_5xx: float = 0.0
    http_429: float = 0.0
    retry_after: float = 1.0
    code_1005: float = 0.0
    code_1108: float = 0.0
    code_1009: float = 0.0  # no permission
    code_1200: float = 0.0  # account banned
    slow: float = 0.0
    slow_seconds: float = 0.5
    drop_connection: float = 0.0
    malformed_json: float = 0.0
    html_error: float = 0.0
    # After handling too, answers that prove nothing either: a proxy's bare 403 page, and
    # a business code (1108) inside a 503, as a gateway may pass on a failure it met late.
    proxy_4xx: float = 0.0
    code_in_5xx: float = 0.0
    endpoints: frozenset[str] | None = None  # endpoint names faults apply to; None: all API ones

    @property
    def any(self) -> bool:
        return any(
            (self.http_5xx, self.http_429, self.code_1005, self.code_1108, self.code_1009,
             self.code_1200, self.slow, self.drop_connection, self.malformed_json,
             self.html_error, self.proxy_4xx, self.code_in_5xx)
        )  # fmt: skip


@attrs.frozen(kw_only=True)
class Credits:
    """What each image costs and what the account starts with. The docs say 1 credit per v4
    image; the v3 and button examples show 2. Failed jobs are not refunded (the docs are
    silent; charging is the conservative reading for a client's budget)."""

    balance: float = 100_000
    v4_image: int = 1
    v3_image: int = 2
    button: int = 2


@attrs.frozen(kw_only=True)
class EmulatorConfig:
    """Everything the emulator can be told. ``instant=True`` removes all waiting."""

    seed: int | None = 0
    time_scale: float = 1.0  # emulated seconds per real second (1000: a 30 s job in 30 ms)
    instant: bool = False
    durations: Durations = LogNormal()
    queue_fraction: float = 0.2  # share of a job's time spent queueing before processing
    fail_rate: float = 0.0  # share of jobs that end failed (status 4)
    image_ttl: float = SEVEN_DAYS  # emulated seconds a result stays downloadable
    image_max_side: int | None = 512  # scale PNGs down to this for speed; None: full size
    empty_image_rate: float = 0.0  # share of finished jobs answering image "" + upscaled_urls
    # Emulated seconds after status 3 at which a grid's four parts fill upscaled_urls
    # (Akool's demo shows they can come late; how late is not known). 0 with instant.
    parts_delay: float = 3.0
    string_numbers: bool = False  # send numbers as strings, as some endpoints do
    rate_limit: float | None = None  # requests per second per key; None: unlimited
    rate_burst: int = 10
    faults: Faults = Faults()
    credits: Credits = Credits()
    webhook_attempts: int = 3  # callbacks not answered 200 are tried this many times in all
    webhook_retry_delay: float = 5.0  # emulated seconds between callback attempts
    api_key: str = "emulator-test-key-0123456789abcd"  # 32 bytes: AES-256 for webhooks
    client_id: str = "emulator-client-id"

    def __attrs_post_init__(self) -> None:
        if self.time_scale <= 0:
            raise ValueError("time_scale must be positive")
        if len(self.api_key.encode()) not in (16, 24, 32):
            raise ValueError("api_key must be 16, 24 or 32 bytes: it is the webhook AES key")
        if self.parts_delay < 0:
            raise ValueError("parts_delay must not be negative")
        for name in ("fail_rate", "empty_image_rate", "queue_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
