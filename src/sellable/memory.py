"""Keep the memory the daemon frees for its next use instead of handing it back at once.

The shared split (``[allocation] mode = "shared"``) and the listing refreshes build arrays
and lists of a few MiB each, free them, and build them again at the next change. glibc's
malloc, as it comes, serves every block from 128 KiB up (a threshold that grows only as
far as 32 MiB, and only after such a block is freed) with ``mmap`` of its own, and returns
the heap's free top to the kernel whenever it passes 128 KiB. Each split then touches
fresh pages again: at 1,500,000 listings about 110,000 page faults, 0.5 to 1.4 s of kernel
time on a virtual machine, where the first touch of a guest page is slow.

:func:`keep_freed_memory` sets, once at start-up, the three settings glibc documents for
this (``mallopt(3)``): blocks under 32 MiB come from the heap, the heap keeps up to 1 GiB
of free memory before it gives it back, and all threads share one arena (the interpreter
lock serialises them anyway, and a split that runs in a scheduler thread then reuses what
the main thread freed). The cost: after a peak, the resident size stays near that peak
instead of falling back, which is what a daemon that does the same work again is for.

An operator's own choice wins: with ``GLIBC_TUNABLES`` or any ``MALLOC_*`` variable (such
as ``MALLOC_ARENA_MAX``) in the environment nothing is changed, and on a C library that is
not glibc (musl, macOS, Windows) nothing either.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from collections.abc import Mapping

log = logging.getLogger(__name__)

# from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

#: Blocks under this come from the heap (glibc's own ceiling for its moving threshold).
MMAP_THRESHOLD = 32 * 2**20
#: Free memory the heap keeps before it returns its top to the kernel.
TRIM_THRESHOLD = 2**30


def _operator_tuned(environ: Mapping[str, str]) -> str | None:
    """The environment variable by which the operator tuned malloc, if any."""
    for name in sorted(environ):
        if name == "GLIBC_TUNABLES" or name.startswith("MALLOC_"):
            return name
    return None


def keep_freed_memory(environ: Mapping[str, str] | None = None) -> bool:
    """Tune glibc's malloc to keep freed memory for reuse (see the module's docstring).

    Returns whether the settings were applied; call it once, at start-up, before the
    threads start.
    """
    tuned = _operator_tuned(os.environ if environ is None else environ)
    if tuned is not None:
        log.info("malloc left as %s sets it", tuned)
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        version = libc.gnu_get_libc_version
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        log.debug("malloc left as it is: the C library is not glibc")
        return False
    version.restype = ctypes.c_char_p
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = all(
        mallopt(option, value) == 1
        for option, value in (
            (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            (M_ARENA_MAX, 1),
        )
    )
    log.log(
        logging.INFO if applied else logging.WARNING,
        "malloc (glibc %s) %s freed memory for reuse",
        version().decode(),
        "keeps" if applied else "refused to keep",
    )
    return applied
