"""The emulator as Akool's own demo app reads it, over raw HTTP (not through our client):
token login, grids whose four parts come after status 3, U results larger than their
parent, status answers shaped like create answers, wall-clock create_time, 1009/1200."""

from __future__ import annotations

import contextlib
import struct
import time
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from akool_async.emulator import Emulator, EmulatorConfig, Faults, serve_emulator

from .emulated import ManualClock, config

IMAGE = "/api/open/v3/content/image"


def _pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of one of the emulator's PNGs (8-bit RGB, filter 0)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, idat, width, height = 8, b"", 0, 0
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
            assert body[8:10] == b"\x08\x02"  # 8-bit RGB
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    raw = zlib.decompress(idat)
    stride = 1 + 3 * width
    rows = [raw[y * stride : (y + 1) * stride] for y in range(height)]
    assert all(row[0] == 0 for row in rows)
    return width, height, [row[1:] for row in rows]


class Demo:
    """What Akool's demo backend does: getToken once, then Bearer on every call."""

    def __init__(self, http: httpx.Client, client_id: str, client_secret: str) -> None:
        answer = http.post(
            "/api/open/v3/getToken", json={"clientId": client_id, "clientSecret": client_secret}
        ).json()
        assert answer["code"] == 1000
        self.http = http
        self.headers = {"Authorization": f"Bearer {answer['token']}"}

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.http.post(path, json=body, headers=self.headers).json()
        assert answer["code"] == 1000, answer
        data: dict[str, Any] = answer["data"]
        return data

    def status(self, job_id: str) -> dict[str, Any]:
        answer = self.http.get(
            f"{IMAGE}/infobymodelid", params={"image_model_id": job_id}, headers=self.headers
        ).json()
        assert answer["code"] == 1000, answer
        data: dict[str, Any] = answer["data"]
        return data

    def image(self, url: str) -> bytes:
        answer = self.http.get(url)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "image/png"
        return answer.content


@contextlib.contextmanager
def demo_of(emulator: Emulator) -> Iterator[Demo]:
    """``emulator`` on a loopback port, and the demo's client logged in to it (getToken)."""
    with (
        serve_emulator(emulator=emulator) as running,
        httpx.Client(base_url=running.base_url) as http,
    ):
        yield Demo(http, emulator.client_id, emulator.client_secret)


def grid_finished(data: dict[str, Any]) -> bool:
    """The demo's rule for a first result or a V result."""
    return data["image_status"] == 3 and bool(data["upscaled_urls"])


def upscale_finished(data: dict[str, Any]) -> bool:
    """The demo's rule for a U result."""
    return data["image_status"] == 3 and bool(data["image"]) and data["upscaled_urls"] == []


def check_grid(demo: Demo, data: dict[str, Any]) -> None:
    """Four distinct part PNGs, and ``image`` the 2x2 grid made of exactly them."""
    parts = data["upscaled_urls"]
    assert len(parts) == len(set(parts)) == 4
    decoded = [_pixels(demo.image(url)) for url in parts]
    assert len({b"".join(rows) for _, _, rows in decoded}) == 4
    width, height, _ = decoded[0]
    assert all((w, h) == (width, height) for w, h, _ in decoded)
    grid_width, grid_height, grid = _pixels(demo.image(data["image"]))
    assert (grid_width, grid_height) == (2 * width, 2 * height)
    top = [left + right for left, right in zip(decoded[0][2], decoded[1][2], strict=True)]
    bottom = [left + right for left, right in zip(decoded[2][2], decoded[3][2], strict=True)]
    assert grid == top + bottom


def test_first_and_v_results_are_grids_whose_parts_come_after_status_3() -> None:
    """A v3 first result and a V result: finished (by the demo's rule) only once their
    four parts came, a few emulated seconds after status 3; image is their grid."""
    clock = ManualClock()
    with demo_of(Emulator(config(parts_delay=3.0), clock=clock)) as demo:
        created = demo.post(f"{IMAGE}/createbyprompt", {"prompt": "a fox", "scale": "4:3"})
        clock.advance(31)  # done at 30 s; parts at 33 s
        early = demo.status(created["_id"])
        assert early["image_status"] == 3
        assert early["image"]
        assert not grid_finished(early)  # the demo keeps polling
        assert demo.http.get(early["image"].replace(".png", "-1.png")).status_code == 404
        clock.advance(3)
        result = demo.status(created["_id"])
        assert grid_finished(result)
        check_grid(demo, result)

        varied = demo.post(f"{IMAGE}/createbybutton", {"_id": created["_id"], "button": "V2"})
        clock.advance(31)
        assert not grid_finished(demo.status(varied["_id"]))
        clock.advance(3)
        variation = demo.status(varied["_id"])
        assert grid_finished(variation)
        assert not upscale_finished(variation)
        check_grid(demo, variation)
        assert set(variation["upscaled_urls"]).isdisjoint(result["upscaled_urls"])


