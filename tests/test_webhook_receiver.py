"""The webhook receiver: 200 for valid callbacks (handed on once), 401 for bad signatures and
replays, 400 for malformed bodies, never a reason in the answer; a 5xx only when no
subscriber took a valid event (so Akool sends it again)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akool_async import ImageStatus
from akool_async.webhook import WebhookEvent, WebhookReceiver, seal_event, sign

KEY = "0123456789abcdef0123456789abcdef"
CLIENT_ID = "client-id-of-the-test"


def sealed(event: dict[str, Any] | None = None, *, timestamp: float | None = None, key: str = KEY,
           client_id: str = CLIENT_ID) -> dict[str, Any]:  # fmt: skip
    event = event or {"_id": "job1", "status": 3, "type": "image", "url": "https://cdn.test/1.png"}
    stamp = int(1000 * (time.time() if timestamp is None else timestamp))
    return seal_event(event, api_key=key, client_id=client_id, timestamp=stamp, nonce="n0nce")


class Recorder:
    def __init__(self) -> None:
        self.receiver = WebhookReceiver(api_key=KEY, client_id=CLIENT_ID, tolerance=300)
        self.events: list[WebhookEvent] = []
        self.receiver.subscribe(self.events.append)

    async def post(self, body: Any, *, raw: bool = False) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.receiver)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            if raw:
                return await http.post("/akool", content=body)
            return await http.post("/akool", json=body)


async def test_a_valid_callback_is_accepted_and_handed_on_once() -> None:
    """200, the event reaches subscribers; Akool's retry of it is answered 200, not handed on."""
    recorder = Recorder()
    body = sealed()
    first = await recorder.post(body)
    again = await recorder.post(body)
    assert (first.status_code, again.status_code) == (200, 200)
    assert [(e.job_id, e.status, e.url) for e in recorder.events] == [
        ("job1", ImageStatus.COMPLETED, "https://cdn.test/1.png")
    ]
    assert recorder.receiver.stats.duplicates == 1
    processing = sealed({"_id": "job1", "status": 2, "type": "image"})
    assert (await recorder.post(processing)).status_code == 200
    assert len(recorder.events) == 2  # another status of the same job is news


def _tampered_ciphertext() -> dict[str, Any]:
    body = sealed()
    data = bytearray(base64.b64decode(body["dataEncrypt"]))
    data[-1] ^= 0x55
    body["dataEncrypt"] = base64.b64encode(bytes(data)).decode()
    body["signature"] = sign(CLIENT_ID, body["timestamp"], body["nonce"], body["dataEncrypt"])
    return body


def _resigned(data_encrypt: str) -> dict[str, Any]:
    """A validly signed body whose ``dataEncrypt`` is broken: it gets past the signature."""
    body = {**sealed(), "dataEncrypt": data_encrypt}
    body["signature"] = sign(CLIENT_ID, body["timestamp"], body["nonce"], data_encrypt)
    return body


# Built inside the test that uses them: the receiver refuses timestamps older than its
# tolerance, so a body signed at import time would turn stale on a long or loaded run.
BAD: dict[str, tuple[Callable[[], Any], int]] = {
    "bad signature": (lambda: {**sealed(), "signature": "0" * 40}, 401),
    "wrong client id": (lambda: sealed(client_id="someone-else"), 401),
    "replayed (too old)": (lambda: sealed(timestamp=time.time() - 3600), 401),
    "from the future": (lambda: sealed(timestamp=time.time() + 3600), 401),
    "wrong key": (lambda: sealed(key="fedcba9876543210fedcba9876543210"), 400),
    "tampered ciphertext": (_tampered_ciphertext, 400),
    "missing fields": (lambda: {"signature": "a" * 40}, 400),
    "wrong types": (lambda: {**sealed(), "timestamp": "soon"}, 400),
    "truncated base64": (lambda: _resigned(sealed()["dataEncrypt"][:-5]), 400),
}


@pytest.mark.parametrize("case", BAD, ids=BAD.keys())
async def test_bad_callbacks_get_a_bare_4xx(case: str) -> None:
    """Each kind of bad callback gets its status, a body without the reason, no dispatch."""
    build, status = BAD[case]
    body = build()
    recorder = Recorder()
    response = await recorder.post(body)
    assert response.status_code == status
    assert response.json() == {"ok": False}
    assert not recorder.events
    assert recorder.receiver.stats.rejected == 1


async def test_not_json_wrong_method_and_oversize() -> None:
    """A body that is not JSON is 400, a GET 405, a huge body 413."""
    recorder = Recorder()
    assert (await recorder.post(b"<html>", raw=True)).status_code == 400
    transport = httpx.ASGITransport(app=recorder.receiver)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        assert (await http.get("/akool")).status_code == 405
        assert (await http.post("/akool", content=b"x" * 100_000)).status_code == 413


async def test_an_event_a_subscriber_failed_to_take_comes_again() -> None:
    """A listener that raises is logged and the others still get the event, but it is not
    marked handled: the answer is 500, and Akool's retry is handed on again."""
    recorder = Recorder()
    failures = [RuntimeError("bug")]

    def flaky(event: WebhookEvent) -> None:
        if failures:
            raise failures.pop()

    recorder.receiver.subscribe(flaky)
    body = sealed()
    assert (await recorder.post(body)).status_code == 500
    assert (await recorder.post(body)).status_code == 200
    assert len(recorder.events) == 2
    assert recorder.receiver.stats.duplicates == 0


async def test_without_a_subscriber_callbacks_are_refused_for_later() -> None:
    """Nobody listens yet (the app is starting): 503, so Akool sends it again."""
    receiver = WebhookReceiver(api_key=KEY, client_id=CLIENT_ID)
    transport = httpx.ASGITransport(app=receiver)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        assert (await http.post("/akool", json=sealed())).status_code == 503
    assert receiver.stats.accepted == 0
    assert "client" not in repr(receiver).replace("client id and key redacted", "")


@settings(max_examples=200, deadline=None)
@given(st.one_of(
    st.binary(max_size=300),
    st.dictionaries(st.sampled_from(["signature", "dataEncrypt", "timestamp", "nonce", "x"]),
                    st.one_of(st.none(), st.integers(), st.text(max_size=60), st.floats()),
                    max_size=5).map(lambda d: json.dumps(d).encode()),
))  # fmt: skip
def test_no_body_makes_the_receiver_fail(body: bytes) -> None:
    """Arbitrary bodies are answered 400 or 401, never an exception or a 500."""
    import anyio

    recorder = Recorder()
    response = anyio.run(lambda: recorder.post(body, raw=True))
    assert response.status_code in (400, 401)


def test_the_repr_hides_the_key() -> None:
    """The receiver's repr shows the client id, never the key."""
    assert KEY not in repr(WebhookReceiver(api_key=KEY, client_id=CLIENT_ID))
