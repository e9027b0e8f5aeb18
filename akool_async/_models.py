"""The API's values and answers as frozen attrs models.

The server adds fields and values over time, so the models tolerate both: unknown keys
land in ``extra``; unknown statuses and buttons become members of their enum that are
kept as they came and are never terminal.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Self

import attrs

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class ImageStatus(enum.IntEnum):
    """``image_status``: where a job is in its life. Values the server adds later are kept."""

    QUEUEING = 1
    PROCESSING = 2
    COMPLETED = 3
    FAILED = 4

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        # An unknown status is kept as a pseudo-member so it round-trips and compares
        # equal to its number; it is never terminal, so waiting goes on.
        if isinstance(value, int) and not isinstance(value, bool):
            member = int.__new__(cls, value)
            member._name_ = f"UNKNOWN_{value}"
            member._value_ = value
            return member
        return None

    @property
    def is_known(self) -> bool:
        return self._name_ in type(self).__members__

    @property
    def is_terminal(self) -> bool:
        """Completed or failed: the status will not change again."""
        return self in _TERMINAL


_TERMINAL = frozenset({ImageStatus.COMPLETED, ImageStatus.FAILED})


class Button(enum.StrEnum):
    """A follow-up on a finished image: ``U1``-``U4`` upscale image n to 4K, ``V1``-``V4``
    make a variation of image n. Image n is ``images[n-1]`` of the parent job: a part of
    its 2x2 grid (v3 first results, V results), or its one image (v4 jobs)."""

    U1 = "U1"
    U2 = "U2"
    U3 = "U3"
    U4 = "U4"
    V1 = "V1"
    V2 = "V2"
    V3 = "V3"
    V4 = "V4"

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        # Buttons the server offers later are kept as they came (see ImageStatus).
        if isinstance(value, str) and value:
            member = str.__new__(cls, value)
            member._name_ = value
            member._value_ = value
            return member
        return None

    @property
    def is_known(self) -> bool:
        return self._name_ in type(self).__members__

    @property
    def is_upscale(self) -> bool:
        return self.is_known and self.value.startswith("U")

    @property
    def is_variation(self) -> bool:
        return self.is_known and self.value.startswith("V")

    @property
    def image_index(self) -> int | None:
        """Which image of the parent (1-4) the button acts on, for known buttons."""
        return int(self.value[1]) if self.is_known else None


class JobSource(enum.Enum):
    """How the client learned what an ``ImageJob`` says."""

    ANSWER = "answer"  # an API answer: a create, a poll, a look-up (buttons included)
    CALLBACK = "callback"  # a webhook callback: status and URL only (no buttons, no parts)


@attrs.frozen
class ImageJob:
    """One image job as the server last described it (any endpoint: v3, v4 or a button).

    A create answers with the job at status 1; ``info_by_model_id`` answers with it later,
    with ``image`` set once it is completed. Fields the server did not send are ``None``
    (or empty); fields this library does not know are in ``extra``.

    Two shapes of result (see ``images``):
    - a **grid** job (a v3 first result, a V1-V4 result): ``image`` is a 2x2 grid and
      ``upscaled_urls`` its four parts, which may arrive after status 3;
    - a **single** image (a U1-U4 result, a v4 job): ``image``, ``upscaled_urls`` empty
      (some v4 answers put the URL in ``upscaled_urls`` and leave ``image`` empty).

    ``parts_missing`` is not the server's: it is True on a grid job that waiting returned
    without its parts, because they had not come when the grace period
    (``PollPolicy.parts_grace``) ran out. Nor is ``source``: whether a webhook callback
    brought the job (``JobSource.CALLBACK``) or an API answer did; it does not take part
    in comparisons. (A callback's job also has ``extra["via"] == "webhook"``, deprecated:
    read ``source``.)
    """

    id: str
    status: ImageStatus
    image: str | None = None
    buttons: tuple[Button, ...] = ()
    used_buttons: tuple[Button, ...] = ()
    upscaled_urls: tuple[str, ...] = ()
    deduction_credit: int | float | None = None
    create_time: int | None = None
    parent_id: str | None = None
    op_button: Button | None = None
    op_button_message_id: str | None = None
    prompt: str | None = None
    origin_prompt: str | None = None
    source_image: str | None = None
    model_name: str | None = None
    provider: str | None = None
    file_name: str | None = None
    uid: int | None = None
    team_id: str | None = None
    image_sub_status: int | None = None
    type: int | None = None
    from_: int | None = None
    sub_type: int | None = None
    faceswap_quality: int | None = None
    extra: Mapping[str, Any] = attrs.field(default=_EMPTY, hash=False)
    external_img: str | None = attrs.field(default=None, kw_only=True)
    parts_missing: bool = attrs.field(default=False, kw_only=True)
    source: JobSource = attrs.field(default=JobSource.ANSWER, kw_only=True, eq=False)

    @property
    def from_callback(self) -> bool:
        """A webhook callback brought it: no buttons, no grid parts (look it up for them)."""
        return self.source is JobSource.CALLBACK

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def url(self) -> str | None:
        """One URL for the result: ``image``, else ``external_img`` (its stand-in, as Akool's
        demo reads it), else ``upscaled_urls[0]`` (where some v4 answers put it).

        For a single image (U result, v4 job) that is the image. For a grid job (v3 first
        result, V result) it is the 2x2 grid: its four images are ``images``.
        """
        if self.image or self.external_img:
            return self.image or self.external_img
        return self.upscaled_urls[0] if self.upscaled_urls else None

    @property
    def images(self) -> tuple[str, ...]:
        """The individual images: ``upscaled_urls`` when present (a grid's four parts),
        else ``image``, else ``external_img`` (the fallback Akool's own demo reads).
        ``U<n>``/``V<n>`` act on ``images[n-1]``."""
        if self.upscaled_urls:
            return self.upscaled_urls
        single = self.image or self.external_img
        return (single,) if single else ()

    @property
    def grid(self) -> str | None:
        """The 2x2 grid image, kept apart from ``images`` once the parts are there (several
        of them: one upscaled URL beside ``image`` is a single image's, not a grid's)."""
        whole = self.image or self.external_img
        if whole and len(self.upscaled_urls) > 1 and whole not in self.upscaled_urls:
            return whole
        return None

    @property
    def created_at(self) -> datetime | None:
        if self.create_time is None:
            return None
        return datetime.fromtimestamp(self.create_time / 1000, tz=UTC)


@attrs.frozen
class CreditInfo:
    """The account's credit balance (shared by all Akool products)."""

    credit: int | float
    extra: Mapping[str, Any] = attrs.field(default=_EMPTY, hash=False)


@attrs.frozen(repr=False)
class Token:
    """A bearer token from getToken. Its value never appears in a repr."""

    token: str
    extra: Mapping[str, Any] = attrs.field(default=_EMPTY, hash=False)

    def __repr__(self) -> str:
        return "Token(<redacted>)"


@attrs.frozen
class WebhookEvent:
    """A webhook callback's decrypted event: a job's status, and its image URL once completed
    (see ``_webhook_crypto`` for reading and sealing one)."""

    job_id: str
    status: ImageStatus
    type: str | None = None
    url: str | None = None
    extra: Mapping[str, Any] = attrs.field(default=_EMPTY, hash=False)

    def as_dict(self) -> dict[str, Any]:
        """The event as Akool's JSON (``None`` fields left out), e.g. for ``seal_event``."""
        event: dict[str, Any] = {**self.extra, "_id": self.job_id, "status": int(self.status)}
        if self.type is not None:
            event["type"] = self.type
        if self.url is not None:
            event["url"] = self.url
        return event
