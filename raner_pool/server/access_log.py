"""Structured access logs that cost the event loop one queue put: a JSON line per request (time, id, method,
route, status, model, texts, ms), formatted and written by a thread of its own."""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import Any, TextIO

import orjson

_STOP = None
WRITE_EVERY_S = 0.05
"""The writer wakes at most this often and writes what has queued up meanwhile in one go: a wake-up per request
would take the interpreter lock from the event loop once per request."""


class AccessLog:
    """Where the server logs its requests. `record` is what the event loop calls, and it only queues."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._queue: queue.SimpleQueue[tuple[float, dict[str, Any]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._write, name="raner-access-log", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then stop the writer thread."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=5)
            self._thread = None

    def record(self, **fields: Any) -> None:
        self._queue.put((time.time(), fields))

    def _write(self) -> None:
        while True:
            item = self._queue.get()
            lines = []
            while item is not _STOP:
                lines.append(_line(*item))
                try:
                    item = self._queue.get_nowait()  # write what has queued up in one go
                except queue.Empty:
                    break
            if lines:
                try:
                    self._stream.write("".join(lines))
                    self._stream.flush()
                except (OSError, ValueError):  # a closed or broken stream must not stop the server
                    pass
            if item is _STOP:
                return
            time.sleep(WRITE_EVERY_S)


def _line(when: float, fields: dict[str, Any]) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(when))
    return orjson.dumps({"ts": f"{stamp}.{int(when * 1000) % 1000:03d}", **fields}).decode() + "\n"
