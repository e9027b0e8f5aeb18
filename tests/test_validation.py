"""Bad input raises ValidationError naming field, value and what is allowed, and nothing is sent."""

from __future__ import annotations

from typing import Any

import pytest
import respx

from akool_async import (
    IMAGE_TO_IMAGE_MODEL,
    TEXT_TO_IMAGE_MODEL,
    AkoolClient,
    Button,
    ButtonRequest,
    ImageJob,
    ImageStatus,
    SourcePromptRequest,
    ValidationError,
)

SRC = ["https://example.com/source.jpg"]

V4_CASES: list[tuple[dict[str, Any], str, str]] = [
    ({"prompt": ""}, "prompt", "non-empty"),
    ({"prompt": "   "}, "prompt", "non-empty"),
    ({"prompt": None}, "prompt", "non-empty"),
    ({"prompt": "x", "scale": "5:4"}, "scale", "16:9"),
    ({"prompt": "x", "scale": "Original"}, "scale", "source_images"),
    ({"prompt": "x", "resolution": "720p"}, "resolution", "1080p, 4k"),
    ({"prompt": "x", "batch_quantity": 0}, "batch_quantity", "1 to 4"),
    ({"prompt": "x", "batch_quantity": 5}, "batch_quantity", "1 to 4"),
    ({"prompt": "x", "batch_quantity": 2.0}, "batch_quantity", "1 to 4"),
    ({"prompt": "x", "batch_quantity": True}, "batch_quantity", "1 to 4"),
    ({"prompt": "x", "source_images": SRC, "similar": 1.5}, "similar", "0 to 1"),
    ({"prompt": "x", "source_images": SRC, "similar": -0.1}, "similar", "0 to 1"),
    ({"prompt": "x", "source_images": SRC, "similar": float("nan")}, "similar", "0 to 1"),
    ({"prompt": "x", "similar": 0.5}, "similar", "source_images"),
    ({"prompt": "x", "source_images": "https://example.com/a.jpg"}, "source_images", "list"),
    ({"prompt": "x", "source_images": ["ftp://example.com/a.jpg"]}, "source_images", "http"),
    ({"prompt": "x", "source_images": ["/local/file.png"]}, "source_images", "http"),
    ({"prompt": "x", "webhook_url": "example.com/hook"}, "webhook_url", "http"),
    ({"prompt": "x", "webhook_url": "javascript:alert(1)"}, "webhook_url", "http"),
    ({"prompt": "x", "model_name": IMAGE_TO_IMAGE_MODEL}, "model_name", "source_images"),
    (
        {"prompt": "x", "source_images": SRC, "model_name": TEXT_TO_IMAGE_MODEL},
        "model_name",
        "with",
    ),
    ({"prompt": "x", "negative_prompt": 3}, "negative_prompt", "string"),
]


@pytest.mark.parametrize(("options", "field", "allowed"), V4_CASES)
async def test_v4_rejects_before_sending(
    client: AkoolClient, api: respx.MockRouter, options: dict[str, Any], field: str, allowed: str
) -> None:
    """Each invalid v4 field raises ValidationError for that field, with no request made."""
    route = api.post("/api/open/v4/content/image/createBySourcePrompt")
    with pytest.raises(ValidationError) as info:
        await client.create_by_source_prompt(**options)
    assert info.value.field == field
    assert allowed in info.value.allowed
    assert field in str(info.value)
    assert not route.called
    assert not api.calls


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x", "scale": "Original"}, "scale"),
        ({"prompt": "x", "source_image": "not a url"}, "source_image"),
        ({"prompt": "x", "webhook_url": "mailto:a@b"}, "webhook_url"),
    ],
)
async def test_v3_rejects_before_sending(
    client: AkoolClient, api: respx.MockRouter, options: dict[str, Any], field: str
) -> None:
    """Each invalid v3 field raises ValidationError for that field, with no request made."""
    with pytest.raises(ValidationError) as info:
        await client.create_by_prompt(**options)
    assert info.value.field == field
    assert not api.calls


