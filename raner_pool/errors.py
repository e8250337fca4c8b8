"""Every exception raner_pool raises, in one hierarchy: catch `RaNERError` for all of them."""

from __future__ import annotations


class RaNERError(Exception):
    """Base class of every error raised by raner_pool."""


class ModelNotAvailable(RaNERError):
    """The requested model cannot be loaded: unknown id, missing files, or no hub access offline."""


class PoolTimeout(RaNERError):
    """No pool instance became free within the caller's timeout."""


class PoolClosed(RaNERError):
    """The pool was closed; it serves no more requests."""


class PoolBusy(RaNERError):
    """More callers are already waiting for an instance than the pool's `max_waiting` allows."""
