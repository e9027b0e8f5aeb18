"""examples/fastapi_app.py under uvicorn on a loopback port, with the emulator sending real
callbacks: 200 concurrent requests each get their result, and shutdown leaves nothing."""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import httpx
import pytest

from akool_async.emulator import EmulatorConfig, Fixed, serve_emulator
from akool_async.emulator._server import listening_socket, uvicorn_server

pytest.importorskip("fastapi")
pytestmark = pytest.mark.parametrize("anyio_backend", ["asyncio"])  # uvicorn runs on asyncio

EXAMPLE = Path(__file__).parent.parent / "examples" / "fastapi_app.py"
REQUESTS = 200


def load_example(path: Path = EXAMPLE) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def open_sockets() -> int:
    """Sockets this process holds open (Linux), to catch a leaked connection."""
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except FileNotFoundError:  # closed by another thread since the listing: not open
            continue
    return count


@pytest.mark.long
async def test_two_hundred_concurrent_requests_each_get_their_result() -> None:
    if not Path("/proc/self/fd").exists():
        pytest.skip("counts sockets through /proc")
    example = load_example()
    config = EmulatorConfig(time_scale=100, durations=Fixed(30), image_max_side=16)
    tasks_before = {task.id for task in anyio.get_running_tasks()}
    # Counted around the whole run: the emulator's callbacks keep their own pool of
    # connections to the app until the emulator stops.
    sockets_before = open_sockets()
    with serve_emulator(config) as akool:
        listener = listening_socket()
        app_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        app = example.create_app(api_key=config.api_key, client_id=config.client_id,
                                 public_url=app_url, base_url=akool.base_url,
                                 rate_limit=None)  # fmt: skip
        server = uvicorn_server(app, log_level="critical")
        # uvicorn closes a connection idle for 5 s, and httpx's default keep-alive expiry is
        # also 5 s: a request sent on a connection at that moment meets the server's close
        # (httpx.ReadError). A client must give up idle connections before the server does.
        limits = httpx.Limits(max_connections=REQUESTS, keepalive_expiry=1.0)
        try:
            async with (
                anyio.create_task_group() as tasks,
                httpx.AsyncClient(base_url=app_url, limits=limits, timeout=60) as http,
            ):
                tasks.start_soon(functools.partial(server.serve, sockets=[listener]))
                results: list[dict[str, Any]] = []

                async def one(n: int) -> None:
                    started = await http.post("/generations", json={"prompt": f"a fox, {n}"})
                    started.raise_for_status()
                    (job_id,) = started.json()["job_ids"]
                    # The app answers 202 after 30 s, well inside the client's timeout.
                    answer = await http.get(f"/jobs/{job_id}", params={"timeout": 30})
                    assert answer.status_code == 200, answer.text
                    results.append(answer.json())

                async with anyio.create_task_group() as clients:
                    for n in range(REQUESTS):
                        clients.start_soon(one, n)
                refused = await http.post("/generations", json={"prompt": "x", "scale": "5:4"})
                # Asked again, a finished job is answered at once (a wait this short would
                # give 202); so is one this app did not start; an unknown id gets 404.
                again = await http.get(f"/jobs/{results[0]['job_id']}", params={"timeout": 1e-3})
                async with akool.emulator.client(base_url=akool.base_url, transport=None,
                                                 rate_limit=None) as other:  # fmt: skip
                    (elsewhere,) = await other.create_by_source_prompt(prompt="another app")
                    await other.wait(elsewhere, timeout=30)
                foreign = await http.get(f"/jobs/{elsewhere.id}", params={"timeout": 1e-3})
                unknown = await http.get(f"/jobs/{'0' * 24}", params={"timeout": 1e-3})
                server.should_exit = True
        finally:
            server.should_exit = True  # also when a request failed: never leak the listener
            listener.close()
        counters = akool.emulator.counters
    assert open_sockets() <= sockets_before  # every connection anyone opened is closed
    assert {tuple(sorted(r)) for r in results} == {("job_id", "status", "url")}
    assert all(r["status"] == "completed" and r["url"] for r in results)
    assert len({r["job_id"] for r in results}) == REQUESTS
    assert (again.status_code, again.json()) == (200, results[0])
    assert foreign.status_code == 200
    assert foreign.json()["status"] == "completed"
    assert unknown.status_code == 404
    assert refused.status_code == 422
    assert "scale" in refused.json()["detail"]
    assert counters.callbacks_sent >= REQUESTS
    assert counters.requests["infobymodelid"] <= REQUESTS * 0.2  # callbacks did the work
    assert {task.id for task in anyio.get_running_tasks()} == tasks_before
