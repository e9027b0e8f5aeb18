"""The emulator checks every create body itself, as the server would (raw HTTP, no client
validation in the way): each bad body is a 1003 naming the field, and nothing is created."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from akool_async.emulator import IN_PROCESS_URL, Emulator

from .emulated import config

V4 = "/api/open/v4/content/image/createBySourcePrompt"
V3 = "/api/open/v3/content/image/createbyprompt"
BUTTON = "/api/open/v3/content/image/createbybutton"
T2I = "wavespeed-ai/flux-krea-dev-lora"
I2I = "wavespeed-ai/flux-kontext-dev"
URL = "https://cdn.test/source.png"

BAD: dict[str, tuple[str, dict[str, Any], str]] = {
    "v4 no prompt": (V4, {}, "prompt"),
    "v4 blank prompt": (V4, {"prompt": "  "}, "prompt"),
    "v4 sources not a list": (V4, {"prompt": "x", "source_images": URL}, "source_images"),
    "v4 source not a URL": (V4, {"prompt": "x", "source_images": ["ftp://a/b"]}, "source_images"),
    "v4 unknown model": (V4, {"prompt": "x", "model_name": "other/model"}, "model_name"),
    "v4 i2i without source": (V4, {"prompt": "x", "model_name": I2I}, "source_images"),
    "v4 t2i with source": (V4, {"prompt": "x", "model_name": T2I, "source_images": [URL]},
                           "source_images"),
    "v4 bad scale": (V4, {"prompt": "x", "scale": "5:4"}, "scale"),
    "v4 Original for t2i": (V4, {"prompt": "x", "scale": "Original"}, "scale"),
    "v4 bad resolution": (V4, {"prompt": "x", "resolution": "8k"}, "resolution"),
    "v4 batch of 5": (V4, {"prompt": "x", "batch_quantity": 5}, "batch_quantity"),
    "v4 batch as bool": (V4, {"prompt": "x", "batch_quantity": True}, "batch_quantity"),
    "v4 similar for t2i": (V4, {"prompt": "x", "similar": 0.5}, "similar"),
    "v4 similar above 1": (V4, {"prompt": "x", "source_images": [URL], "similar": 2},
                           "similar"),
    "v4 similar as text": (V4, {"prompt": "x", "source_images": [URL], "similar": "0.5"},
                           "similar"),
    "v4 negative prompt not text": (V4, {"prompt": "x", "negative_prompt": 3}, "negative_prompt"),
    "v4 webhook not a URL": (V4, {"prompt": "x", "webhookurl": "not a url"}, "webhookurl"),
    "v3 no prompt": (V3, {"scale": "1:1"}, "prompt"),
    "v3 Original": (V3, {"prompt": "x", "scale": "Original"}, "scale"),
    "v3 source not a URL": (V3, {"prompt": "x", "source_image": "file:///etc"}, "source_image"),
    "v3 webhook not a URL": (V3, {"prompt": "x", "webhookUrl": 42}, "webhookUrl"),
    "button no id": (BUTTON, {"button": "U1"}, "_id"),
    "button id not text": (BUTTON, {"_id": 7, "button": "U1"}, "_id"),
    "button empty": (BUTTON, {"_id": "abc", "button": ""}, "button"),
}  # fmt: skip


def raw(emulator: Emulator) -> httpx.AsyncClient:
    """Plain httpx on the emulator's ASGI app: bodies go exactly as written."""
    return httpx.AsyncClient(transport=emulator.transport(), base_url=IN_PROCESS_URL,
                             headers={"x-api-key": emulator.api_key})  # fmt: skip


@pytest.mark.parametrize("case", BAD, ids=BAD.keys())
async def test_a_bad_create_body_is_a_1003_naming_the_field(case: str) -> None:
    """The server's own check: code 1003 in an HTTP 200 answer, the field named, no job."""
    path, body, field = BAD[case]
    emulator = Emulator(config())
    async with emulator, raw(emulator) as http:
        answer = await http.post(path, json=body)
    assert answer.status_code == 200
    assert answer.json()["code"] == 1003
    assert field in answer.json()["msg"]
    assert emulator.counters.jobs_created == 0


async def test_valid_bodies_are_accepted_and_unknown_keys_ignored() -> None:
    """Image-to-image with ``Original`` and ``similar``, and a stray key, are accepted."""
    emulator = Emulator(config())
    body = {"prompt": "x", "source_images": [URL], "scale": "Original", "similar": 0.3,
            "webhookUrl": "https://app.test/hook"}  # fmt: skip
    async with emulator, raw(emulator) as http:
        answer = await http.post(V4, json=body)
        v3 = await http.post(V3, json={"prompt": "x", "source_image": "", "webhookUrl": ""})
    assert answer.json()["code"] == 1000
    assert answer.json()["data"]["model_name"] == I2I
    assert v3.json()["code"] == 1000
    assert emulator.counters.jobs_created == 2
    assert emulator.counters.ignored_fields["createBySourcePrompt.webhookUrl"] == 1
