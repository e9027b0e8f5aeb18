"""When a job's result is all there: the rule for grids, as Akool's own demo reads them.

A v3 first result and a V1-V4 result are 2x2 grids: ``image`` is the grid and
``upscaled_urls`` its four parts, which can be filled *after* status 3. Akool's demo app
keeps polling until status 3 **and** parts; so does waiting here, for a bounded grace
period (``PollPolicy.parts_grace``), then it returns what is there with
``parts_missing=True``. A U1-U4 result and a v4 job are single images: done at status 3.

Which shape a job has is known from the request that created it (``request_makes_grid``),
else from what an answer about it tells (``told_by``); where nothing tells, see
``job_shape``. Pure functions: no I/O, no clock.
"""

from __future__ import annotations

import enum

from ._models import ImageJob, ImageStatus
from ._requests import ButtonRequest, PromptRequest, SourcePromptRequest


class Shape(enum.Enum):
    SINGLE = "single"
    GRID = "grid"
    POSSIBLE_GRID = "possible grid"  # nothing tells: followed like a grid (see job_shape)


def request_makes_grid(request: SourcePromptRequest | PromptRequest | ButtonRequest) -> bool:
    """Whether the jobs ``request`` creates are grids (v3 create, V button)."""
    if isinstance(request, PromptRequest):
        return True
    if isinstance(request, ButtonRequest):
        return request.button.is_variation
    return False


def told_by(job: ImageJob) -> bool | None:
    """Whether ``job`` is a grid, as far as this answer about it tells; None if it does not.

    - ``op_button`` (a button's create answer): V makes a grid, U a single image;
    - ``sub_type``, ``model_name``, ``file_name`` or ``provider``: only v4 answers carry
      them (the v4 page's examples): a single image;
    - ``from`` 1 with ``faceswap_quality`` and no parent: the v3 createbyprompt answer (the
      v3 page's example; a button's answer has its parent, a v4 one says ``from`` 4).
      Its ``type`` tells nothing: the docs' v3 create example says 4, like v4 answers.
    Status answers tell none of this (the docs' result example has none of these fields).
    """
    if job.op_button is not None and job.op_button.is_known:
        return job.op_button.is_variation
    if any(v is not None for v in (job.sub_type, job.model_name, job.file_name, job.provider)):
        return False
    if job.from_ == 1 and job.faceswap_quality is not None and job.parent_id is None:
        return True
    return None


def job_shape(job: ImageJob, known: bool | None) -> Shape:
    """``known`` when the creator knew (see ``request_makes_grid``); else what ``job``
    tells (``told_by``); else a guess from a finished job, on the safe side:

    - a callback's result (``job.from_callback``) carries nothing but its URL: a
      possible grid, so one poll looks at the job (its status answer decides);
    - a completed status answer without parts that offers or used buttons (a U result has
      none) and does not say ``type`` 4 (the v4 jobs' type; the docs' v3 result example
      says 3): a possible grid, followed for its parts like a grid. If they do not come
      within the grace period it is returned with ``parts_missing=True`` and a warning: a
      minute's delay for another client's v4 job that looks like this beats returning a
      v3 job's grid silently without its four images;
    - anything else (a U result, parts already there, still running): a single image.
    """
    if known is None:
        known = told_by(job)
    if known is not None:
        return Shape.GRID if known else Shape.SINGLE
    if job.status != ImageStatus.COMPLETED or job.upscaled_urls:
        return Shape.SINGLE
    if job.from_callback:
        return Shape.POSSIBLE_GRID
    if (job.buttons or job.used_buttons) and job.type != 4:
        return Shape.POSSIBLE_GRID
    return Shape.SINGLE


def job_is_grid(job: ImageJob, known: bool | None) -> bool:
    """Whether to follow ``job`` as a grid (a grid, or possibly one: see ``job_shape``)."""
    return job_shape(job, known) is not Shape.SINGLE


def awaiting_parts(job: ImageJob, grid: bool) -> bool:
    """Completed, a grid, and its parts not there yet: keep following it."""
    return grid and job.status == ImageStatus.COMPLETED and not job.upscaled_urls


def parts_missing_note(shape: Shape, grace: float | None) -> str:
    """Why a job was returned without its parts (``grace`` None: the wait's timeout came)."""
    if grace is None:
        return (
            "completed, but its grid's four images had not come when the wait's timeout "
            "came: returned without them (parts_missing)"
        )
    if shape is Shape.POSSIBLE_GRID:
        return (
            f"completed without the four images of a grid within {grace:g} s; nothing said "
            "whether it is a grid (pass the ImageJob from its create to tell): returned as "
            "it is (parts_missing)"
        )
    return (
        f"completed, but its grid's four images did not come within {grace:g} s: returned "
        "without them (parts_missing)"
    )
