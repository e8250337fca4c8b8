"""Optional API keys: when `api_keys` are configured, every route but the open ones needs `Authorization: Bearer KEY`.

Open without a key: /health, /ready, /metrics (probes and scrapers), the WebUI page / and /static/*, and the API
docs (/docs, /redoc, /openapi.json: they describe the API, they serve nothing). /admin/* checks its own
admin_token instead, /label-studio/* Label Studio's Basic auth or these keys (server/label_studio_routes.py).
A missing or wrong key is a 401 with `WWW-Authenticate: Bearer`, in the route family's shape
(on /v1/* OpenAI's `invalid_api_key`, which the openai client raises as AuthenticationError).
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from raner_pool.server.errors import APIError, error_response

OPEN_PATHS = frozenset({"/health", "/ready", "/metrics", "/", "/docs", "/docs/oauth2-redirect", "/redoc",
                        "/openapi.json"})
OPEN_PREFIXES = ("/static/", "/admin/", "/label-studio/")


def is_open(path: str) -> bool:
    """Whether `path` answers without an API key."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def key_matches(given: str, keys: frozenset[str]) -> bool:
    """Whether `given` is one of `keys`, compared in constant time against every key (no early exit)."""
    given_bytes = given.encode("latin-1")  # the header bytes as sent
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given_bytes, key.encode("utf-8"))
    return matched


class APIKeyAuth:
    """Answers 401 unless the request carries one of `keys` as a Bearer token (open paths excepted)."""

    def __init__(self, app: ASGIApp, keys: frozenset[str]) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and key_matches(token.strip(), self.keys):
            await self.app(scope, receive, send)
            return
        message = ("the API key is not valid" if token.strip() else
                   "an API key is required: send Authorization: Bearer <key>")
        response = error_response(request, APIError(401, "invalid_api_key", message))
        response.headers["WWW-Authenticate"] = "Bearer"
        response.headers["Connection"] = "close"  # an unread body (of any size) is not drained
        await response(scope, receive, send)
