"""Request models. Building one validates it, so a request the server would reject raises
``ValidationError`` before anything is sent and no credit is spent.

The checks here are about shape (types, ranges, text a JSON body and an HTTP request can
carry); the sizes a client accepts are ``RequestLimits``, checked when it submits.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

from . import _defaults as d
from ._exceptions import InvalidSettingError, ValidationError
from ._models import Button, ImageJob, ImageStatus

SCALES = ("1:1", "3:2", "4:3", "16:9", "2:3", "3:4", "9:16")
ORIGINAL_SCALE = "Original"
RESOLUTIONS = ("1080p", "4k")
TEXT_TO_IMAGE_MODEL = "wavespeed-ai/flux-krea-dev-lora"
IMAGE_TO_IMAGE_MODEL = "wavespeed-ai/flux-kontext-dev"
MAX_BATCH_QUANTITY = 4

Scale = Literal["1:1", "3:2", "4:3", "16:9", "2:3", "3:4", "9:16", "Original"]
Resolution = Literal["1080p", "4k"]
ButtonName = Literal["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4"]

# Characters no prompt needs and JSON or the server may choke on: C0/C1 controls other than
# tab and line breaks, and lone surrogates (they cannot be encoded as UTF-8 at all).
_BAD_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
MAX_JOB_ID_CHARS = 128  # Akool's ids are 24 hex digits; far longer is surely not an id


@attrs.frozen(kw_only=True)
class RequestLimits:
    """The largest requests a client sends; bigger ones raise ``ValidationError`` before
    anything leaves. Akool publishes no limits, so these are where it would surely refuse,
    or where the request is surely a mistake:

    - ``max_prompt_chars`` (10,000): both models read at most 512 tokens of prompt (their
      T5 text encoder), a few thousand characters; the rest would be cut off unseen.
    - ``max_url_chars`` (8,000): Akool must fetch the URL, and common servers refuse a
      request line longer than 8 KB (Apache's 8,190 bytes, nginx's 8 KB buffers).
    - ``max_source_images`` (10): Akool uses only the first; a long list is a mistake.
    """

    max_prompt_chars: int = d.MAX_PROMPT_CHARS
    max_url_chars: int = d.MAX_URL_CHARS
    max_source_images: int = d.MAX_SOURCE_IMAGES

    def __attrs_post_init__(self) -> None:
        for field in attrs.fields(type(self)):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidSettingError(field.name, value, "an integer of at least 1")


DEFAULT_LIMITS = RequestLimits()


def check_text(field: str, value: object, *, required: bool) -> str:
    """Text a JSON body and a UTF-8 file can carry: a string without control characters
    (tabs and line breaks are fine) or lone surrogates."""
    if not isinstance(value, str) or (required and not value.strip()):
        wanted = "a non-empty string describing the image" if required else "a string"
        raise ValidationError(field, value, f"{wanted} is required")
    bad = _BAD_TEXT.search(value)
    if bad is not None:
        raise ValidationError(
            field,
            value,
            f"text without control characters or lone surrogates ({bad.group()!r} at "
            f"{bad.start()}); tabs and line breaks are fine",
        )
    return value


def _check_prompt(field: str, value: object) -> str:
    return check_text(field, value, required=True)


def check_url(field: str, value: object) -> str:
    """An absolute http(s) URL a request line can carry: no spaces, controls or surrogates."""
    if isinstance(value, str) and value.isprintable() and " " not in value:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError on a port out of range or not a number
        except ValueError:
            parts = None
        if parts is not None and parts.scheme in ("http", "https") and parts.hostname:
            return value
    raise ValidationError(
        field,
        value,
        "an absolute http:// or https:// URL with a host, without spaces or control "
        "characters (percent-encode them)",
    )


def _optional_url(field: str) -> Any:
    def check(_instance: object, _attribute: object, value: object) -> None:
        if value is not None:
            check_url(field, value)

    return check


def _blank_to_none(value: object) -> object:
    """Akool's own samples send ``"webhookUrl": ""`` for none: read it so."""
    return None if value == "" else value


