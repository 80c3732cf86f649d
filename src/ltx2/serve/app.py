"""The HTTP API: OpenAI's Videos API (JSON or multipart bodies), the model list, health, and the web page.

Errors are OpenAI's shape, {"error": {"message", "type", "param", "code"}}. Every check of a request runs before
anything is queued; a refused request leaves no trace.
"""

from __future__ import annotations

import json
import math
import secrets
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from ..cli import PRESETS, Launch
from .jobs import (
    CONDITION,
    IMAGE,
    SOURCE,
    SPRITESHEET,
    THUMBNAIL,
    VIDEO,
    ApiError,
    Served,
    Worker,
    frames_for,
    prepare_extension,
    seconds_text,
    settle,
)
from .store import ID_PATTERN, Job, QueueFull, Store

ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
               409: "invalid_request_error", 429: "rate_limit_exceeded"}
CONTENT = {"video": (VIDEO, "video/mp4"), "thumbnail": (THUMBNAIL, "image/jpeg"),
           "spritesheet": (SPRITESHEET, "image/jpeg")}
DEFAULT_SECONDS = 4.0  # OpenAI's default length
DEFAULT_FPS = 24.0  # ltx2 generate's


def error_response(status: int, message: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    body = {"message": message, "type": ERROR_TYPES.get(status, "server_error"), "param": param, "code": code}
    return JSONResponse({"error": body}, status_code=status)


def create_app(store: Store, worker: Worker, served: Served, launch: Launch, api_key: str | None,
               max_body: int) -> FastAPI:
    """The application: routes over the store, the worker and the served model; `api_key` guards /v1."""
    app = FastAPI(title="ltx2 serve", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.message, error.param, error.code)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        return error_response(400, f"{first['loc'][-1]}: {first['msg']}", str(first["loc"][-1]))

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if api_key is not None and request.url.path.startswith("/v1"):
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                return error_response(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                                      code="invalid_api_key")
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body:
            return error_response(400, f"request body of {int(length)} bytes: at most {max_body} bytes are "
                                       "accepted", code="body_too_large")
        return await call_next(request)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return resources.files("ltx2.serve").joinpath("page.html").read_text(encoding="utf-8")

    @app.get("/health")
    def health() -> JSONResponse:
        counts = store.counts()
        reason = worker.unavailable()
        body = {"status": "degraded" if reason else "ok", "model": served.model_id, "queued": counts.get("queued", 0),
                "in_progress": counts.get("in_progress", 0)}
        # A balancer's health check takes a server that cannot run jobs out of its rotation.
        return JSONResponse({**body, "reason": reason} if reason else body, status_code=503 if reason else 200)

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{
            "id": served.model_id, "object": "model", "created": 0, "owned_by": "ltx2", "path": served.model,
            "version": served.version, "preset": served.preset, "dtype": served.dtype, "device": served.device,
        }]}

    @app.post("/v1/videos")
    async def create(request: Request) -> dict[str, Any]:
        fields, files = await read_body(request, max_body)
        upload = files.get("input_reference")
        image = await upload.read() if upload is not None else None
        if "input_reference" in fields:
            raise ApiError(400, "input_reference: upload an image file (multipart/form-data)", "input_reference")
        settings = request_settings(fields, served)

        def queue() -> Job:
            job_id, folder = store.new_folder()
            try:
                if image is not None:
                    check_image(image)
                    (folder / IMAGE).write_bytes(image)
                settings["image"] = image is not None
                return add(job_id, folder, settings)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise

        return video_object(await run_in_threadpool(queue), served)

    def add(job_id: str, folder: Path, settings: dict[str, Any], remixed_from: str | None = None) -> Job:
        args = settle(settings, folder, served, launch)
        settings.update(width=args.width, height=args.height)
        settings.setdefault("seconds", seconds_text(args.num_frames, args.fps))
        try:
            job = store.add(job_id, settings, served.max_queue, remixed_from)
        except QueueFull as error:
            raise ApiError(429, f"the queue is full: {error}; try again later", code="queue_full") from None
        worker.wake.set()
        return job

    @app.get("/v1/videos")
    def listing(limit: int = 20, after: str | None = None, order: str = "desc") -> dict[str, Any]:
        if not 1 <= limit <= 100:
            raise ApiError(400, f"limit {limit}: must be in [1, 100]", "limit")
        if order not in ("asc", "desc"):
            raise ApiError(400, f"order {order!r}: must be 'asc' or 'desc'", "order")
        try:
            jobs, more = store.page(limit, after, order == "desc")
        except KeyError:
            raise ApiError(400, f"after {after!r}: no such video", "after") from None
        data = [video_object(job, served) for job in jobs]
        return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None, "has_more": more}

    def find(video_id: str, param: str | None = None) -> Job:
        job = store.get(video_id) if ID_PATTERN.fullmatch(video_id) else None
        if job is None:
            raise ApiError(404, f"no video {video_id!r}", param, "not_found")
        return job

    def completed(video_id: str, param: str | None = None) -> Job:
        job = find(video_id, param)
        if job.status != "completed":
            raise ApiError(409, f"video {video_id} is {job.status}, not completed", param, "video_not_ready")
        return job

    @app.get("/v1/videos/{video_id}")
    def retrieve(video_id: str) -> dict[str, Any]:
        return video_object(find(video_id), served)

    @app.get("/v1/videos/{video_id}/content")
    def content(video_id: str, variant: str = "video") -> FileResponse:
        if variant not in CONTENT:
            raise ApiError(400, f"variant {variant!r}: must be one of {list(CONTENT)}", "variant")
        job = completed(video_id)
        name, media_type = CONTENT[variant]
        return FileResponse(store.folder(job.id) / name, media_type=media_type,
                            filename=f"{job.id}{Path(name).suffix}")

    @app.delete("/v1/videos/{video_id}")
    def delete(video_id: str) -> dict[str, Any]:
        job = find(video_id)
        worker.cancel(job.id)  # a running job stops at its next step
        store.delete(job.id)
        return {"id": job.id, "object": "video.deleted", "deleted": True}

    @app.post("/v1/videos/extensions")
    async def extend(request: Request) -> dict[str, Any]:
        fields, _ = await read_body(request, max_body)
        reference = fields.get("video")
        if not isinstance(reference, dict) or not isinstance(reference.get("id"), str):
            raise ApiError(400, "video: required, as {\"id\": <id of a completed video>}", "video")
        source = completed(reference["id"], "video")
        if fields.get("seconds") in (None, ""):
            raise ApiError(400, "seconds: required (the length of the extension)", "seconds")
        fps = source.settings["fps"]
        new_frames = frames_for(positive(fields, "seconds"), fps) - 1
        settings = {**source.settings, **overrides(fields), "prompt": prompt_of(fields), "image": False}

        def queue() -> Job:
            job_id, folder = store.new_folder()
            try:
                source_frames, overlap = prepare_extension(store.folder(source.id) / VIDEO, folder, fps)
                settings.update(num_frames=overlap + new_frames, overlap=overlap,
                                seconds=seconds_text(source_frames + new_frames, fps))
                return add(job_id, folder, settings)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise

        return video_object(await run_in_threadpool(queue), served)

    @app.post("/v1/videos/{video_id}/remix")
    async def remix(video_id: str, request: Request) -> dict[str, Any]:
        fields, _ = await read_body(request, max_body)
        source = completed(video_id)
        settings = {**source.settings, "prompt": prompt_of(fields)}

        def queue() -> Job:
            job_id, folder = store.new_folder()
            try:
                for name in (IMAGE, SOURCE, CONDITION):
                    if (store.folder(source.id) / name).is_file():
                        shutil.copyfile(store.folder(source.id) / name, folder / name)
                return add(job_id, folder, settings, remixed_from=source.id)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise

        return video_object(await run_in_threadpool(queue), served)

    return app


