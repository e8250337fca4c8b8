"""Run the server under uvicorn: `raner-pool serve`, `python server.py`, `make serve`."""

from __future__ import annotations

import logging
import os
import resource
from pathlib import Path

import torch
import uvicorn

from raner_pool.registry import ModelRegistry, ModelSpec, load_specs
from raner_pool.server.app import create_app
from raner_pool.server.config import load_server_config
from raner_pool.server.lifecycle import DrainingServer, reload_on_sighup

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def torch_threads(workers: int) -> int:
    """Threads per forward pass: the cores split between the instances that run at once (RANER_POOL_TORCH_THREADS
    overrides). Oversubscribed cores make every pass slower; see README, Performance."""
    configured = os.environ.get("RANER_POOL_TORCH_THREADS")
    if configured:
        return max(1, int(configured))
    return max(1, (os.cpu_count() or 1) // max(1, workers))


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
) -> None:
    """Serve the models of `config` (or `single_model`, or the embedded default) until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    specs = [single_model] if single_model is not None and config is None else load_specs(config)
    threads = torch_threads(max(spec.pool_size for spec in specs))
    torch.set_num_threads(threads)
    logging.getLogger("raner_pool.server").info("%d torch threads per instance", threads)
    server_config = load_server_config(config)
    models = ModelRegistry(specs, config)
    app = create_app(models, server_config)
    limit_concurrency = min(server_config.limit_concurrency, open_files_limit() - FILES_KEPT_FREE)
    uvicorn_config = uvicorn.Config(
        app, host=host, port=port, log_level="info", timeout_graceful_shutdown=int(server_config.drain_timeout_s),
        timeout_keep_alive=int(server_config.timeout_keep_alive_s), limit_concurrency=limit_concurrency,
        backlog=server_config.backlog,
    )
    reload_on_sighup(models)
    DrainingServer(uvicorn_config, server_config.grace_s, on_drain=lambda: setattr(app.state, "draining", True)).run()
