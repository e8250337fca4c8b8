"""The real server (`raner-pool serve`) in a subprocess on a free 127.0.0.1 port, stopped afterwards."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from raner_pool.server.launch import free_port, launched

STOP_AT_ONCE = "[server]\ngrace_s = 0\n"
"""A registry's [server] table for test servers nothing routes traffic to: SIGTERM stops them without the 5 s
grace meant for load balancers (the drain itself is tested in test_operations, with a grace)."""


@dataclass(frozen=True)
class RunningServer:
    url: str
    log: Path
    pid: int = 0

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def running_server(
    config: Path, log: Path, env: Mapping[str, str] | None = None, args: Sequence[str] = ()
) -> Iterator[RunningServer]:
    """The server of `config` (with `env` added to the environment and `args` to its command line), once /ready says
    every model is warm."""
    port = free_port()
    command = [sys.executable, "-m", "raner_pool.cli", "serve", "--config", str(config), "--port", str(port), *args]
    with launched(command, port, log, env=None if env is None else {**os.environ, **env}) as url:
        [pid] = [child.pid for child in psutil.Process().children() if str(port) in child.cmdline()]
        yield RunningServer(url, log, pid)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, 0 when absent."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return 0.0
