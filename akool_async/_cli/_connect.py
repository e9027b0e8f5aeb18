"""A client for the command line: the real API when credentials are set, otherwise the
built-in emulator (announced in one line, so nobody mistakes placeholders for results).

A bulk run gives the emulator a state file beside its journal: the emulated jobs then
outlive the process, so a key-less run can be interrupted and resumed like a real one.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal

import anyio
import attrs

from .._client import AkoolClient
from .._defaults import DEFAULT_RATE
from .._poll_policy import PollPolicy
from ._errors import CLIError, install_hint

CREDENTIAL_VARIABLES = ("AKOOL_API_KEY", "AKOOL_CLIENT_ID", "AKOOL_CLIENT_SECRET")
EMULATOR_NOTICE = (
    "No AKOOL_API_KEY set: running against the built-in Akool emulator "
    "(no network, no credits spent, placeholder images)."
)
EMULATOR_TIME_SCALE = 30.0  # a "30 s" image in one second: a demo that shows progress


@attrs.frozen
class Connection:
    client: AkoolClient
    emulated: bool
    save_state: Callable[[], None] = attrs.field(default=lambda: None)  # before a hard exit


def has_credentials() -> bool:
    return any(os.environ.get(name) for name in CREDENTIAL_VARIABLES)


def require_emulator(needed_for: str = "running without AKOOL_API_KEY") -> None:
    """Fail in one line, before any work, when the emulator extra is not installed."""
    try:
        importlib.import_module("akool_async.emulator")
    except ImportError:
        raise install_hint("emulator", needed_for) from None


@contextlib.asynccontextmanager
async def connect(
    *,
    rate_limit: float | None = DEFAULT_RATE,
    emulator_time_scale: float | None = None,
    transport: Literal["httpx", "aiohttp"] = "httpx",
    quiet: bool = False,
    emulator_state: Path | None = None,
    resume_emulator: bool = False,
    poll_floor: float | None = None,
    **client_options: Any,
) -> AsyncIterator[Connection]:
    """The real API when credentials are set (over ``transport``), else the emulator
    (in-process, so the transport does not apply), its state kept in ``emulator_state``
    when given and loaded from it when ``resume_emulator``. ``poll_floor``: the
    scheduler's shortest wait between two polls of a job (``PollPolicy.min_interval``);
    ``client_options`` go to the client either way (a shared budget)."""
    if has_credentials():
        policy = with_floor(PollPolicy(), poll_floor)
        async with AkoolClient(rate_limit=rate_limit, transport=transport,
                               poll_policy=policy, **client_options) as client:  # fmt: skip
            yield Connection(client, emulated=False)
        return
    require_emulator()
    from ..emulator import Emulator, EmulatorConfig

    if not quiet:
        print(EMULATOR_NOTICE, file=sys.stderr)
    scale = emulator_time_scale or EMULATOR_TIME_SCALE
    emulator = Emulator(EmulatorConfig(seed=None, time_scale=scale))
    if emulator_state and resume_emulator and await anyio.Path(emulator_state).exists():
        try:
            await anyio.to_thread.run_sync(emulator.load_state, emulator_state)
        except (ValueError, KeyError, TypeError) as exc:  # JSON errors are ValueErrors
            raise CLIError(
                f"{emulator_state} cannot be read ({exc}): remove it to resume against an "
                "empty emulator (its jobs are then lost)"
            ) from None

    def save() -> None:
        if emulator_state is not None:
            emulator.save_state(emulator_state)

    try:
        policy = with_floor(emulator.poll_policy(), poll_floor)
        async with emulator, emulator.client(rate_limit=rate_limit, poll_policy=policy,
                                             **client_options) as client:  # fmt: skip
            yield Connection(client, emulated=True, save_state=save)
    finally:
        if emulator_state is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(save)


def with_floor(policy: PollPolicy, floor: float | None) -> PollPolicy:
    """``policy`` with ``min_interval`` set to ``floor`` (unchanged when None); the longest
    wait is raised to the floor when it is below it."""
    if floor is None:
        return policy
    return attrs.evolve(policy, min_interval=floor,
                        max_interval=max(policy.max_interval, floor))  # fmt: skip
