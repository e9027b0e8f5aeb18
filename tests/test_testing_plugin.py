"""The pytest plugin gives users' suites an emulator and a client with no waiting."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import pytest
from akool_async import ImageStatus

pytestmark = pytest.mark.anyio

@pytest.fixture
def anyio_backend():
    return "asyncio"

async def test_generate(akool_client, akool_emulator):
    jobs = await akool_client.create_by_source_prompt(prompt="a fox", batch_quantity=2)
    for job in jobs:
        assert (await akool_client.info_by_model_id(job.id)).status is ImageStatus.COMPLETED
    assert akool_emulator.counters.jobs_created == 2

@pytest.mark.akool_emulator(fail_rate=1.0)
async def test_marker_configures(akool_client):
    (job,) = await akool_client.create_by_source_prompt(prompt="a fox")
    assert (await akool_client.info_by_model_id(job.id)).status is ImageStatus.FAILED

async def test_real_port(akool_server):
    from akool_async import AkoolClient
    async with AkoolClient(api_key=akool_server.api_key, base_url=akool_server.base_url) as c:
        assert (await c.credit_info()).credit > 0
"""


@pytest.mark.long
def test_fixtures_work_in_a_users_suite(pytester: pytest.Pytester) -> None:
    """A user's suite gets instant jobs, per-test config, and a real-port server."""
    pytester.makepyfile(test_user=USER_TESTS)
    # In a subprocess, as a user runs it: the plugin loads before anything else, and the
    # coverage of it is measured from the start (in-process, it was imported long before).
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_instant_can_be_switched_off(pytester: pytest.Pytester) -> None:
    """With ``akool_emulator_instant = false`` jobs take their time again."""
    pytester.makeini("[pytest]\nakool_emulator_instant = false\n")
    pytester.makepyfile(
        test_slow="""
import pytest
from akool_async import ImageStatus

@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_queued(akool_client):
    (job,) = await akool_client.create_by_source_prompt(prompt="a fox")
    assert (await akool_client.info_by_model_id(job.id)).status is ImageStatus.QUEUEING
"""
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
