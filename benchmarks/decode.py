"""CPU to read an answer into models, against ``json.loads`` alone (the floor).

Prints per-call microseconds and the ratio to the baseline, for an info answer (the hot
path: polling) and a v4 batch-of-4 create answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from akool_async._converter import structure, structure_jobs
from akool_async._models import ImageJob
from akool_async._protocol import INFO_BY_MODEL_ID, RawResponse, RequestSpec, parse_envelope

INFO = json.dumps(
    {
        "code": 1000,
        "msg": "OK",
        "data": {
            "faceswap_quality": 2,
            "deduction_credit": 2,
            "buttons": ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4"],
            "used_buttons": [],
            "upscaled_urls": [],
            "_id": "662a10df4197b3af58532e89",
            "create_time": 1714032863272,
            "uid": 378337,
            "type": 3,
            "image_status": 3,
            "image": "https://cdn.test/1714032892336-e0ec9305-8013.png",
        },
    }
).encode()
BATCH = json.dumps(
    {
        "code": 1000,
        "msg": "OK",
        "data": [
            {
                "_id": f"6650a1b2c3d4e5f6a7b8c9d{n}",
                "uid": 378337,
                "team_id": "team_1",
                "create_time": 1716859314633,
                "prompt": "a fox",
                "image_status": 1,
                "deduction_credit": 1,
                "model_name": "wavespeed-ai/flux-krea-dev-lora",
                "type": 4,
                "from": 4,
                "sub_type": 40001,
            }
            for n in range(4)
        ],
    }
).encode()
REQUEST = RequestSpec(INFO_BY_MODEL_ID, params={"image_model_id": "x"})


def per_call_us(fn: Callable[[], object], rounds: int = 7, number: int = 20_000) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - started) / number)
    return best * 1e6


def main() -> None:
    for name, body, read in (
        ("info (1 job)", INFO, lambda env: structure(env["data"], ImageJob)),
        ("v4 batch (4 jobs)", BATCH, lambda env: structure_jobs(env["data"])),
    ):
        response = RawResponse(200, {"content-type": "application/json"}, body)
        baseline = per_call_us(lambda b=body: json.loads(b))
        ours = per_call_us(lambda r=response, f=read: f(parse_envelope(REQUEST, r)))
        print(
            f"{name}: json.loads {baseline:.1f} us | envelope+structure {ours:.1f} us "
            f"| ratio {ours / baseline:.2f}x | our cost above json.loads {ours - baseline:.1f} us"
        )


if __name__ == "__main__":
    main()
