"""Collection paused for bulk in-memory work (sellable.sync.bulk), and the push and
reconcile jobs pausing it only around their own work, never around the channel's."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from sellable.imports import import_stock
from sellable.sync.bulk import collection_paused, collection_resumed
from tests.sync.test_sync_engine import (
    LISTED,
    SQLITE_ONLY,
    OpenSync,
    Sync,
    open_sync,  # noqa: F401  (the fixture)
    sellable_of,
)


@pytest.fixture(autouse=True)
def collection_on() -> Iterator[None]:
    """Each test starts with collection on and leaves it so, whatever it asserted."""
    gc.enable()
    yield
    gc.enable()


def test_collection_paused_turns_collection_off_inside_and_back_on_after() -> None:
    with collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_collection_paused_nested_resumes_only_when_the_outer_block_ends() -> None:
    with collection_paused():
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_collection_paused_resumes_after_an_error_in_the_block() -> None:
    with pytest.raises(ValueError, match="boom"), collection_paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_collection_paused_leaves_collection_off_when_it_was_off_before() -> None:
    gc.disable()
    with collection_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_collection_paused_in_two_threads_resumes_when_the_last_leaves() -> None:
    inside, release = threading.Event(), threading.Event()
    seen: list[bool] = []

    def other() -> None:
        with collection_paused():
            inside.set()
            release.wait(10)
        seen.append(gc.isenabled())

    thread = threading.Thread(target=other)
    with collection_paused():
        thread.start()
        assert inside.wait(10)
    # This thread left first: the other one is still inside.
    paused_while_other_inside = not gc.isenabled()
    release.set()
    thread.join(10)

    assert paused_while_other_inside
    assert seen == [True]
    assert gc.isenabled()


class _RecordingPushes(list[dict[str, int]]):
    """The shop's accepted batches, noting whether collection was on at each."""

    def __init__(self, batches: list[dict[str, int]], collecting: list[bool]) -> None:
        super().__init__(batches)
        self.collecting = collecting

    def append(self, batch: Any) -> None:
        self.collecting.append(gc.isenabled())
        super().append(batch)


@SQLITE_ONLY
@pytest.mark.parametrize("job", ["push", "reconcile"])
def test_push_jobs_send_with_collection_on_and_leave_it_on(
    open_sync: OpenSync,  # noqa: F811
    job: str,
) -> None:
    sync: Sync = open_sync()
    assert all(r.ok for r in sync.run_once().values())
    collecting: list[bool] = []
    with sync.state.lock:
        sync.state.pushes = _RecordingPushes(sync.state.pushes, collecting)
    import_stock(  # another process counts the mugs: three listings move
        sync.store.engine,
        sync.store.settings,
        sync.store.csv("count.csv", "sku,warehouse,on_hand,locked\nMUG-CERAMIC,main,20,0\n"),
    )

    result = sync.run(job)

    assert result.ok, result.describe()
    assert collecting and all(collecting)  # the shop was sent to with collection on
    assert gc.isenabled()
    assert result.counts["pushed"] == 3
    assert sync.quantities() == sellable_of(
        *LISTED, MUG_CERAMIC=20, GIFT_SET_COFFEE=30, GIFT_KIT_COFFEE=20
    )


def test_collection_resumed_runs_collection_inside_a_pause_and_pauses_it_again() -> None:
    with collection_paused():
        with collection_resumed():
            inside = gc.isenabled()
        after = gc.isenabled()
    assert (inside, after, gc.isenabled()) == (True, False, True)


def test_collection_resumed_changes_nothing_outside_a_pause_or_when_it_was_off() -> None:
    with collection_resumed():
        assert gc.isenabled()
    assert gc.isenabled()
    gc.disable()  # turned off by someone else: a pause leaves it off, and so does this
    with collection_paused(), collection_resumed():
        assert not gc.isenabled()
    assert not gc.isenabled()
