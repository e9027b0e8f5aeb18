"""Every bad input the adversarial pass found: a typed error (a ValidationError, so also a
ValueError) naming the field, the value and what is allowed, raised before any request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import akool_async as ak
from akool_async import AkoolClient, PollPolicy, RequestLimits, RetryPolicy, WebhookReceiver

from .counting import CountingTransport

KEY = "sk-bad-input-0123456789abcdef"
URL = "https://x.test/a.png"
NAN = float("nan")
Call = Callable[[AkoolClient], Awaitable[object]]


@pytest.fixture
async def counted() -> AsyncIterator[tuple[AkoolClient, CountingTransport]]:
    transport = CountingTransport()
    async with AkoolClient(api_key=KEY, transport=transport, rate_limit=None) as client:
        yield client, transport


def _job(status: ak.ImageStatus = ak.ImageStatus.COMPLETED) -> ak.ImageJob:
    return ak.ImageJob(id="0123456789abcdef01234567", status=status)


CALLS: dict[str, tuple[Call, str]] = {
    "button on None": (lambda c: c.create_by_button(None, "U1"), "job_id"),  # type: ignore[arg-type]
    "button on an id with a newline": (lambda c: c.create_by_button("ab\ncd", "U1"), "job_id"),
    "button 'U5'": (lambda c: c.create_by_button("abc", "U5"), "button"),  # type: ignore[arg-type]
    "button None": (lambda c: c.create_by_button("abc", None), "button"),  # type: ignore[arg-type]
    "wait(None)": (lambda c: c.wait(None), "job"),  # type: ignore[arg-type]
    "wait(123)": (lambda c: c.wait(123), "job"),  # type: ignore[arg-type]
    "wait on an id with a tab": (lambda c: c.wait("ab\tcd"), "job"),
    "wait(timeout=nan)": (lambda c: c.wait("abc", timeout=NAN), "timeout"),
    "wait(timeout='5')": (lambda c: c.wait("abc", timeout="5"), "timeout"),  # type: ignore[arg-type]
    "as_completed of a str": (lambda c: anext(c.as_completed("abc")), "jobs"),  # type: ignore[arg-type]
    "info on an id with a newline": (lambda c: c.info_by_model_id("ab\ncd"), "job_id"),
    "info on None": (lambda c: c.info_by_model_id(None), "job_id"),  # type: ignore[arg-type]
    "info on a 10 KB id": (lambda c: c.info_by_model_id("a" * 10_000), "job_id"),
    "info(timeout=nan)": (lambda c: c.info_by_model_id("abc", timeout=NAN), "timeout"),
    "credit(timeout=0)": (lambda c: c.credit_info(timeout=0), "timeout"),
    "credit(timeout=True)": (lambda c: c.credit_info(timeout=True), "timeout"),
    "create(timeout='5')": (
        lambda c: c.create_by_source_prompt(prompt="x", timeout="5"),  # type: ignore[arg-type]
        "timeout",
    ),
    "source_images=[]": (
        lambda c: c.create_by_source_prompt(prompt="x", source_images=[]),
        "source_images",
    ),
    "an unparsable URL": (
        lambda c: c.create_by_source_prompt(prompt="x", source_images=["http://[::1/x"]),
        "source_images",
    ),
    "a URL with a space": (
        lambda c: c.create_by_source_prompt(prompt="x", source_images=["https://x.test/a b.png"]),
        "source_images",
    ),
    "a URL with CR/LF": (
        lambda c: c.create_by_source_prompt(prompt="x", webhook_url="https://x.test/\r\nX: y"),
        "webhook_url",
    ),
    "a URL with a bad port": (
        lambda c: c.create_by_prompt(prompt="x", source_image="https://x.test:99999/a.png"),
        "source_image",
    ),
    "a lone surrogate in the prompt": (
        lambda c: c.create_by_source_prompt(prompt="a \ud800 fox"),
        "prompt",
    ),
    "a NUL in the prompt": (lambda c: c.create_by_source_prompt(prompt="a\x00fox"), "prompt"),
    "a control character in negative_prompt": (
        lambda c: c.create_by_source_prompt(prompt="x", negative_prompt="\x1b[31m"),
        "negative_prompt",
    ),
    "a 1 MB prompt": (lambda c: c.create_by_source_prompt(prompt="x" * 1_000_000), "prompt"),
    "a 10 KB URL": (
        lambda c: c.create_by_source_prompt(prompt="x", source_images=[URL + "?" + "a" * 10_000]),
        "source_images",
    ),
    "100 source images": (
        lambda c: c.create_by_source_prompt(prompt="x", source_images=[URL] * 100),
        "source_images",
    ),
    "scale '5:4'": (lambda c: c.create_by_source_prompt(prompt="x", scale="5:4"), "scale"),  # type: ignore[arg-type]
    "batch_quantity '2'": (
        lambda c: c.create_by_source_prompt(prompt="x", batch_quantity="2"),  # type: ignore[arg-type]
        "batch_quantity",
    ),
    "a submit of a dict": (lambda c: c.submit({"prompt": "x"}), "request"),  # type: ignore[arg-type]
    "generate with an unknown option": (
        lambda c: _now(c.generate(prompt="x", colour="red")),
        "colour",
    ),
    "generate with job_timeout=inf": (
        lambda c: _now(c.generate(prompt="x", job_timeout=float("inf"))),
        "job_timeout",
    ),
    "generate with follow_ups='U1'": (
        lambda c: _now(c.generate(prompt="x", follow_ups="U1")),
        "follow_ups",
    ),
    "download of an unfinished job": (
        lambda c: c.download(_job(ak.ImageStatus.PROCESSING), "x.png"),
        "source",
    ),
    "download from a URL with a space": (
        lambda c: c.download("https://x.test/a b", "x.png"),
        "source",
    ),
    "download to None": (lambda c: c.download(URL, None), "path"),  # type: ignore[arg-type]
    "download to a path with NUL": (lambda c: c.download(URL, "a\x00b.png"), "path"),
    "download(timeout=-1)": (lambda c: c.download(URL, "x.png", timeout=-1), "timeout"),
    # Found by test_bad_input_properties: a raw OSError (ENAMETOOLONG) from the path's stat.
    "download to a file name too long": (lambda c: c.download(URL, "a" * 300), "path"),
    # Fits alone, not with the temporary file's suffix: refused before the fetch, not after.
    "download to a file name with no room": (lambda c: c.download(URL, "a" * 240), "path"),
    "download to a lone surrogate": (lambda c: c.download(URL, "\ud800.png"), "path"),
    "download into a folder with a lone surrogate": (
        lambda c: c.download(URL, "\ud800/x.png"),
        "path",
    ),
}


async def _now(value: object) -> object:
    return value


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
async def test_bad_call_arguments_are_refused_before_sending(
    counted: tuple[AkoolClient, CountingTransport], call: tuple[Call, str]
) -> None:
    """Each bad argument raises ValidationError naming it; no request is sent."""
    client, transport = counted
    make, field = call
    with pytest.raises(ak.ValidationError) as info:
        await make(client)
    assert info.value.field == field
    assert field in str(info.value)
    assert info.value.allowed
    assert transport.requests == 0


SETTINGS: dict[str, tuple[dict[str, Any], str]] = {
    "api_key=123": ({"api_key": 123}, "api_key"),
    "api_key=b'...'": ({"api_key": KEY.encode()}, "api_key"),
    "client_secret=b'...'": ({"client_id": "c", "client_secret": KEY.encode()}, "client_secret"),
    "max_in_flight='8'": ({"max_in_flight": "8"}, "max_in_flight"),
    "max_in_flight=0": ({"max_in_flight": 0}, "max_in_flight"),
    "max_downloads=2.0": ({"max_downloads": 2.0}, "max_downloads"),
    "timeout=nan": ({"timeout": NAN}, "timeout"),
    "timeout='5'": ({"timeout": "5"}, "timeout"),
    "timeout=1e300": ({"timeout": 1e300}, "timeout"),
    "rate_limit=0": ({"rate_limit": 0}, "rate_limit"),
    "rate_limit=inf": ({"rate_limit": float("inf")}, "rate_limit"),
    "rate_burst=0": ({"rate_burst": 0}, "rate_burst"),
    "rate_burst=True": ({"rate_burst": True}, "rate_burst"),
    "retry=3": ({"retry": 3}, "retry"),
    "poll_policy={}": ({"poll_policy": {}}, "poll_policy"),
    "transport='requests'": ({"transport": "requests"}, "transport"),
    "base_url=123": ({"base_url": 123}, "base_url"),
    "base_url with a space": ({"base_url": "https://api .akool.com"}, "base_url"),
    "webhook_url not a URL": ({"webhook_url": "hook"}, "webhook_url"),
    "max_response_bytes=0": ({"max_response_bytes": 0}, "max_response_bytes"),
    "max_download_bytes='1GB'": ({"max_download_bytes": "1GB"}, "max_download_bytes"),
    "download_timeout=0": ({"download_timeout": 0}, "download_timeout"),
    "keepalive_expiry=-1": ({"keepalive_expiry": -1}, "keepalive_expiry"),
    "limits=10": ({"limits": 10}, "limits"),
}


@pytest.mark.parametrize("settings", SETTINGS.values(), ids=SETTINGS.keys())
def test_bad_settings_are_refused(settings: tuple[dict[str, Any], str]) -> None:
    """Each bad client setting raises InvalidSettingError (a ValidationError and a
    ConfigurationError) naming it; a credential's value is never shown."""
    options, field = settings
    options = {"api_key": KEY, **options} if "client_id" not in options else options
    with pytest.raises(ak.InvalidSettingError) as info:
        AkoolClient(**options)
    assert isinstance(info.value, ak.ValidationError)  # and so a ValueError
    assert isinstance(info.value, ak.ConfigurationError)
    assert info.value.field == field
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value.value)


