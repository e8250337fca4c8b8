"""Operations: /health (always answers), /ready (503 until every model is warm), /metrics (Prometheus)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from raner_pool import __version__
from raner_pool.server.service import Service

router = APIRouter(tags=["Operations"])


@router.get("/health", summary="Models, their pools' state and counters, and the version")
def health(request: Request) -> dict[str, Any]:
    service: Service = request.app.state.service
    models = []
    for name, spec in service.models.specs.items():
        pool = service.models.pool(name)
        models.append({
            "name": name, "aliases": list(spec.aliases), "model": spec.model, "backend": spec.backend,
            "device": spec.device, "ready": pool is not None, "error": service.models.load_errors.get(name),
            "pool": asdict(pool.stats()) if pool is not None else None,
        })
    status = "ok" if service.models.ready else ("degraded" if service.models.load_errors else "loading")
    return {"status": status, "version": __version__, "models": models}


@router.get("/ready", summary="200 once every model is loaded and warmed up, 503 before",
            responses={503: {"description": "still loading, or a model failed to load"}})
def ready(request: Request) -> JSONResponse:
    service: Service = request.app.state.service
    loading = [name for name in service.models.specs if service.models.pool(name) is None]
    body = {"ready": not loading, "loading": loading, "failed": service.models.load_errors}
    return JSONResponse(body, status_code=200 if not loading else 503)


@router.get("/metrics", summary="Prometheus text exposition", response_class=Response)
def metrics(request: Request) -> Response:
    service: Service = request.app.state.service
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
