"""When a job's result is all there: the rule for grids, as Akool's own demo reads them.

A v3 first result and a V1-V4 result are 2x2 grids: ``image`` is the grid and
``upscaled_urls`` its four parts, which can be filled *after* status 3. Akool's demo app
keeps polling until status 3 **and** parts; so does waiting here, for a bounded grace
period (``PollPolicy.parts_grace``), then it returns what is there with
``parts_missing=True``. A U1-U4 result and a v4 job are single images: done at status 3.

Pure functions: no I/O, no clock.
"""

from __future__ import annotations

from ._models import ImageJob, ImageStatus
from ._requests import ButtonRequest, PromptRequest, SourcePromptRequest


def request_makes_grid(request: SourcePromptRequest | PromptRequest | ButtonRequest) -> bool:
    """Whether the jobs ``request`` creates are grids (v3 create, V button)."""
    if isinstance(request, PromptRequest):
        return True
    if isinstance(request, ButtonRequest):
        return request.button.is_variation
    return False


def job_is_grid(job: ImageJob, known: bool | None) -> bool:
    """``known`` when the creator knew (see ``request_makes_grid``); else what the answer
    shows: the button that made it, when it says. Otherwise a single image, as before
    grids were told apart (a v4 job, whose status answer looks like a v3 one)."""
    if known is not None:
        return known
    if job.op_button is not None and job.op_button.is_known:
        return job.op_button.is_variation
    return False


def awaiting_parts(job: ImageJob, grid: bool) -> bool:
    """Completed, a grid, and its parts not there yet: keep following it."""
    return grid and job.status == ImageStatus.COMPLETED and not job.upscaled_urls
