"""Every business code the emulator returns reaches the user through the client, typed."""

from __future__ import annotations

import httpx
import pytest

import akool_async as ak
from akool_async import AkoolClient, RetryPolicy
from akool_async.emulator import Credits, Emulator, Faults

from .emulated import IN_PROCESS, ManualClock, config

ONCE = RetryPolicy(attempts=1)


def _client(emulator: Emulator, **options: object) -> AkoolClient:
    options.setdefault("retry", ONCE)
    options.setdefault("rate_limit", None)
    return emulator.client(**options)


async def test_1003_unknown_model() -> None:
    """A model the client lets through (Akool adds models) but the server rejects: 1003."""
    emulator = Emulator(config())
    async with emulator, _client(emulator) as client:
        with pytest.raises(ak.ParameterError, match="model_name"):
            await client.create_by_source_prompt(prompt="x", model_name="someone/new-model")
    assert emulator.counters.jobs_created == 0


async def test_1101_wrong_key() -> None:
    """A wrong API key: 1101."""
    emulator = Emulator(config())
    async with emulator, _client(emulator, api_key="not-the-key") as client:
        with pytest.raises(ak.InvalidTokenError):
            await client.credit_info()


async def test_1101_wrong_client_secret() -> None:
    """getToken with a wrong secret: 1101 from getToken."""
    emulator = Emulator(config())
    async with (
        emulator,
        _client(
            emulator, api_key=None, client_id=emulator.client_id, client_secret="wrong-secret-value"
        ) as client,
    ):
        with pytest.raises(ak.InvalidTokenError) as info:
            await client.credit_info()
    assert info.value.endpoint == "getToken"


async def test_1102_no_credentials_sent() -> None:
    """A request arriving without credentials (stripped on the way): 1102."""

    async def strip(request: httpx.Request) -> None:
        del request.headers["x-api-key"]

    emulator = Emulator(config())
    http = httpx.AsyncClient(transport=emulator.transport(), event_hooks={"request": [strip]})
    async with emulator, http, _client(emulator, http_client=http) as client:
        with pytest.raises(ak.MissingAuthorizationError):
            await client.credit_info()


async def test_authorization_wins_over_api_key() -> None:
    """Sent both headers (our client never does), the emulator reads Authorization."""
    emulator = Emulator(config())
    async with emulator, httpx.AsyncClient(transport=emulator.transport()) as raw:
        answer = await raw.get(
            f"{IN_PROCESS}/api/open/v3/faceswap/quota/info",
            headers={"x-api-key": emulator.api_key, "authorization": "Bearer bogus"},
        )
    assert answer.json()["code"] == 1101


async def test_client_never_sends_both_headers() -> None:
    """An injected client's default Authorization is dropped next to the API key."""
    emulator = Emulator(config())
    http = httpx.AsyncClient(
        transport=emulator.transport(), headers={"authorization": "Bearer bogus"}
    )
    async with emulator, http, _client(emulator, http_client=http) as client:
        assert (await client.credit_info()).credit > 0


async def test_1008_unknown_ids() -> None:
    """Unknown job ids: 1008 for the result and for a button's parent."""
    emulator = Emulator(config())
    async with emulator, _client(emulator) as client:
        with pytest.raises(ak.NotFoundError) as info:
            await client.info_by_model_id("ffffffffffffffffffffffff")
        assert info.value.job_id == "ffffffffffffffffffffffff"
        with pytest.raises(ak.NotFoundError):
            await client.create_by_button("ffffffffffffffffffffffff", "U1")


async def test_1008_other_accounts_job() -> None:
    """A job of another account is not found (no leaking across keys)."""
    emulator = Emulator(config(instant=True))
    emulator.backend.add_account("other-account-key-0123456789abcd", "other-client", 10)
    async with (
        emulator,
        _client(emulator) as mine,
        _client(emulator, api_key="other-account-key-0123456789abcd") as theirs,
    ):
        (job,) = await mine.create_by_source_prompt(prompt="x")
        with pytest.raises(ak.NotFoundError):
            await theirs.info_by_model_id(job.id)