def _result(status: ImageStatus = ImageStatus.COMPLETED, **fields: Any) -> ImageJob:
    defaults: dict[str, Any] = {"buttons": tuple(Button)[1:], "used_buttons": (Button.U1,)}
    return ImageJob(id="parent1", status=status, **{**defaults, **fields})


@pytest.mark.parametrize(
    ("parent", "button", "allowed"),
    [
        ("parent1", "U5", "U1-U4"),
        ("parent1", "X1", "U1-U4"),
        ("parent1", "", "U1-U4"),
        ("parent1", 3, "U1-U4"),
        ("", "U1", "job id"),
        ("has space", "U1", "job id"),
        (_result(), "U1", "already used"),
        (_result(buttons=(Button.U2,), used_buttons=()), "V1", "offers U2"),
        (_result(ImageStatus.PROCESSING), "U2", "not completed"),
        (_result(ImageStatus.FAILED), "U2", "not completed"),
    ],
)
async def test_button_rejects_before_sending(
    client: AkoolClient, api: respx.MockRouter, parent: Any, button: Any, allowed: str
) -> None:
    """Bad buttons, bad ids and buttons the parent does not offer are refused unsent."""
    with pytest.raises(ValidationError) as info:
        await client.create_by_button(parent, button)
    assert allowed in info.value.allowed
    assert not api.calls


@pytest.mark.parametrize("job_id", ["", " a", None, 42])
async def test_info_rejects_bad_ids(
    client: AkoolClient, api: respx.MockRouter, job_id: Any
) -> None:
    """info_by_model_id refuses an id that cannot be one, unsent."""
    with pytest.raises(ValidationError):
        await client.info_by_model_id(job_id)
    assert not api.calls


def test_lowercase_button_and_resolution_are_normalised() -> None:
    """``u2`` means U2 and ``4K`` means 4k: the canonical forms are what is sent."""
    assert SourcePromptRequest(prompt="x", resolution="4K").resolution == "4k"
    assert ButtonRequest(job_id="a", button="u2").button is Button.U2


def test_original_scale_and_similar_allowed_with_sources() -> None:
    """Image-to-image may use scale 'Original' and similar at both bounds."""
    for similar in (0, 1, 0.5):
        request = SourcePromptRequest(
            prompt="x", source_images=SRC, scale="Original", similar=similar
        )
        assert request.is_image_to_image


def test_empty_source_list_is_refused() -> None:
    """An empty source_images list is refused: it would silently become text-to-image."""
    with pytest.raises(ValidationError, match="leave it out"):
        SourcePromptRequest(prompt="x", source_images=[])
    assert SourcePromptRequest(prompt="x", source_images=None).source_images is None


def test_validation_error_truncates_huge_values() -> None:
    """A huge bad value is shortened in the message."""
    with pytest.raises(ValidationError) as info:
        SourcePromptRequest(prompt="x", scale="9" * 10_000)
    assert len(str(info.value)) < 300


def test_buttons_are_parsed_in_one_place() -> None:
    """Button names read the same everywhere (case, spaces); a bad one names ``button``,
    a repeat names the list's field."""
    from akool_async._requests import parse_button, parse_buttons

    assert parse_button(" u1 ") is Button.U1
    assert parse_buttons(["V2", "u1"]) == (Button.V2, Button.U1)
    assert parse_buttons([]) == ()
    with pytest.raises(ValidationError) as bad:
        parse_buttons(["U1", "X9"])
    assert (bad.value.field, bad.value.value) == ("button", "X9")
    with pytest.raises(ValidationError) as twice:
        parse_buttons(["U1", "u1"], field="--follow-ups")
    assert twice.value.field == "--follow-ups"
    assert "at most once" in str(twice.value)
    assert ButtonRequest(job_id="j", button="v4 ").button is Button.V4  # the same parser
