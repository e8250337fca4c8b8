"""Threads per forward pass, sized so that the instances that can run at once never ask for more threads than
the process has cores: oversubscribed GEMMs lose badly (DESIGN.md). Every open pool's instances count, and so do
sibling worker processes (RANER_POOL_WORKERS); RANER_POOL_TORCH_THREADS or an explicit value overrides."""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path

THREADS_ENV = "RANER_POOL_TORCH_THREADS"
WORKERS_ENV = "RANER_POOL_WORKERS"

_lock = threading.Lock()
_instances = 0
"""Instances of the open pools of this process that size threads automatically."""


def available_cores() -> int:
    """Cores this process may use: its CPU affinity, within a cgroup CPU quota (a container's CPU limit)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text(encoding="ascii").split()
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def threads_per_instance(instances: int) -> int:
    """Threads for each of `instances` concurrent forward passes in this process (at least 1)."""
    configured = os.environ.get(THREADS_ENV)
    if configured:
        return max(1, int(configured))
    workers = max(1, int(os.environ.get(WORKERS_ENV) or 1))
    return max(1, available_cores() // workers // max(1, instances))


def set_threads(threads: int) -> None:
    """Use `threads` threads per forward pass in torch (process-wide); ONNX sessions created later follow."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def torch_threads() -> int:
    """Threads per forward pass now: torch's setting, which the ONNX and OpenVINO backends follow too."""
    import torch

    return torch.get_num_threads()


def concurrent_passes() -> int:
    """Forward passes that run side by side on the cores at today's threads per pass: a pool's instances at once."""
    return max(1, available_cores() // torch_threads())


def pool_opened(instances: int, explicit: int | None) -> int:
    """Account for a new pool's instances and size the threads for all open pools; returns the threads now used."""
    global _instances
    with _lock:
        if explicit is not None:
            threads = max(1, explicit)
        else:
            _instances += instances
            threads = threads_per_instance(_instances)
        set_threads(threads)
        return threads


def pool_closed(instances: int, explicit: int | None) -> None:
    """Give a closed pool's instances back; the remaining pools get the threads they now may use."""
    global _instances
    if explicit is not None:
        return
    with _lock:
        _instances = max(0, _instances - instances)
        if _instances:
            set_threads(threads_per_instance(_instances))
