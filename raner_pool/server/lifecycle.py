"""The process around the app: SIGTERM drains (readiness off, a grace period, then in-flight requests finish),
SIGHUP reloads the registry file, both on top of uvicorn's own shutdown.

Exit status: after a drain uvicorn re-raises the signal that stopped it, so the process ends by SIGTERM
(status -15 from Python's subprocess, 143 in a shell), as every uvicorn server does.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

import uvicorn

from raner_pool.errors import RaNERError
from raner_pool.registry import ModelRegistry
from raner_pool.server.workers import WORKER_ENV

log = logging.getLogger("raner_pool.server")
SAME_STOP_WITHIN_S = 0.5
"""Under a supervisor, a stop signal this soon after the first is the same stop delivered twice: a signal to the
whole process group (systemd's KillMode=control-group, Ctrl+C in a terminal) reaches a worker directly and again
through the supervisor, which forwards what it gets. Only a later one ends the drain at once."""


class DrainingServer(uvicorn.Server):
    """uvicorn's server, except that SIGTERM first calls `on_drain` (so /ready answers 503) and keeps serving for
    `grace_s`, then shuts down as uvicorn does: no new connections, in-flight requests finish within
    `timeout_graceful_shutdown`. A second SIGTERM or SIGINT ends it at once (under a supervisor, one that comes
    more than SAME_STOP_WITHIN_S after the first)."""

    def __init__(self, config: uvicorn.Config, grace_s: float, on_drain: Callable[[], None]) -> None:
        super().__init__(config)
        self.grace_s = grace_s
        self.on_drain = on_drain
        self.draining_since: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        since = self.draining_since
        if since is not None and WORKER_ENV in os.environ and time.monotonic() - since < SAME_STOP_WITHIN_S:
            log.info("signal %s again within %.1f s: the same stop, from the process group and the supervisor",
                     signal.Signals(sig).name, SAME_STOP_WITHIN_S)
            return
        if since is not None or self.should_exit:
            log.warning("signal %s during the drain: stopping now", signal.Signals(sig).name)
            self._captured_signals.append(sig)
            self.should_exit = self.force_exit = True
            return
        self.draining_since = time.monotonic()
        self.on_drain()
        log.info("signal %s: not ready any more; serving %.1f s more, then draining", signal.Signals(sig).name,
                 self.grace_s)
        self._captured_signals.append(sig)
        if self.grace_s <= 0:
            self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        since = self.draining_since
        if since is not None and not self.should_exit and time.monotonic() - since >= self.grace_s:
            log.info("grace period over: no new connections; waiting for requests in flight")
            self.should_exit = True
        return await super().on_tick(counter)


def reload_on_sighup(models: ModelRegistry) -> None:
    """Have SIGHUP re-read the registry file (as POST /admin/reload does), on a thread of its own."""
    def reload() -> None:
        try:
            outcome = models.reload()
        except RaNERError as error:
            log.error("SIGHUP reload refused: %s", error)
            return
        log.info("SIGHUP reload: added %s, removed %s, reloaded %s, failed %s", outcome.added, outcome.removed,
                 [r.model for r in outcome.reloaded], outcome.failed)

    signal.signal(signal.SIGHUP, lambda sig, frame: threading.Thread(target=reload, name="raner-sighup").start())
