"""No credential is reachable from any error the library raises: the whole __cause__ /
__context__ chain and every attribute hanging off it (an httpx request's headers and
body, a JSON decoder's document...) is walked for a canary key, on both transports."""

from __future__ import annotations

import contextlib
import pickle
import socket
import traceback
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import akool_async as ak
from akool_async import AkoolClient, RetryPolicy

from .hostile import HostileServer, Seen, always, answer, serving, trickle

KEY = "sk-CANARYKEY-0123456789abcdef0123456789"
SECRET = "CANARYSECRET-fedcba9876543210"
_WALK_LIMIT = 200_000


def reachable_strings(root: object) -> Iterator[str]:
    """Every str and bytes reachable from ``root`` through exception links, attributes,
    slots and containers (not frames: tracebacks hold every local of the program)."""
    seen: set[int] = set()
    alive: list[object] = []  # ids are only unique among living objects: keep them alive
    stack = [root]
    while stack and len(seen) < _WALK_LIMIT:
        obj = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, int | float | type):
            continue
        seen.add(id(obj))
        alive.append(obj)
        if isinstance(obj, str):
            yield obj
            continue
        if isinstance(obj, bytes | bytearray | memoryview):
            yield bytes(obj).decode("latin-1")
            continue
        if isinstance(obj, BaseException):
            stack += [obj.__cause__, obj.__context__, *obj.args]
        if isinstance(obj, dict):
            stack += [*obj.keys(), *obj.values()]
        elif isinstance(obj, list | tuple | set | frozenset):
            stack += list(obj)
        elif hasattr(obj, "items") and callable(obj.items):
            with contextlib.suppress(Exception):
                stack += [kv for pair in obj.items() for kv in pair]
        state = getattr(obj, "__dict__", None)
        if isinstance(state, dict):
            stack.append({k: v for k, v in state.items() if k != "__traceback__"})
        for cls in type(obj).__mro__:
            for name in getattr(cls, "__slots__", ()):
                stack.append(getattr(obj, name, None))
        try:
            yield repr(obj)
        except Exception:
            continue
    assert not stack, f"the walk stopped at {_WALK_LIMIT} objects: what is past it is unchecked"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _hang_up(_seen: Seen, _server: HostileServer) -> list[bytes]:
    raise OSError("closing without an answer")  # the server thread drops the connection


def _echo_key(seen: Seen, _server: HostileServer) -> list[bytes]:
    """Echoes every header back as a body that is not JSON (a debugging proxy, say)."""
    echoed = "\n".join(f"{k}: {v}" for k, v in seen.headers.items()) + seen.body.decode()
    return answer(echoed.encode(), content_type="text/plain")


def _echo_key_in_message(seen: Seen, _server: HostileServer) -> list[bytes]:
    echoed = seen.headers.get("x-api-key", "") + seen.body.decode()
    return answer(b'{"code": 1003, "msg": "bad %s"}' % echoed.encode())


Call = Callable[[AkoolClient], Awaitable[object]]
CALLS: dict[str, Call] = {
    "create": lambda c: c.create_by_source_prompt(prompt="a fox"),
    "info": lambda c: c.info_by_model_id("0123456789abcdef01234567"),
}
SERVERS: dict[str, Any] = {
    "no server (ConnectError)": None,
    "no answer in time": trickle(b'{"code": 1000, "data": {}}', every=0.2),
    "hang-up (NetworkError)": _hang_up,
    "5xx": always(answer(b"<html>boom</html>", status=502, content_type="text/html")),
    "key echoed, not JSON": _echo_key,
    "key echoed in msg": _echo_key_in_message,
}


@pytest.fixture(params=["httpx", "aiohttp"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# What reaches an exception depends on the transport, not on the event loop: asyncio only.
on_asyncio = pytest.mark.parametrize("anyio_backend", ["asyncio"])


def _assert_clean(error: BaseException, *secrets: str) -> None:
    texts = [*reachable_strings(error), *traceback.format_exception(error)]
    texts.append(pickle.dumps(error).decode("latin-1"))
    for secret in secrets:
        assert not [t for t in texts if secret in t], f"{secret} reachable from {error!r}"


async def _failing(server: Any, transport: str, call: str, **credentials: str) -> BaseException:
    url = f"http://127.0.0.1:{_free_port()}"
    with serving(server) if server is not None else _nothing() as running:
        async with AkoolClient(
            base_url=running.url if running else url,
            transport=transport,  # type: ignore[arg-type]
            rate_limit=None,
            timeout=0.3,
            retry=RetryPolicy(attempts=2, wait=False),
            **credentials,  # type: ignore[arg-type]
        ) as client:
            with pytest.raises(ak.AkoolError) as info:
                await CALLS[call](client)
    return info.value


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


@on_asyncio
@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("server", SERVERS.values(), ids=SERVERS.keys())
async def test_no_api_key_in_any_error_chain(transport: str, call: str, server: Any) -> None:
    """Connect errors, timeouts, hang-ups, 5xx, echoes: the key is nowhere in the chain."""
    error = await _failing(server, transport, call, api_key=KEY)
    if call == "create" and server is not None:
        assert isinstance(error, ak.SubmissionUncertainError | ak.ParameterError)
    _assert_clean(error, KEY)


@on_asyncio
@pytest.mark.parametrize("server", SERVERS.values(), ids=SERVERS.keys())
async def test_no_client_secret_in_a_failed_get_token(transport: str, server: Any) -> None:
    """A getToken that fails (its body holds the secret) leaves the secret nowhere."""
    error = await _failing(server, transport, "info", client_id="cid", client_secret=SECRET)
    _assert_clean(error, SECRET)


def test_the_walk_finds_a_key_in_an_httpx_request() -> None:
    """The walk reaches what the issue found: an httpx error's request headers."""
    import httpx

    request = httpx.Request("GET", "http://x.test/", headers={"x-api-key": KEY})
    error = ak.NetworkError("boom")
    error.__cause__ = httpx.ReadError("cut", request=request)
    assert any(KEY in text for text in reachable_strings(error))
