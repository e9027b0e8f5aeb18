"""Helpers for tests against the emulator: a manual clock, and the two ways to reach it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import sniffio

from akool_async import AkoolClient, RetryPolicy
from akool_async.emulator import IN_PROCESS_URL, Emulator, EmulatorConfig, Fixed, serve_emulator

NO_WAIT = RetryPolicy(wait=False)
MODES = ["in-process", "http", "aiohttp"]  # how tests reach the emulator (see wired)
IN_PROCESS = IN_PROCESS_URL


@attrs.define
class ManualClock:
    """Emulated time that moves only when a test says so."""

    now: float = attrs.field(factory=time.time)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def config(**fields: Any) -> EmulatorConfig:
    """A fast, deterministic emulator: 30 s jobs, 20% of it queueing."""
    fields.setdefault("durations", Fixed(30.0))
    return EmulatorConfig(**fields)


@contextlib.asynccontextmanager
async def wired(mode: str, emulator: Emulator, **client_options: Any) -> AsyncIterator[AkoolClient]:
    """A client reaching ``emulator`` in-process (ASGI), or over HTTP on 127.0.0.1 with
    httpx (``http``) or aiohttp (``aiohttp``, asyncio only)."""
    client_options.setdefault("retry", NO_WAIT)
    client_options.setdefault("rate_limit", None)
    if mode == "in-process":
        async with emulator, emulator.client(**client_options) as client:
            yield client
        return
    if mode == "aiohttp":
        if sniffio.current_async_library() != "asyncio":
            pytest.skip("the aiohttp transport runs on asyncio only")
        client_options["transport"] = "aiohttp"
    with serve_emulator(emulator=emulator) as running:
        client_options.setdefault("api_key", running.api_key)
        async with AkoolClient(base_url=running.base_url, **client_options) as client:
            yield client