def test_u_result_is_one_image_larger_than_its_parent() -> None:
    """A U result: status 3, image set, upscaled_urls empty, larger than its parent."""
    clock = ManualClock()
    with demo_of(Emulator(config(), clock=clock)) as demo:
        created = demo.post(f"{IMAGE}/createbyprompt", {"prompt": "a fox"})
        clock.advance(40)
        parent = demo.status(created["_id"])
        assert grid_finished(parent)
        pressed = demo.post(f"{IMAGE}/createbybutton", {"_id": created["_id"], "button": "U3"})
        assert pressed["op_button"] == "U3"
        clock.advance(40)
        upscaled = demo.status(pressed["_id"])
        assert upscale_finished(upscaled)
        assert not grid_finished(upscaled)
        width, height, _ = _pixels(demo.image(upscaled["image"]))
        parent_width, parent_height, _ = _pixels(demo.image(parent["image"]))
        assert width > parent_width
        assert height > parent_height


def test_status_answers_read_like_create_answers() -> None:
    """Status carries source_image, prompt and origin_prompt; type as the docs show it: 4
    in a v3 create answer (the docs' create example), 3 in its status answers (their
    result example), 4 in every answer about a v4 job."""
    clock = ManualClock()
    with demo_of(Emulator(config(), clock=clock)) as demo:
        v3 = demo.post(
            f"{IMAGE}/createbyprompt",
            {"prompt": "a fox", "source_image": "https://example.com/a.png"},
        )
        v4 = demo.post(
            "/api/open/v4/content/image/createBySourcePrompt",
            {"prompt": "an owl", "source_images": ["https://example.com/b.png"]},
        )
        answers = [demo.status(v3["_id"]), demo.status(v4["_id"])]
        clock.advance(40)
        answers += [demo.status(v3["_id"]), demo.status(v4["_id"])]
        for created, data in zip([v3, v4, v3, v4], answers, strict=True):
            for key in ("source_image", "prompt", "origin_prompt"):
                assert data[key] == created[key], key
        assert answers[2]["image_status"] == answers[3]["image_status"] == 3
        assert v3["type"] == v4["type"] == 4
        assert [a["type"] for a in answers] == [3, 4, 3, 4]
        parent = answers[2]
        for button in ("U1", "V2"):
            pressed = demo.post(f"{IMAGE}/createbybutton", {"_id": parent["_id"], "button": button})
            assert demo.status(pressed["_id"])["source_image"] == "https://example.com/a.png"


def test_each_image_of_a_v4_batch_has_its_own_create_time_and_file_name() -> None:
    """As the v4 page's batch example: create times 1 ms apart; file names apart too."""
    emulator = Emulator(config())
    with (
        serve_emulator(emulator=emulator) as running,
        httpx.Client(base_url=running.base_url, headers={"x-api-key": emulator.api_key}) as http,
    ):
        batch = http.post(
            "/api/open/v4/content/image/createBySourcePrompt",
            json={"prompt": "an owl", "batch_quantity": 4},
        ).json()["data"]
    times = [data["create_time"] for data in batch]
    assert times == list(range(times[0], times[0] + 4))
    assert [data["file_name"] for data in batch] == [f"ImageGenerator_{t}.png" for t in times]


def test_create_time_is_on_the_wall_clock_whatever_the_time_scale() -> None:
    """Under a huge time scale, create_time still reads as now (ages, 7-day expiry)."""
    emulator = Emulator(EmulatorConfig(time_scale=1_000_000))
    with (
        serve_emulator(emulator=emulator) as running,
        httpx.Client(base_url=running.base_url, headers={"x-api-key": emulator.api_key}) as http,
    ):
        created = http.post(f"{IMAGE}/createbyprompt", json={"prompt": "a fox"}).json()["data"]
        status = http.get(
            f"{IMAGE}/infobymodelid", params={"image_model_id": created["_id"]}
        ).json()["data"]
        now = time.time()
    for data in (created, status):
        # A second of real time is 11 emulated days here: minutes apart would be a bug.
        assert abs(data["create_time"] / 1000 - now) < 120


@pytest.mark.parametrize(("fault", "code"), [("code_1009", 1009), ("code_1200", 1200)])
def test_permission_and_banned_faults_on_demand(fault: str, code: int) -> None:
    """1009 (no permission) and 1200 (account banned) come as HTTP 200 envelopes."""
    emulator = Emulator(EmulatorConfig(instant=True, faults=Faults(**{fault: 1.0})))
    with (
        serve_emulator(emulator=emulator) as running,
        httpx.Client(base_url=running.base_url, headers={"x-api-key": emulator.api_key}) as http,
    ):
        answer = http.post(f"{IMAGE}/createbyprompt", json={"prompt": "a fox"})
        # Before the credentials are checked (see the emulator's notes), on every endpoint.
        unchecked = [
            http.get(f"{IMAGE}/infobymodelid", params={"image_model_id": "x"},
                     headers={"x-api-key": "bogus"}),
            http.post("/api/open/v3/getToken", json={"clientId": "a", "clientSecret": "b"}),
        ]  # fmt: skip
    assert answer.status_code == 200
    assert answer.json()["code"] == code
    assert [a.json()["code"] for a in unchecked] == [code, code]
    assert emulator.counters.jobs_created == 0
    assert emulator.counters.faults[fault] == 3
