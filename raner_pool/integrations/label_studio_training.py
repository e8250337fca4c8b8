"""Training from Label Studio: a project's annotations become a new version of the served model, switched in only
when it beats the serving one on annotations held out from training.

One job per project at a time, on a thread of the server; the training itself runs in a child process
(`raner-pool train`, the old types kept) under a time budget and on half the cores, so serving goes on. The
annotations come with older Label Studio's `/train` call, or are pulled with `label-studio-sdk` from the hostname
and token `/setup` gave. A promoted version is written to the model's `train_dir` (registry), which the registry
serves from whenever it holds a model, so it survives a restart.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from raner_pool.errors import RaNERError
from raner_pool.evaluation import score_spans
from raner_pool.integrations.label_studio import LabelConfig
from raner_pool.threads import available_cores

log = logging.getLogger(__name__)
HELD_OUT = 0.2
MIN_TASKS = 10
"""Fewer annotated tasks than this train nothing: a held-out fifth of them would say nothing."""


@dataclass
class JobStatus:
    """What a project's latest training job did (state: running, promoted, kept, failed)."""

    project: str
    model: str
    state: str = "running"
    started: float = field(default_factory=time.time)
    tasks: int = 0
    old_f1: float | None = None
    new_f1: float | None = None
    version: str | None = None
    message: str = ""


@dataclass(frozen=True)
class TrainingRequest:
    project: str
    model: str
    source: str
    """The model dir serving now: the base of the new version."""
    train_dir: Path
    minutes: float
    config: LabelConfig
    tasks: list[dict[str, Any]] | None = None
    """The annotated tasks, when Label Studio sent them; else pulled from `hostname` with `access_token`."""
    hostname: str = ""
    access_token: str = ""