async def read_body(request: Request, max_body: int) -> tuple[dict[str, Any], dict[str, UploadFile]]:
    """A JSON object or a form (multipart or urlencoded): its fields and its files. A form's `video[id]` is read
    as {"video": {"id": ...}}, as the openai client sends nested objects."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields: dict[str, Any] = {}
    files: dict[str, UploadFile] = {}
    if kind in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            form = await request.form(max_part_size=max_body)
        except Exception as error:
            raise ApiError(400, f"unreadable form body: {error}") from None
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                files[key] = value
            elif key.endswith("]") and "[" in key:
                outer, inner = key[:-1].split("[", 1)
                fields.setdefault(outer, {})[inner] = value
            else:
                fields[key] = value
        return fields, files
    body = await request.body()
    if body.strip():
        try:
            fields = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ApiError(400, f"body is not valid JSON: {error}") from None
        if not isinstance(fields, dict):
            raise ApiError(400, "body must be a JSON object")
    return fields, files


def prompt_of(fields: dict[str, Any]) -> str:
    prompt = fields.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ApiError(400, "prompt: required, a non-empty string", "prompt")
    return prompt


def number(fields: dict[str, Any], name: str, integer: bool = False) -> float | int | None:
    """A field as a finite number (an integer if asked), None when absent; ApiError (400) otherwise."""
    value = fields.get(name)
    if value is None or value == "":
        return None
    try:
        parsed = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        parsed = math.nan
    if not math.isfinite(parsed) or (integer and parsed != int(parsed)):
        raise ApiError(400, f"{name} {value!r}: must be {'an integer' if integer else 'a finite number'}", name)
    return int(parsed) if integer else parsed


def positive(fields: dict[str, Any], name: str) -> float:
    value = number(fields, name)
    if value is None or value <= 0:
        raise ApiError(400, f"{name} {fields.get(name)!r}: must be a positive number", name)
    return value


def overrides(fields: dict[str, Any]) -> dict[str, Any]:
    """The ltx2 fields a request may set on top of a source video's settings (an extension's)."""
    settings: dict[str, Any] = {}
    seed = number(fields, "seed", integer=True)
    if seed is not None:
        if not 0 <= seed < 2**63:
            raise ApiError(400, f"seed {seed}: must be in [0, 2**63)", "seed")
        settings["seed"] = seed
    steps = number(fields, "num_inference_steps", integer=True)
    if steps is not None:
        settings["steps"] = steps
    guidance = number(fields, "guidance_scale")
    if guidance is not None:
        settings["guidance"] = guidance
    if fields.get("negative_prompt") not in (None, ""):
        settings["negative_prompt"] = str(fields["negative_prompt"])
    return settings


def request_settings(fields: dict[str, Any], served: Served) -> dict[str, Any]:
    """A create request's settings (not yet checked against the CLI's rules)."""
    prompt = prompt_of(fields)
    model = fields.get("model")
    if model not in (None, "", served.model_id, served.model):
        raise ApiError(400, f"model {model!r}: this server serves {served.model_id!r}", "model", "model_not_found")
    preset = fields.get("preset") or served.preset
    if preset not in PRESETS:
        raise ApiError(400, f"preset {preset!r}: must be one of {list(PRESETS)}", "preset")
    width = height = None
    size = fields.get("size")
    if size not in (None, ""):
        parts = str(size).lower().split("x")
        if len(parts) != 2 or not all(part.isdigit() for part in parts):
            raise ApiError(400, f"size {size!r}: must be WIDTHxHEIGHT, e.g. 768x512", "size")
        width, height = map(int, parts)
    fps = positive(fields, "frame_rate") if fields.get("frame_rate") not in (None, "") else DEFAULT_FPS
    seconds = positive(fields, "seconds") if fields.get("seconds") not in (None, "") else DEFAULT_SECONDS
    num_frames = number(fields, "num_frames", integer=True)  # when given, it rules over seconds
    if num_frames is None:
        num_frames = frames_for(seconds, fps)
    # No seed given: a fresh one, kept with the job (a remix reuses it).
    settings = {"seed": secrets.randbelow(2**31), **overrides(fields)}
    return {**settings, "prompt": prompt, "preset": preset, "width": width, "height": height,
            "num_frames": num_frames, "fps": fps}


def check_image(data: bytes) -> None:
    """ApiError (400) unless `data` is an image PIL can read."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ApiError(400, f"input_reference: not a readable image ({error})", "input_reference") from None


def video_object(job: Job, served: Served) -> dict[str, Any]:
    """OpenAI's video object for a job, with ltx2's settings (seed, frames, frame rate, preset) beside it."""
    settings = job.settings
    return {
        "id": job.id, "object": "video", "status": job.status, "progress": job.progress,
        "created_at": job.created_at, "completed_at": job.completed_at, "expires_at": None,
        "model": served.model_id, "prompt": settings["prompt"], "size": f"{settings['width']}x{settings['height']}",
        "seconds": settings["seconds"], "error": job.error, "remixed_from_video_id": job.remixed_from,
        "seed": settings["seed"], "num_frames": settings["num_frames"], "frame_rate": settings["fps"],
        "preset": settings["preset"],
    }
