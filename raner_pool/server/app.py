"""The FastAPI app: routes from the library's registry, request ids, metrics, and errors that are never a bare 500."""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from raner_pool import __version__
from raner_pool.registry import ModelRegistry
from raner_pool.server import ner_routes, openai_routes, ops_routes
from raner_pool.server.admin_routes import mount_admin
from raner_pool.server.config import ServerConfig
from raner_pool.server.errors import APIError, error_response, validation_error
from raner_pool.server.guards import install_guards
from raner_pool.server.service import Service
from raner_pool.server.webui_routes import mount_webui

log = logging.getLogger("raner_pool.server")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def create_app(
    models: ModelRegistry, config: ServerConfig | None = None, *, load_in_background: bool = True
) -> FastAPI:
    """An app serving `models` under `config`; they load on startup, on a thread, so /health answers while they
    warm up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # sync routes run on anyio's thread pool: make it large enough that the pools' own
        # limits (deadline -> 503, max_waiting -> 429) are what bounds a request, not a hidden queue
        slots = sum(spec.pool_size + spec.max_waiting for spec in models.specs.values()) + 16
        to_thread.current_default_thread_limiter().total_tokens = max(40, slots)
        models.listeners.append(service.metrics.watch_pool)
        if load_in_background:
            threading.Thread(target=models.load_all, name="raner-load", daemon=True).start()
        else:
            models.load_all()
        models.start_watching()
        yield
        models.close()

    app = FastAPI(
        title="raner-pool",
        version=__version__,
        summary="Chinese NER (PER, LOC, ORG) from ModelScope RaNER models, served to many callers at once.",
        lifespan=lifespan,
        responses={413: {"description": "the request body is larger than the server's max_body_bytes (refused "
                                        "before it is read)"}},
    )
    service = app.state.service = Service(models)
    app.state.config = config or ServerConfig()
    install_guards(app, app.state.config)  # inside the request-id middleware below: errors get an id
    app.state.draining = False
    app.state.started = int(time.time())
    for module in (ner_routes, openai_routes, ops_routes):
        app.include_router(module.router)
    mount_admin(app)
    mount_webui(app)

    @app.middleware("http")
    async def request_id_and_metrics(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        incoming = request.headers.get("x-request-id", "")
        request.state.request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.state.model = "-"
        began = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception as error:  # the model raised: log it under the request id, answer 500, keep serving
            log.exception("request %s to %s failed", request.state.request_id, request.url.path)
            failure = APIError(500, "internal_error", f"the model failed on this request: {type(error).__name__}")
            response = error_response(request, failure)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics = app.state.service.metrics
        metrics.requests.labels(path, request.state.model, str(response.status_code)).inc()
        metrics.request_duration.labels(path).observe(time.perf_counter() - began)
        response.headers["X-Request-ID"] = request.state.request_id
        if app.state.draining:  # keep-alive clients reconnect, and the load balancer sends them elsewhere
            response.headers["Connection"] = "close"
        version = getattr(request.state, "model_version", None)
        if version:
            response.headers["X-Model-Version"] = version
        return response

    @app.exception_handler(APIError)
    async def api_error(request: Request, error: APIError) -> Response:
        return error_response(request, error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        return error_response(request, validation_error(error))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        response = error_response(request, APIError(error.status_code, code, str(error.detail)))
        response.headers.update(error.headers or {})  # e.g. Allow on a 405
        return response

    return app
