"""Settings of the server process (not of one model): shutdown timing, request limits, auth, CORS, uvicorn.

They come from the registry file's `[server]` table; secrets come from the environment or from files:

    [server]
    grace_s = 5                   # after SIGTERM: /ready says 503, requests are still accepted this long
    drain_timeout_s = 30          # then: no new connections; running requests get this long to finish
    max_body_bytes = 8_000_000    # default: enough for every model's max_batch_texts x max_text_chars
    cors_origins = ["https://app.example.com"]
    api_keys_file = "/run/secrets/raner-api-keys"     # or RANER_POOL_API_KEYS="k1,k2"
    admin_token_file = "/run/secrets/raner-admin"     # or RANER_POOL_ADMIN_TOKEN="..."
    header_timeout_s = 10         # a request's headers must arrive within this long, else 408 and closed
    body_timeout_s = 30           # at most this long between body chunks, else 408 and closed
    access_log = true             # one JSON line per request on stderr (--access-log off)
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, cast

from raner_pool.model_specs import ModelSpec, RegistryConfigError

ADMIN_TOKEN_ENV = "RANER_POOL_ADMIN_TOKEN"
API_KEYS_ENV = "RANER_POOL_API_KEYS"
LABEL_STUDIO_AUTH_ENV = "RANER_POOL_LABEL_STUDIO_AUTH"
BYTES_PER_CHAR = 3
"""UTF-8 bytes of a CJK character: what a body limit "enough for N characters" allows per character."""
BODY_OVERHEAD_BYTES = 64 * 1024
"""JSON punctuation, the model name, chat messages' roles: room beside the texts themselves."""


@dataclass(frozen=True)
class ServerConfig:
    """How the process serves: drain timing, limits on what a client may send, who may call, uvicorn's limits."""

    grace_s: float = 5.0
    """After SIGTERM, /ready answers 503 and requests are still accepted this long (load balancers catch up)."""
    drain_timeout_s: float = 30.0
    """After the grace period: no new connections; requests in flight get this long to finish."""
    max_body_bytes: int | None = None
    """Request bodies over this are refused with 413 before they are read; None: derived from the models."""
    cors_origins: tuple[str, ...] = ()
    """Origins a browser may call from; empty: no CORS headers at all."""
    api_keys: frozenset[str] = frozenset()
    """Accepted `Authorization: Bearer` keys; empty: no key needed."""
    admin_token: str | None = None
    """Bearer token of the /admin routes; None: those routes do not exist (404)."""
    label_studio_auth: str | None = None
    """"user:password" Label Studio sends as HTTP Basic auth to /label-studio/* (the ML backend connection's
    basic_auth_user/basic_auth_pass), from RANER_POOL_LABEL_STUDIO_AUTH; None: those routes take the API keys."""
    timeout_keep_alive_s: float = 5.0
    """An idle keep-alive connection is closed after this long."""
    limit_concurrency: int = 2048
    """Open connections plus running tasks beyond which uvicorn answers 503 at once, instead of running out of
    file descriptors."""
    backlog: int = 2048
    """Connections the kernel queues before uvicorn accepts them."""
    header_timeout_s: float = 10.0
    """A client must send a request's headers within this long of its first byte (or of connecting); else its
    connection is closed, with a 408 if it had sent anything (raner_pool.server.read_deadlines)."""
    body_timeout_s: float = 30.0
    """A client sending a body may pause this long between chunks at most; else 408 and the connection closed."""
    access_log: bool = True
    """One JSON line per request on stderr (raner_pool.server.access_log); `--access-log off` turns it off."""

    def body_limit(self, specs: list[ModelSpec]) -> int:
        """The body limit in bytes: the configured one, or enough for the largest request any model accepts."""
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        largest = max(spec.max_batch_texts * spec.max_text_chars for spec in specs)
        return largest * BYTES_PER_CHAR + BODY_OVERHEAD_BYTES


SETTING_TYPES: dict[str, type | tuple[type, ...]] = {
    "grace_s": (int, float), "drain_timeout_s": (int, float), "max_body_bytes": int, "cors_origins": list,
    "api_keys_file": str, "admin_token_file": str, "timeout_keep_alive_s": (int, float), "limit_concurrency": int,
    "backlog": int, "access_log": bool, "header_timeout_s": (int, float), "body_timeout_s": (int, float),
}


def load_server_config(path: Path | None, env: Mapping[str, str] = os.environ) -> ServerConfig:
    """The `[server]` table of the registry file (if any), with secrets from `env` or the files it names."""
    table: dict[str, Any] = {}
    if path is not None:
        try:
            table = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("server", {})
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise RegistryConfigError(f"cannot read registry file {path}: {error}") from error
    values: dict[str, Any] = {}
    plain = {f.name for f in fields(ServerConfig)} - {"api_keys", "admin_token", "label_studio_auth"}
    for key, value in table.items():
        if key not in SETTING_TYPES:
            raise RegistryConfigError(f"{path}: server.{key} is not a setting; use one of {', '.join(SETTING_TYPES)}")
        if not isinstance(value, SETTING_TYPES[key]) or (isinstance(value, bool) and SETTING_TYPES[key] is not bool):
            raise RegistryConfigError(f"{path}: server.{key} has the wrong type ({type(value).__name__})")
        if key in plain:
            values[key] = tuple(cast(list[str], value)) if key == "cors_origins" else value
    keys_file = env.get(f"{API_KEYS_ENV}_FILE") or table.get("api_keys_file")
    keys = [k.strip() for k in env.get(API_KEYS_ENV, "").split(",")]
    if keys_file:
        keys += [line.strip() for line in _read_secret(keys_file, "API keys").splitlines()]
    values["api_keys"] = frozenset(k for k in keys if k and not k.startswith("#"))
    token_file = env.get(f"{ADMIN_TOKEN_ENV}_FILE") or table.get("admin_token_file")
    token = env.get(ADMIN_TOKEN_ENV, "").strip() or (_read_secret(token_file, "admin token").strip() if token_file
                                                     else "")
    values["admin_token"] = token or None
    values["label_studio_auth"] = env.get(LABEL_STUDIO_AUTH_ENV, "").strip() or None
    return ServerConfig(**values)


def _read_secret(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise RegistryConfigError(f"cannot read the {what} file {path}: {error}") from error
