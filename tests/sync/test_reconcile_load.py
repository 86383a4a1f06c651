"""The reconcile's reload of the in-memory stock (SyncEngine.reload_live): skipped right
after the engine loaded it (a daemon start), done once the load is a minute old."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from sellable.store import schema
from tests.sync.test_sync_engine import (
    LISTED,
    SQLITE_ONLY,
    OpenSync,
    Sync,
    open_sync,  # noqa: F401  (the fixture)
    sellable_of,
)

START = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def _count_mugs_behind_the_outbox(sync: Sync) -> None:
    """20 mugs written straight into the store, as no process of ours writes (no outbox
    row): only a reload of the stock sees them."""
    with sync.store.engine.begin() as connection:
        mug = connection.execute(
            select(schema.skus.c.id).where(schema.skus.c.sku == "MUG-CERAMIC")
        ).scalar_one()
        connection.execute(
            update(schema.stock).where(schema.stock.c.sku_id == mug).values(on_hand=20, locked=0)
        )


@SQLITE_ONLY
def test_reconcile_right_after_the_engine_loaded_the_stock_does_not_load_it_again(
    open_sync: OpenSync,  # noqa: F811
) -> None:
    clock = Clock()
    sync = open_sync(now=clock)
    core = sync.engine.live.core
    assert sync.run("listings").ok
    clock.now += timedelta(seconds=59)

    result = sync.run("reconcile")

    assert result.ok, result.describe()
    assert sync.engine.live.core is core
    assert sync.quantities() == sellable_of(*LISTED)


@SQLITE_ONLY
def test_reconcile_a_minute_after_the_load_reads_the_store_again(
    open_sync: OpenSync,  # noqa: F811
) -> None:
    clock = Clock()
    sync = open_sync(now=clock)
    assert all(r.ok for r in sync.run_once().values())
    _count_mugs_behind_the_outbox(sync)
    core = sync.engine.live.core

    clock.now += timedelta(minutes=1)
    first = sync.run("reconcile")
    clock.now += timedelta(seconds=30)
    second = sync.run("reconcile")

    assert first.ok and second.ok, (first.describe(), second.describe())
    assert sync.engine.live.core is not core
    assert sync.quantities() == sellable_of(
        *LISTED, MUG_CERAMIC=20, GIFT_SET_COFFEE=30, GIFT_KIT_COFFEE=20
    )
