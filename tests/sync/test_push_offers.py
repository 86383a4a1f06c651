"""The desired offers a push works out, kept between push runs of a channel, and the confirmed
pushes recorded in bulk.

A push run while feeds are in flight, and the one that confirms them, reuse the previous
run's offers when nothing they depend on moved; every kind of move must still be pushed:
stock written by another process, an order pulled here, a catalog change, a listing mapped
to another SKU or to other warehouses, other rules, a reload of the live stock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from sellable.core.rules import ChannelRules
from sellable.imports import import_components, import_stock
from sellable.store import schema
from sellable.sync import state as sync_state
from sellable.sync.state import SyncState
from tests.sync.test_sync_engine import (
    LISTED,
    SQLITE_ONLY,
    OpenSync,
    Sync,
    open_sync,  # noqa: F401  (the fixture)
    sellable_of,
)


@pytest.fixture
def synced(open_sync: OpenSync) -> Sync:  # noqa: F811
    """The example store and shop after a first pass: every listing confirmed at its
    sellable."""
    sync = open_sync()
    results = sync.run_once()
    assert all(r.ok for r in results.values()), results
    assert sync.quantities() == sellable_of(*LISTED)
    return sync


@SQLITE_ONLY
def test_push_reuses_the_previous_runs_offers_when_nothing_moved(synced: Sync) -> None:
    sync = synced
    channel = sync.engine.channels["shop"]

    _, first = sync.engine.listings_and_offers(channel)
    _, second = sync.engine.listings_and_offers(channel)

    assert second == first
    # The same objects: not worked out again.
    assert all(second[lid] is first[lid] for lid in first)


@SQLITE_ONLY
def test_push_after_another_process_counted_stock_pushes_the_new_quantities(synced: Sync) -> None:
    sync = synced
    sync.run("push")  # the offers are cached

    import_stock(
        sync.store.engine,
        sync.store.settings,
        sync.store.csv("count.csv", "sku,warehouse,on_hand,locked\nMUG-CERAMIC,main,20,0\n"),
    )
    pushed = sync.run("push")

    assert pushed.counts["pushed"] == 3
    assert sync.pushes()[-1] == {
        "L-MUG-CERAMIC": 20,
        "L-GIFT-SET-COFFEE": 30,
        "L-GIFT-KIT-COFFEE": 20,
    }
    assert sync.quantities() == sellable_of(
        *LISTED, MUG_CERAMIC=20, GIFT_SET_COFFEE=30, GIFT_KIT_COFFEE=20
    )


@SQLITE_ONLY
def test_push_after_an_order_pulled_here_pushes_the_new_quantities(synced: Sync) -> None:
    sync = synced
    sync.run("push")
    sync.state.place_order("1", [("BEANS-12OZ", 5)])

    sync.run("orders")
    pushed = sync.run("push")

    assert pushed.counts["pushed"] == 1
    assert sync.pushes()[-1] == {"L-BEANS-12OZ": 45}


@SQLITE_ONLY
def test_push_after_a_catalog_change_pushes_the_new_quantities(synced: Sync) -> None:
    sync = synced
    sync.run("push")

    # The kit now takes 2 mugs: min(50, 30 // 2, 100).
    import_components(
        sync.store.engine,
        sync.store.csv(
            "kit.csv",
            "parent_sku,component_sku,quantity,slot,price_offset\n"
            "GIFT-KIT-COFFEE,BEANS-12OZ,1,,\n"
            "GIFT-KIT-COFFEE,MUG-CERAMIC,2,,\n"
            "GIFT-KIT-COFFEE,SCOOP-WOOD,1,,\n",
        ),
    )
    pushed = sync.run("push")

    assert pushed.counts["pushed"] == 1
    assert sync.pushes()[-1] == {"L-GIFT-KIT-COFFEE": 15}


@SQLITE_ONLY
def test_push_after_a_listing_is_mapped_to_another_sku_pushes_its_quantity(synced: Sync) -> None:
    sync = synced
    sync.run("push")
    with sync.state.lock:
        sync.state.listings["L-BEANS-12OZ"]["sku"] = "SCOOP-WOOD"

    sync.run("listings")
    pushed = sync.run("push")

    assert pushed.counts["pushed"] == 1
    assert sync.quantities("L-BEANS-12OZ") == {"L-BEANS-12OZ": 100}


@SQLITE_ONLY
def test_push_after_a_listing_moves_to_other_warehouses_pushes_its_quantity(synced: Sync) -> None:
    sync = synced
    sync.run("push")
    # Written by another process: this one's listing refresh count does not move.
    listings = schema.listings.c
    with sync.store.engine.begin() as connection:
        connection.execute(
            update(schema.listings)
            .where(listings.listing_id == "L-BEANS-12OZ")
            .values(warehouses="fba-us")
        )

    pushed = sync.run("push")

    assert pushed.counts["pushed"] == 1
    assert sync.quantities("L-BEANS-12OZ") == {"L-BEANS-12OZ": 0}  # none in fba-us


@SQLITE_ONLY
def test_push_with_other_rules_pushes_the_new_quantities(synced: Sync) -> None:
    sync = synced
    sync.run("push")
    channel = sync.engine.channels["shop"]

    channel.rules = ChannelRules(max_quantity=25)
    pushed = sync.run("push")

    assert pushed.counts["pushed"] == 6  # all but the camera kit (7)
    assert sync.quantities() == {lid: min(q, 25) for lid, q in sellable_of(*LISTED).items()}


@SQLITE_ONLY
def test_push_after_a_reload_of_the_live_stock_works_the_offers_out_again(synced: Sync) -> None:
    sync = synced
    channel = sync.engine.channels["shop"]
    _, before = sync.engine.listings_and_offers(channel)

    sync.engine.live.reload()
    _, after = sync.engine.listings_and_offers(channel)

    assert after == before
    assert all(after[lid] is not before[lid] for lid in before)


# -- recording confirmed pushes in bulk ----------------------------------------------------------


def test_record_push_writes_every_confirmed_quantity_across_chunks(
    database_url: str, synced: Sync, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync = synced
    at = datetime(2026, 12, 7, 3, 0, 0, 123456, tzinfo=UTC)
    state = SyncState(sync.store.engine, lambda: at)
    monkeypatch.setattr(sync_state, "CONFIRMED_CHUNK", 2)  # 3 chunks for 5 listings
    confirmed: list[dict[str, Any]] = [
        {"lid": "L-BEANS-12OZ", "q": 7},
        {"lid": "L-MUG-CERAMIC", "q": 0},
        {"lid": "L-SCOOP-WOOD", "q": 123_456_789_012},
        {"lid": "L-GIFT-SET-COFFEE", "q": 1, "b": True},
        {"lid": "L-GIFT-KIT-COFFEE", "q": 2},
    ]
    state.record_push("shop", [], [{"lid": "L-FAQ-KIT", "e": "refused"}])
    state.record_push("shop", [], [{"lid": "L-GIFT-KIT-COFFEE", "e": "bad quantity"}])

    state.record_push("shop", confirmed, [{"lid": "L-FAQ-KIT", "e": "refused again"}])

    rows = {row["listing_id"]: row for row in state.matched_listings("shop")}
    for c in confirmed:
        row = rows[c["lid"]]
        assert (row["last_pushed"], row["channel_quantity"]) == (c["q"], c["q"]), c
    assert rows["L-GIFT-SET-COFFEE"]["last_backorders"] is True
    assert rows["L-BEANS-12OZ"]["last_backorders"] is False
    assert rows["L-CAMERA-STARTER-KIT"]["last_pushed"] == 7  # not in this push
    listings = schema.listings.c
    with sync.store.engine.connect() as connection:
        stored = {
            lid: (pushed_at, failures, error)
            for lid, pushed_at, failures, error in connection.execute(
                select(
                    listings.listing_id,
                    listings.last_pushed_at,
                    listings.push_failures,
                    listings.last_error,
                ).where(listings.channel == "shop")
            )
        }
    for c in confirmed:
        pushed_at, failures, error = stored[c["lid"]]
        assert pushed_at is not None
        assert abs(pushed_at.replace(tzinfo=UTC) - at) < timedelta(microseconds=1), c
        assert (failures, error) == (0, None), c
    assert stored["L-FAQ-KIT"][1:] == (2, "refused again")


@SQLITE_ONLY
def test_record_push_by_row_id_writes_each_listing_and_only_it(synced: Sync) -> None:
    sync = synced
    state = SyncState(sync.store.engine, lambda: datetime(2026, 12, 7, 3, 0, tzinfo=UTC))
    ids = {row["listing_id"]: row["id"] for row in state.matched_listings("shop")}
    confirmed: list[dict[str, Any]] = [
        {"lid": "L-BEANS-12OZ", "q": 7, "id": ids["L-BEANS-12OZ"]},
        {"lid": "L-MUG-CERAMIC", "q": 8, "id": None},  # not known: by listing id
        # An id that is another listing's: that one is left alone, this one written.
        {"lid": "L-SCOOP-WOOD", "q": 9, "id": ids["L-FAQ-KIT"]},
    ]
    before = {row["listing_id"]: row for row in state.matched_listings("shop")}

    state.record_push("shop", confirmed, [])

    rows = {row["listing_id"]: row for row in state.matched_listings("shop")}
    for c in confirmed:
        assert (rows[c["lid"]]["last_pushed"], rows[c["lid"]]["channel_quantity"]) == (
            c["q"],
            c["q"],
        ), c
    assert rows["L-FAQ-KIT"] == before["L-FAQ-KIT"]
