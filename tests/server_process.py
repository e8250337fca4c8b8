"""The real server (`raner-pool serve`) in a subprocess on a free 127.0.0.1 port, stopped afterwards."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from raner_pool.server.launch import free_port, launched


@dataclass(frozen=True)
class RunningServer:
    url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def running_server(config: Path, log: Path) -> Iterator[RunningServer]:
    """The server of `config`, once /ready says every model is warm."""
    port = free_port()
    command = [sys.executable, "-m", "raner_pool.cli", "serve", "--config", str(config), "--port", str(port)]
    with launched(command, port, log) as url:
        yield RunningServer(url, log)

