"""The rows of a bulk journal as values: a job, one image of a job, a press; and the
column lists that read them (one place, for the journal and the manifest)."""

from __future__ import annotations

from typing import Any

import attrs

from .._models import ImageStatus


@attrs.frozen
class JobRecord:
    job_id: str
    item_key: str
    parent_id: str | None
    button: str | None
    position: int
    status: int | None
    url: str | None
    credits: float | None
    created: float | None
    submitted: float | None
    finished: float | None
    error: str | None
    path: str | None
    sha256: str | None
    size: int | None
    near_expiry: bool

    @property
    def is_terminal(self) -> bool:
        return self.status is not None and ImageStatus(self.status).is_terminal


@attrs.frozen
class ImageRecord:
    """One image of a job to save: ``index`` k is ``images[k-1]`` (0: the 2x2 grid);
    ``kind`` is ``image`` or ``grid`` (``parts_missing``: the grid stands in for parts that
    never came)."""

    job_id: str
    index: int
    kind: str
    url: str | None
    parts_missing: bool
    path: str | None
    sha256: str | None
    size: int | None
    near_expiry: bool
    error: str | None


@attrs.frozen
class Press:
    parent_id: str
    button: str
    child_id: str | None


JOB_FIELDS = [field.name for field in attrs.fields(JobRecord)]
JOB_COLUMNS = ", ".join(JOB_FIELDS)
JOB_COLUMNS_QUALIFIED = ", ".join(f"jobs.{name}" for name in JOB_FIELDS)
IMAGE_FIELDS = [field.name for field in attrs.fields(ImageRecord)]
IMAGE_NAMES = ["idx" if name == "index" else name for name in IMAGE_FIELDS]
IMAGE_COLUMNS = ", ".join(IMAGE_NAMES)
IMAGE_COLUMNS_QUALIFIED = ", ".join(f"images.{name}" for name in IMAGE_NAMES)


def image_of(row: tuple[Any, ...]) -> ImageRecord:
    values = dict(zip(IMAGE_FIELDS, row, strict=True))
    values["near_expiry"] = bool(values["near_expiry"])
    values["parts_missing"] = bool(values["parts_missing"])
    return ImageRecord(**values)


def job_of(row: tuple[Any, ...]) -> JobRecord:
    values = dict(zip(JOB_FIELDS, row, strict=True))
    values["near_expiry"] = bool(values["near_expiry"])
    return JobRecord(**values)
