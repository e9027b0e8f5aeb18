"""A queue worker inside a FastAPI app, sharing the app's one AkoolClient.

- The client, the shared budget (Redis, optional) and the worker live as long as the app
  (its lifespan): the worker claims items from the PostgreSQL queue in the background and
  saves their images under ``OUT_DIR``; the app's own requests to Akool (``/credits``
  here) go through the same client, so the account's rate budget counts them all.
- ``POST /prompts`` puts a list of prompts on the queue (the same records as a bulk
  file: ``{"prompt": ..., "id": ..., "follow_ups": ["U1"]}``); any machine's worker may
  take them. ``GET /status`` shows the queue across all workers, and this worker's error
  if one stopped it (a refused key: the app keeps serving, the items go to the others).
- Shutdown stops the worker cleanly: creates on their way answer first (their ids are
  recorded), claims are released, the jobs left running are followed by the next worker.

Run it (``pip install 'akool-async[examples,postgres,redis]'``)::

    AKOOL_API_KEY=... AKOOL_QUEUE_URL=postgresql://akool@db/akool \\
        AKOOL_LIMITS_URL=redis://cache:6379/0 OUT_DIR=/data/images \\
        uvicorn --factory examples.worker_in_fastapi:create_app
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, HTTPException

from akool_async import AkoolClient, AkoolError
from akool_async.bulk import InputProblem, parse_record
from akool_async.workers import Worker, WorkerSettings, queue_status

log = logging.getLogger("worker_in_fastapi")


def create_app(
    *,
    queue_url: str | None = None,
    limits_url: str | None = None,
    out_dir: Path | None = None,
    account: str = "default",
    rate: float = 10.0,
    max_jobs: int | None = None,
    settings: WorkerSettings | None = None,
    **client_options: Any,
) -> FastAPI:
    """The app; ``queue_url``, ``limits_url`` and ``out_dir`` default to AKOOL_QUEUE_URL,
    AKOOL_LIMITS_URL and OUT_DIR; ``client_options`` go to ``AkoolClient`` (``api_key``,
    ``base_url``...: by default from the environment)."""
    queue_url = queue_url or os.environ["AKOOL_QUEUE_URL"]
    limits_url = limits_url or os.environ.get("AKOOL_LIMITS_URL")
    out_dir = out_dir or Path(os.environ.get("OUT_DIR", "images"))
    settings = settings or WorkerSettings(until_empty=False)  # a service waits for work

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            budget = None
            if limits_url:
                from akool_async.redis_budget import RedisBudget

                budget = await stack.enter_async_context(
                    RedisBudget.from_url(limits_url, account=account, rate=rate, max_jobs=max_jobs)
                )
            client = await stack.enter_async_context(
                AkoolClient(rate_limit=rate, shared_budget=budget, **client_options)
            )
            worker = await stack.enter_async_context(
                Worker(client, queue_url, out_dir=out_dir, shared_budget=budget, settings=settings)
            )
            app.state.client, app.state.worker, app.state.worker_error = client, worker, None
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_run, app, worker)
                yield
                worker.stop()  # the task group then waits for it to end cleanly

    app = FastAPI(lifespan=lifespan)

    @app.post("/prompts")
    async def put_on_queue(records: list[dict[str, Any]]) -> dict[str, Any]:
        async def items() -> AsyncIterator[Any]:
            for number, record in enumerate(records, start=1):
                yield parse_record(number, record)

        report = await app.state.worker.queue.enqueue(items(), source="api")
        invalid = [{"index": p.line, "reason": p.reason} for p in report.invalid
                   if isinstance(p, InputProblem)]  # fmt: skip
        return {"added": report.added, "already": report.already, "invalid": invalid}

    @app.get("/status")
    async def status() -> dict[str, Any]:
        found = await queue_status(app.state.worker.queue)
        return {**found.as_dict(), "worker_error": app.state.worker_error}

    @app.get("/credits")
    async def credits() -> dict[str, Any]:
        try:
            info = await app.state.client.credit_info()
        except AkoolError as exc:
            raise HTTPException(502, str(exc)) from None
        return {"credits": info.credit}

    return app


async def _run(app: FastAPI, worker: Worker) -> None:
    """The worker, its failure kept for ``/status`` rather than taking the app down."""
    try:
        report = await worker.run()
    except AkoolError as exc:  # one line, no traceback: the error says what it is
        app.state.worker_error = str(exc)
    else:
        log.info("the worker ended: %s", report.items)
        return
    log.error("the worker stopped: %s", app.state.worker_error)
