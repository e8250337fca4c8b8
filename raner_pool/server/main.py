"""Run the server under uvicorn: `raner-pool serve`, `python server.py`, `make serve`."""

from __future__ import annotations

import dataclasses
import logging
import os
import resource
import socket
from pathlib import Path

import torch
import uvicorn

from raner_pool.errors import RaNERError
from raner_pool.loading import preload_model
from raner_pool.memory import limit_malloc_arenas
from raner_pool.model_specs import ModelSpec, load_specs
from raner_pool.registry import ModelRegistry
from raner_pool.server.app import create_app
from raner_pool.server.config import load_server_config
from raner_pool.server.lifecycle import DrainingServer, reload_on_sighup
from raner_pool.server.read_deadlines import read_deadline_protocol
from raner_pool.server.workers import MULTIPROC_ENV, Supervisor, bind
from raner_pool.threads import WORKERS_ENV, available_cores
from raner_pool.timezones import default_timezone

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
log = logging.getLogger("raner_pool.server")


FILES_KEPT_FREE = 64
"""File descriptors kept for model files, logs and Redis beside the client connections."""


def open_files_limit() -> int:
    """Raise this process's open-file limit to its hard limit and return it: every client connection, idle ones
    included, holds a descriptor, and uvicorn must answer 503 (limit_concurrency) before they run out."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def serve(
    config: Path | None = None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    single_model: ModelSpec | None = None,
    workers: int = 1,
    retune: bool = False,
    access_log: bool | None = None,
) -> None:
    """Serve the models of `config` (or `single_model`, or the embedded default) until interrupted, in one process
    or in `workers` processes sharing the port and the weights (set PROMETHEUS_MULTIPROC_DIR before importing this
    package then, as `raner-pool serve --workers N` does, so /metrics covers every worker). `retune` times
    backend="auto" and batch budgets anew instead of reusing what earlier starts timed on this machine."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    limit_malloc_arenas()  # before any pool's threads exist: see raner_pool.memory and README, "Memory"
    specs = [single_model] if single_model is not None and config is None else load_specs(config)
    server_config = load_server_config(config)
    log.info("times are read in %s unless a model or a request names a zone", default_timezone())  # checks it
    if access_log is not None:  # the command line's --access-log over the registry's server.access_log
        server_config = dataclasses.replace(server_config, access_log=access_log)
    os.environ[WORKERS_ENV] = str(workers)  # the pools divide the cores between worker processes too
    log.info("%d worker process(es), %d cores", workers, available_cores())

    def run(sockets: list[socket.socket] | None) -> None:
        models = ModelRegistry(specs, config, retune)
        # one process answers /health while it loads; a worker accepts nothing until its models are warm, so a
        # request is never handed to a sibling that is still loading
        app = create_app(models, server_config, load_in_background=sockets is None)
        metrics = app.state.service.metrics
        limit_concurrency = min(server_config.limit_concurrency, open_files_limit() - FILES_KEPT_FREE)
        uvicorn_config = uvicorn.Config(
            app, host=host, port=port, log_level="info", timeout_graceful_shutdown=int(server_config.drain_timeout_s),
            timeout_keep_alive=int(server_config.timeout_keep_alive_s), limit_concurrency=limit_concurrency,
            backlog=server_config.backlog, access_log=False,  # ours is raner_pool.server.access_log, off the loop
            http=read_deadline_protocol(server_config.header_timeout_s, server_config.body_timeout_s,
                                        lambda phase: metrics.slow_clients.labels(phase).inc()),
        )
        reload_on_sighup(models)
        server = DrainingServer(uvicorn_config, server_config.grace_s,
                                on_drain=lambda: setattr(app.state, "draining", True))
        server.run(sockets=sockets)

    if workers <= 1:
        run(None)
        return
    if not os.environ.get(MULTIPROC_ENV):
        log.warning("%s is not set: /metrics will report one worker at a time", MULTIPROC_ENV)
    torch.set_num_threads(1)  # no OpenMP thread team in the supervisor: forked workers would inherit a broken one
    for spec in specs:  # weights loaded once, here: the workers share them copy-on-write
        try:
            preload_model(spec.model, spec.backend, spec.device, spec.dtype, retune=retune)
        except RaNERError as error:
            log.error("model %s cannot be preloaded (%s); each worker will report why", spec.name, error)
    sock = bind(host, port, server_config.backlog)
    Supervisor(workers, sock, lambda shared: run([shared])).run()
