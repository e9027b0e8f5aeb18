"""Models: enums that tolerate new values, job properties, and JSON round-trips."""

from __future__ import annotations

import json

import attrs
import pytest
from hypothesis import given

from akool_async import Button, ImageJob, ImageStatus, JobSource
from akool_async._converter import structure, unstructure

from .strategies import jobs


def test_unknown_status_is_kept_and_not_terminal() -> None:
    """A status the server adds later keeps its number and never ends a wait."""
    status = ImageStatus(7)
    assert status == 7
    assert isinstance(status, ImageStatus)
    assert not status.is_known
    assert not status.is_terminal
    assert ImageStatus.COMPLETED.is_terminal
    assert ImageStatus.FAILED.is_terminal
    assert not ImageStatus.PROCESSING.is_terminal


def test_unknown_button_is_kept() -> None:
    """A button the server adds later keeps its value and is neither U nor V."""
    button = Button("Z9")
    assert button == "Z9"
    assert not button.is_known
    assert not button.is_upscale
    assert button.image_index is None
    assert Button.V3.is_variation
    assert Button.V3.image_index == 3
    assert Button.U1.is_upscale


def test_url_prefers_image_then_upscaled() -> None:
    """The finished URL is ``image``, else the first upscaled URL, else None."""
    done = ImageJob(id="a", status=ImageStatus.COMPLETED, image="https://x/1.png")
    assert done.url == "https://x/1.png"
    upscaled = ImageJob(
        id="a", status=ImageStatus.COMPLETED, image="", upscaled_urls=("https://x/4k.png",)
    )
    assert upscaled.url == "https://x/4k.png"
    assert ImageJob(id="a", status=ImageStatus.QUEUEING).url is None


def test_created_at_is_utc_from_milliseconds() -> None:
    """``create_time`` in ms becomes an aware UTC datetime."""
    job = ImageJob(id="a", status=ImageStatus.QUEUEING, create_time=1716859314633)
    assert job.created_at is not None
    assert job.created_at.isoformat() == "2024-05-28T01:21:54.633000+00:00"


def test_jobs_are_hashable_despite_extra() -> None:
    """Jobs hash (e.g. as dict keys) even with unknown fields kept."""
    job = structure({"_id": "a", "image_status": 1, "new": [1]}, ImageJob)
    assert {job: 1}[job] == 1


@given(jobs)
def test_job_round_trips_through_json(job: ImageJob) -> None:
    """structure(json(unstructure(job))) gives the job back, extra keys included."""
    wire = json.loads(json.dumps(unstructure(job)))
    assert structure(wire, ImageJob) == job


@pytest.mark.parametrize("status", [1, 2, 3, 4, 5, 42])
def test_any_integer_status_structures(status: int) -> None:
    """Every integer status structures; known ones to their member."""
    job = structure({"_id": "a", "image_status": status}, ImageJob)
    assert job.status == status


def test_images_are_a_grids_parts_or_the_one_image() -> None:
    """images: the parts when present (grid kept apart), else image, else external_img."""
    parts = tuple(f"https://x/p{k}.png" for k in (1, 2, 3, 4))
    grid = ImageJob(
        id="a", status=ImageStatus.COMPLETED, image="https://x/grid.png", upscaled_urls=parts
    )
    assert grid.images == parts
    assert grid.grid == grid.url == "https://x/grid.png"
    early = ImageJob(id="a", status=ImageStatus.COMPLETED, image="https://x/grid.png")
    assert early.images == ("https://x/grid.png",)
    assert early.grid is None  # no parts yet: nothing to keep apart
    v4_quirk = ImageJob(id="a", status=ImageStatus.COMPLETED, image="", upscaled_urls=parts[:1])
    assert v4_quirk.images == parts[:1]
    assert v4_quirk.grid is None
    same = ImageJob(id="a", status=ImageStatus.COMPLETED, image=parts[0], upscaled_urls=parts[:1])
    assert same.grid is None  # the one image listed twice is not a grid
    external = structure(
        {"_id": "a", "image_status": 3, "image": "", "external_img": "https://x/e.png"}, ImageJob
    )
    assert external.images == ("https://x/e.png",)
    assert external.url == "https://x/e.png"
    assert ImageJob(id="a", status=ImageStatus.PROCESSING).images == ()


def test_a_grid_needs_several_parts_and_url_prefers_the_whole_image() -> None:
    """One image beside one upscaled URL (a U result, a v4 job) is no grid; a grid whose
    ``image`` is empty but ``external_img`` set has that as its ``url``, not part 1;
    without either, ``url`` is still ``upscaled_urls[0]`` (as before ``external_img``)."""
    parts = tuple(f"https://x/p{k}.png" for k in (1, 2, 3, 4))
    single = ImageJob(
        id="a", status=ImageStatus.COMPLETED, image="https://x/u.png",
        upscaled_urls=("https://x/u-4k.png",),
    )  # fmt: skip
    assert single.grid is None
    assert single.url == "https://x/u.png"
    external = ImageJob(
        id="a", status=ImageStatus.COMPLETED, image="", upscaled_urls=parts,
        external_img="https://x/grid.png",
    )  # fmt: skip
    assert external.url == external.grid == "https://x/grid.png"
    assert external.images == parts
    assert attrs.evolve(external, external_img=None).url == parts[0]


def test_parts_missing_is_ours_never_read_from_or_written_to_the_wire() -> None:
    """parts_missing is set by waiting only; a server key of that name stays in extra."""
    job = structure({"_id": "a", "image_status": 3, "parts_missing": True}, ImageJob)
    assert not job.parts_missing
    assert job.extra == {"parts_missing": True}
    marked = ImageJob(id="a", status=ImageStatus.COMPLETED, parts_missing=True)
    assert "parts_missing" not in unstructure(marked)


def test_source_is_ours_never_read_from_or_written_to_the_wire() -> None:
    """``source`` says how the client learned of a job: never from, nor to, JSON; it does
    not make two descriptions of one job unequal."""
    job = structure({"_id": "a", "image_status": 3, "source": "callback"}, ImageJob)
    assert job.source is JobSource.ANSWER
    assert job.extra == {"source": "callback"}
    heard = ImageJob(id="a", status=ImageStatus.COMPLETED, source=JobSource.CALLBACK)
    assert "source" not in unstructure(heard)
    assert heard == ImageJob(id="a", status=ImageStatus.COMPLETED)
