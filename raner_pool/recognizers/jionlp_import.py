"""jionlp, imported quietly: jionlp and jiojio print banners to stdout when imported, which would corrupt the
output of `raner-pool predict` and anything else that writes JSON to stdout; and jionlp logs a traceback to the
root logger for every expression it tries and fails to parse, which would flood a server's log."""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from types import ModuleType

_lock = threading.Lock()


def _not_from_jionlp(record: logging.LogRecord) -> bool:
    return "jionlp" not in record.pathname


def jionlp() -> ModuleType:
    """The jionlp module, imported once with its banners swallowed and its parse-failure logging dropped."""
    with _lock:
        with contextlib.redirect_stdout(io.StringIO()):
            import jionlp as module
        root = logging.getLogger()
        if _not_from_jionlp not in root.filters:
            root.addFilter(_not_from_jionlp)
        return module
