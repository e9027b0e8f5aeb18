"""pytest fixtures for testing code that uses akool_async, against the built-in emulator.

Installed as a pytest plugin with the package. Needs the ``emulator`` extra and, for the
async fixtures, anyio's pytest plugin (mark tests with ``@pytest.mark.anyio``)::

    @pytest.mark.anyio
    async def test_my_feature(akool_client, akool_emulator):
        (job,) = await akool_client.create_by_source_prompt(prompt="a fox")
        assert akool_emulator.counters.jobs_created == 1

Fixtures: ``akool_emulator`` (an in-process ``Emulator``), ``akool_client`` (an
``AkoolClient`` wired to it), ``akool_server`` (the emulator on a loopback port, for code
that takes a base URL), and ``akool_emulator_config`` to override in a conftest.

No waiting: jobs finish at once and retries do not sleep, unless the ini option
``akool_emulator_instant = false`` is set. ``@pytest.mark.akool_emulator(fail_rate=1.0)``
passes ``EmulatorConfig`` fields for one test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._client import AkoolClient
    from .emulator import Emulator, EmulatorConfig, RunningEmulator

INSTANT_OPTION = "akool_emulator_instant"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        INSTANT_OPTION,
        type="bool",
        default=True,
        help="akool_async emulator fixtures: jobs finish at once and retries never wait",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "akool_emulator(**fields): EmulatorConfig fields for the akool fixtures"
    )


@pytest.fixture
def akool_emulator_config(request: pytest.FixtureRequest) -> EmulatorConfig:
    """The emulator's configuration; override this fixture to change it for a suite."""
    from .emulator import EmulatorConfig

    fields = {"instant": bool(request.config.getini(INSTANT_OPTION))}
    marker = request.node.get_closest_marker("akool_emulator")
    if marker is not None:
        fields.update(marker.kwargs)
    return EmulatorConfig(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def akool_emulator(akool_emulator_config: EmulatorConfig) -> AsyncIterator[Emulator]:
    """An in-process emulator (with its webhook dispatcher running)."""
    from .emulator import Emulator

    async with Emulator(akool_emulator_config) as emulator:
        yield emulator


@pytest.fixture
async def akool_client(akool_emulator: Emulator) -> AsyncIterator[AkoolClient]:
    """An ``AkoolClient`` that reaches ``akool_emulator`` in-process."""
    async with akool_emulator.client() as client:
        yield client


@pytest.fixture
def akool_server(akool_emulator_config: EmulatorConfig) -> Iterator[RunningEmulator]:
    """The emulator served on a free loopback port (``.base_url``, ``.api_key``)."""
    from .emulator import serve_emulator

    with serve_emulator(akool_emulator_config) as running:
        yield running
