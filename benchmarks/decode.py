"""CPU to read an answer into models, against ``json.loads`` alone (the floor).

For an info answer (the hot path: polling) and a v4 batch-of-4 create answer: per-call
microseconds of each, and our cost over ``json.loads`` alone, round by round. In each
round the two alternate in 200 blocks of about a millisecond each and each keeps its best
block, so a burst of load from a neighbour lands on both, and neither's blocks are long
enough to be preempted more often than the other's.

    python benchmarks/decode.py [--rounds 5] [--json PATH]
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any

from _rounds import Figures, interleave, parser, ratios

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
Reader = Callable[[dict[str, Any]], object]
REQUEST = RequestSpec(INFO_BY_MODEL_ID, params={"image_model_id": "x"})


def side_by_side(
    base: Callable[[], object], ours: Callable[[], object], blocks: int = 200
) -> tuple[float, float]:
    """Best per-call microseconds of ``base`` and of ``ours``, their blocks alternating.

    Each block lasts about a millisecond whatever its function costs (the calls per block
    are sized first), so both fit between two preemptions equally often."""
    sizes = [max(1, round(1e-3 / _once(fn))) for fn in (base, ours)]
    best = [float("inf"), float("inf")]
    for _ in range(blocks):
        for side, fn in enumerate((base, ours)):
            number = sizes[side]
            started = time.perf_counter()
            for _ in range(number):
                fn()
            best[side] = min(best[side], (time.perf_counter() - started) / number)
    return best[0] * 1e6, best[1] * 1e6


def _once(fn: Callable[[], object], number: int = 200) -> float:
    started = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - started) / number


def main() -> None:
    args = parser(__doc__, rounds=5).parse_args()
    report = Figures(__file__, args, "one process, no server")
    readers: dict[str, tuple[bytes, Reader]] = {
        "info (1 job)": (INFO, lambda env: structure(env["data"], ImageJob)),
        "v4 batch (4 jobs)": (BATCH, lambda env: structure_jobs(env["data"])),
    }
    contenders: dict[str, Callable[[], tuple[float, float]]] = {}
    for name, (body, read) in readers.items():
        response = RawResponse(200, {"content-type": "application/json"}, body)

        def ours(r: RawResponse = response, f: Reader = read) -> object:
            return f(parse_envelope(REQUEST, r))

        contenders[name] = functools.partial(
            side_by_side, functools.partial(json.loads, body), ours
        )
    runs = interleave(args.rounds, contenders)
    for name, pairs in runs.items():
        base, mine = [b for b, _ in pairs], [o for _, o in pairs]
        report.add(f"{name}: json.loads", base, "µs")
        report.add(f"{name}: envelope+structure", mine, "µs")
        report.add(f"{name}: envelope+structure / json.loads", ratios(mine, base), "x")
    report.close()


if __name__ == "__main__":
    main()
