"""The emulator's HTTP face: Akool's routes, envelopes, auth and faults, over the backend."""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .._models import ImageStatus
from . import _validate as validate
from ._config import EmulatorConfig
from ._images import image_size, render_grid, render_part, render_png
from ._state import Account, Backend, EmulatedError, Job, fingerprint, ms

API = "/api/open"
# Business-code faults that mean "nothing was done", with Akool's messages.
# The answers of late faults that replace the handled one: (body, status, media type).
_LATE_PAGES = {
    "http_5xx": ("Internal Server Error", 500, "text/plain"),
    "html_error": (
        "<html><head><title>502 Bad Gateway</title></head><body>502</body></html>", 502,
        "text/html",
    ),
    "proxy_4xx": ("<html><body>403 Forbidden</body></html>", 403, "text/html"),
    "code_in_5xx": ('{"code":1108,"msg":"image generate error"}', 503, "application/json"),
}  # fmt: skip
_LATE_FAULTS = frozenset({*_LATE_PAGES, "drop_connection", "malformed_json", "slow"})
_EARLY_CODES = {
    "code_1005": (1005, "Operation too frequent"),
    "code_1108": (1108, "Image generate error, please try again later"),
    "code_1009": (1009, "You do not have permission to operate"),
    "code_1200": (1200, "The account has been banned"),
}
Handler = Callable[[Request, Account | None], Awaitable[Any]]


class ConnectionDropped(Exception):
    """Raised after half a response was sent, so the connection dies mid-response."""


class _HalfResponse(Response):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2],
                    "more_body": True})  # fmt: skip
        raise ConnectionDropped("the emulator dropped the connection mid-response")


