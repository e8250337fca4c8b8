"""The FastAPI app: routes from the library's registry, request ids, metrics, and errors that are never a bare 500."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from raner_pool import __version__
from raner_pool.registry import ModelRegistry
from raner_pool.server import ner_routes, openai_routes, ops_routes
from raner_pool.server.access_log import AccessLog
from raner_pool.server.admin_routes import mount_admin
from raner_pool.server.config import ServerConfig
from raner_pool.server.errors import APIError, error_response, validation_error
from raner_pool.server.guards import install_guards
from raner_pool.server.label_studio_routes import mount_label_studio
from raner_pool.server.request_context import RequestContext
from raner_pool.server.service import Service
from raner_pool.server.webui_routes import mount_webui

log = logging.getLogger("raner_pool.server")


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
        if access_log is not None:
            access_log.start()
        yield
        models.close()
        if access_log is not None:
            access_log.stop()

    app = FastAPI(
        title="raner-pool",
        version=__version__,
        summary="Chinese NER (PER, LOC, ORG, TIME, MONEY, PERCENT, TITLE) from ModelScope RaNER models, served to many "
                "callers at once.",
        lifespan=lifespan,
        responses={413: {"description": "the request body is larger than the server's max_body_bytes (refused "
                                        "before it is read)"}},
    )
    service = app.state.service = Service(models)
    app.state.config = config or ServerConfig()
    install_guards(app, app.state.config)
    access_log = AccessLog() if app.state.config.access_log else None
    app.state.draining = False
    app.state.started = int(time.time())
    for module in (ner_routes, openai_routes, ops_routes):
        app.include_router(module.router)
    mount_admin(app)
    mount_label_studio(app)
    mount_webui(app)

    app.add_middleware(RequestContext, access_log=access_log)  # outermost: guards' refusals get an id too

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
