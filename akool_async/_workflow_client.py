"""What a workflow over the client (``Generation``, the bulk runner) needs from it, as a
``typing.Protocol`` of public ``AkoolClient`` methods.

It sits below both the client and the workflows: the client makes ``Generation`` objects
and ``Generation`` drives a client, yet neither module imports the other, so the import
graph has no cycle (``TYPE_CHECKING`` imports included) and a workflow can reach nothing
of the client but this public surface.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from ._models import ImageJob
from ._requests import ButtonRequest, SourcePromptRequest
from ._watchset import WatchSet


class WorkflowClient(Protocol):
    """The client as a workflow sees it (``AkoolClient`` is one)."""

    async def submit(self, request: SourcePromptRequest | ButtonRequest) -> tuple[ImageJob, ...]:
        """Send a validated create request (a batch, a button press); the jobs it created."""
        ...

    def watch(self) -> WatchSet:
        """A new set of jobs to follow on the client's shared poll scheduler."""
        ...

    async def with_buttons(self, job: ImageJob, *, timeout: float | None = None) -> ImageJob:
        """``job`` with the buttons a callback leaves out (at most one look-up)."""
        ...

    def start_soon(self, function: Callable[[], Awaitable[object]]) -> None:
        """Run ``function()`` in the client's background until it ends or the client closes."""
        ...