def _optional_url_field(field: str) -> Any:
    return attrs.field(default=None, converter=_blank_to_none, validator=_optional_url(field))


def check_job_id(value: object, field: str = "job_id") -> str:
    """A job id as the API expects it: visible ASCII, no whitespace, not absurdly long."""
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_JOB_ID_CHARS
        or not value.isascii()
        or not value.isprintable()
        or " " in value
    ):
        raise ValidationError(
            field,
            value,
            f"a job id (the _id of a create answer): up to {MAX_JOB_ID_CHARS} visible ASCII "
            "characters, no spaces or control characters",
        )
    return value


def _normalise_source_images(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes | bytearray) or not isinstance(value, Sequence):
        raise ValidationError(
            "source_images", value, "a list of image URLs is required (not a single string)"
        )
    if not value:
        # Not "no sources": that would silently become a (charged) text-to-image job.
        raise ValidationError(
            "source_images", value, "at least one URL; leave it out (None) for text-to-image"
        )
    return tuple(check_url("source_images", url) for url in value)


def _normalise_resolution(value: object) -> str:
    if isinstance(value, str) and value.lower() in RESOLUTIONS:
        return value.lower()
    raise ValidationError("resolution", value, f"one of {', '.join(RESOLUTIONS)}")


@attrs.frozen(kw_only=True)
class SourcePromptRequest:
    """The body of v4 createBySourcePrompt (text-to-image, or image-to-image with sources)."""

    prompt: str
    scale: str = "1:1"
    resolution: str = attrs.field(default="4k", converter=_normalise_resolution)
    batch_quantity: int = 1
    source_images: tuple[str, ...] | None = attrs.field(
        default=None, converter=_normalise_source_images
    )
    similar: float | None = None
    negative_prompt: str | None = None
    model_name: str | None = None
    webhook_url: str | None = _optional_url_field("webhook_url")

    @property
    def is_image_to_image(self) -> bool:
        return self.source_images is not None

    def __attrs_post_init__(self) -> None:
        _check_prompt("prompt", self.prompt)
        self._check_scale()
        self._check_batch_quantity()
        self._check_similar()
        self._check_model_name()
        if self.negative_prompt is not None:
            check_text("negative_prompt", self.negative_prompt, required=False)

    def _check_scale(self) -> None:
        if self.scale in SCALES:
            return
        if self.scale == ORIGINAL_SCALE:
            if self.is_image_to_image:
                return
            raise ValidationError(
                "scale", self.scale, "'Original' is only allowed with source_images"
            )
        raise ValidationError(
            "scale", self.scale, f"one of {', '.join(SCALES)} ('Original' with source_images)"
        )

    def _check_batch_quantity(self) -> None:
        quantity = self.batch_quantity
        is_int = isinstance(quantity, int) and not isinstance(quantity, bool)
        if not is_int or not 1 <= quantity <= MAX_BATCH_QUANTITY:
            raise ValidationError("batch_quantity", quantity, "an integer from 1 to 4")

    def _check_similar(self) -> None:
        similar = self.similar
        if similar is None:
            return
        if (
            isinstance(similar, bool)
            or not isinstance(similar, int | float)
            or not math.isfinite(similar)
            or not 0 <= similar <= 1
        ):
            raise ValidationError("similar", similar, "a number from 0 to 1")
        if not self.is_image_to_image:
            raise ValidationError(
                "similar", similar, "only applies to image-to-image: give source_images too"
            )

    def _check_model_name(self) -> None:
        model = self.model_name
        if model is None:
            return
        if not isinstance(model, str) or not model.isprintable() or not model.strip():
            raise ValidationError("model_name", model, "a model name string")
        # Unknown models pass (Akool adds models); the two documented ones must match the mode.
        if model == TEXT_TO_IMAGE_MODEL and self.is_image_to_image:
            raise ValidationError(
                "model_name", model, f"{IMAGE_TO_IMAGE_MODEL} (or none) with source_images"
            )
        if model == IMAGE_TO_IMAGE_MODEL and not self.is_image_to_image:
            raise ValidationError(
                "model_name", model, f"needs source_images; use {TEXT_TO_IMAGE_MODEL} without"
            )


