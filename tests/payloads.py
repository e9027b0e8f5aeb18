"""Answers as the API sends them, for the respx tests."""

from __future__ import annotations

from typing import Any

import httpx

V4 = "/api/open/v4/content/image/createBySourcePrompt"
V3 = "/api/open/v3/content/image/createbyprompt"
BUTTON = "/api/open/v3/content/image/createbybutton"
INFO = "/api/open/v3/content/image/infobymodelid"
TOKEN = "/api/open/v3/getToken"
CREDIT = "/api/open/v3/faceswap/quota/info"


def job(job_id: str = "6650a1b2c3d4e5f6a7b8c9d0", status: int = 1, **fields: Any) -> dict[str, Any]:
    return {"_id": job_id, "image_status": status, "deduction_credit": 1, **fields}


def finished(job_id: str = "662a10df4197b3af58532e89", **fields: Any) -> dict[str, Any]:
    defaults = {
        "buttons": ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4"],
        "used_buttons": [],
        "upscaled_urls": [],
        "image": f"https://cdn.test/{job_id}.png",
    }
    return job(job_id, 3, **{**defaults, **fields})


def ok(data: Any = None, **top: Any) -> httpx.Response:
    body: dict[str, Any] = {"code": 1000, "msg": "OK", **top}
    if data is not None:
        body["data"] = data
    return httpx.Response(200, json=body)


def fail(code: int, msg: str = "failed", status: int = 200) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "msg": msg})