POLICIES: dict[str, tuple[Callable[[], object], str]] = {
    "RetryPolicy(attempts=0)": (lambda: RetryPolicy(attempts=0), "RetryPolicy.attempts"),
    "RetryPolicy(attempts='3')": (lambda: RetryPolicy(attempts="3"), "RetryPolicy.attempts"),  # type: ignore[arg-type]
    "RetryPolicy(timeout=nan)": (lambda: RetryPolicy(timeout=NAN), "RetryPolicy.timeout"),
    "RetryPolicy(wait_max=-1)": (lambda: RetryPolicy(wait_max=-1), "RetryPolicy.wait_max"),
    "PollPolicy(min_interval=0)": (lambda: PollPolicy(min_interval=0), "PollPolicy.min_interval"),
    "PollPolicy(jitter=nan)": (lambda: PollPolicy(jitter=NAN), "PollPolicy.jitter"),
    "PollPolicy(probes='2')": (lambda: PollPolicy(probes="2"), "PollPolicy.probes"),  # type: ignore[arg-type]
    "RequestLimits(max_prompt_chars=0)": (
        lambda: RequestLimits(max_prompt_chars=0),
        "max_prompt_chars",
    ),
    "WebhookReceiver(api_key=None)": (
        lambda: WebhookReceiver(api_key=None, client_id="c"),
        "api_key",  # type: ignore[arg-type]
    ),
    "WebhookReceiver(tolerance=nan)": (
        lambda: WebhookReceiver(api_key=KEY, client_id="c", tolerance=NAN),
        "tolerance",
    ),
}