@attrs.frozen(kw_only=True)
class PromptRequest:
    """The body of v3 createbyprompt (legacy): one image, optional single source image."""

    prompt: str
    scale: str = "1:1"
    source_image: str | None = _optional_url_field("source_image")
    webhook_url: str | None = _optional_url_field("webhook_url")

    def __attrs_post_init__(self) -> None:
        _check_prompt("prompt", self.prompt)
        if self.scale not in SCALES:
            raise ValidationError("scale", self.scale, f"one of {', '.join(SCALES)}")


def parse_button(value: object) -> Button:
    """A button from its name (``"u1 "`` reads as ``U1``); ``ValidationError`` otherwise."""
    button = Button.__members__.get(value.strip().upper()) if isinstance(value, str) else None
    if button is None:
        raise ValidationError("button", value, "one of U1-U4 (4K upscale) or V1-V4 (variation)")
    return button


def parse_buttons(names: Iterable[object], field: str = "follow_ups") -> tuple[Button, ...]:
    """Follow-up buttons from their names, each at most once (a button works once per
    image); ``ValidationError`` naming the bad name, or ``field`` for a repeat."""
    buttons = tuple(parse_button(name) for name in names)
    if len(set(buttons)) != len(buttons):
        raise ValidationError(
            field, [b.value for b in buttons], "each button at most once: it works once per image"
        )
    return buttons


@attrs.frozen(kw_only=True)
class ButtonRequest:
    """The body of v3 createbybutton: a U (upscale) or V (variation) follow-up on a job."""

    job_id: str = attrs.field(converter=check_job_id)
    button: Button = attrs.field(converter=parse_button)
    webhook_url: str | None = _optional_url_field("webhook_url")

    @classmethod
    def for_parent(
        cls, parent: ImageJob | str, button: Button | str, *, webhook_url: str | None = None
    ) -> ButtonRequest:
        """A button request; with the parent's result at hand, checked against its buttons."""
        if not isinstance(parent, ImageJob):
            return cls(job_id=parent, button=button, webhook_url=webhook_url)
        request = cls(job_id=parent.id, button=button, webhook_url=webhook_url)
        check_button_available(parent, request.button)
        return request


def check_button_available(parent: ImageJob, button: Button) -> None:
    """Raise unless ``parent`` is finished and still offers ``button`` (each works once)."""
    if parent.status != ImageStatus.COMPLETED:
        raise ValidationError(
            "button",
            button.value,
            f"job {parent.id} is not completed (status {parent.status.name}); "
            "wait for it before pressing a button",
        )
    if button in parent.used_buttons:
        raise ValidationError("button", button.value, f"already used on job {parent.id}")
    if button not in parent.buttons:
        offered = ", ".join(b.value for b in parent.buttons) or "none"
        raise ValidationError("button", button.value, f"job {parent.id} offers {offered}")


def check_limits(request: SourcePromptRequest | PromptRequest | ButtonRequest,
                 limits: RequestLimits) -> None:  # fmt: skip
    """Raise ``ValidationError`` if ``request`` is larger than ``limits`` allow."""
    sources = getattr(request, "source_images", None) or ()
    if len(sources) > limits.max_source_images:
        raise ValidationError(
            "source_images",
            sources,
            f"at most {limits.max_source_images} URLs (RequestLimits.max_source_images): "
            "Akool uses only the first",
        )
    sized = [
        ("prompt", getattr(request, "prompt", None), "max_prompt_chars"),
        ("negative_prompt", getattr(request, "negative_prompt", None), "max_prompt_chars"),
        ("webhook_url", request.webhook_url, "max_url_chars"),
        ("source_image", getattr(request, "source_image", None), "max_url_chars"),
        *(("source_images", url, "max_url_chars") for url in sources),
    ]
    for field, text, limit_name in sized:
        limit: int = getattr(limits, limit_name)
        if text is not None and len(text) > limit:
            raise ValidationError(
                field,
                text,
                f"at most {limit} characters (RequestLimits.{limit_name}; this one has"
                f" {len(text)})",
            )
