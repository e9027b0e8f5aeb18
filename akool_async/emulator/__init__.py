"""A faithful local Akool service, for demos, tests and benchmarks: no key, no credits.

It speaks the Image Generate API as ``shared/akool-api.md`` and Akool's pages describe
it (envelopes, field casing, the v4 object-or-list answer, business codes, auth
precedence), runs jobs through queueing, processing and completion on a clock that can
be sped up, serves real PNGs that expire, sends signed and encrypted webhooks, charges
credits, and injects faults on demand. See ``_state`` for the semantics chosen where the
docs are silent, and ``Faults`` for when each fault strikes.

Needs the ``emulator`` extra: ``pip install 'akool-async[emulator]'``.
"""

from ._config import Credits, EmulatorConfig, Faults, Fixed, LogNormal
from ._emulator import IN_PROCESS_URL, Emulator, EmulatorTransport
from ._server import RunningEmulator, serve_asgi, serve_emulator
from ._state import Counters

__all__ = [
    "IN_PROCESS_URL",
    "Counters",
    "Credits",
    "Emulator",
    "EmulatorConfig",
    "EmulatorTransport",
    "Faults",
    "Fixed",
    "LogNormal",
    "RunningEmulator",
    "serve_asgi",
    "serve_emulator",
]
