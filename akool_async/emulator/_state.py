"""The emulated Akool service behind the HTTP layer: accounts, jobs, credits, counters.

A job's status is not stored but computed from the clock (queueing, then processing,
then its drawn outcome), so no task runs per job. Where the docs are silent:

- a v3 first result and a V follow-up are 2x2 grids: ``image`` is the grid, built pixel
  for pixel from four distinct part PNGs, and ``upscaled_urls`` lists the parts, filled
  ``parts_delay`` emulated seconds after status 3 (default 3 s, 0 with ``instant``).
  Evidence: Akool's demo app (AKOOL-Official/akool-image-generation) polls until status 3
  *and* a non-empty ``upscaled_urls``, then shows those four images; the docs' result
  example (status 3, eight buttons, ``upscaled_urls: []``) is such a grid before its
  parts. The delay itself is undocumented: a few seconds matches "keeps polling". A
  grid's status-3 callback carries ``url`` = the grid and no callback follows when the
  parts come (what Akool sends is not documented: a client must poll for the parts);
- a v4 job is one image (one job per image of a batch, as the v4 page shows), with empty
  ``upscaled_urls``; it offers U1-U4 and V1-V4 like every finished generation, and ``n``
  in U``n``/V``n`` only changes the result's seed;
- a U follow-up is one image, twice its parent's image in width and height (the "4K
  upscale": larger than the grid it came from), with empty ``upscaled_urls`` (the demo's
  test for a U result) and no buttons of its own; a V follow-up is a grid with all eight
  buttons;
- status answers carry ``prompt``, ``origin_prompt`` and ``source_image`` as the create
  answer does (the demo reads them from status); a button job's ``source_image`` is its
  parent's (the image it was made from);
- ``type``: 4 in every answer about a v4 job (the v4 page's examples), 4 in the v3
  createbyprompt answer (the v3 page's create example) and 3 in status answers about v3
  and button jobs (the v3 page's result example). So a v3 job's ``type`` changes between
  its create and its status answers, as the docs show it; what ``type`` means is not
  documented, and clients must not tell v3 from v4 by it (``akool_async._grid.told_by``);
- a v4 batch is one job per image, each with its own ``create_time`` (1 ms apart, as the
  v4 page's batch example) and its own ``file_name`` (``ImageGenerator_<create_time>.png``,
  as its single example);
- ``create_time`` is on the wall clock whatever ``time_scale`` is (ages and the 7-day
  expiry a client computes from it stay true); statuses run on the emulated clock;
- a button on an unfinished or failed parent gives 1010, a used one 1011, an unknown one
  1003, and a parent of another account 1008;
- the faults 1009 (no permission) and 1200 (account banned), like 1005 and 429, hit every
  API endpoint (createBySourcePrompt, createbyprompt, createbybutton, infobymodelid,
  quota/info and getToken; ``Faults.endpoints`` narrows them), never image downloads
  (the CDN knows no accounts). They are answered before the credentials are checked:
  they stand for a refusal of the whole request, which does nothing (no job, no charge),
  so good credentials are not needed to draw one and a test of a client's handling needs
  none; a client cannot see the order anyway, as it only sees the code;
- credits are charged when a job is created and not refunded when it fails;
- a batch that the balance cannot pay for in full is refused whole (1104).
"""

from __future__ import annotations

import json
import math
import random
import secrets
from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs

from .._clock import SYSTEM_CLOCK, WallClock
from .._models import Button, ImageStatus
from ._config import EmulatorConfig

Clock = Callable[[], float]
BUTTONS = tuple(b.value for b in Button)
PARTS = (1, 2, 3, 4)


