"""End to end, ``[allocation] mode = "shared"`` (issue 15): the WooCommerce and Shopify
connectors against their emulators over real loopback HTTP, the example catalog on SQLite
and PostgreSQL, driven by the daemon's own sync pass.

The example catalog's mugs feed the gift set (assembled on demand, 10 on the shelf), the
gift kit and the mug listing itself, on both channels: in full mode each of the six
listings is offered what all 30 mugs make; here the mugs are promised once. An order on
one channel lowers the other channel's share in the next pass; the velocity weights count
shipped orders and leave cancelled ones out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sellable.demo import toml_value
from sellable.emulators import EmulatorServer, emulator_class
from sellable.orders import OrderBook
from sellable.orders.model import OrderIn, OrderLineIn, OrderStatus
from sellable.sync.engine import SyncEngine
from sellable.sync.why import explain_channel, render_channel, to_json
from tests.imports import Store, open_store

LISTED = ("GIFT-SET-COFFEE", "GIFT-KIT-COFFEE", "MUG-CERAMIC", "BEANS-12OZ")
CHANNELS = {"woo": "woocommerce", "shop": "shopify"}


def open_channels(
    config_file: Path, allocation: str, stack: ExitStack
) -> tuple[Store, dict[str, EmulatorServer]]:
    emulators: dict[str, EmulatorServer] = {}
    with config_file.open("a") as handle:
        handle.write(allocation)
        for code, name in CHANNELS.items():
            emulator = emulator_class(name)(port=0)
            stack.enter_context(emulator)
            emulators[code] = emulator
            handle.write(
                f'\n[[channels]]\ncode = "{code}"\nconnector = "{name}"\n'
                'warehouses = ["main"]\n\n[channels.settings]\n'
            )
            for key, value in emulator.connector_settings().items():
                handle.write(f"{key} = {toml_value(value)}\n")
    store = open_store(config_file)
    store.load_examples()
    for emulator in emulators.values():
        for sku in LISTED:
            emulator.add_listing(sku, 0, sku.title())
    return store, emulators


FIXED = '\n[allocation]\nmode = "shared"\nweights = "fixed"\n'
VELOCITY = '\n[allocation]\nmode = "shared"\nweights = "velocity"\nvelocity_refresh = "0s"\n'


def serving(
    config_file: Path, allocation: str
) -> Iterator[tuple[Store, dict[str, EmulatorServer]]]:
    """:func:`open_channels` for the length of a test, then the emulators and the store
    closed."""
    with ExitStack() as stack:
        store, emulators = open_channels(config_file, allocation, stack)
        try:
            yield store, emulators
        finally:
            store.engine.dispose()


@pytest.fixture
def fixed(config_file: Path) -> Iterator[tuple[Store, dict[str, EmulatorServer]]]:
    yield from serving(config_file, FIXED)


@pytest.fixture
def by_velocity(config_file: Path) -> Iterator[tuple[Store, dict[str, EmulatorServer]]]:
    yield from serving(config_file, VELOCITY)


def shown(emulators: dict[str, EmulatorServer]) -> dict[str, dict[str, int]]:
    return {
        code: {sku: q for sku, q in emulator.quantities().items() if sku in LISTED}
        for code, emulator in emulators.items()
    }


def test_shared_order_on_one_channel_lowers_the_other_channels_share_at_once(
    fixed: tuple[Store, dict[str, EmulatorServer]],
) -> None:
    store, emulators = fixed
    engine = SyncEngine(store.engine, store.settings)
    try:
        assert [r for r in engine.run_once() if not r.ok] == []
        # 30 mugs, claimed by the two mug listings (weight 1 each) and by the set and the
        # kit (weight 2 each: a listing on each channel draws on them): 5, 5, 10, 10. The
        # set makes 10 from its mugs, plus its 10 assembled units: 20, 10 a channel. 50
        # beans: 8 and 8 for the bean listings, 17 and 17 for the set and the kit, which
        # use 10 each: the 14 left over go back to the bean listings.
        assert shown(emulators) == {
            code: {"GIFT-SET-COFFEE": 10, "GIFT-KIT-COFFEE": 5, "MUG-CERAMIC": 5, "BEANS-12OZ": 15}
            for code in CHANNELS
        }
        # 4 mugs sold on WooCommerce: 26 left (4, 4, 9, 9), and Shopify's shares drop at
        # the same pass, as WooCommerce's do.
        emulators["woo"].place_order([("MUG-CERAMIC", 4)])
        assert [r for r in engine.run_once() if not r.ok] == []
        second = shown(emulators)
        assert second == {
            "woo": {
                "GIFT-SET-COFFEE": 10,
                "GIFT-KIT-COFFEE": 5,
                "MUG-CERAMIC": 4,
                "BEANS-12OZ": 16,
            },
            "shop": {
                "GIFT-SET-COFFEE": 9,
                "GIFT-KIT-COFFEE": 4,
                "MUG-CERAMIC": 4,
                "BEANS-12OZ": 16,
            },
        }
        # The mugs promised (the set's 10 assembled units aside) are the 26 there are.
        promised = sum(
            q["MUG-CERAMIC"] + q["GIFT-KIT-COFFEE"] + q["GIFT-SET-COFFEE"] for q in second.values()
        )
        assert promised - 10 == 26
        with store.engine.connect() as connection:
            report = explain_channel(connection, store.settings, engine.live, "shop", "MUG-CERAMIC")
        text = render_channel(report)
        assert "shared among 4 claims in main (26 units):" in text
        assert report["listings"][0]["quantity"] == second["shop"]["MUG-CERAMIC"]
        share = json.loads(json.dumps(to_json(report)))["listings"][0]["share"]
        assert share["total"] == 4
        assert [
            (c["composite"], c["weight"], c["units"]) for c in share["warehouses"][0]["claims"]
        ] == [
            (None, 1.0, 4),
            (None, 1.0, 4),
            ("GIFT-SET-COFFEE", 2.0, 9),
            ("GIFT-KIT-COFFEE", 2.0, 9),
        ]
    finally:
        engine.close()


def test_shared_velocity_counts_shipped_orders_in_the_window_not_cancelled_ones(
    by_velocity: tuple[Store, dict[str, EmulatorServer]],
) -> None:
    store, _emulators = by_velocity
    engine = SyncEngine(store.engine, store.settings)
    try:
        assert [r for r in engine.run_once() if not r.ok] == []
        book = OrderBook(store.engine, store.settings)
        book.apply(
            [
                OrderIn(
                    "woo",
                    "shipped-1",
                    "main",
                    OrderStatus.SHIPPED,
                    (OrderLineIn("1", "BEANS-12OZ", 3),),
                ),
                OrderIn(
                    "shop",
                    "cancelled-1",
                    "main",
                    OrderStatus.CANCELLED,
                    (OrderLineIn("1", "BEANS-12OZ", 9),),
                ),
                OrderIn(  # shipped, but before the 14-day window
                    "shop",
                    "old-1",
                    "main",
                    OrderStatus.SHIPPED,
                    (OrderLineIn("1", "BEANS-12OZ", 5),),
                    created_at=datetime.now(UTC) - timedelta(days=15),
                ),
            ]
        )
        engine.desired_offers("woo")
        allocation = engine.shared_allocation()
        assert allocation is not None

        def weight(code: str) -> list[float]:
            return [
                x.weight for x in allocation.listings if x.key[0] == code and x.sku == "BEANS-12OZ"
            ]

        woo, shop = weight("woo"), weight("shop")
        assert woo == [4.0]  # 1 + the 3 shipped
        assert shop == [1.0]  # the 9 cancelled and the 5 from 15 days ago do not count
    finally:
        engine.close()


HEADROOM = (
    FIXED
    + 'velocity_refresh = "0s"\nheadroom = "latency"\n\n'
    + '[allocation.channels.shop]\npush_latency = "30m"\n'
)


def test_shared_latency_headroom_offers_ample_stock_whole_and_explains_it(
    config_file: Path,
) -> None:
    """With no orders yet, each listing's rate is its prior (1 unit over the 14-day
    window): far less than one unit is expected before any offer is corrected, so every
    listing is offered its full sellable, as in full mode, instead of the strict split
    (10, 5, 5, 15 above); explain shows why."""
    for store, emulators in serving(config_file, HEADROOM):
        engine = SyncEngine(store.engine, store.settings)
        try:
            assert [r for r in engine.run_once() if not r.ok] == []
            core = engine.live.core
            full = {sku: core.sellable(sku, "main") for sku in LISTED}
            assert full == {
                "GIFT-SET-COFFEE": 40,
                "GIFT-KIT-COFFEE": 30,
                "MUG-CERAMIC": 30,
                "BEANS-12OZ": 50,
            }
            assert shown(emulators) == {code: full for code in CHANNELS}
            with store.engine.connect() as connection:
                report = explain_channel(
                    connection, store.settings, engine.live, "shop", "MUG-CERAMIC"
                )
            text = render_channel(report)
            assert "strict share 5; latency headroom (3 sigmas), 30 units" in text
            assert "the bound of all claims fits in 30: offered all 30" in text
            share = json.loads(json.dumps(to_json(report)))["listings"][0]["share"]
            headroom = share["warehouses"][0]["headroom"]
            assert (headroom["strict"], headroom["supply"], headroom["everyone_bound"]) == (
                5,
                30,
                1,
            )
        finally:
            engine.close()


def test_shared_latency_headroom_reads_rates_over_the_history_the_book_holds(
    config_file: Path,
) -> None:
    """Two days of history (the first order's date): WooCommerce's 3 beans give it
    (1 + 3) / 48 units an hour, Shopify's none 1 / 48; the demand until seen is that over
    the pull interval (2 min) plus the push debounce (1 s); Shopify's push latency 30 min."""
    for store, _emulators in serving(config_file, HEADROOM):
        engine = SyncEngine(store.engine, store.settings)
        try:
            assert [r for r in engine.run_once() if not r.ok] == []
            OrderBook(store.engine, store.settings).apply(
                [
                    OrderIn(
                        "woo",
                        "shipped-1",
                        "main",
                        OrderStatus.SHIPPED,
                        (OrderLineIn("1", "BEANS-12OZ", 3),),
                        created_at=datetime.now(UTC) - timedelta(days=2),
                    )
                ]
            )
            engine.desired_offers("woo")
            allocation = engine.shared_allocation()
            assert allocation is not None
            beans = {x.key[0]: x for x in allocation.listings if x.sku == "BEANS-12OZ"}
            unseen = 121 / 3600  # hours
            assert beans["woo"].rate == pytest.approx(4 / 48, rel=1e-3)
            assert beans["woo"].demand == pytest.approx(4 / 48 * unseen, rel=1e-3)
            assert beans["shop"].rate == pytest.approx(1 / 48, rel=1e-3)
            assert (beans["woo"].latency, beans["shop"].latency) == (0.0, 1800.0)
        finally:
            engine.close()