class TrainingJobs:
    """The training jobs of one server process; `promote(model, dir)` switches a model to a promoted dir."""

    def __init__(self, promote: Callable[[str, Path], str]) -> None:
        self.promote = promote
        self._lock = threading.Lock()
        self._jobs: dict[str, JobStatus] = {}

    def status(self, project: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(project)
            return asdict(job) if job else None

    def start(self, request: TrainingRequest) -> dict[str, Any]:
        """Start a job for the project unless one is running; the job's status either way."""
        with self._lock:
            running = self._jobs.get(request.project)
            if running is not None and running.state == "running":
                return {**asdict(running), "message": "a training job for this project is already running"}
            job = self._jobs[request.project] = JobStatus(request.project, request.model)
        threading.Thread(target=self._run, args=(request, job), name=f"ls-train-{request.project}",
                         daemon=True).start()
        return asdict(job)

    def _run(self, request: TrainingRequest, job: JobStatus) -> None:
        try:
            self._train(request, job)
        except Exception as error:  # a failed job is reported in its status; serving is untouched
            log.exception("training for Label Studio project %s failed", request.project)
            job.state, job.message = "failed", str(error)

    def _train(self, request: TrainingRequest, job: JobStatus) -> None:
        tasks = request.tasks if request.tasks is not None else pull_tasks(request)
        annotated = [t for t in tasks if any(not a.get("was_cancelled") for a in t.get("annotations") or [])]
        job.tasks = len(annotated)
        if len(annotated) < MIN_TASKS:
            raise RaNERError(f"project {request.project} has {len(annotated)} annotated tasks; {MIN_TASKS} at least "
                             "are needed to train and to hold some out")
        annotated.sort(key=lambda task: str(task.get("id", "")))  # the same held-out tasks however they came
        mapped = [with_model_types(task, request.config) for task in annotated]
        random.Random(20261206).shuffle(mapped)
        held = max(2, round(len(mapped) * HELD_OUT))
        with tempfile.TemporaryDirectory(prefix="raner-ls-train-") as scratch:
            work = Path(scratch)
            train_file, dev_file = work / "train.json", work / "heldout.json"
            train_file.write_text(json.dumps(mapped[held:], ensure_ascii=False), encoding="utf-8")
            dev_file.write_text(json.dumps(mapped[:held], ensure_ascii=False), encoding="utf-8")
            candidate = work / "candidate"
            command = [sys.executable, "-m", "raner_pool.cli", "train", str(train_file), "--dev", str(dev_file),
                       "--base", request.source, "--output", str(candidate), "--max-minutes", str(request.minutes),
                       "--threads", str(max(1, available_cores() // 2)), "--quiet"]
            run = subprocess.run(command, capture_output=True, text=True)
            if run.returncode != 0:
                raise RaNERError(f"training failed: {run.stderr.strip().splitlines()[-1] if run.stderr else run}")
            job.old_f1, job.new_f1 = held_out_f1(request.source, dev_file), held_out_f1(str(candidate), dev_file)
            if job.new_f1 <= job.old_f1:
                job.state = "kept"
                job.message = (f"the new version scored {job.new_f1:.3f} F1 on {held} held-out tasks, the serving "
                               f"one {job.old_f1:.3f}: the serving one stays")
                return
            install(candidate, request.train_dir)
        job.version = self.promote(request.model, request.train_dir)
        job.state = "promoted"
        job.message = f"held-out F1 {job.old_f1:.3f} -> {job.new_f1:.3f} on {held} tasks: now serving {job.version}"


def pull_tasks(request: TrainingRequest) -> list[dict[str, Any]]:
    """The project's tasks with their annotations, exported through label-studio-sdk."""
    if not request.hostname or not request.access_token:
        raise RaNERError(f"project {request.project}: no hostname and access token from /setup to pull "
                         "annotations with (reconnect the backend)")
    from label_studio_sdk import LabelStudio

    client = LabelStudio(base_url=request.hostname, api_key=request.access_token)
    tasks: list[dict[str, Any]] = client.projects.exports.as_json(int(request.project))
    return tasks


def with_model_types(task: dict[str, Any], config: LabelConfig) -> dict[str, Any]:
    """The task with its regions' label values mapped to model types, and its text under `data.text`."""
    annotations = []
    for annotation in task.get("annotations") or []:
        result = []
        for region in annotation.get("result") or []:
            value = region.get("value") or {}
            if region.get("type") == "labels" and region.get("from_name", config.from_name) == config.from_name:
                value = {**value, "labels": [config.model_type(label) for label in value.get("labels", [])]}
                result.append({**region, "value": value})
        annotations.append({**annotation, "result": result})
    data = task.get("data") or {}
    return {**task, "data": {"text": data.get(config.data_key)}, "annotations": annotations}


def held_out_f1(model: str, held_out: Path) -> float:
    """Entity F1 of `model` (the model alone) on the held-out tasks, over the types they label."""
    from raner_pool.pool import RaNERModelPool
    from raner_pool.training.readers import read_examples

    examples = read_examples(held_out, "label-studio")
    types = set().union(*(e.types for e in examples))
    with RaNERModelPool(model, pool_size=1, extra_types=()) as pool:
        found = pool.predict_batch([e.text for e in examples])
    gold = [[(s.type, s.start, s.end) for s in e.spans] for e in examples]
    predicted = [[(e.type, e.start, e.end) for e in entities if e.type in types] for entities in found]
    return score_spans(gold, predicted)["ALL"].f1


def install(candidate: Path, train_dir: Path) -> None:
    """Put `candidate` at `train_dir` by renames: a restart in between finds the old version or the new, whole."""
    from raner_pool.training.trainer import replace_dir  # the trainer's own: serving never imports it at start

    train_dir.parent.mkdir(parents=True, exist_ok=True)
    incoming = train_dir.parent / f".{train_dir.name}.incoming"
    shutil.rmtree(incoming, ignore_errors=True)
    shutil.copytree(candidate, incoming)
    replace_dir(incoming, train_dir)