class EmulatedError(Exception):
    """A business failure the service answers with ``code`` (HTTP 200, like Akool)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ScaledClock:
    """Emulated epoch seconds that run ``time_scale`` times faster than ``real`` (the
    package's clock: ``_clock``), read from its monotonic and wall readings."""

    def __init__(self, time_scale: float, real: WallClock = SYSTEM_CLOCK) -> None:
        self.time_scale = time_scale
        self.real = real
        self._wall, self._monotonic = real.wall(), real.now()
        self._start = self._wall  # the emulated time at the anchor (_wall, _monotonic)

    def __call__(self) -> float:
        return self._start + (self.real.now() - self._monotonic) * self.time_scale

    def resume_from(self, emulated: float) -> None:
        """Go on from ``emulated`` (a saved clock), unless this clock is already past it."""
        if emulated > self():
            self._wall, self._monotonic, self._start = self.real.wall(), self.real.now(), emulated

    def wall_time(self, emulated: float) -> float:
        """The real epoch time at which the emulated clock shows ``emulated``."""
        return self._wall + (emulated - self._start) / self.time_scale


@attrs.define(slots=True)
class Account:
    uid: int
    api_key: str
    client_id: str
    credit: float
    tokens: set[str] = attrs.Factory(set)


@attrs.define(slots=True, eq=False)
class Job:
    id: str
    kind: str  # "v4", "v3" or "button"
    account: Account
    created: float
    queued_until: float
    done_at: float
    outcome: ImageStatus
    credit: int
    scale: str
    resolution: str
    base_url: str
    prompt: str = ""
    source_image: str = ""
    model_name: str = ""
    sub_type: int = 0
    webhook_url: str | None = None
    parent_id: str | None = None
    op_button: str | None = None
    op_button_message_id: str | None = None
    empty_image: bool = False
    parts_delay: float = 0.0
    created_wall: float = 0.0  # real epoch seconds of creation: its create_time
    buttons: list[str] = attrs.Factory(list)
    used_buttons: list[str] = attrs.Factory(list)

    def status(self, now: float) -> ImageStatus:
        if now < self.queued_until:
            return ImageStatus.QUEUEING
        if now < self.done_at:
            return ImageStatus.PROCESSING
        return self.outcome

    @property
    def image_url(self) -> str:
        return f"{self.base_url}/_emulator/images/{self.id}.png"

    @property
    def part_urls(self) -> list[str]:
        return [f"{self.base_url}/_emulator/images/{self.id}-{k}.png" for k in PARTS]

    @property
    def is_upscale(self) -> bool:
        return self.op_button is not None and self.op_button.startswith("U")

    @property
    def is_grid(self) -> bool:
        """A v3 first result or a V follow-up: a 2x2 grid with four parts."""
        return self.kind == "v3" or (self.op_button is not None and self.op_button[0] == "V")

    def parts_ready(self, now: float) -> bool:
        return (
            self.is_grid
            and self.status(now) == ImageStatus.COMPLETED
            and now >= self.done_at + self.parts_delay
        )


@attrs.define
class Counters:
    """What tests and benchmarks assert on; ``snapshot()`` is the admin route's JSON."""

    requests: Counter[str] = attrs.Factory(Counter)
    creates: Counter[str] = attrs.Factory(Counter)
    faults: Counter[str] = attrs.Factory(Counter)
    ignored_fields: Counter[str] = attrs.Factory(Counter)
    rate_limited: int = 0
    jobs_created: int = 0
    credits_charged: float = 0
    callbacks_sent: int = 0
    callbacks_failed: int = 0
    callback_attempts: int = 0

    @property
    def duplicate_creates(self) -> dict[str, int]:
        """Create requests seen more than once with the same prompt and parameters."""
        return {key: n for key, n in self.creates.items() if n > 1}

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "creates": sum(self.creates.values()),
            "duplicate_creates": self.duplicate_creates,
            "faults": dict(self.faults),
            "ignored_fields": dict(self.ignored_fields),
            "rate_limited": self.rate_limited,
            "jobs_created": self.jobs_created,
            "credits_charged": self.credits_charged,
            "callbacks_sent": self.callbacks_sent,
            "callbacks_failed": self.callbacks_failed,
            "callback_attempts": self.callback_attempts,
        }


