"""A Label Studio ML backend under /label-studio, in the protocol of HumanSignal's `label-studio-ml-backend`
(`label_studio_ml/api.py`): give Label Studio `http://HOST:PORT/label-studio` as the model URL.

Label Studio calls `/setup` when a backend is connected (the project's labelling config and `extra_params`, kept
here per project), `/predict` with tasks to pre-annotate, `/health`, and `/webhook` with annotation events. The
models, pools and batching are the server's own: a prediction is a `/ner` call per task, batched.

Auth: Label Studio sends the connection's Basic auth on every call; with RANER_POOL_LABEL_STUDIO_AUTH
("user:password") set it must match, and the server's API keys (Bearer) are accepted too. With neither configured
the routes are open, as /ner is.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from raner_pool.errors import RaNERError
from raner_pool.integrations.label_studio import LabelConfig, parse_label_config, prediction, task_text
from raner_pool.integrations.label_studio_training import TrainingJobs, TrainingRequest
from raner_pool.server.auth import key_matches
from raner_pool.server.errors import APIError, documented_errors
from raner_pool.server.schemas import ErrorBody
from raner_pool.server.service import Service
from raner_pool.server.workers import reload_siblings

LS_ERRORS = documented_errors(
    ErrorBody,
    {
        400: "the labelling config has no <Labels> on a <Text>, a task has no text under the config's data key, or "
             "the project is unknown and the request carries no label_config",
        401: "Basic auth (Label Studio's connection) or an API key is configured and the request has neither",
        404: "the model named in the project's extra_params is not served",
        413: "a text is longer than the model's max_text_chars",
        415: "the body is not sent as Content-Type: application/json",
        422: "a missing field or a wrong type (the field is named)",
        429: "more requests are waiting for the model than its max_waiting",
        503: "no instance became free within the deadline, or the model is still loading",
    },
)
AUTH_ERRORS = documented_errors(
    ErrorBody, {401: "Basic auth (Label Studio's connection) or an API key is configured and the request has neither"})
TRAINING_ACTIONS = frozenset({"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATION_DELETED", "START_TRAINING"})


def require_label_studio_auth(request: Request) -> None:
    """Basic auth with the configured Label Studio credentials, or a Bearer API key, when either is configured."""
    config = request.app.state.config
    expected, keys = config.label_studio_auth, config.api_keys
    if not expected and not keys:
        return
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic" and expected:
        try:
            given = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            given = b""
        if hmac.compare_digest(given, expected.encode("utf-8")):
            return
    if scheme.lower() == "bearer" and keys and key_matches(value.strip(), keys):
        return
    raise APIError(401, "unauthorized", "the ML backend needs Label Studio's Basic auth (the connection's user and "
                   "password) or an API key (Authorization: Bearer KEY)")


router = APIRouter(prefix="/label-studio", tags=["Label Studio ML backend"],
                   dependencies=[Depends(require_label_studio_auth)])


class Flexible(BaseModel):
    """Label Studio sends more than these fields; the rest are ignored."""

    model_config = ConfigDict(extra="allow")


class SetupRequest(Flexible):
    project: str = Field(description="'<project id>.<created timestamp>'")
    schema_: str = Field("", alias="schema", description="the project's labelling config (XML)")
    hostname: str = ""
    access_token: str = ""
    extra_params: dict[str, Any] | str | None = Field(
        None, description="per project: 'model' (a served model's name) and 'label_map' ({label value: model type})")


class PredictRequest(Flexible):
    tasks: list[dict[str, Any]]
    project: str = ""
    label_config: str = ""
    params: dict[str, Any] = Field(default_factory=dict)


class TrainRequest(Flexible):
    annotations: list[dict[str, Any]] = Field(description="the annotated tasks, in Label Studio's export format")
    project: str = ""
    label_config: str = ""


class WebhookRequest(Flexible):
    action: str
    project: dict[str, Any] | StrictStr | StrictInt | None = None


@dataclass
class Project:
    """What /setup told us of one Label Studio project."""

    config: LabelConfig
    model: str | None
    hostname: str
    access_token: str


class Projects:
    """Projects by id, as set up; a project never set up is read from the label_config each /predict carries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._projects: dict[str, Project] = {}

    def put(self, project_id: str, project: Project) -> None:
        with self._lock:
            self._projects[project_id] = project

    def get(self, project_id: str) -> Project | None:
        with self._lock:
            return self._projects.get(project_id)


def project_id(value: object) -> str:
    """'12.1733467000' -> '12' (Label Studio's "<id>.<created timestamp>"); a dict's 'id' for webhooks."""
    if isinstance(value, dict):
        value = value.get("id", "")
    return str(value or "").split(".", 1)[0]


def extra_params(value: dict[str, Any] | str | None) -> dict[str, Any]:
    """Label Studio stores extra_params as JSON text or an object."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError:
            raise APIError(422, "invalid_extra_params", "extra_params is not a JSON object",
                           param="extra_params") from None
    if not isinstance(value, dict):
        return {}
    return value


def _projects(request: Request) -> Projects:
    projects: Projects = request.app.state.label_studio_projects
    return projects


def _health(request: Request) -> dict[str, Any]:
    service: Service = request.app.state.service
    spec = service.models.resolve(None)
    return {"status": "UP", "model_class": "RaNERModelPool", "model": spec.name,
            "model_version": _version(service, spec.name)}


def _version(service: Service, name: str) -> str:
    """What Label Studio shows as the model version: the served model's name and content version."""
    version = service.models.slot(name).version
    return f"{name}@{version}" if version else name


