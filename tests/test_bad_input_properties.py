"""Arbitrary values into every public entry point's arguments: only library errors come
out, and whenever a value is refused (ValidationError) nothing was sent."""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import akool_async as ak
from akool_async import (
    AkoolClient,
    PollPolicy,
    RequestLimits,
    RetryPolicy,
    WebhookReceiver,
    webhook,
)
from akool_async._protocol import create_request

from .counting import CountingTransport, check_sendable

KEY = "sk-properties-0123456789abcdef"
JOB = "0123456789abcdef01234567"
BACKENDS = ["asyncio", "trio"]
DONE = ak.ImageJob(id=JOB, status=ak.ImageStatus.COMPLETED)

texts = st.text(st.characters(exclude_categories=()), max_size=40)  # surrogates included
special = st.sampled_from(
    ["", " ", "\n", "\t", "\x00", "U1", "u5", "V9", "1:1", "Original", "4K", "720p", "nan",
     "5", "-1", "http://[::1/x", "https://x.test/a.png", "https://x.test/a b.png",
     "https://x.test:99999/", "ftp://x.test/a", "https://x.test/\r\nX: y", JOB, "ab\ncd",
     "a" * 5000, "\ud800"]
)  # fmt: skip
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 2, 4, 5, 0.0, 0.5, 1e-300, 1e300, True, False]),
)
scalars = st.one_of(st.none(), numbers, texts, special, st.binary(max_size=20))
anything = st.one_of(
    scalars,
    st.lists(st.one_of(special, texts, st.none(), numbers), max_size=6),
    st.tuples(special, special),
    st.dictionaries(st.text(max_size=5), scalars, max_size=3),
    st.builds(object),
    st.sampled_from([ak.Button.U1, DONE]),
)


def _arguments(function: Callable[..., Any], *, skip: tuple[str, ...] = ()) -> list[str]:
    return [
        name
        for name, parameter in inspect.signature(function).parameters.items()
        if name not in ("self", *skip) and parameter.kind != parameter.VAR_KEYWORD
    ]