class _TokenBucket:
    """Per-key request budget on real time: ``rate`` per second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int, real: WallClock) -> None:
        self.rate, self.burst, self.real = rate, burst, real
        self.tokens, self.updated = float(burst), real.now()

    def take(self) -> bool:
        now = self.real.now()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Backend:
    """The service's state and rules, driven by the HTTP layer."""

    def __init__(
        self, config: EmulatorConfig, clock: Clock | None = None, real: WallClock = SYSTEM_CLOCK
    ) -> None:
        self.config = config
        self.real = real  # real time: rate limits and callback delivery run on it
        self.clock = clock or ScaledClock(config.time_scale, real)
        self.rng = random.Random(config.seed)
        self.counters = Counters()
        self.jobs: dict[str, Job] = {}
        self.accounts: dict[str, Account] = {}
        self._buckets: dict[str, _TokenBucket] = {}
        self.on_job_created: Callable[[Job], None] | None = None
        self.default_account = self.add_account(
            config.api_key, config.client_id, config.credits.balance
        )

    def add_account(self, api_key: str, client_id: str, credit: float) -> Account:
        account = Account(uid=378337 + len(self.accounts), api_key=api_key,
                          client_id=client_id, credit=credit)  # fmt: skip
        self.accounts[api_key] = account
        return account

    # -- auth and limits ----------------------------------------------------------------

    def authenticate(self, authorization: str | None, api_key: str | None) -> Account:
        """Authorization wins over x-api-key when both come, as Akool documents."""
        if authorization:
            scheme, _, token = authorization.partition(" ")
            for account in self.accounts.values():
                if scheme.lower() == "bearer" and token in account.tokens:
                    return account
            raise EmulatedError(1101, "Invalid authorization or the request token has expired")
        if api_key:
            if api_key in self.accounts:
                return self.accounts[api_key]
            raise EmulatedError(1101, "Invalid authorization or the request token has expired")
        raise EmulatedError(1102, "Authorization cannot be empty")

    def issue_token(self, client_id: object, client_secret: object) -> str:
        account = self.accounts.get(client_secret) if isinstance(client_secret, str) else None
        if account is None or account.client_id != client_id:
            raise EmulatedError(1101, "Invalid clientId or clientSecret")
        token = secrets.token_urlsafe(24)
        account.tokens.add(token)
        return token

    def expire_tokens(self) -> None:
        """Make every issued token invalid (to exercise a client's refresh)."""
        for account in self.accounts.values():
            account.tokens.clear()

    def within_rate_limit(self, account: Account) -> bool:
        if self.config.rate_limit is None:
            return True
        bucket = self._buckets.get(account.api_key)
        if bucket is None:
            bucket = self._buckets[account.api_key] = _TokenBucket(
                self.config.rate_limit, self.config.rate_burst, self.real
            )
        if bucket.take():
            return True
        self.counters.rate_limited += 1
        return False

    # -- jobs ---------------------------------------------------------------------------

    def new_id(self) -> str:
        return f"{self.rng.getrandbits(96):024x}"

    def _timing(self, now: float) -> tuple[float, float]:
        if self.config.instant:
            return now, now
        total = max(0.0, self.config.durations.draw(self.rng))
        return now + total * self.config.queue_fraction, now + total

    def _parts_delay(self) -> float:
        return 0.0 if self.config.instant else self.config.parts_delay

    def _wall(self, emulated: float) -> float:
        """Real epoch seconds of an emulated moment; a clock that is not scaled (a test's
        manual clock) is taken as it is."""
        wall = self.wall_time(emulated)
        return emulated if wall is None else wall

    def _outcome(self) -> ImageStatus:
        failed = self.config.fail_rate and self.rng.random() < self.config.fail_rate
        return ImageStatus.FAILED if failed else ImageStatus.COMPLETED

    def _charge(self, account: Account, amount: float) -> None:
        if account.credit < amount:
            raise EmulatedError(1104, "Insufficient credit")
        account.credit -= amount
        self.counters.credits_charged += amount

    def create_generation(
        self, account: Account, kind: str, params: dict[str, Any], *, count: int, base_url: str,
        fingerprint: str,
    ) -> list[Job]:  # fmt: skip
        """Create ``count`` images of a v4 or v3 request, charging each."""
        cost = self.config.credits.v4_image if kind == "v4" else self.config.credits.v3_image
        self._charge(account, cost * count)
        now = self.clock()
        first_ms = ms(self._wall(now))
        jobs = []
        for k in range(count):
            queued_until, done_at = self._timing(now)
            job = Job(
                id=self.new_id(), kind=kind, account=account, created=now,
                queued_until=queued_until, done_at=done_at, outcome=self._outcome(),
                credit=cost, base_url=base_url, **params,
                empty_image=self.rng.random() < self.config.empty_image_rate,
                parts_delay=self._parts_delay(),
                # 1 ms apart, so each has its own create_time and file_name (mid-ms: ms()
                # floors it back exactly)
                created_wall=(first_ms + k + 0.5) / 1000,
            )  # fmt: skip
            job.buttons = list(BUTTONS)
            jobs.append(job)
        self._register(jobs, fingerprint)
        return jobs

    def press_button(
        self, account: Account, parent_id: str, button: str, webhook_url: str | None, base_url: str
    ) -> Job:
        parent = self.jobs.get(parent_id)
        if parent is None or parent.account is not account:
            raise EmulatedError(1008, "The content you get does not exist")
        if button not in BUTTONS:
            raise EmulatedError(
                1003, f"Parameter error: button must be one of {', '.join(BUTTONS)}"
            )
        now = self.clock()
        if parent.status(now) != ImageStatus.COMPLETED:
            raise EmulatedError(1010, "You can not operate this content: it is not completed")
        if button in parent.used_buttons:
            raise EmulatedError(1011, f"This content has already been operated: {button} used")
        if button not in parent.buttons:
            raise EmulatedError(1010, f"You can not operate this content: {button} not offered")
        self._charge(account, self.config.credits.button)
        parent.buttons.remove(button)
        parent.used_buttons.append(button)
        queued_until, done_at = self._timing(now)
        upscale = button.startswith("U")
        job = Job(
            id=self.new_id(), kind="button", account=account, created=now,
            queued_until=queued_until, done_at=done_at, outcome=self._outcome(),
            credit=self.config.credits.button, base_url=base_url, prompt=parent.prompt,
            source_image=parent.source_image, scale=parent.scale,
            resolution="4k" if upscale else parent.resolution, webhook_url=webhook_url,
            parent_id=parent.id, op_button=button,
            op_button_message_id=secrets.token_urlsafe(15)[:20],
            buttons=[] if upscale else list(BUTTONS), parts_delay=self._parts_delay(),
            created_wall=self._wall(now),
        )  # fmt: skip
        self._register([job], f"button {parent.id} {button}")
        return job

    def _register(self, jobs: list[Job], fingerprint: str) -> None:
        self.counters.creates[fingerprint] += 1
        self.counters.jobs_created += len(jobs)
        for job in jobs:
            self.jobs[job.id] = job
            if job.webhook_url and self.on_job_created is not None:
                self.on_job_created(job)

    def find(self, account: Account, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None or job.account is not account:
            raise EmulatedError(1008, "The content you get does not exist")
        return job

    def is_expired(self, job: Job) -> bool:
        return self.clock() > job.done_at + self.config.image_ttl

    def wall_time(self, emulated: float) -> float | None:
        """Real epoch seconds of an emulated time (None on a clock that is not scaled)."""
        return self.clock.wall_time(emulated) if isinstance(self.clock, ScaledClock) else None

    def transitions(self, job: Job) -> list[tuple[float, ImageStatus]]:
        """When a job's status changes after creation: processing, then its outcome."""
        changes = []
        if job.queued_until > job.created:
            changes.append((job.queued_until, ImageStatus.PROCESSING))
        changes.append((job.done_at, job.outcome))
        return changes


def fingerprint(endpoint: str, body: dict[str, Any]) -> str:
    """The (prompt, parameters) of a create, to count duplicate submissions."""
    ignored = {"webhookurl", "webhookUrl"}
    return (
        endpoint
        + " "
        + json.dumps(
            {k: v for k, v in body.items() if k not in ignored}, sort_keys=True, default=str
        )
    )


def ms(seconds: float) -> int:
    return math.floor(seconds * 1000)
