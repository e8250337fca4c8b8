"""Several server processes on one port: a small pre-fork supervisor.

The supervisor binds the socket and loads every model's weights, then forks N workers; each builds its pools
on the preloaded weights (shared copy-on-write, not copied) and serves the shared socket with the same
`DrainingServer` a single process uses. Signals go to every worker: SIGTERM drains them all, SIGHUP reloads
the registry in all of them. A worker that dies unexpectedly is replaced. Metrics are written by every worker
into PROMETHEUS_MULTIPROC_DIR and summed at scrape time (see metrics.py).

Why not gunicorn: its SIGHUP restarts workers from the preloaded master, which would bring back the weights
the master loaded at start instead of the new ones, and its own graceful stop knows nothing of readiness.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from contextlib import suppress
from types import FrameType

log = logging.getLogger("raner_pool.server")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
WORKER_ENV = "RANER_POOL_WORKER"
"""Set in every worker process, to its number."""
RESPAWN_PAUSE_S = 1.0
"""A worker that dies at once would otherwise be respawned in a tight loop."""


def bind(host: str, port: int, backlog: int) -> socket.socket:
    """The listening socket all workers accept from."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    """Forks `workers` processes running `serve_worker(sock)`, forwards signals to them, replaces the ones that
    die unexpectedly, and returns once all have exited after a SIGTERM or SIGINT."""

    def __init__(self, workers: int, sock: socket.socket, serve_worker: Callable[[socket.socket], None]) -> None:
        self.workers = workers
        self.sock = sock
        self.serve_worker = serve_worker
        self.children: dict[int, int] = {}
        """pid -> worker number."""
        self.stopping = False

    def run(self) -> None:
        for number in range(self.workers):
            self._spawn(number)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._forward)
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries os.wait for us
                continue
            _mark_metrics_dead(pid)
            if pid not in self.children or self.stopping:
                self.children.pop(pid, None)
                continue
            number = self.children.pop(pid)
            log.error("worker %d (pid %d) died with status %d; starting a replacement", number, pid, status)
            time.sleep(RESPAWN_PAUSE_S)
            self._spawn(number)
        log.info("all workers have exited")

    def _spawn(self, number: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker: default handlers until its server installs its own (a reload waits till then)
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            code = 0
            try:
                os.environ[WORKER_ENV] = str(number)
                self.serve_worker(self.sock)
            except BaseException:
                log.exception("worker %d failed", number)
                code = 1
            finally:
                os._exit(code)
        self.children[pid] = number
        log.info("worker %d started (pid %d)", number, pid)

    def _forward(self, sig: int, frame: FrameType | None) -> None:
        if sig in (signal.SIGTERM, signal.SIGINT):
            self.stopping = True
        for pid in list(self.children):
            with suppress(ProcessLookupError):
                os.kill(pid, sig)


def _mark_metrics_dead(pid: int) -> None:
    """Drop a dead worker's live gauges from the shared metrics files."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def live_workers() -> int | None:
    """How many worker processes the supervisor of this process has now (None: not under a supervisor)."""
    if WORKER_ENV not in os.environ:
        return None
    parent = os.getppid()
    try:
        with open(f"/proc/{parent}/task/{parent}/children", encoding="ascii") as children:
            return len(children.read().split())
    except OSError:
        return None


def reload_siblings() -> None:
    """Under a supervisor: have every worker re-read the registry (the supervisor forwards SIGHUP to all), so a
    reload asked of one worker reaches the others. A worker that already switched finds nothing to do."""
    if WORKER_ENV in os.environ:
        os.kill(os.getppid(), signal.SIGHUP)