def _some_of(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Some of the arguments, each replaced by an arbitrary value."""
    return st.fixed_dictionaries({}, optional=dict.fromkeys(names, anything))


Call = Callable[[AkoolClient, dict[str, Any]], Awaitable[object]]


async def _as_completed(client: AkoolClient, args: dict[str, Any]) -> object:
    return [job async for job in client.as_completed(**args)]


async def _generate(client: AkoolClient, args: dict[str, Any]) -> object:
    return client.generate(**args)


C = AkoolClient
ENTRY_POINTS: dict[str, tuple[Call, dict[str, Any], list[str]]] = {
    "create_by_source_prompt": (
        lambda c, a: c.create_by_source_prompt(**a),
        {"prompt": "a fox"},
        _arguments(C.create_by_source_prompt),
    ),
    "create_by_prompt": (
        lambda c, a: c.create_by_prompt(**a),
        {"prompt": "a fox"},
        _arguments(C.create_by_prompt),
    ),
    "create_by_button": (
        lambda c, a: c.create_by_button(**a),
        {"parent": JOB, "button": "U1"},
        _arguments(C.create_by_button),
    ),
    "submit": (
        lambda c, a: c.submit(**a),
        {"request": ak.SourcePromptRequest(prompt="a fox")},
        _arguments(C.submit),
    ),
    "info_by_model_id": (
        lambda c, a: c.info_by_model_id(**a),
        {"job_id": JOB},
        _arguments(C.info_by_model_id),
    ),
    "credit_info": (lambda c, a: c.credit_info(**a), {}, _arguments(C.credit_info)),
    # A finished job needs no poll: the drawn values are what is under test, not the wait.
    "wait": (lambda c, a: c.wait(**a), {"job": DONE}, _arguments(C.wait)),
    "as_completed": (_as_completed, {"jobs": [DONE]}, _arguments(C.as_completed)),
    "generate": (
        _generate,
        {"prompt": "a fox"},
        [*_arguments(C.generate), "scale", "resolution", "source_images", "similar"],
    ),
    "download": (
        lambda c, a: c.download(**a),
        {"source": "https://x.test/r.png", "path": "r.png"},
        _arguments(C.download),
    ),
}


@pytest.fixture(scope="module")
def workdir() -> Iterator[str]:
    """Downloads land in a scratch folder (paths drawn are relative to it)."""
    with tempfile.TemporaryDirectory() as folder:
        before = os.getcwd()
        os.chdir(folder)
        try:
            yield folder
        finally:
            os.chdir(before)


async def _run(name: str, args: dict[str, Any]) -> None:
    call, valid, _ = ENTRY_POINTS[name]
    transport = CountingTransport()
    # The fake answers a poll like the docs' v3 result (status 3, buttons, no parts): a
    # bare id drawn for wait() would be followed for a grid's parts; no grace for them here.
    async with AkoolClient(api_key=KEY, transport=transport, rate_limit=None,
                           retry=RetryPolicy(wait=False),
                           poll_policy=PollPolicy(parts_grace=0.0)) as client:  # fmt: skip
        try:
            with anyio.fail_after(30):  # a hang fails the property instead of the suite
                await call(client, {**valid, **args})
        except ak.ValidationError:
            assert transport.requests == 0, "refused, but a request was sent first"
        except ak.AkoolError:
            pass  # e.g. JobTimeoutError after a valid but tiny timeout


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ENTRY_POINTS)
@settings(max_examples=25)
@given(data=st.data())
def test_any_arguments_give_a_library_error_or_nothing_sent(
    workdir: str, backend: str, name: str, data: st.DataObject
) -> None:
    """Any mix of arbitrary arguments to a client call: a result or an AkoolError; a
    ValidationError only ever with nothing sent."""
    args = data.draw(_some_of(ENTRY_POINTS[name][2]), label="args")
    anyio.run(_run, name, args, backend=backend)


CONSTRUCTORS: dict[str, tuple[Callable[..., object], dict[str, Any]]] = {
    "AkoolClient": (AkoolClient, {"api_key": KEY}),
    "RetryPolicy": (RetryPolicy, {}),
    "PollPolicy": (PollPolicy, {}),
    "RequestLimits": (RequestLimits, {}),
    "WebhookReceiver": (WebhookReceiver, {"api_key": KEY, "client_id": "cid"}),
}


@pytest.mark.parametrize("name", CONSTRUCTORS)
@settings(max_examples=80)
@given(data=st.data())
def test_any_settings_give_a_library_error(name: str, data: st.DataObject) -> None:
    """Any mix of arbitrary settings: an object, or an AkoolError (validation ones also
    ValueErrors), never another exception; a credential is never in the message."""
    build, valid = CONSTRUCTORS[name]
    args = data.draw(_some_of(_arguments(build)), label="args")
    error: ak.AkoolError | None = None
    try:
        build(**{**valid, **args})
    except ak.AkoolError as exc:
        error = exc
    if isinstance(error, ak.ValidationError):
        assert isinstance(error, ValueError)
    assert KEY not in str(error)


MODELS: dict[str, tuple[Callable[..., object], dict[str, Any]]] = {
    "SourcePromptRequest": (ak.SourcePromptRequest, {"prompt": "a fox"}),
    "PromptRequest": (ak.PromptRequest, {"prompt": "a fox"}),
    "ButtonRequest": (ak.ButtonRequest, {"job_id": JOB, "button": "U1"}),
}


@pytest.mark.parametrize("name", MODELS)
@settings(max_examples=80)
@given(data=st.data())
def test_request_models_refuse_with_validation_errors(name: str, data: st.DataObject) -> None:
    """Building a request model from arbitrary values: a request that can be sent, or a
    ValidationError; never another exception."""
    build, valid = MODELS[name]
    args = data.draw(_some_of(_arguments(build)), label="args")
    try:
        request = build(**{**valid, **args})
    except ak.ValidationError:
        return
    check_sendable(create_request(request))  # type: ignore[arg-type]


callback_fields = st.sampled_from(["signature", "dataEncrypt", "timestamp", "nonce"])
callback_bodies = st.builds(
    json.dumps, st.dictionaries(callback_fields, st.one_of(texts, special, numbers))
).map(lambda text: text.encode("utf-8", "surrogatepass"))

RECEIVED = {
    "accept": lambda body, **_: WebhookReceiver(api_key="k" * 32, client_id="cid").accept(body),
    "open_callback": webhook.open_callback,
    "parse_callback": lambda body, **_: webhook.parse_callback(body),
    "decrypt": webhook.decrypt,
    "parse_event": lambda body, **_: webhook.parse_event(body),
}


@pytest.mark.parametrize("name", RECEIVED)
@settings(max_examples=80)
@given(body=st.one_of(anything, callback_bodies))
def test_webhook_input_gives_webhook_errors(name: str, body: object) -> None:
    """Whatever arrives as a callback, the receiving functions raise WebhookError only."""
    with contextlib.suppress(ak.WebhookError):
        RECEIVED[name](body, api_key="k" * 32, client_id="cid")
