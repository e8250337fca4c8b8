"""The load mix of locustfile.py, with every request appended as one JSON line to the file $RANER_SOAK_REQUESTS:
{"t": completion time (epoch s), "ms": response time, "failed": 0/1, "name": route, "error": message or ""}.

    RANER_SOAK_REQUESTS=requests.jsonl locust -f loadtest/soak_locustfile.py --host http://127.0.0.1:8000
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from locust import events

sys.path.insert(0, str(Path(__file__).resolve().parent))
from locustfile import NERUser

__all__ = ["NERUser"]

_LOG = open(os.environ["RANER_SOAK_REQUESTS"], "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - open for the run


@events.request.add_listener
def record(name: str, response_time: float, exception: BaseException | None = None, **_: Any) -> None:
    """Append one request's completion time, latency, success and (on failure) error to the requests file."""
    line = {"t": round(time.time(), 4), "ms": round(response_time, 2), "failed": int(exception is not None),
            "name": name, "error": "" if exception is None else f"{type(exception).__name__}: {exception}"[:300]}
    _LOG.write(json.dumps(line, ensure_ascii=False) + "\n")
