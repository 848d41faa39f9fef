"""HTTP endpoints: each converts the request, calls one data-plane method, converts back.

KServe V2 REST (health, metadata, infer, repository) and Triton's config/statistics extensions
under ``/v2``; the typed endpoints for people under ``/v1``; the page, OpenAPI and docs at ``/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from serving.dataplane import DataPlane
from serving.errors import InvalidInput
from serving.feedback.service import FeedbackService, require
from serving.http.feedback import (
    apply_feedback,
    feedback_fields_from_json,
    feedback_stats_json,
    receipt_json,
)
from serving.http.handlers import Handlers
from serving.http.read_converters import read_json
from serving.http.shadow import policy_json, version_from_body
from serving.http.triton_converters import config_json, stats_json
from serving.http.typed_converters import (
    IMAGE_TYPES,
    classify_json,
    model_json,
    pixels_from_json,
)
from serving.http.v2_converters import (
    HEADER_LENGTH,
    infer_request_from_body,
    infer_response_body,
    metadata_json,
)
from serving.request_context import current_request_id, note_model
from serving.shadow.rollout import PROMOTE, ROLLBACK, SHADOW, UNSHADOW

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
OPENAPI = HERE / "openapi.json"
# Multipart uploads: at most this many files (the core's per-request limit applies too).
MAX_FORM_FILES = 1024


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _content_type(request: Request) -> str:
    """The media type of the request body, without parameters, lower case."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


