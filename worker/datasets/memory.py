"""Keeping a long pass over a big file at constant resident memory."""

import ctypes
from functools import cache
from typing import Any


@cache
def _libc() -> Any:
    # The C library this process already has loaded; no find_library (it runs ldconfig).
    return ctypes.CDLL(None)


def release_free_memory() -> None:
    """Give the C heap's free pages back to the system. glibc keeps them otherwise, so each
    block's temporaries (a few 10 MB of numpy arrays and parsed rows) would hold the process's
    resident memory at their high-water mark for as long as it runs."""
    try:
        _libc().malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass
