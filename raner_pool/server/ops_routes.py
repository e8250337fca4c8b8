"""Operations: /health (always answers), /ready (503 until every model is warm), /metrics (Prometheus)."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from raner_pool import __version__
from raner_pool.server.service import Service
from raner_pool.server.workers import live_workers

router = APIRouter(tags=["Operations"])


@router.get("/health", summary="Models, their versions, pools' state and counters, load failures, the version")
def health(request: Request) -> dict[str, Any]:
    service: Service = request.app.state.service
    models = []
    for spec, slot in service.models.entries():
        pool = slot.pool
        choice = pool.backend_choice if pool is not None else None
        budget = pool.batch_budget if pool is not None else None
        models.append({
            "name": spec.name, "aliases": list(spec.aliases), "model": spec.model, "backend": spec.backend,
            "serving_backend": pool.backend.kind if pool is not None else None,
            "backend_choice": choice.to_dict() if choice is not None else None,
            "batch_budget": budget.to_dict() if budget is not None else None,
            "types": pool.entity_types if pool is not None else None,
            "device": spec.device, "ready": pool is not None, "version": slot.version, "error": slot.failure,
            "last_reload": slot.last_reload, "pool": asdict(pool.stats()) if pool is not None else None,
        })
    failures = service.models.failures
    status = "ok" if service.models.ready and not failures else ("degraded" if failures else "loading")
    if request.app.state.draining:
        status = "draining"
    return {"status": status, "version": __version__, "pid": os.getpid(), "workers": live_workers() or 1,
            "models": models}


@router.get("/ready", summary="200 once the models are loaded and warm; 503 while loading, if none serves, or "
            "from SIGTERM on", responses={503: {"description": "still loading, nothing serves, or shutting down"}})
def ready(request: Request) -> JSONResponse:
    service: Service = request.app.state.service
    draining = request.app.state.draining
    is_ready = service.models.ready and not draining
    body = {"ready": is_ready, "draining": draining, "loading": service.models.loading,
            "failed": service.models.failures}
    return JSONResponse(body, status_code=200 if is_ready else 503)


@router.get("/metrics", summary="Prometheus text exposition", response_class=Response)
def metrics(request: Request) -> Response:
    service: Service = request.app.state.service
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
