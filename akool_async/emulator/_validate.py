"""The emulator checks request bodies itself, as the server would: it never trusts that a
client validated them. Every problem is a 1003. Keys it does not know are ignored (and
counted), as a lenient server would do with a mistyped ``webhookUrl`` on v4."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

import attrs

from .._requests import IMAGE_TO_IMAGE_MODEL, SCALES, TEXT_TO_IMAGE_MODEL
from ._state import EmulatedError

V4_KEYS = frozenset({"prompt", "model_name", "source_images", "scale", "resolution",
                     "batch_quantity", "similar", "negative_prompt", "webhookurl"})  # fmt: skip
V3_KEYS = frozenset({"prompt", "scale", "source_image", "webhookUrl"})
BUTTON_KEYS = frozenset({"_id", "button", "webhookUrl"})


@attrs.frozen
class Generation:
    """What a valid create asks for: job fields, how many images, where to call back."""

    params: dict[str, Any]
    count: int
    ignored: tuple[str, ...]


def _bad(message: str) -> EmulatedError:
    return EmulatedError(1003, f"Parameter error: {message}")


def _is_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _ignored(body: dict[str, Any], known: Collection[str]) -> tuple[str, ...]:
    return tuple(sorted(key for key in body if key not in known))


def _prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise _bad("prompt cannot be empty")
    return prompt


def webhook(body: dict[str, Any], key: str) -> str | None:
    """The callback URL; the docs' own examples send ``""`` for none."""
    url = body.get(key)
    if url in (None, ""):
        return None
    if not _is_url(url):
        raise _bad(f"{key} must be an http(s) URL")
    return str(url)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def v4(body: dict[str, Any]) -> Generation:
    prompt = _prompt(body)
    sources = body.get("source_images")
    if sources is not None and (
        not isinstance(sources, list) or not all(_is_url(u) for u in sources)
    ):
        raise _bad("source_images must be a list of http(s) URLs")
    model = body.get("model_name")
    image_to_image = bool(sources) or model == IMAGE_TO_IMAGE_MODEL
    if model is not None and model not in (TEXT_TO_IMAGE_MODEL, IMAGE_TO_IMAGE_MODEL):
        raise _bad("model_name is not supported")
    if image_to_image and not sources:
        raise _bad(f"{IMAGE_TO_IMAGE_MODEL} needs source_images")
    if sources and model == TEXT_TO_IMAGE_MODEL:
        raise _bad(f"{TEXT_TO_IMAGE_MODEL} does not take source_images")
    scale = body.get("scale", "1:1")
    if scale not in SCALES and not (scale == "Original" and image_to_image):
        raise _bad("scale is not supported")
    resolution = body.get("resolution", "4k")
    if resolution not in ("1080p", "4k"):
        raise _bad("resolution must be 1080p or 4k")
    count = body.get("batch_quantity", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 4:
        raise _bad("batch_quantity must be 1 to 4")
    similar = body.get("similar")
    if similar is not None:
        if not image_to_image:
            raise _bad("similar only applies to image-to-image")
        if not _number(similar) or not 0 <= similar <= 1:
            raise _bad("similar must be between 0 and 1")
    negative = body.get("negative_prompt")
    if negative is not None and not isinstance(negative, str):
        raise _bad("negative_prompt must be a string")
    params = {
        "prompt": prompt, "scale": scale, "resolution": resolution,
        "source_image": sources[0] if sources else "",
        "model_name": IMAGE_TO_IMAGE_MODEL if image_to_image else TEXT_TO_IMAGE_MODEL,
        "sub_type": 40002 if image_to_image else 40001,
        "webhook_url": webhook(body, "webhookurl"),
    }  # fmt: skip
    return Generation(params, count, _ignored(body, V4_KEYS))


def v3(body: dict[str, Any]) -> Generation:
    prompt = _prompt(body)
    scale = body.get("scale", "1:1")
    if scale not in SCALES:
        raise _bad("scale is not supported")
    source = body.get("source_image")
    if source not in (None, "") and not _is_url(source):
        raise _bad("source_image must be an http(s) URL")
    params = {
        "prompt": prompt, "scale": scale, "resolution": "1080p",
        "source_image": source or "", "webhook_url": webhook(body, "webhookUrl"),
    }  # fmt: skip
    return Generation(params, 1, _ignored(body, V3_KEYS))


def button(body: dict[str, Any]) -> tuple[str, str, str | None, tuple[str, ...]]:
    """The parent id, the button, the callback URL and the ignored keys."""
    parent = body.get("_id")
    if not isinstance(parent, str) or not parent:
        raise _bad("_id cannot be empty")
    pressed = body.get("button")
    if not isinstance(pressed, str) or not pressed:
        raise _bad("button cannot be empty")
    return parent, pressed, webhook(body, "webhookUrl"), _ignored(body, BUTTON_KEYS)
