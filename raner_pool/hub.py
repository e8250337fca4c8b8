"""Resolve what a caller names as a model ("default", a local dir, a ModelScope id) to a local dir."""

from __future__ import annotations

import os
from pathlib import Path

from raner_pool.errors import ModelNotAvailable

DEFAULT_MODEL = "default"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models" / "default"
OFFLINE_ENV = "RANER_POOL_OFFLINE"
CACHE_ENV = "RANER_POOL_CACHE"


def cache_root() -> Path:
    """raner-pool's own cache dir (ONNX exports, timed choices): $RANER_POOL_CACHE, else ~/.cache/raner-pool."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "raner-pool")


def is_offline() -> bool:
    """True when the hub must not be contacted (RANER_POOL_OFFLINE=1 or MODELSCOPE_OFFLINE=1)."""
    return any(os.environ.get(name, "") not in ("", "0", "false") for name in (OFFLINE_ENV, "MODELSCOPE_OFFLINE"))


def resolve_model_dir(model: str | os.PathLike[str], refresh: bool = False) -> Path:
    """A local model dir for `model`: the embedded default, an existing dir, or a ModelScope id.

    An id is read from the local ModelScope cache first; only when it is not
    there, and the process is not offline, is it downloaded. With `refresh`
    (and online) the hub is asked for a newer revision first. Any failure
    becomes one `ModelNotAvailable` that names the id and the way out.
    """
    if str(model) == DEFAULT_MODEL:
        return DEFAULT_MODEL_DIR
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    model_id = str(model)
    if model_id.count("/") != 1 or path.is_absolute() or model_id.startswith("."):
        raise ModelNotAvailable(
            f"model {model_id!r} is neither 'default', an existing directory, nor a ModelScope id "
            "of the form 'owner/name'"
        )
    from modelscope.hub.snapshot_download import snapshot_download

    if refresh and not is_offline():
        try:
            return Path(snapshot_download(model_id))
        except Exception:  # the hub is unreachable: the cached revision is the newest we can know of
            pass
    try:
        return Path(snapshot_download(model_id, local_files_only=True))
    except Exception as cache_error:  # any hub-client failure means "not cached"
        if is_offline():
            raise ModelNotAvailable(_unavailable_message(model_id, "it is not in the local ModelScope cache "
                                                         f"and {OFFLINE_ENV} is set")) from cache_error
    try:
        return Path(snapshot_download(model_id))
    except Exception as download_error:
        reason = f"the ModelScope hub could not be reached ({type(download_error).__name__})"
        raise ModelNotAvailable(_unavailable_message(model_id, reason)) from None


def _unavailable_message(model_id: str, reason: str) -> str:
    return (
        f"cannot load ModelScope model {model_id!r}: {reason}. Download it where the hub is reachable "
        f"(modelscope download --model {model_id} --local_dir ./{model_id.split('/')[1]}) "
        "and pass that local directory instead of the id."
    )
