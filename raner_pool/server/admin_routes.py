"""Operator routes: reload the registry file or one model while serving. They exist only when an admin token is
configured (RANER_POOL_ADMIN_TOKEN or admin_token_file); without one they answer 404 like any unknown path."""

from __future__ import annotations

import hmac
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request

from raner_pool.model_specs import RegistryConfigError
from raner_pool.registry import UnknownModel
from raner_pool.reload import ReloadFailed
from raner_pool.server.errors import APIError, documented_errors
from raner_pool.server.schemas import ErrorBody
from raner_pool.server.service import Service
from raner_pool.server.workers import reload_siblings

ADMIN_ERRORS = documented_errors(
    ErrorBody,
    {
        400: "the registry file cannot be read or is invalid; nothing changed",
        401: "no admin token, or the wrong one (Authorization: Bearer <token>)",
        404: "unknown model",
        409: "the new model could not be loaded (the message says why); the old version still serves",
    },
)


def require_admin(request: Request) -> None:
    """The request carries the admin token as a Bearer token, compared in constant time."""
    expected = request.app.state.config.admin_token or ""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if not (scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())):
        raise APIError(401, "unauthorized", "admin routes need 'Authorization: Bearer <admin token>'")


router = APIRouter(prefix="/admin", tags=["Admin"], dependencies=[Depends(require_admin)])


@router.post("/reload", responses=ADMIN_ERRORS,
             summary="Re-read the registry file: load added models, reload changed ones, drop removed ones")
def reload_registry(request: Request) -> dict[str, Any]:
    service: Service = request.app.state.service
    try:
        outcome = service.models.reload()
    except RegistryConfigError as error:
        raise APIError(400, "bad_registry", f"{error}; nothing changed") from None
    reload_siblings()
    if outcome.failed:
        reasons = "; ".join(outcome.failed.values())
        raise APIError(409, "reload_failed", f"{reasons}. Applied: added {outcome.added or 'none'}, reloaded "
                       f"{[r.model for r in outcome.reloaded] or 'none'}, removed {outcome.removed or 'none'}")
    return {"success": True, "added": outcome.added, "removed": outcome.removed,
            "reloaded": [asdict(r) for r in outcome.reloaded], "unchanged": outcome.unchanged,
            "versions": {spec.name: slot.version for spec, slot in service.models.entries()}}


@router.post("/models/{name}/reload", responses=ADMIN_ERRORS,
             summary="Load one model anew from its source (a replaced dir, a newer cached revision) and switch to it")
def reload_model(name: str, request: Request) -> dict[str, Any]:
    service: Service = request.app.state.service
    try:
        result = service.models.reload_model(name)
    except UnknownModel as error:
        raise APIError(404, "model_not_found", str(error), param="name") from None
    except ReloadFailed as error:
        raise APIError(409, "reload_failed", str(error)) from None
    reload_siblings()
    return {"success": True, **asdict(result)}


def mount_admin(app: FastAPI) -> None:
    """Add the admin routes when the server has an admin token."""
    if app.state.config.admin_token:
        app.include_router(router)