async def test_1010_button_before_parent_finished_or_failed() -> None:
    """A button on an unfinished parent, or a failed one: 1010, and nothing charged."""
    clock = ManualClock()
    emulator = Emulator(config(), clock=clock)
    async with emulator, _client(emulator) as client:
        (job,) = await client.create_by_source_prompt(prompt="x")
        with pytest.raises(ak.OperationNotAllowedError):
            await client.create_by_button(job.id, "U1")
        charged = emulator.counters.credits_charged
    failing = Emulator(config(instant=True, fail_rate=1.0))
    async with failing, _client(failing) as client:
        (failed,) = await client.create_by_source_prompt(prompt="x")
        assert (await client.info_by_model_id(failed.id)).status is ak.ImageStatus.FAILED
        with pytest.raises(ak.OperationNotAllowedError):
            await client.create_by_button(failed.id, "V2")
    assert emulator.counters.credits_charged == charged == 1


async def test_1010_button_not_offered_and_1003_unknown_button() -> None:
    """An upscaled image offers no buttons (1010); a made-up button on the wire is 1003."""
    emulator = Emulator(config(instant=True))
    async with emulator, _client(emulator) as client:
        (job,) = await client.create_by_source_prompt(prompt="x")
        upscale = await client.create_by_button(job.id, "U1")
        with pytest.raises(ak.OperationNotAllowedError):
            await client.create_by_button(upscale.id, "V1")
    async with emulator, httpx.AsyncClient(transport=emulator.transport()) as raw:
        answer = await raw.post(
            f"{IN_PROCESS}/api/open/v3/content/image/createbybutton",
            json={"_id": job.id, "button": "U9"},
            headers={"x-api-key": emulator.api_key},
        )
    assert answer.json()["code"] == 1003


async def test_1011_button_pressed_twice() -> None:
    """The same button twice by id (the client cannot check): 1011 the second time."""
    emulator = Emulator(config(instant=True))
    async with emulator, _client(emulator) as client:
        (job,) = await client.create_by_source_prompt(prompt="x")
        await client.create_by_button(job.id, "U3")
        with pytest.raises(ak.AlreadyOperatedError):
            await client.create_by_button(job.id, "U3")
    assert emulator.counters.jobs_created == 2


async def test_1005_rate_limit_per_key() -> None:
    """Past its per-key rate a key gets 1005 (and the rejection is counted)."""
    emulator = Emulator(config(rate_limit=0.001, rate_burst=2))
    async with emulator, _client(emulator) as client:
        await client.credit_info()
        await client.credit_info()
        with pytest.raises(ak.RateLimitedError):
            await client.credit_info()
    assert emulator.counters.rate_limited == 1


async def test_1104_when_credit_runs_out() -> None:
    """A batch the balance cannot pay for in full is refused whole: 1104."""
    emulator = Emulator(config(credits=Credits(balance=5)))
    async with emulator, _client(emulator) as client:
        await client.create_by_source_prompt(prompt="x", batch_quantity=4)
        with pytest.raises(ak.InsufficientCreditError):
            await client.create_by_source_prompt(prompt="x", batch_quantity=2)
        assert (await client.credit_info()).credit == 1
    assert emulator.counters.jobs_created == 4


@pytest.mark.parametrize(("fault", "error"), [("code_1005", ak.RateLimitedError),
                                              ("code_1108", ak.GenerationError)])  # fmt: skip
async def test_injected_codes(fault: str, error: type[ak.APIError]) -> None:
    """Injected 1005 and 1108 reach the client as their errors; nothing was created."""
    emulator = Emulator(config(faults=Faults(**{fault: 1.0})))
    async with emulator, _client(emulator) as client:
        with pytest.raises(error):
            await client.create_by_source_prompt(prompt="x")
    assert emulator.counters.jobs_created == 0
    assert emulator.counters.faults[fault] == 1
