"""One shared AkoolClient in a FastAPI app, finished early by Akool's webhooks.

- The client lives as long as the app (its lifespan): one connection pool, one poll
  scheduler and one rate budget for every request the app serves.
- ``POST /generations`` starts a generation and answers at once with its job ids.
- ``GET /jobs/{job_id}?timeout=30`` answers a finished job at once, an unknown id with
  404, and otherwise awaits the job's result, at most ``timeout`` seconds (202 while it is
  still running: ask again).
- Akool's callbacks arrive at ``/akool/webhook`` (the receiver mounted in the same app, so
  on the client's event loop): each one ends its job's wait at once, and polling shrinks
  to a safety net while they flow.

Run one worker process per receiver URL: Akool calls back one process, and a job whose
callback lands in another worker is only found by that worker's safety-net polls.

Run it (needs FastAPI: ``pip install 'akool-async[examples]'``)::

    AKOOL_API_KEY=... AKOOL_CLIENT_ID=... PUBLIC_URL=https://my.app \\
        uvicorn --factory examples.fastapi_app:create_app

or, with no key, ``python examples/fastapi_app.py``: the built-in emulator plays Akool (and
sends its callbacks) on a loopback port.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.routing import Route

from akool_async import (
    AkoolClient,
    AkoolError,
    ImageJob,
    ImageStatus,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    ValidationError,
    WebhookReceiver,
)

WEBHOOK_PATH = "/akool/webhook"
REMEMBERED = 10_000  # finished answers kept, so asking again costs nothing


class _Recent(OrderedDict[str, Any]):
    """The last ``REMEMBERED`` entries, oldest dropped first."""

    def remember(self, key: str, value: Any) -> Any:
        self[key] = value
        self.move_to_end(key)
        while len(self) > REMEMBERED:
            self.popitem(last=False)
        return value


class GenerationIn(BaseModel):
    prompt: str
    batch_quantity: int = Field(default=1, ge=1, le=4)
    scale: str = "1:1"


def create_app(
    *,
    api_key: str | None = None,
    client_id: str | None = None,
    public_url: str | None = None,
    base_url: str | None = None,
    **client_options: Any,
) -> FastAPI:
    """The app; settings default to AKOOL_API_KEY, AKOOL_CLIENT_ID, PUBLIC_URL and
    AKOOL_BASE_URL from the environment. ``client_options`` go to ``AkoolClient``
    (``rate_limit``, ``max_in_flight``...)."""
    api_key = api_key or os.environ["AKOOL_API_KEY"]
    client_id = client_id or os.environ["AKOOL_CLIENT_ID"]
    public_url = (public_url or os.environ["PUBLIC_URL"]).rstrip("/")
    receiver = WebhookReceiver(api_key=api_key, client_id=client_id)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AkoolClient(
            api_key=api_key,
            base_url=base_url or os.environ.get("AKOOL_BASE_URL"),
            webhook=receiver,
            webhook_url=public_url + WEBHOOK_PATH,
            **client_options,
        ) as client:
            app.state.akool = client
            yield

    app = FastAPI(title="akool_async example", lifespan=lifespan)
    finished = _Recent()  # job id -> its final answer
    followed = _Recent()  # job ids this app started and is following (value: asked before)
    # A Route, not a Mount: a mount would redirect the exact path to a trailing slash.
    app.router.routes.append(Route(WEBHOOK_PATH, receiver, methods=["POST"]))

    @app.post("/generations")
    async def start_generation(body: GenerationIn, request: Request) -> dict[str, Any]:
        client: AkoolClient = request.app.state.akool
        try:
            jobs = await client.create_by_source_prompt(
                prompt=body.prompt, batch_quantity=body.batch_quantity, scale=body.scale
            )
        except ValidationError as exc:  # names the field, the value and what is allowed
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        except AkoolError as exc:
            raise HTTPException(status_code=502, detail=str(exc)) from exc
        for job in jobs:
            followed.remember(job.id, False)
        return {"job_ids": [job.id for job in jobs]}

    @app.get("/jobs/{job_id}")
    async def job_result(
        job_id: str,
        request: Request,
        response: Response,
        timeout: Annotated[float, Query(gt=0, le=300)] = 30.0,
    ) -> dict[str, Any]:
        client: AkoolClient = request.app.state.akool
        if job_id in finished:
            return dict(finished[job_id])
        try:
            if followed.get(job_id, True):  # not started here, or asked before: look first
                job = await client.info_by_model_id(job_id)
                if job.status.is_terminal:
                    return finished.remember(job_id, _answer(job))
            job = await client.wait(job_id, timeout=timeout)
        except NotFoundError as exc:
            raise HTTPException(status_code=404, detail=f"no job {job_id}") from exc
        except JobTimeoutError:
            followed.remember(job_id, True)
            response.status_code = 202
            return {"job_id": job_id, "status": "running"}
        except JobFailedError:
            return finished.remember(job_id, {"job_id": job_id, "status": "failed"})
        except AkoolError as exc:
            raise HTTPException(status_code=502, detail=str(exc)) from exc
        return finished.remember(job_id, _answer(job))

    return app


def _answer(job: ImageJob) -> dict[str, Any]:
    if job.status is ImageStatus.COMPLETED and job.url:
        return {"job_id": job.id, "status": "completed", "url": job.url}
    return {"job_id": job.id, "status": job.status.name.lower()}


def main() -> None:
    """Serve the app on port 8080; without AKOOL_API_KEY, against the built-in emulator."""
    import uvicorn

    port = int(os.environ.get("PORT", "8080"))
    public_url = os.environ.get("PUBLIC_URL", f"http://127.0.0.1:{port}")
    if os.environ.get("AKOOL_API_KEY"):
        uvicorn.run(create_app(public_url=public_url), port=port)
        return
    from akool_async.emulator import EmulatorConfig, serve_emulator

    config = EmulatorConfig(time_scale=10)  # a "30 s" image in about 3 s
    with serve_emulator(config) as emulator:
        print(f"no AKOOL_API_KEY: the built-in emulator plays Akool at {emulator.base_url}")
        app = create_app(api_key=config.api_key, client_id=config.client_id,
                         public_url=public_url, base_url=emulator.base_url)  # fmt: skip
        uvicorn.run(app, port=port)


if __name__ == "__main__":
    main()
