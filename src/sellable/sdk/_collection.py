"""Bulk in-memory work with CPython's automatic garbage collection paused.

A push of 100,000 listings builds about a million container objects in a few seconds
(the listing rows, their offers, the items handed to the connector, their results).
CPython runs a full collection whenever the objects that survived the young generations
grow by a quarter of those already old (``gc`` module docs, "gc.set_threshold"), so
building them traversed the growing heap 4-6 times, 0.2-0.35 s each: more time than the
building itself, all of it before the push's first request. Reference counting still
frees whatever is not in a cycle while collection is paused; cycles made meanwhile are
collected once it resumes.

The pause covers work on data already in memory or read from our own database, and no
call to the channel that may take long (a connector's push may take minutes of requests;
a push to a channel that confirms later only submits, see ``sync.jobs.push``): the
collector is process-wide, so another thread's garbage waits as long as the pause lasts.

Usage::

    with collection_paused():
        rows = build_many_rows()

A long run of requests inside a paused block (a connector that must read thousands of
items before it can submit, as Amazon reading product types 20 SKUs a request at 5/s)
resumes collection for its duration with :func:`collection_resumed`: cycles made by
thousands of requests would otherwise wait, and the daemon's memory grow, for as long.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Pause:
    """How many threads are inside :func:`collection_paused`, and whether collection was
    on when the first entered (it is left off if something else turned it off)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.resume = False


_PAUSE = _Pause()


@contextmanager
def collection_paused() -> Iterator[None]:
    """Pause automatic garbage collection for the block; nested and concurrent blocks
    resume it when the last one leaves."""
    with _PAUSE.lock:
        if _PAUSE.depth == 0:
            _PAUSE.resume = gc.isenabled()
            gc.disable()
        _PAUSE.depth += 1
    try:
        yield
    finally:
        with _PAUSE.lock:
            _PAUSE.depth -= 1
            if _PAUSE.depth == 0 and _PAUSE.resume:
                gc.enable()


@contextmanager
def collection_resumed() -> Iterator[None]:
    """Let collection run for the block when some :func:`collection_paused` holds it off
    (and it was on before): for a long run of requests inside bulk work. Nothing changes
    outside a pause. A pause another thread enters meanwhile runs with collection on."""
    with _PAUSE.lock:
        resumed = _PAUSE.depth > 0 and _PAUSE.resume and not gc.isenabled()
        if resumed:
            gc.enable()
    try:
        yield
    finally:
        if resumed:
            with _PAUSE.lock:
                if _PAUSE.depth > 0:
                    gc.disable()


__all__ = ["collection_paused", "collection_resumed"]