class Endpoints:
    """The endpoint functions, bound to one data plane."""

    def __init__(
        self, dataplane: DataPlane, handlers: Handlers, feedback: FeedbackService | None = None
    ) -> None:
        self._core = dataplane
        self._handlers = handlers
        self._feedback = feedback

    # -------------------------------------------------------------- V2 health and metadata

    async def live(self, request: Request) -> Response:
        ok = self._core.live()
        return _json({"live": ok}, 200 if ok else 400)

    async def ready(self, request: Request) -> Response:
        # V2: the status code is the answer (200 true, 4xx false), as Triton does.
        ok = self._core.ready()
        return _json({"ready": ok}, 200 if ok else 400)

    async def server_metadata(self, request: Request) -> Response:
        info = self._core.server_info()
        return _json({"name": info.name, "version": info.version, "extensions": info.extensions})

    async def model_metadata(self, request: Request) -> Response:
        p = request.path_params
        return _json(metadata_json(self._core.model_metadata(p["model"], p.get("version", ""))))

    async def model_ready(self, request: Request) -> Response:
        p = request.path_params
        ok = self._core.model_ready(p["model"], p.get("version", ""))
        return _json({"name": p["model"], "ready": ok}, 200 if ok else 400)

    async def model_config(self, request: Request) -> Response:
        p = request.path_params
        return _json(config_json(self._core.model_config(p["model"], p.get("version", ""))))

    async def model_stats(self, request: Request) -> Response:
        p = request.path_params
        stats = await self._core.model_statistics(p.get("model", ""), p.get("version", ""))
        return _json(stats_json(stats))

    # -------------------------------------------------------------- V2 inference

    async def infer(self, request: Request) -> Response:
        p = request.path_params
        # The model first: a body that fails to parse is then counted under its model.
        self._core.resolve_for_inference(p["model"], p.get("version", ""))
        body = await self._handlers.body(request)
        parsed = infer_request_from_body(body, request.headers.get(HEADER_LENGTH))
        result = await self._core.infer(
            p["model"], p.get("version", ""), parsed.inputs, outputs=parsed.outputs
        )
        note_model(result.model, result.version)
        content, headers = infer_response_body(result, parsed)
        return Response(content, headers=headers)

    # -------------------------------------------------------------- V2 repository extension

    async def repository_index(self, request: Request) -> Response:
        body = await self._handlers.body(request)
        ready_only = bool(orjson.loads(body).get("ready", False)) if body.strip() else False
        rows = await self._core.repository_index(ready_only)
        return _json(
            [
                {"name": r.name, "version": r.version, "state": r.state, "reason": r.reason}
                for r in rows
            ]
        )

    async def load(self, request: Request) -> Response:
        await self._core.load_model(request.path_params["model"])
        return _json({})

    async def unload(self, request: Request) -> Response:
        await self._core.unload_model(request.path_params["model"])
        return _json({})

    async def shadow(self, request: Request) -> Response:
        action = UNSHADOW if request.method == "DELETE" else SHADOW
        return await self._change_policy(request, action)

    async def promote(self, request: Request) -> Response:
        return await self._change_policy(request, PROMOTE)

    async def rollback(self, request: Request) -> Response:
        return await self._change_policy(request, ROLLBACK)

    async def _change_policy(self, request: Request, action: str) -> Response:
        model = request.path_params["model"]
        version = version_from_body(await self._handlers.body(request))
        policy = await self._core.change_policy(model, action, version)
        return _json(policy_json(model, policy))

    # -------------------------------------------------------------- typed /v1

    async def list_models(self, request: Request) -> Response:
        return _json(
            {
                "default_model": self._core.default_model,
                "models": [model_json(m) for m in self._core.list_models()],
            }
        )

    async def classify(self, request: Request) -> Response:
        model = request.query_params.get("model", "")
        version = request.query_params.get("version", "")
        debug = _flag(request, "debug")
        explain = _flag(request, "explain")
        kind = _content_type(request)
        answer_id = current_request_id()  # feedback names the answer by it
        if kind == "application/json":
            pixels = pixels_from_json(await self._handlers.body(request))
            result = await self._core.classify_pixels(
                model, version, pixels, keep_prepared=debug, explain=explain, answer_id=answer_id
            )
        else:
            files = await self._files(request, kind)
            result = await self._core.classify_encoded(
                model, version, files, keep_prepared=debug, explain=explain, answer_id=answer_id
            )
        note_model(result.model, result.version)
        return _json(classify_json(result, current_request_id(), debug))

    async def read(self, request: Request) -> Response:
        kind = _content_type(request)
        files = await self._files(request, kind)
        if len(files) != 1:
            raise InvalidInput(f"send one image to read, got {len(files)}")
        debug = _flag(request, "debug")
        result = await self._core.read(
            request.query_params.get("model", ""),
            request.query_params.get("version", ""),
            files[0],
            keep_prepared=debug,
        )
        note_model(result.model, result.version)
        return _json(read_json(result, current_request_id(), debug))

    async def _files(self, request: Request, kind: str) -> list[bytes]:
        if kind in IMAGE_TYPES:
            return [await self._handlers.body(request)]
        if kind == "multipart/form-data":
            async with self._form(request, MAX_FORM_FILES, MAX_FORM_FILES) as form:
                uploads = [f for f in form.getlist("image") if isinstance(f, UploadFile)]
                if not uploads:
                    raise InvalidInput("multipart body has no 'image' file field")
                return [await f.read() for f in uploads]
        raise InvalidInput(
            f"unsupported Content-Type {kind or '(none)'!r}: send image/png, image/jpeg, "
            "multipart/form-data with 'image' fields, or application/json pixels"
        )

    async def feedback(self, request: Request) -> Response:
        service = require(self._feedback)
        kind = _content_type(request)
        if kind == "multipart/form-data":
            data = await self._feedback_form(request)
        elif kind == "application/json":
            data = feedback_fields_from_json(await self._handlers.body(request))
        else:
            raise InvalidInput(
                f"unsupported Content-Type {kind or '(none)'!r}: send application/json "
                '{"request_id": ..., "label": ...} or multipart/form-data with image and label'
            )
        receipt = await apply_feedback(service, data)
        note_model(receipt.model, receipt.version)
        return _json(receipt_json(receipt))

    async def _feedback_form(self, request: Request) -> dict[str, Any]:
        async with self._form(request, max_files=1, max_fields=16) as form:
            data: dict[str, Any] = {
                k: v for k, v in form.items() if isinstance(v, str) and k != "image"
            }
            image = form.get("image")
            if isinstance(image, UploadFile):
                data["image"] = await image.read()
            if "correct" in data:
                data["correct"] = data["correct"].lower() in ("1", "true", "yes", "on")
            return data

    @asynccontextmanager
    async def _form(
        self, request: Request, max_files: int, max_fields: int
    ) -> AsyncIterator[FormData]:
        """The multipart form, read within the body limit while it streams in (file parts
        spool to disk past 1 MB inside python-multipart, so memory stays bounded too)."""
        try:
            async with self._handlers.limited(request).form(
                max_files=max_files,
                max_fields=max_fields,
                max_part_size=self._handlers.limits.max_body_bytes,
            ) as form:
                yield form
        except HTTPException as exc:  # Starlette's word for a malformed multipart body
            raise InvalidInput(f"multipart body: {exc.detail}") from None

    async def feedback_stats(self, request: Request) -> Response:
        return _json(feedback_stats_json(await require(self._feedback).stats()))

    # -------------------------------------------------------------- page and docs

    async def page(self, request: Request) -> Response:
        index = STATIC / "index.html"
        if not index.is_file():
            return HTMLResponse("<h1>digits-server</h1><p>The page is not installed.</p>", 404)
        return FileResponse(index, media_type="text/html")

    async def openapi(self, request: Request) -> Response:
        return FileResponse(OPENAPI, media_type="application/json")

    async def docs(self, request: Request) -> Response:
        return HTMLResponse(DOCS_PAGE)


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>digits-server API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>
"""
DOCS_INIT = "SwaggerUIBundle({url: '/openapi.json', dom_id: '#swagger-ui'});\n"


def build_routes(endpoints: Endpoints, handlers: Handlers) -> list[BaseRoute]:
    """Every route, wrapped by the handlers (auth, errors, metrics) under its V2 method name."""
    from swagger_ui_bundle import swagger_ui_path

    e, w = endpoints, handlers.wrap

    def api(path: str, fn: Any, api_name: str, method: str, verb: str = "GET") -> list[Route]:
        wrapped = w(fn, api_name, method)
        routes = [Route(path, wrapped, methods=[verb])]
        if path.startswith("/v2/models/{model}"):
            versioned = path.replace("{model}", "{model}/versions/{version}", 1)
            routes.append(Route(versioned, wrapped, methods=[verb]))
        return routes

    async def docs_init(request: Request) -> Response:
        return Response(DOCS_INIT, media_type="text/javascript")

    return [
        *api("/v2/health/live", e.live, "rest", "ServerLive"),
        *api("/v2/health/ready", e.ready, "rest", "ServerReady"),
        *api("/v2", e.server_metadata, "rest", "ServerMetadata"),
        *api("/v2/models/stats", e.model_stats, "rest", "ModelStatistics"),
        *api("/v2/models/{model}", e.model_metadata, "rest", "ModelMetadata"),
        *api("/v2/models/{model}/ready", e.model_ready, "rest", "ModelReady"),
        *api("/v2/models/{model}/config", e.model_config, "rest", "ModelConfig"),
        *api("/v2/models/{model}/stats", e.model_stats, "rest", "ModelStatistics"),
        *api("/v2/models/{model}/infer", e.infer, "rest", "ModelInfer", "POST"),
        *api("/v2/repository/index", e.repository_index, "rest", "RepositoryIndex", "POST"),
        *api("/v2/repository/models/{model}/load", e.load, "rest", "RepositoryModelLoad", "POST"),
        *api(
            "/v2/repository/models/{model}/unload",
            e.unload,
            "rest",
            "RepositoryModelUnload",
            "POST",
        ),
        Route(
            "/v2/repository/models/{model}/shadow",
            w(e.shadow, "rest", "RepositoryModelShadow"),
            methods=["POST", "DELETE"],
        ),
        *api(
            "/v2/repository/models/{model}/promote",
            e.promote,
            "rest",
            "RepositoryModelPromote",
            "POST",
        ),
        *api(
            "/v2/repository/models/{model}/rollback",
            e.rollback,
            "rest",
            "RepositoryModelRollback",
            "POST",
        ),
        *api("/v1/models", e.list_models, "http-typed", "ListModels"),
        *api("/v1/classify", e.classify, "http-typed", "Classify", "POST"),
        *api("/v1/feedback", e.feedback, "http-typed", "Feedback", "POST"),
        *api("/v1/feedback/stats", e.feedback_stats, "http-typed", "FeedbackStats"),
        *api("/v1/read", e.read, "http-typed", "Read", "POST"),
        Route("/", e.page, methods=["GET"]),
        Route("/openapi.json", e.openapi, methods=["GET"]),
        Route("/docs", e.docs, methods=["GET"]),
        Route("/docs/init.js", docs_init, methods=["GET"]),
        Mount("/docs/assets", StaticFiles(directory=swagger_ui_path), name="docs-assets"),
        Mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static"),
    ]
