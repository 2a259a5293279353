"""Keeping a long pass over a big file at constant resident memory."""

import ctypes
import ctypes.util


def release_free_memory() -> None:
    """Give the C heap's free pages back to the system. glibc keeps them otherwise, so each
    block's temporaries (a few 10 MB of numpy arrays and parsed rows) would hold the process's
    resident memory at their high-water mark for as long as it runs."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass
