"""Slow and idle clients cut off: a connection must send a request's headers within `header_timeout_s` of its
first byte (or of connecting), and its body without pausing more than `body_timeout_s` between chunks, or it is
closed: with a 408 when an answer can still be sent, silently when it never sent a byte. uvicorn has neither
deadline, so 1,000 clients dribbling a byte a second would otherwise hold 1,000 sockets until `limit_concurrency`.

A subclass of uvicorn's httptools protocol (uvloop and httptools come with `uvicorn[standard]`), so no reverse
proxy is needed for this; each cut is counted in /metrics (`raner_slow_clients_closed_total{phase}`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

Phase = str
""""headers" or "body": what the client was too slow to send."""


def read_deadline_protocol(
    header_timeout_s: float, body_timeout_s: float, on_cut: Callable[[Phase], None]
) -> type[asyncio.Protocol]:
    """uvicorn's `http=` protocol class with these deadlines; `on_cut(phase)` is called for each connection cut."""

    class ReadDeadlines(_ReadDeadlines):
        header_timeout = header_timeout_s
        body_timeout = body_timeout_s
        cut = staticmethod(on_cut)

    return ReadDeadlines


class _ReadDeadlines(HttpToolsProtocol):
    header_timeout: float
    body_timeout: float
    cut: Callable[[Phase], None]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._phase: Phase = "headers"
        self._received = False
        """Whether the current request has sent a byte yet."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("headers", self.header_timeout)  # a client that connects and sends nothing is cut too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._received = True
        if self._deadline is None:  # the next request on a kept-alive connection
            self._arm("headers", self.header_timeout)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        if self.parser.should_upgrade() or not self._has_body():
            return
        self._arm("body", self.body_timeout)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        if self._phase == "body" and self._deadline is not None:  # the deadline is the idle time between chunks
            self._disarm()
            self._arm("body", self.body_timeout)

    def on_message_complete(self) -> None:
        self._disarm()
        self._received = False
        super().on_message_complete()

    def _has_body(self) -> bool:
        for name, value in self.headers:
            if name == b"content-length":
                return value.strip() not in (b"", b"0")
            if name == b"transfer-encoding":
                return True
        return False

    def _arm(self, phase: Phase, timeout: float) -> None:
        self._phase = phase
        self._deadline = self.loop.call_later(timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        answering = self.cycle is not None and not self.cycle.response_complete and self._phase == "body"
        if self._received and not (answering and self.cycle.response_started):
            limit = self.header_timeout if self._phase == "headers" else self.body_timeout
            self.transport.write(_timeout_response(self._phase, limit))
        self.cut(self._phase)
        self.transport.close()


def _timeout_response(phase: Phase, limit: float) -> bytes:
    what = "its headers" if phase == "headers" else "the rest of its body"
    body = orjson.dumps({"success": False, "error": {
        "code": "request_timeout", "message": f"the client did not send {what} within {limit:g} s",
        "param": "headers" if phase == "headers" else "body"}})
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