def _stringify(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _stringify(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_stringify(v) for v in data]
    if isinstance(data, int | float) and not isinstance(data, bool):
        return str(data)
    return data


class EmulatorApp:
    """Builds the Starlette app; one method per endpoint, faults around them all."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.faults_rng = random.Random(f"faults-{backend.config.seed}")
        image = f"{API}/v3/content/image"
        routes = [
            self._api_route("POST", f"{API}/v4/content/image/createBySourcePrompt", self.create_v4),
            self._api_route("POST", f"{image}/createbyprompt", self.create_v3),
            self._api_route("POST", f"{image}/createbybutton", self.create_button),
            self._api_route("GET", f"{image}/infobymodelid", self.info),
            self._api_route("GET", f"{API}/v3/faceswap/quota/info", self.credit, "quota/info"),
            self._api_route("POST", f"{API}/v3/getToken", self.get_token, auth=False),
            Route("/_emulator/images/{name}", self.image, methods=["GET"]),
            Route("/_emulator/counters", self.counters, methods=["GET"]),
            Route("/_emulator/jobs", self.job_times, methods=["GET"]),
            Route("/_emulator/health", lambda _: JSONResponse({"ok": True}), methods=["GET"]),
        ]
        self.starlette = Starlette(routes=routes)

    @property
    def config(self) -> EmulatorConfig:
        return self.backend.config

    # -- the envelope, auth, limits and faults around every API endpoint -----------------

    def _api_route(
        self,
        method: str,
        path: str,
        handler: Handler,
        name: str | None = None,
        *,
        auth: bool = True,
    ) -> Route:
        """A route with the envelope, auth, rate limit and faults around ``handler``."""
        name = name or path.rsplit("/", 1)[-1]

        async def endpoint(request: Request) -> Response:
            self.backend.counters.requests[name] += 1
            fault = self._draw_fault(name)
            early = self._early_fault(fault, name)
            if early is not None:
                return early
            try:
                account = self._admit(request) if auth else None
                envelope = {"code": 1000, "msg": "OK", **await handler(request, account)}
            except EmulatedError as exc:
                envelope = {"code": exc.code, "msg": exc.message}
            body = json.dumps(envelope, separators=(",", ":")).encode()
            return await self._late_fault(fault, body, "application/json")

        return Route(path, endpoint, methods=[method])

    def _admit(self, request: Request) -> Account:
        """The caller's account, if its credentials are good and it is within its rate."""
        headers = request.headers
        account = self.backend.authenticate(headers.get("authorization"), headers.get("x-api-key"))
        if not self.backend.within_rate_limit(account):
            raise EmulatedError(1005, "Operation too frequent, please try again later")
        return account

    def _draw_fault(self, name: str) -> str | None:
        faults = self.config.faults
        if not faults.any or (faults.endpoints is not None and name not in faults.endpoints):
            return None
        roll = self.faults_rng.random()
        for kind in ("http_429", "code_1005", "code_1108", "code_1009", "code_1200", "http_5xx",
                     "drop_connection", "malformed_json", "html_error", "slow", "proxy_4xx",
                     "code_in_5xx"):  # fmt: skip
            roll -= getattr(faults, kind)
            if roll < 0:
                return kind
        return None

    def _early_fault(self, fault: str | None, name: str) -> Response | None:
        """Faults meaning "nothing was done": answered before the request is handled."""
        if fault == "code_1108" and not name.startswith("create"):
            return None  # a generation error only happens to creates
        if fault not in ("http_429", *_EARLY_CODES):
            return None
        self.backend.counters.faults[fault] += 1
        if fault == "http_429":
            return Response(
                "Too Many Requests", 429, {"retry-after": f"{self.config.faults.retry_after:g}"}
            )
        code, message = _EARLY_CODES[fault]
        return JSONResponse({"code": code, "msg": message})

    async def _late_fault(self, fault: str | None, body: bytes, media_type: str) -> Response:
        """Faults of the transport or answer: the request was handled (and charged) already.
        ``malformed_json`` truncates the body, whatever it is (JSON, or an image)."""
        if fault not in _LATE_FAULTS:
            return Response(body, 200, media_type=media_type)
        self.backend.counters.faults[fault] += 1
        if fault in _LATE_PAGES:
            page, status, kind = _LATE_PAGES[fault]
            return Response(page, status, media_type=kind)
        if fault == "malformed_json":
            return Response(body[: len(body) // 2], 200, media_type=media_type)
        if fault == "drop_connection":
            return _HalfResponse(body, 200, media_type=media_type)
        await anyio.sleep(self.config.faults.slow_seconds)
        return Response(body, 200, media_type=media_type)

    async def _json_body(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise EmulatedError(1003, "Parameter error: the body is not JSON") from None
        if not isinstance(body, dict):
            raise EmulatedError(1003, "Parameter error: the body must be a JSON object")
        return body

    def _data(self, data: Any) -> dict[str, Any]:
        return {"data": _stringify(data) if self.config.string_numbers else data}

    # -- endpoints ----------------------------------------------------------------------

    async def create_v4(self, request: Request, account: Account | None) -> dict[str, Any]:
        assert account is not None
        body = await self._json_body(request)
        generation = validate.v4(body)
        jobs = self._generate(request, account, "v4", body, generation)
        views = [self._v4_view(job) for job in jobs]
        return self._data(views[0] if generation.count == 1 else views)

    async def create_v3(self, request: Request, account: Account | None) -> dict[str, Any]:
        assert account is not None
        body = await self._json_body(request)
        (job,) = self._generate(request, account, "v3", body, validate.v3(body))
        return self._data(self._v3_view(job))

    def _generate(self, request: Request, account: Account, kind: str, body: dict[str, Any],
                  generation: validate.Generation) -> list[Job]:  # fmt: skip
        name = "createBySourcePrompt" if kind == "v4" else "createbyprompt"
        for key in generation.ignored:
            self.backend.counters.ignored_fields[f"{name}.{key}"] += 1
        return self.backend.create_generation(
            account, kind, generation.params, count=generation.count,
            base_url=_base_url(request), fingerprint=fingerprint(name, body),
        )  # fmt: skip

    async def create_button(self, request: Request, account: Account | None) -> dict[str, Any]:
        assert account is not None
        body = await self._json_body(request)
        parent, button, webhook_url, ignored = validate.button(body)
        for key in ignored:
            self.backend.counters.ignored_fields[f"createbybutton.{key}"] += 1
        job = self.backend.press_button(account, parent, button, webhook_url, _base_url(request))
        return self._data({
            "faceswap_quality": 2, "deduction_credit": job.credit, "buttons": [],
            "used_buttons": [], "upscaled_urls": [], "_id": job.id,
            "image_content_model_id": job.parent_id, "create_time": ms(job.created_wall),
            "op_button": job.op_button, "op_buttonMessageId": job.op_button_message_id,
            "image_status": int(job.status(self.backend.clock())), "from": 1,
        })  # fmt: skip

    async def info(self, request: Request, account: Account | None) -> dict[str, Any]:
        assert account is not None
        job_id = request.query_params.get("image_model_id", "")
        if not job_id:
            raise EmulatedError(1003, "Parameter error: image_model_id cannot be empty")
        job = self.backend.find(account, job_id)
        now = self.backend.clock()
        status = job.status(now)
        done = status == ImageStatus.COMPLETED
        url = job.image_url if done else ""
        if job.is_grid:  # its four parts, once they have come
            upscaled = job.part_urls if job.parts_ready(now) else []
        else:  # a single image: upscaled_urls only in the empty-image quirk
            upscaled = [url] if done and job.empty_image else []
        return self._data({
            "faceswap_quality": 2, "deduction_credit": job.credit,
            "buttons": list(job.buttons) if done else [], "used_buttons": list(job.used_buttons),
            "upscaled_urls": upscaled, "_id": job.id, "create_time": ms(job.created_wall),
            "uid": account.uid, "type": _type(job), "image_status": int(status),
            "image": "" if job.empty_image else url, "prompt": job.prompt,
            "origin_prompt": job.prompt, "source_image": job.source_image,
        })  # fmt: skip

    async def credit(self, request: Request, account: Account | None) -> dict[str, Any]:
        assert account is not None
        return self._data({"credit": account.credit})

    async def get_token(self, request: Request, account: Account | None) -> dict[str, Any]:
        body = await self._json_body(request)
        return {"token": self.backend.issue_token(body.get("clientId"), body.get("clientSecret"))}

    def _v4_view(self, job: Job) -> dict[str, Any]:
        return {
            "_id": job.id, "uid": job.account.uid, "team_id": f"team_{job.account.uid}",
            "create_time": ms(job.created_wall), "prompt": job.prompt, "origin_prompt": job.prompt,
            "source_image": job.source_image, "image_status": 1, "image_sub_status": 1,
            "deduction_credit": job.credit, "model_name": job.model_name,
            "provider": "wavespeed-ai", "type": 4, "from": 4, "sub_type": job.sub_type,
            "file_name": f"ImageGenerator_{ms(job.created_wall)}.png",
        }  # fmt: skip

    def _v3_view(self, job: Job) -> dict[str, Any]:
        return {
            "faceswap_quality": 2, "deduction_credit": job.credit, "buttons": [],
            "used_buttons": [], "upscaled_urls": [], "_id": job.id, "uid": job.account.uid,
            "create_time": ms(job.created_wall), "origin_prompt": job.prompt,
            "source_image": job.source_image, "prompt": job.prompt, "type": 4, "from": 1,
            "image_status": 1,  # type 4 as the docs' create example (see _state)
        }  # fmt: skip

    # -- the CDN and the admin routes ---------------------------------------------------

    async def image(self, request: Request) -> Response:
        self.backend.counters.requests["image"] += 1
        job_id, _, part = request.path_params["name"].removesuffix(".png").partition("-")
        job = self.backend.jobs.get(job_id)
        now = self.backend.clock()
        index = int(part) if part in ("1", "2", "3", "4") else None
        if (
            job is None
            or job.status(now) != ImageStatus.COMPLETED
            or (part and (index is None or not job.parts_ready(now)))
        ):
            return Response("Not Found", 404, media_type="text/plain")
        if self.backend.is_expired(job):
            return Response("Not Found: this result expired", 404, media_type="text/plain")
        body = self.image_bytes(job, index)
        return await self._late_fault(self._draw_fault("image"), body, "image/png")

    def image_size(self, job: Job) -> tuple[int, int]:
        """A job's ``image`` in pixels: a grid is exactly twice its parts; a U result twice
        its parent's image (an upscale is larger than what it upscaled)."""
        parent = self.backend.jobs.get(job.parent_id) if job.parent_id else None
        if job.is_upscale and parent is not None:
            width, height = self.image_size(parent)
            return 2 * width, 2 * height
        width, height = image_size(job.scale, job.resolution, self.config.image_max_side)
        if job.is_grid:
            return 2 * max(1, width // 2), 2 * max(1, height // 2)
        return width, height

    def image_bytes(self, job: Job, part: int | None = None) -> bytes:
        """The ``image`` of ``job``, or its part 1-4 (grids only)."""
        width, height = self.image_size(job)
        if part is not None:
            return _render_part(job.id, part, width // 2, height // 2)
        if job.is_grid:
            return _render_grid(job.id, width // 2, height // 2)
        return _render(job.id, width, height)

    async def counters(self, request: Request) -> Response:
        return JSONResponse(self.backend.counters.snapshot())

    async def job_times(self, request: Request) -> Response:
        """Every job's creation and finishing times in real epoch seconds (for benchmarks:
        the delay between a job finishing and a client noticing)."""
        backend = self.backend
        return JSONResponse({
            job.id: {"created": backend.wall_time(job.created),
                     "finished": backend.wall_time(job.done_at), "outcome": int(job.outcome)}
            for job in backend.jobs.values()
        })  # fmt: skip


@lru_cache(maxsize=512)
def _render(job_id: str, width: int, height: int) -> bytes:
    return render_png(job_id, width, height)


@lru_cache(maxsize=512)
def _render_part(job_id: str, index: int, width: int, height: int) -> bytes:
    return render_part(job_id, index, width, height)


@lru_cache(maxsize=128)
def _render_grid(job_id: str, part_width: int, part_height: int) -> bytes:
    return render_grid(job_id, part_width, part_height)


def _type(job: Job) -> int:
    """In status answers (see ``_state``): 4 for v4, else 3."""
    return 4 if job.kind == "v4" else 3


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")
