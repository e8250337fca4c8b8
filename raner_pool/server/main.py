"""Run the server under uvicorn: `raner-pool serve`, `python server.py`, `make serve`."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import uvicorn

from raner_pool.registry import ModelRegistry, ModelSpec, load_specs
from raner_pool.server.app import create_app

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def torch_threads(workers: int) -> int:
    """Threads per forward pass: the cores split between the instances that run at once (RANER_POOL_TORCH_THREADS
    overrides). Oversubscribed cores make every pass slower; see README, Performance."""
    configured = os.environ.get("RANER_POOL_TORCH_THREADS")
    if configured:
        return max(1, int(configured))
    return max(1, (os.cpu_count() or 1) // max(1, workers))


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
    app = create_app(ModelRegistry(specs))
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=10)
