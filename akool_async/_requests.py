"""Request models. Building one validates it, so a request the server would reject raises
``ValidationError`` before anything is sent and no credit is spent."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import attrs

from ._exceptions import ValidationError
from ._models import Button, ImageJob, ImageStatus

SCALES = ("1:1", "3:2", "4:3", "16:9", "2:3", "3:4", "9:16")
ORIGINAL_SCALE = "Original"
RESOLUTIONS = ("1080p", "4k")
TEXT_TO_IMAGE_MODEL = "wavespeed-ai/flux-krea-dev-lora"
IMAGE_TO_IMAGE_MODEL = "wavespeed-ai/flux-kontext-dev"
MAX_BATCH_QUANTITY = 4


def _check_prompt(field: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, value, "a non-empty string describing the image is required")
    return value


def check_url(field: str, value: object) -> str:
    if isinstance(value, str):
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.netloc:
            return value
    raise ValidationError(field, value, "an absolute http:// or https:// URL is required")


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
    """A job id as the API expects it: a non-empty string without whitespace."""
    if not isinstance(value, str) or not value or value != value.strip() or " " in value:
        raise ValidationError(field, value, "a job id (the _id of a create answer) is required")
    return value


def _normalise_source_images(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValidationError(
            "source_images", value, "a list of image URLs is required (not a single string)"
        )
    images = tuple(check_url("source_images", url) for url in value)
    return images or None


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
        if self.negative_prompt is not None and not isinstance(self.negative_prompt, str):
            raise ValidationError("negative_prompt", self.negative_prompt, "a string is required")

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
        if not isinstance(model, str) or not model:
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


def _check_button(value: object) -> Button:
    button = Button.__members__.get(value.upper()) if isinstance(value, str) else None
    if button is None:
        raise ValidationError("button", value, "one of U1-U4 (4K upscale) or V1-V4 (variation)")
    return button


@attrs.frozen(kw_only=True)
class ButtonRequest:
    """The body of v3 createbybutton: a U (upscale) or V (variation) follow-up on a job."""

    job_id: str = attrs.field(converter=check_job_id)
    button: Button = attrs.field(converter=_check_button)
    webhook_url: str | None = _optional_url_field("webhook_url")

    @classmethod
    def for_parent(
        cls, parent: ImageJob | str, button: Button | str, *, webhook_url: str | None = None
    ) -> ButtonRequest:
        """A button request; with the parent's result at hand, checked against its buttons."""
        if isinstance(parent, str):
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
