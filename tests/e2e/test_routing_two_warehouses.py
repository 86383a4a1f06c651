"""Routing end to end: a channel on two warehouses sells what both hold, and its orders are
booked where the stock is (issue 11, "Routing across a channel's warehouses").

The channel ``shop`` sells from ``warehouses = ["main", "tpl"]``; ``MUG`` has 2 in ``main``
and 10 in ``tpl`` (imported through the command line). The daemon's SyncEngine runs its
passes against the WooCommerce emulator over loopback HTTP (on SQLite and PostgreSQL), and
against a real Vendure 3.7.3 (npm, see tests/connectors/vendure/vendure_server.py).

The rule: a line is booked in the first of the channel's warehouses (in their listed order)
that can allocate all of it; if none can, it is split across them in that order; if even that
cannot fill it, the whole line is held in the first warehouse. Split lines ship and cancel
per warehouse, with a movement each.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sellable.config import load_settings
from sellable.emulators import ManualClock
from sellable.emulators.woocommerce import WooCommerceEmulator
from sellable.sync.engine import JobResult, SyncEngine
from tests.cli.test_cli_commands import invoke
from tests.connectors.vendure.vendure_server import SYNC_USER, VendureServer, running_vendure
from tests.imports import Store, open_store

TPL = '\n[[warehouses]]\ncode = "tpl"\nkind = "3pl"\n'
STOCK = "sku,warehouse,on_hand,locked\n{sku},main,2,0\n{sku},tpl,10,0\n"
MAIN_2_TPL_10 = {"main": 2, "tpl": 10}


def cli_json(config: Path, *args: str) -> Any:
    result = invoke(*args, "--json", "--config", config)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def import_catalog(config: Path, sku: str) -> None:
    """``sku`` a simple product, 2 in main and 10 in tpl, through ``sellable import``."""
    work = config.parent
    products = work / "products.csv"
    products.write_text(f"sku,name,kind,allow_backorder\n{sku},A mug,simple,false\n")
    stock = work / "stock.csv"
    stock.write_text(STOCK.format(sku=sku))
    for kind, path in (("products", products), ("stock", stock)):
        result = invoke("import", kind, path, "--config", config)
        assert result.exit_code == 0, result.output


def lines(config: Path, channel: str) -> dict[str, list[tuple[str, int, str, list[Any]]]]:
    """``orders --json`` of ``channel``: order id -> [(sku, quantity, status, allocations)]."""
    return {
        order["order_id"]: [
            (line["sku"], line["quantity"], line["status"], line["allocations"])
            for line in order["lines"]
        ]
        for order in cli_json(config, "orders")
        if order["channel"] == channel
    }


def sellable(config: Path, sku: str) -> dict[str, int]:
    """``stock SKU --json``: warehouse -> sellable (main and tpl)."""
    return {
        p["warehouse"]: p["sellable"]
        for p in cli_json(config, "stock", sku)
        if p["warehouse"] in ("main", "tpl")
    }


def held(config: Path, sku: str) -> dict[str, int]:
    """``stock SKU --json``: warehouse -> ``prepackaged.held`` (main and tpl)."""
    return {
        p["warehouse"]: p["prepackaged"]["held"]
        for p in cli_json(config, "stock", sku)
        if p["warehouse"] in ("main", "tpl")
    }


def on_hand(config: Path, sku: str) -> dict[str, tuple[int, int]]:
    """``stock SKU --json``: warehouse -> (prepackaged on_hand, allocated)."""
    return {
        p["warehouse"]: (p["prepackaged"]["on_hand"], p["prepackaged"]["allocated"])
        for p in cli_json(config, "stock", sku)
        if p["warehouse"] in ("main", "tpl")
    }


def offered(config: Path, channel: str, sku: str) -> tuple[int, int | None, bool]:
    """``explain SKU --channel`` as JSON: (quantity offered, last pushed, in step)."""
    (entry,) = cli_json(config, "explain", sku, "--channel", channel)["listings"]
    return entry["quantity"], entry["last_pushed"], entry["in_step"]


def movements(config: Path, sku: str, channel: str, order_id: str) -> list[tuple[str, str, int]]:
    """``ledger SKU --json``: (type, warehouse, quantity) of the movements of the order
    ``channel:order_id`` (reference ``order CHANNEL:ID``), oldest first."""
    return [
        (row["type"], row["warehouse"], row["quantity"])
        for row in cli_json(config, "ledger", sku)
        if row["reference"] == f"order {channel}:{order_id}"
    ]


def by_job(results: list[JobResult]) -> dict[str, JobResult]:
    found = {r.job: r for r in results}
    failed = {job: r.error for job, r in found.items() if not r.ok}
    assert not failed, failed
    return found


# -- WooCommerce (emulator, SQLite and PostgreSQL) ----------------------------------------------


@dataclass
class Woo:
    config: Path
    store: Store
    shop: WooCommerceEmulator
    clock: ManualClock
    engines: list[SyncEngine] = field(default_factory=list)

    def engine(self) -> SyncEngine:
        clock = self.clock
        made = SyncEngine(
            self.store.engine,
            load_settings(self.config),
            http_options={"clock": clock.monotonic, "sleep": clock.advance, "backoff_base": 0.0},
            now=clock.now,
        )
        self.engines.append(made)
        return made

    def sync(self) -> dict[str, JobResult]:
        """One daemon pass a minute later (listings, stock, orders, reconcile and push)."""
        self.clock.advance(60)
        (engine,) = self.engines or [self.engine()]
        return by_job(engine.run_once())

    def mug(self) -> int:
        return self.shop.quantities()["MUG"]


@pytest.fixture
def woo(config_file: Path) -> Iterator[Woo]:
    clock = ManualClock(datetime(2026, 11, 1, 12, 0, tzinfo=UTC))
    shop = WooCommerceEmulator(clock=clock).start()
    assert isinstance(shop, WooCommerceEmulator)
    settings = shop.connector_settings()
    with config_file.open("a") as handle:
        handle.write(
            TPL
            + '\n[[channels]]\ncode = "shop"\nconnector = "woocommerce"\n'
            + 'warehouses = ["main", "tpl"]\n[channels.settings]\n'
            + "".join(f'{key} = "{value}"\n' for key, value in settings.items())
        )
    store = open_store(config_file)
    import_catalog(config_file, "MUG")
    shop.add_listing("MUG", 0)
    harness = Woo(config_file, store, shop, clock)
    try:
        yield harness
    finally:
        for engine in harness.engines:
            engine.close()
        shop.stop()
        store.engine.dispose()


def test_woocommerce_channel_on_two_warehouses_is_offered_both_and_its_orders_routed(
    woo: Woo,
) -> None:
    config = woo.config
    assert sellable(config, "MUG") == MAIN_2_TPL_10

    # 1. The channel is offered what both warehouses hold: 2 + 10.
    first = woo.sync()
    assert first["reconcile"].counts["pushed"] == 1
    assert woo.mug() == 12
    assert offered(config, "shop", "MUG") == (12, 12, True)

    # 2. A customer orders 5: main has only 2, tpl can take all 5 -> booked in tpl in full.
    five = woo.shop.place_order([("MUG", 5)])
    woo.sync()
    assert lines(config, "shop") == {
        five: [("MUG", 5, "allocated", [{"warehouse": "tpl", "quantity": 5}])]
    }
    assert sellable(config, "MUG") == {"main": 2, "tpl": 5}
    assert offered(config, "shop", "MUG") == (7, 7, True)
    assert woo.mug() == 7

    # 3. An order for 7: no warehouse can take it all (2 and 5) -> split main 2 + tpl 5.
    seven = woo.shop.place_order([("MUG", 7)])
    woo.sync()
    assert lines(config, "shop")[seven] == [
        (
            "MUG",
            7,
            "allocated",
            [{"warehouse": "main", "quantity": 2}, {"warehouse": "tpl", "quantity": 5}],
        )
    ]
    assert sellable(config, "MUG") == {"main": 0, "tpl": 0}
    assert offered(config, "shop", "MUG") == (0, 0, True)
    assert woo.mug() == 0
    assert movements(config, "MUG", "shop", seven) == [
        ("Allocation", "main", -2),
        ("Allocation", "tpl", -5),
    ]

    # 4. One more (an order awaiting payment, which WooCommerce takes at 0): nothing anywhere
    # -> the whole line is held in main, the first warehouse, and claims its unit there.
    one = woo.shop.place_order([("MUG", 1)], status="pending")
    results = woo.sync()
    assert results["orders"].counts["held_lines"] == 1
    assert lines(config, "shop")[one] == [("MUG", 1, "held", [])]
    assert held(config, "MUG") == {"main": 1, "tpl": 0}
    assert sellable(config, "MUG") == {"main": 0, "tpl": 0}
    assert offered(config, "shop", "MUG") == (0, 0, True)
    assert woo.mug() == 0
    # The earlier lines keep where they were booked.
    assert lines(config, "shop")[five] == [
        ("MUG", 5, "allocated", [{"warehouse": "tpl", "quantity": 5}])
    ]


def test_woocommerce_split_line_cancels_and_ships_per_warehouse(woo: Woo) -> None:
    config = woo.config
    woo.sync()
    assert woo.mug() == 12

    # 12 in one line: main 2 + tpl 10.
    cancelled = woo.shop.place_order([("MUG", 12)])
    woo.sync()
    assert lines(config, "shop")[cancelled] == [
        (
            "MUG",
            12,
            "allocated",
            [{"warehouse": "main", "quantity": 2}, {"warehouse": "tpl", "quantity": 10}],
        )
    ]
    assert (sellable(config, "MUG"), woo.mug()) == ({"main": 0, "tpl": 0}, 0)

    # Cancelled on the shop: both parts are released, a Release movement per warehouse.
    woo.shop.set_order_status(cancelled, "cancelled")
    woo.sync()
    assert lines(config, "shop")[cancelled] == [("MUG", 12, "cancelled", [])]
    assert movements(config, "MUG", "shop", cancelled) == [
        ("Allocation", "main", -2),
        ("Allocation", "tpl", -10),
        ("Release", "main", 2),
        ("Release", "tpl", 10),
    ]
    assert sellable(config, "MUG") == MAIN_2_TPL_10
    assert on_hand(config, "MUG") == {"main": (2, 0), "tpl": (10, 0)}
    assert offered(config, "shop", "MUG") == (12, 12, True)
    assert woo.mug() == 12

    # Another 12, shipped (completed): a Sale movement per warehouse, the stock leaves both.
    shipped = woo.shop.place_order([("MUG", 12)])
    woo.sync()
    woo.shop.set_order_status(shipped, "completed")
    woo.sync()
    assert lines(config, "shop")[shipped] == [
        (
            "MUG",
            12,
            "shipped",
            [{"warehouse": "main", "quantity": 2}, {"warehouse": "tpl", "quantity": 10}],
        )
    ]
    assert movements(config, "MUG", "shop", shipped) == [
        ("Allocation", "main", -2),
        ("Allocation", "tpl", -10),
        ("Sale", "main", -2),
        ("Sale", "tpl", -10),
    ]
    assert on_hand(config, "MUG") == {"main": (0, 0), "tpl": (0, 0)}
    assert sellable(config, "MUG") == {"main": 0, "tpl": 0}
    assert (offered(config, "shop", "MUG"), woo.mug()) == ((0, 0, True), 0)


# -- Vendure (a real Vendure 3.7.3 over PostgreSQL; our store on SQLite) -----------------------


@pytest.fixture(scope="module")
def vendure(
    postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VendureServer]:
    with running_vendure(postgres_server, tmp_path_factory.mktemp("vendure")) as server:
        yield server


def test_vendure_channel_on_two_warehouses_is_offered_both_and_its_orders_routed(
    tmp_path: Path, vendure: VendureServer
) -> None:
    """MUG-CERAMIC has a threshold of its own of 2 in Vendure (the seed): the connector
    pushes stockOnHand = sellable + allocated + 2, so Vendure's saleable is our figure."""
    sku = "MUG-CERAMIC"
    user, password = SYNC_USER
    config = tmp_path / "sellable.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "sellable.db"}"\n'
        '[[warehouses]]\ncode = "main"\nkind = "own"\n'
        + TPL
        + '\n[[channels]]\ncode = "vendure"\nconnector = "vendure"\n'
        'warehouses = ["main", "tpl"]\n'
        f'[channels.settings]\nadmin_api_url = "{vendure.admin_api_url}"\n'
        f'username = "{user}"\npassword = "{password}"\n'
    )
    store = open_store(config)
    import_catalog(config, sku)
    engine = SyncEngine(store.engine, store.settings)
    try:
        # 1. Both warehouses' 2 + 10 offered.
        by_job(engine.run_once())
        assert offered(config, "vendure", sku) == (12, 12, True)
        assert vendure.stock(sku) == (14, 0)
        assert vendure.saleable(sku) == 12

        # 2. An order for 5, paid in Vendure's shop: booked in tpl in full.
        five = vendure.place_order([(sku, 5)], "five@example.com")["code"]
        by_job(engine.run_once())
        assert lines(config, "vendure") == {
            five: [(sku, 5, "allocated", [{"warehouse": "tpl", "quantity": 5}])]
        }
        assert sellable(config, sku) == {"main": 2, "tpl": 5}
        assert offered(config, "vendure", sku) == (7, 7, True)
        assert vendure.stock(sku) == (14, 5)
        assert vendure.saleable(sku) == 7

        # 3. An order for 7: split main 2 + tpl 5; nothing left to offer.
        seven_order = vendure.place_order([(sku, 7)], "seven@example.com")
        seven = seven_order["code"]
        by_job(engine.run_once())
        assert lines(config, "vendure")[seven] == [
            (
                sku,
                7,
                "allocated",
                [{"warehouse": "main", "quantity": 2}, {"warehouse": "tpl", "quantity": 5}],
            )
        ]
        assert sellable(config, sku) == {"main": 0, "tpl": 0}
        assert offered(config, "vendure", sku) == (0, 0, True)
        assert vendure.stock(sku) == (14, 12)

        # 4. The split order cancelled in Vendure: a Release per warehouse, 2 / 10 again...
        # less the 5 of the first order in tpl: main 2, tpl 5, offered 7.
        vendure.cancel(seven_order["id"])
        by_job(engine.run_once())
        assert lines(config, "vendure")[seven] == [(sku, 7, "cancelled", [])]
        assert movements(config, sku, "vendure", seven) == [
            ("Allocation", "main", -2),
            ("Allocation", "tpl", -5),
            ("Release", "main", 2),
            ("Release", "tpl", 5),
        ]
        assert sellable(config, sku) == {"main": 2, "tpl": 5}
        assert offered(config, "vendure", sku) == (7, 7, True)
        assert vendure.saleable(sku) == 7
    finally:
        engine.close()
        store.engine.dispose()
