"""Guards against hostile clients, in front of every route: body size (413), content type (415), strict JSON (422).

A pure ASGI middleware, so it acts before anything buffers the body: a Content-Length over the limit is refused
at once, a chunked body as soon as the bytes received pass it (the connection is then closed). On routes that
take a JSON body the (bounded) body is then checked once more strictly than FastAPI does: UTF-8 only, no lone
surrogates, no NaN/Infinity, at most MAX_JSON_DEPTH levels. Errors are in the route family's shape (errors.py).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from anyio import to_thread
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from raner_pool.server.auth import APIKeyAuth
from raner_pool.server.config import ServerConfig
from raner_pool.server.errors import APIError, error_response

MAX_JSON_DEPTH = 32
"""Nesting levels a request body may have; the real bodies have 4 (chat messages' content parts)."""
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
THREAD_ABOVE_BYTES = 64 * 1024
"""Bodies larger than this are checked on a worker thread, not on the event loop."""
SURROGATE = re.compile("[\ud800-\udfff]")


def install_guards(app: FastAPI, config: ServerConfig) -> None:
    """Add the body guard, the API keys (if any) and CORS (if any origins), outermost last; see the module doc."""
    models = app.state.service.models
    app.add_middleware(BodyGuard, limit=lambda: config.body_limit(list(models.specs.values())))
    if config.api_keys:
        app.add_middleware(APIKeyAuth, keys=config.api_keys)
    if config.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"],
                           expose_headers=["X-Request-ID", "X-Prompt-Tokens", "Retry-After"])


class BodyGuard:
    """Refuses bodies over `limit()` bytes before reading them, and JSON bodies that are not strict UTF-8 JSON."""

    def __init__(self, app: ASGIApp, limit: Callable[[], int]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        limit = self.limit()
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await refuse(scope, send, too_large(limit))
            return
        takes_json = scope["method"] in BODY_METHODS and _takes_json(scope, request)
        if takes_json and (problem := content_type_problem(request.headers.get("content-type"))):
            await refuse(scope, send, APIError(415, "unsupported_media_type", problem), close=True)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":  # nobody reads the answer; the app still wants one
                await refuse(scope, send, APIError(400, "client_disconnected", "the client went away"))
                return
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await refuse(scope, send, too_large(limit))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        del chunks
        if takes_json:
            error = await to_thread.run_sync(json_problem, body) if size > THREAD_ABOVE_BYTES else json_problem(body)
            if error is not None:
                await refuse(scope, send, error)
                return
        pending = [body]
        del body

        async def replay() -> Message:
            """The body once (not kept here afterwards), then whatever the client sends next (a disconnect)."""
            if not pending:
                return await receive()
            return {"type": "http.request", "body": pending.pop(), "more_body": False}

        await self.app(scope, replay, send)


def too_large(limit: int) -> APIError:
    """The 413 of a body over `limit` bytes."""
    return APIError(413, "body_too_large", f"the request body is larger than the limit of {limit} bytes",
                    param="body")


async def refuse(scope: Scope, send: Send, error: APIError, *, close: bool = False) -> None:
    """Answer `error` without running the route; `close`: then close the connection, the rest of the body unread."""
    response = error_response(Request(scope), error)
    if close or error.status == 413:
        response.headers["Connection"] = "close"

    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, no_body, send)


def json_routes(app: FastAPI) -> list[tuple[str, re.Pattern[str], bool]]:
    """(method, path regex, body required) of the routes that read a JSON body, from the OpenAPI schema
    (computed once)."""
    found: list[tuple[str, re.Pattern[str], bool]] | None = getattr(app.state, "json_routes", None)
    if found is None:
        found = [(method.upper(), compile_path(path)[0], bool(operation["requestBody"].get("required")))
                 for path, operations in app.openapi()["paths"].items()
                 for method, operation in operations.items()
                 if "application/json" in operation.get("requestBody", {}).get("content", {})]
        app.state.json_routes = found
    return found


def _takes_json(scope: Scope, request: Request) -> bool:
    """Whether the route this request goes to reads a JSON body, and this request sends one (a route whose body
    is optional may be called with none)."""
    empty = request.headers.get("content-length", "0") == "0" and "transfer-encoding" not in request.headers
    return any(scope["method"] == method and pattern.match(scope["path"]) and (required or not empty)
               for method, pattern, required in json_routes(scope["app"]))


def content_type_problem(value: str | None) -> str | None:
    """Why `value` is not `application/json` (optionally `; charset=utf-8`), or None when it is."""
    media, _, params = (value or "").partition(";")
    charset = params.strip().lower().removeprefix("charset=").strip('"') if params.strip() else "utf-8"
    if media.strip().lower() == "application/json" and charset in ("utf-8", "utf8"):
        return None
    got = f"got {value!r}" if value else "got no Content-Type"
    return f"the body must be sent as Content-Type: application/json (UTF-8); {got}"


class _NotFinite(ValueError):
    """NaN, Infinity, -Infinity or a number too large for a float (1e999): not JSON numbers (RFC 8259)."""

    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


def _refuse_constant(literal: str) -> Any:
    """json.loads' parse_constant: refuses NaN and the infinities."""
    raise _NotFinite(literal)


def _finite_float(literal: str) -> float:
    """json.loads' parse_float: refuses numbers that overflow to infinity."""
    value = float(literal)
    if not math.isfinite(value):
        raise _NotFinite(literal)
    return value


def json_problem(body: bytes) -> APIError | None:
    """What is wrong with `body` as strict JSON text: empty, not UTF-8, bad syntax, NaN, too deep, lone surrogates."""
    def invalid(code: str, message: str) -> APIError:
        return APIError(422, code, f"body: {message}", param="body")

    if not body.strip():
        return invalid("invalid_request", "the body is empty; send a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return invalid("invalid_utf8", f"not valid UTF-8 (byte {error.start}: {error.reason})")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NotFinite as error:
        return invalid("invalid_json", f"{error.literal} is not a JSON number; numbers must be finite")
    except RecursionError:
        return invalid("json_too_deep", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    except json.JSONDecodeError as error:
        return invalid("invalid_request", f"not valid JSON (at character {error.pos}): {error.msg}")
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if found := SURROGATE.search(item):
                return invalid("invalid_unicode", f"lone surrogate \\u{ord(found.group()):04x} in a string; "
                                                  "text must be valid Unicode")
            continue
        if isinstance(item, dict | list) and depth > MAX_JSON_DEPTH:
            return invalid("json_too_deep", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for pair in item.items() for child in pair)
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return None