@router.get("/health", responses=AUTH_ERRORS, summary="Label Studio's health check: status UP")
def health(request: Request) -> dict[str, Any]:
    return _health(request)


@router.get("/", responses=AUTH_ERRORS, summary="Same as /label-studio/health")
def root(request: Request) -> dict[str, Any]:
    return _health(request)


@router.get("/metrics", responses=AUTH_ERRORS, summary="Label Studio asks; nothing here (see the server's /metrics)")
def metrics() -> dict[str, Any]:
    return {}


@router.post("/setup", responses=LS_ERRORS, summary="Connect a project: its labelling config and extra_params")
def setup(body: SetupRequest, request: Request) -> dict[str, Any]:
    service: Service = request.app.state.service
    params = extra_params(body.extra_params)
    model = params.get("model")
    spec = service.model(request, model if isinstance(model, str) else None)
    try:
        config = parse_label_config(body.schema_, params.get("label_map") or {})
    except RaNERError as error:
        raise APIError(400, "bad_label_config", str(error), param="schema") from None
    _projects(request).put(project_id(body.project), Project(config, spec.name, body.hostname, body.access_token))
    served = service.entity_types(spec)
    return {"model_version": _version(service, spec.name), "unsupported_labels": config.unsupported(served)}


@router.post("/predict", responses=LS_ERRORS, summary="Pre-annotate tasks: one prediction per task, in order")
async def predict(body: PredictRequest, request: Request) -> dict[str, Any]:
    service: Service = request.app.state.service
    known = _projects(request).get(project_id(body.project))
    try:
        if body.label_config:
            config = parse_label_config(body.label_config, known.config.label_to_type if known else None)
        elif known is not None:
            config = known.config
        else:
            raise RaNERError(f"project {body.project!r} was never set up and the request has no label_config: "
                             "connect the backend in the project's settings (Label Studio calls /setup)")
        texts = [task_text(task, config) for task in body.tasks]
    except RaNERError as error:
        raise APIError(400, "bad_request", str(error)) from None
    spec = service.model(request, known.model if known else None)
    found = await service.entities(request, spec, texts) if texts else []
    version = f"{spec.name}@{request.state.model_version}" if texts else _version(service, spec.name)
    return {"results": [prediction(entities, config, version) for entities in found]}


@router.post("/webhook", responses=LS_ERRORS, summary="Annotation events and START_TRAINING start a training job")
def webhook(body: WebhookRequest, request: Request) -> dict[str, Any]:
    if body.action not in TRAINING_ACTIONS:
        return {"status": "ignored", "note": f"action {body.action!r} needs nothing from this backend"}
    return _start_training(request, project_id(body.project), None)


@router.post("/train", responses=LS_ERRORS, summary="Older Label Studio's training call, with the annotations")
def train(body: TrainRequest, request: Request) -> dict[str, Any]:
    return _start_training(request, project_id(body.project), body.annotations, body.label_config)


@router.get("/training", responses=LS_ERRORS, summary="The project's latest training job: running, promoted (the "
            "new version beat the serving one on held-out annotations), kept (it did not) or failed")
def training_status(project: str, request: Request) -> dict[str, Any]:
    status = _jobs(request).status(project_id(project))
    if status is None:
        raise APIError(404, "no_training_job", f"project {project!r} has no training job", param="project")
    return status


def _start_training(request: Request, project: str, tasks: list[dict[str, Any]] | None,
                    label_config: str = "") -> dict[str, Any]:
    """A training job for `project`, or a note saying why none starts (Label Studio shows it)."""
    service: Service = request.app.state.service
    known = _projects(request).get(project)
    if known is None and not label_config:
        return {"status": "not_started", "note": f"project {project!r} was never set up (connect the backend)"}
    spec = service.model(request, known.model if known else None)
    if not spec.train_dir:
        return {"status": "not_started", "note": f"training is off for model {spec.name!r}: set its train_dir in "
                                                 "the registry to turn it on"}
    try:
        config = parse_label_config(label_config, known.config.label_to_type if known else None) if label_config \
            else known.config  # type: ignore[union-attr]
    except RaNERError as error:
        raise APIError(400, "bad_label_config", str(error), param="label_config") from None
    job = _jobs(request).start(TrainingRequest(
        project=project, model=spec.name, source=spec.model,
        train_dir=Path(spec.train_dir), minutes=spec.train_minutes, config=config, tasks=tasks,
        hostname=known.hostname if known else "", access_token=known.access_token if known else ""))
    return {"status": "ok", "job": job}


def _jobs(request: Request) -> TrainingJobs:
    jobs: TrainingJobs = request.app.state.label_studio_jobs
    return jobs


def mount_label_studio(app: FastAPI) -> None:
    service: Service = app.state.service

    def promote(model: str, directory: Path) -> str:
        result = service.models.reload_model(model, str(directory))
        reload_siblings()  # other workers re-read the registry, which now finds the promoted dir
        return f"{model}@{result.new_version}"

    app.state.label_studio_projects = Projects()
    app.state.label_studio_jobs = TrainingJobs(promote)
    app.include_router(router)