@pytest.mark.parametrize("make", POLICIES.values(), ids=POLICIES.keys())
def test_bad_policy_values_are_refused(make: tuple[Callable[[], object], str]) -> None:
    """Policies and receivers refuse bad values with InvalidSettingError naming the field."""
    build, field = make
    with pytest.raises(ak.InvalidSettingError) as info:
        build()
    assert info.value.field == field


async def test_limits_are_configurable(counted: tuple[AkoolClient, CountingTransport]) -> None:
    """A client with larger RequestLimits sends what the default limits refuse."""
    default_client, default = counted
    with pytest.raises(ak.ValidationError, match="max_prompt_chars"):
        await default_client.create_by_source_prompt(prompt="x" * 1_000_000)
    with pytest.raises(ak.ValidationError, match="max_source_images"):
        await default_client.create_by_source_prompt(prompt="x", source_images=[URL] * 100)
    transport = CountingTransport(default_limits=False)
    limits = RequestLimits(max_prompt_chars=2_000_000, max_source_images=200)
    async with AkoolClient(api_key=KEY, transport=transport, rate_limit=None,
                           limits=limits) as client:  # fmt: skip
        await client.create_by_source_prompt(prompt="x" * 1_000_000)
        await client.create_by_source_prompt(prompt="x", source_images=[URL] * 100)
    assert len(transport.sent) == 2
    assert default.requests == 0


async def test_a_path_too_long_for_its_temporary_file_is_refused_before_fetching(
    counted: tuple[AkoolClient, CountingTransport], tmp_path: Path
) -> None:
    """A path under the system's limit, but not once the temporary file's suffix is added
    to it: a ValidationError on ``path``, nothing fetched (it was a raw OSError after the
    fetch)."""
    client, transport = counted
    folder = tmp_path
    while len(str(folder)) < 3900:
        folder /= "d" * 150
    folder.mkdir(parents=True)
    long = folder / ("y" * (4085 - len(str(folder)) - 1))
    assert 4096 - 24 < len(str(long)) < 4096
    with pytest.raises(ak.ValidationError, match="a path of at most") as refused:
        await client.download(URL, long)
    assert refused.value.field == "path"
    assert transport.requests == 0


async def test_download_makes_missing_folders(
    counted: tuple[AkoolClient, CountingTransport], tmp_path: Path
) -> None:
    """download() into a folder that does not exist yet makes it (and fetches once)."""
    client, transport = counted
    saved = await client.download(URL, tmp_path / "a" / "b" / "r.png")
    assert saved.path.is_file()
    assert transport.fetched == [URL]
