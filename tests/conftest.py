"""Shared fixtures: every async test runs on both anyio backends (asyncio and trio)."""

from __future__ import annotations

import inspect
import io
import os
from collections.abc import AsyncIterator, Iterator

import pytest
import respx
from hypothesis import HealthCheck, settings

from akool_async import AkoolClient, RetryPolicy

from ._servers import account, own_redis, redis_url  # noqa: F401 (fixtures: real servers)
from .postgres import postgres_server, postgres_url  # noqa: F401 (fixtures: real servers)

BASE_URL = "https://api.akool.test"
API_KEY = "sk-test-0123456789abcdef0123456789abcdef"
NO_WAIT = RetryPolicy(wait=False)

# The properties are about values, not speed: a shared, loaded CI machine must not fail
# them on hypothesis's per-example deadline or its data-generation timing check.
settings.register_profile(
    "shared-machines", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("shared-machines")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Workers for ``-n auto``: three per core this process may use, at least two.

    Most tests spend their time waiting on sockets, subprocesses and the emulator's clock,
    not on the CPU (a serial run uses about a third of one core), so extra workers overlap
    waits (on 2 cores: 157 s with 4 workers and coverage, 116 s with 6 and none, the same
    with 8, which only adds contention on a loaded machine).
    """
    return max(2, 3 * len(os.sched_getaffinity(0)))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ``long`` tests first (in their own order): started last, one of them would hold
    the suite's end by itself while the other workers idle."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Mark every ``async def`` test for anyio (which then runs it on both backends)."""
    if collector.istestfunction(obj, name) and inspect.iscoroutinefunction(obj):  # type: ignore[attr-defined]
        pytest.mark.anyio(obj)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["httpx", "aiohttp"])
def transport(request: pytest.FixtureRequest, anyio_backend: str) -> str:
    """Each of the client's transports, for tests that take ``transport`` (aiohttp runs on
    asyncio only)."""
    if request.param == "aiohttp" and anyio_backend != "asyncio":
        pytest.skip("the aiohttp transport runs on asyncio only")
    return str(request.param)


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    """A mocked Akool API; routes not set up answer with an error."""
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def client() -> AsyncIterator[AkoolClient]:
    async with AkoolClient(
        rate_limit=None, api_key=API_KEY, base_url=BASE_URL, retry=NO_WAIT
    ) as akool:
        yield akool


# Per package, so a module that falls behind shows in its part of the project.
COVERAGE_PARTS = {
    "akool_async (core)": (["akool_async/*"], ["akool_async/bulk/*", "akool_async/emulator/*",
                                              "akool_async/_cli/*"]),
    "akool_async.bulk": (["akool_async/bulk/*"], []),
    "akool_async.emulator": (["akool_async/emulator/*"], []),
    "akool_async._cli": (["akool_async/_cli/*"], []),
}  # fmt: skip


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """After pytest-cov's table: branch coverage of each part of the package."""
    plugin = terminalreporter.config.pluginmanager.getplugin("_cov")
    controller = getattr(plugin, "cov_controller", None)
    coverage = getattr(controller, "cov", None)
    if coverage is None or getattr(plugin, "cov_total", None) is None:
        return
    terminalreporter.write_sep("-", "branch coverage by package")
    for part, (include, omit) in COVERAGE_PARTS.items():
        total = coverage.report(include=include, omit=omit, file=io.StringIO())
        terminalreporter.write_line(f"{part:<24} {total:5.1f}%")
