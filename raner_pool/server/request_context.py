"""What every request gets around it, as one pure ASGI middleware (no BaseHTTPMiddleware, whose streamed responses
cost the event loop a third of its time): a request id, metrics, an access-log line, the model-version and
draining headers, and a JSON 500 (never a bare one) when a route raises."""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from raner_pool.server.access_log import AccessLog
from raner_pool.server.errors import APIError, error_response

log = logging.getLogger("raner_pool.server")
REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")
_ID_PREFIX = os.urandom(6).hex()
"""Request ids are this process's random prefix and a counter: unique across workers, and no uuid4 per request."""


class RequestContext:
    """Outermost middleware of the app (see the module doc); `access_log` None: no access log."""

    def __init__(self, app: ASGIApp, access_log: AccessLog | None) -> None:
        self.app = app
        self.access_log = access_log
        self._ids = itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id = self._request_id(scope)
        state["model"] = "-"
        status = 500
        started = False
        application = scope["app"]

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = list(message.get("headers", ()))
                if not any(name == b"x-request-id" for name, _ in headers):  # error answers carry theirs
                    headers.append((b"x-request-id", request_id.encode()))
                version = state.get("model_version")
                if version:
                    headers.append((b"x-model-version", version.encode()))
                if application.state.draining:  # keep-alive clients reconnect; the balancer sends them elsewhere
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as error:  # the model raised: log it under the request id, answer 500, keep serving
            log.exception("request %s to %s failed", request_id, scope.get("path"))
            if not started:
                failure = APIError(500, "internal_error", f"the model failed on this request: {type(error).__name__}")
                await error_response(Request(scope), failure)(scope, receive, send_with_headers)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - began
            metrics = application.state.service.metrics
            metrics.requests.labels(route, state["model"], str(status)).inc()
            metrics.request_duration.labels(route).observe(elapsed)
            if self.access_log is not None:
                self.access_log.record(id=request_id, method=scope["method"], route=route, path=scope["path"],
                                       status=status, model=state["model"], texts=state.get("texts", 0),
                                       ms=round(elapsed * 1000, 2))

    def _request_id(self, scope: Scope) -> str:
        """The client's X-Request-ID when it is a sane one, else a new one."""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if REQUEST_ID.match(value):
                    return value.decode()
                break
        return f"{_ID_PREFIX}{next(self._ids):010x}"
