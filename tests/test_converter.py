"""The converter absorbs the API's variants and names the JSON path of what it refuses."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from akool_async import Button, CreditInfo, ImageJob, ImageStatus, PayloadError
from akool_async._converter import structure, structure_jobs

from .strategies import extras, ids


def test_v4_single_object_is_one_job() -> None:
    """batch_quantity 1 answers one object: a tuple of one job."""
    (job,) = structure_jobs({"_id": "a", "image_status": 1})
    assert job.id == "a"


def test_v4_list_is_all_jobs_in_order() -> None:
    """batch_quantity > 1 answers a list: every job, in order."""
    data = [{"_id": f"id{n}", "image_status": 1} for n in range(4)]
    assert [j.id for j in structure_jobs(data)] == ["id0", "id1", "id2", "id3"]


def test_display_buttons_is_read_as_buttons() -> None:
    """The older docs' ``display_buttons`` fills ``buttons``."""
    job = structure({"_id": "a", "image_status": 3, "display_buttons": ["U1", "V4"]}, ImageJob)
    assert job.buttons == (Button.U1, Button.V4)
    assert "display_buttons" not in job.extra


def test_buttons_win_over_display_buttons() -> None:
    """When both come, ``buttons`` is used and ``display_buttons`` kept as extra."""
    job = structure(
        {"_id": "a", "image_status": 3, "buttons": ["U1"], "display_buttons": ["V1"]}, ImageJob
    )
    assert job.buttons == (Button.U1,)
    assert job.extra["display_buttons"] == ["V1"]


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [("team_id", 123, "team_id"), ("image_content_model_id", 3, "parent_id"),
     ("from", "x", "from_"), ("uid", "abc", "uid"), ("deduction_credit", [1], "deduction_credit"),
     ("prompt", {"text": "a"}, "prompt")],
)  # fmt: skip
def test_descriptive_fields_of_odd_types_are_kept_not_fatal(
    key: str, value: Any, field: str
) -> None:
    """A descriptive field of an unexpected type goes to ``extra`` as it came; no error."""
    job = structure({"_id": "a", "image_status": 1, key: value, "create_time": 5}, ImageJob)
    assert getattr(job, field) is None
    assert job.extra[key] == value
    assert job.create_time == 5


def test_numbers_sent_as_strings() -> None:
    """Status, credits, times and ids of numbers sent as strings become numbers."""
    job = structure(
        {
            "_id": "a",
            "image_status": "3",
            "deduction_credit": "2",
            "create_time": "1714032863272",
            "uid": "378337",
            "from": "4",
        },
        ImageJob,
    )
    assert job.status is ImageStatus.COMPLETED
    assert job.deduction_credit == 2
    assert job.create_time == 1714032863272
    assert job.uid == 378337
    assert job.from_ == 4
    assert structure({"credit": "12.5"}, CreditInfo).credit == 12.5


def test_null_lists_are_empty() -> None:
    """``null`` for a list field reads as empty."""
    job = structure(
        {"_id": "a", "image_status": 1, "buttons": None, "upscaled_urls": None}, ImageJob
    )
    assert job.buttons == ()
    assert job.upscaled_urls == ()


def test_unknown_values_are_kept() -> None:
    """Unknown statuses and buttons come through, unknown keys land in ``extra``."""
    job = structure(
        {"_id": "a", "image_status": 9, "buttons": ["U1", "R1"], "seed": 42, "meta": {"k": 1}},
        ImageJob,
    )
    assert job.status == 9
    assert not job.is_terminal
    assert job.buttons[1] == "R1"
    assert dict(job.extra) == {"seed": 42, "meta": {"k": 1}}


@given(ids, extras)
def test_extra_keys_always_survive(job_id: str, extra: Any) -> None:
    """Any unknown keys are reachable in ``extra`` with their values."""
    job = structure({"_id": job_id, "image_status": 1, **extra}, ImageJob)
    assert dict(job.extra) == dict(extra)


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"image_status": 1}, "$.data._id"),
        ({"_id": "a"}, "$.data.image_status"),
        ({"_id": 5, "image_status": 1}, "$.data._id"),
        ({"_id": "a", "image_status": "done"}, "$.data.image_status"),
        ({"_id": "a", "image_status": True}, "$.data.image_status"),
        ({"_id": "a", "image_status": 1, "buttons": "U1"}, "$.data.buttons"),
        ({"_id": "a", "image_status": 1, "used_buttons": [3]}, "$.data.used_buttons"),
        ({"_id": "a", "image_status": 3, "image": 5}, "$.data.image"),
        ({"_id": "a", "image_status": 3, "upscaled_urls": {"a": 1}}, "$.data.upscaled_urls"),
    ],
)
def test_wrong_shapes_name_the_json_path(data: dict[str, Any], path: str) -> None:
    """Missing fields, or mistyped fields the client acts on, raise PayloadError with the path."""
    with pytest.raises(PayloadError) as info:
        structure(data, ImageJob)
    assert path in str(info.value)


def test_list_element_errors_name_the_index() -> None:
    """A bad job inside a v4 list names its index."""
    with pytest.raises(PayloadError, match=r"\$\.data\[1\]\.image_status"):
        structure_jobs([{"_id": "a", "image_status": 1}, {"_id": "b"}])


@pytest.mark.parametrize("data", [None, "text", 3, [1]])
def test_data_that_is_not_an_object(data: Any) -> None:
    """``data`` that is not an object is a PayloadError, not a crash."""
    with pytest.raises(PayloadError):
        structure(data, ImageJob)


@given(st.lists(st.sampled_from(["U1", "U2", "V3", "X1"]), max_size=8))
def test_buttons_keep_order_and_values(values: list[str]) -> None:
    """Buttons keep their order and values, known or not."""
    job = structure({"_id": "a", "image_status": 3, "buttons": values}, ImageJob)
    assert [b.value for b in job.buttons] == values
