"""What the C heap keeps: glibc gives every thread that allocates an arena of its own (up to 8 per core) and hands
freed pages back to the OS only when asked. A server whose request and batch threads all allocate, and whose
pools are replaced on reloads, otherwise holds on to tens of megabytes it no longer uses."""

from __future__ import annotations

import ctypes
import gc
import os
from contextlib import suppress

M_ARENA_MAX = -8
"""mallopt's parameter number for the arena limit (glibc's malloc.h)."""
SERVER_ARENAS = 2


def limit_malloc_arenas(arenas: int = SERVER_ARENAS) -> bool:
    """Cap glibc's arenas for threads started from now on, unless MALLOC_ARENA_MAX already says how many; what
    `MALLOC_ARENA_MAX=2` in the environment does, for a process started without it. False where it does not apply
    (not glibc, or the environment decides)."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    with suppress(OSError, AttributeError):
        return bool(ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas))
    return False


def return_freed_memory() -> None:
    """Collect cycles (a closed pool and its batch workers reference each other), then have glibc hand freed heap
    pages back to the OS, without which RSS never shrinks."""
    gc.collect()
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
