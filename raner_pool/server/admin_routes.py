"""Operator routes: reload the registry file or one model while serving. They exist only when an admin token is
configured (RANER_POOL_ADMIN_TOKEN or admin_token_file); without one they answer 404 like any unknown path."""

from __future__ import annotations

import hmac
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, Field

from raner_pool.model_specs import RegistryConfigError
from raner_pool.registry import UnknownModel
from raner_pool.reload import ReloadFailed
from raner_pool.server.errors import APIError, documented_errors
from raner_pool.server.schemas import ErrorBody
from raner_pool.server.service import Service
from raner_pool.server.workers import WORKER_ENV, reload_siblings

ADMIN_ERRORS = documented_errors(
    ErrorBody,
    {
        401: "no admin token, or the wrong one (Authorization: Bearer <token>)",
        404: "unknown model",
        400: "the registry file cannot be read or is invalid, or the body's model is not a readable model dir; "
             "nothing changed",
        409: "the new model could not be loaded (the message says why); the old version still serves",
    },
)


class ReloadBody(BaseModel):
    """Optional body of a one-model reload: a new source for the model."""

    model: str | None = Field(None, description="absolute path of a model dir this server can read; it becomes "
                              "the model's source until the registry file is reloaded")


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
             summary="Load one model anew from its source (a replaced dir, a newer cached revision), or from the "
                     "dir in the body's `model` (e.g. a `raner-pool train` output), and switch to it")
def reload_model(name: str, request: Request, body: ReloadBody | None = None) -> dict[str, Any]:
    service: Service = request.app.state.service
    source = body.model if body is not None else None
    if source is not None:
        if WORKER_ENV in os.environ:
            raise APIError(409, "several_workers", "this server runs several worker processes, which re-read "
                           "the registry file on a reload: point the file's model at the new dir and POST "
                           "/admin/reload instead", param="model")
        if not Path(source).is_absolute() or not Path(source, "configuration.json").is_file():
            raise APIError(400, "bad_model_dir", f"{source!r} is not a model dir this server can read (an "
                           "absolute path holding configuration.json, on this host or a shared volume)",
                           param="model")
    try:
        result = service.models.reload_model(name, source)
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
