"""`raner-pool train --deploy URL`: hand the new model dir to a running server through its admin API, which
loads it beside the serving version and switches when it is warm (no request fails). The server reads the dir
itself, so it must run on this host or see the dir on a shared volume at the same path."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from raner_pool.errors import RaNERError

ADMIN_TOKEN_ENV = "RANER_POOL_ADMIN_TOKEN"


def _call(url: str, method: str = "GET", body: dict[str, Any] | None = None, timeout: float = 600.0) -> Any:
    token = os.environ.get(ADMIN_TOKEN_ENV, "")
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")
        raise RaNERError(f"deploy: {method} {url} answered {error.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as error:
        raise RaNERError(f"deploy: cannot reach {url}: {error}") from None


def check_deploy_target(base_url: str, model: str) -> None:
    """Before training: the token is set, the server answers and serves `model`."""
    if not os.environ.get(ADMIN_TOKEN_ENV):
        raise RaNERError(f"--deploy needs the server's admin token in ${ADMIN_TOKEN_ENV}")
    health = _call(f"{base_url.rstrip('/')}/health", timeout=10)
    served = {m.get("name") for m in health.get("models", [])} | {
        alias for m in health.get("models", []) for alias in m.get("aliases", [])}
    if served and model not in served:
        raise RaNERError(f"deploy: {base_url} serves no model {model!r} (it serves {', '.join(sorted(served))})")


def deploy(base_url: str, model: str, model_dir: Path) -> dict[str, Any]:
    """Switch the server's `model` to `model_dir`; the server's answer (the new version)."""
    result: dict[str, Any] = _call(f"{base_url.rstrip('/')}/admin/models/{model}/reload", "POST",
                                   {"model": str(Path(model_dir).resolve())})
    return result
