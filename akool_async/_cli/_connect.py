"""A client for the command line: the real API when credentials are set, otherwise the
built-in emulator (announced in one line, so nobody mistakes placeholders for results)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import Literal

import attrs

from .._client import AkoolClient

CREDENTIAL_VARIABLES = ("AKOOL_API_KEY", "AKOOL_CLIENT_ID", "AKOOL_CLIENT_SECRET")
EMULATOR_NOTICE = (
    "No AKOOL_API_KEY set: running against the built-in Akool emulator "
    "(no network, no credits spent, placeholder images)."
)


@attrs.frozen
class Connection:
    client: AkoolClient
    emulated: bool


def has_credentials() -> bool:
    return any(os.environ.get(name) for name in CREDENTIAL_VARIABLES)


@contextlib.asynccontextmanager
async def connect(
    *,
    rate_limit: float | None = 10.0,
    emulator_time_scale: float = 30.0,
    transport: Literal["httpx", "aiohttp"] = "httpx",
) -> AsyncIterator[Connection]:
    """The real API when credentials are set (over ``transport``), else the emulator
    (in-process, so the transport does not apply)."""
    if has_credentials():
        async with AkoolClient(rate_limit=rate_limit, transport=transport) as client:
            yield Connection(client, emulated=False)
        return
    try:
        from ..emulator import Emulator, EmulatorConfig
    except ImportError as exc:
        raise SystemExit(
            f"no AKOOL_API_KEY set, and the built-in emulator needs: "
            f"pip install 'akool-async[emulator]' ({exc})"
        ) from None
    print(EMULATOR_NOTICE, file=sys.stderr)
    emulator = Emulator(EmulatorConfig(seed=None, time_scale=emulator_time_scale))
    async with emulator, emulator.client(rate_limit=rate_limit) as client:
        yield Connection(client, emulated=True)
