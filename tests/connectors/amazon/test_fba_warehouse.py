"""``fba_warehouse`` outside the channel's ``warehouses``: ``warehouses = ["main"]`` with
``fba_warehouse = "fba-us"`` ("MFN ships from main, FBA stock lives in fba-us"), end to end
against the Amazon emulator over loopback HTTP, on SQLite and PostgreSQL; and how an
``fba_warehouse`` that names no configured warehouse is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sellable_amazon.connector import AmazonConnector, AmazonSettings
from sqlalchemy import select

from sellable.cli import cli
from sellable.emulators.amazon import AmazonEmulator
from sellable.emulators.base import ManualClock
from sellable.errors import ConfigError
from sellable.orders import ledger, list_orders
from sellable.sdk import ChannelHttp, ConnectorContext, StockCount
from sellable.store import schema
from sellable.sync.engine import SyncEngine
from tests.connectors.amazon.test_e2e import MFN_SKUS, Amazon
from tests.imports import Store, open_store
from tests.sync.test_sync_engine import SQLITE_ONLY

OpenAmazon = Callable[..., Amazon]


def channel_toml(emulator: AmazonEmulator, warehouses: str, fba: str) -> str:
    settings = "\n".join(f'{k} = "{v}"' for k, v in emulator.connector_settings().items())
    return (
        f'\n[[channels]]\ncode = "amazon"\nconnector = "amazon"\nwarehouses = {warehouses}\n'
        f'[channels.settings]\n{settings}\nfba_warehouse = "{fba}"\n'
    )


@pytest.fixture
def open_amazon(config_file: Path) -> Iterator[OpenAmazon]:
    """``open_amazon(fba="fba-us", warehouses='["main"]')``: the example catalog, the
    emulator with every MFN offer at 0 and 6 ALPHABET-BUNDLE at FBA (the examples' stock.csv
    has 8 there), and a SyncEngine."""
    made: list[tuple[AmazonEmulator, SyncEngine, Store]] = []

    def open_(*, fba: str = "fba-us", warehouses: str = '["main"]') -> Amazon:
        clock = ManualClock(datetime.now(UTC))
        emulator = AmazonEmulator(clock=clock, patch_delay=0.0)
        emulator.start()
        for sku in MFN_SKUS:
            emulator.add_listing(sku, 0)
        emulator.add_fba_listing("ALPHABET-BUNDLE", 6)
        with config_file.open("a") as handle:
            handle.write(channel_toml(emulator, warehouses, fba))
        store = open_store(config_file)
        store.load_examples()
        engine = SyncEngine(
            store.engine,
            store.settings,
            http_options={"clock": clock.monotonic, "sleep": clock.advance, "backoff_base": 0.0},
        )
        made.append((emulator, engine, store))
        return Amazon(store, emulator, clock, engine)

    yield open_
    for emulator, engine, store in made:
        engine.close()
        emulator.stop()
        store.engine.dispose()


def stock_row(amazon: Amazon, sku: str, warehouse: str) -> tuple[int, int] | None:
    """(on hand, allocated) of the stored stock row, None when there is none."""
    st, s, w = schema.stock.c, schema.skus.c, schema.warehouses.c
    with amazon.store.engine.connect() as connection:
        row = connection.execute(
            select(st.on_hand, st.allocated)
            .join(schema.skus, s.id == st.sku_id)
            .join(schema.warehouses, w.id == st.warehouse_id)
            .where(s.sku == sku, w.code == warehouse)
        ).one_or_none()
    return None if row is None else (row[0], row[1])


def ledger_of(amazon: Amazon, sku: str) -> list[dict[str, object]]:
    with amazon.store.engine.connect() as connection:
        return ledger(connection, sku, "fba-us")


def orders_by_id(amazon: Amazon) -> dict[str, str]:
    """The channel's order id -> the warehouse the order was booked in."""
    with amazon.store.engine.connect() as connection:
        return {o["order_id"]: o["warehouse"] for o in list_orders(connection)}


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_fba_stock_and_afn_orders_land_in_an_fba_warehouse_the_channel_does_not_list(
    open_amazon: OpenAmazon,
) -> None:
    amazon = open_amazon()
    assert amazon.connector.own == ("main",)

    stock = amazon.run("stock")
    assert (stock.counts["skus"], stock.reports["unknown_warehouses"]) == (1, [])
    assert stock_row(amazon, "ALPHABET-BUNDLE", "fba-us") == (6, 0)
    assert stock_row(amazon, "ALPHABET-BUNDLE", "main") is None  # none pre-packed there
    assert [(m["type"], m["quantity"]) for m in ledger_of(amazon, "ALPHABET-BUNDLE")] == [
        ("Adjustment", 8),  # the examples' stock.csv
        ("Adjustment", -2),  # Amazon's count
    ]
    assert amazon.sellable("ALPHABET-BUNDLE", "fba-us") == 6
    assert amazon.sellable("ALPHABET-BUNDLE", "main") == 50  # built from ABC/DEF/GHI

    afn = amazon.emulator.place_order([("ALPHABET-BUNDLE", 3)], fulfilled_by="AMAZON")
    mfn = amazon.emulator.place_order([("MUG-CERAMIC", 2)])
    orders = amazon.run("orders")

    assert (orders.counts["orders"], orders.reports["rejected_orders"]) == (2, [])
    assert orders_by_id(amazon) == {afn: "fba-us", mfn: "main"}
    assert stock_row(amazon, "ALPHABET-BUNDLE", "fba-us") == (6, 3)
    assert amazon.sellable("ALPHABET-BUNDLE", "fba-us") == 3
    assert amazon.sellable("ALPHABET-BUNDLE", "main") == 50  # MFN stock untouched by AFN
    assert amazon.sellable("MUG-CERAMIC", "main") == 28

    # The MFN offers are pushed from main alone: FBA's 3 bundles are not added to them.
    amazon.run("listings")
    amazon.run("push")
    amazon.settle()
    shown = amazon.emulator.quantities()
    assert (shown["ALPHABET-BUNDLE"], shown["MUG-CERAMIC"]) == (50, 28)

    # Amazon's next count (3 fulfillable + 3 reserved for that order) is booked once.
    amazon.run("stock")
    assert stock_row(amazon, "ALPHABET-BUNDLE", "fba-us") == (6, 3)
    assert amazon.sellable("ALPHABET-BUNDLE", "fba-us") == 3


@SQLITE_ONLY
def test_an_fba_warehouse_listed_after_the_own_one_is_accepted(
    open_amazon: OpenAmazon,
) -> None:
    amazon = open_amazon(warehouses='["main", "fba-us"]')
    assert amazon.connector.own == ("main",)

    amazon.run("stock")
    order = amazon.emulator.place_order([("ALPHABET-BUNDLE", 2)], fulfilled_by="AMAZON")
    mfn = amazon.emulator.place_order([("MUG-CERAMIC", 1)])
    amazon.run("orders")

    assert orders_by_id(amazon) == {order: "fba-us", mfn: "main"}
    assert amazon.sellable("ALPHABET-BUNDLE", "fba-us") == 4
    assert amazon.sellable("MUG-CERAMIC", "main") == 29


@SQLITE_ONLY
def test_the_daemon_refuses_an_fba_warehouse_that_is_not_configured_at_start(
    open_amazon: OpenAmazon,
) -> None:
    # As check-config does: the daemon sees the [[warehouses]] when it opens a connector, so
    # FBA counts and AFN orders can never be booked in a warehouse nobody declared.
    with pytest.raises(ConfigError, match=r"settings\.fba_warehouse: not a configured warehouse"):
        open_amazon(fba="fba-eu")


@SQLITE_ONLY
def test_check_config_refuses_an_fba_warehouse_that_is_not_configured(
    config_file: Path,
) -> None:
    with AmazonEmulator(port=0) as emulator, config_file.open("a") as handle:
        handle.write(channel_toml(emulator, '["main"]', "fba-eu"))

    result = CliRunner().invoke(cli, ["check-config", "--config", str(config_file)])

    assert (result.exit_code, result.stdout) == (2, ""), result.output
    assert result.stderr == (
        f"error: {config_file}: channels[0].settings.fba_warehouse: not a configured "
        'warehouse (known: main, fba-us; declare it as a [[warehouses]] entry with kind = "fba")'
        " (got 'fba-eu') (channel 'amazon', connector 'amazon')\n"
    )


def test_the_settings_accept_a_configured_fba_warehouse_outside_the_channel() -> None:
    settings = AmazonSettings.model_validate(
        {
            "client_id": "c",
            "client_secret": "s",
            "refresh_token": "r",
            "seller_id": "A3SELLER",
            "marketplace_id": "ATVPDKIKX0DER",
            "fba_warehouse": "fba-us",
        },
        context={"warehouses": ("main", "fba-us")},
    )
    http = ChannelHttp("amazon")
    connector = AmazonConnector(settings, ConnectorContext("amazon", ("main",), http))
    assert (connector.fba, connector.own) == ("fba-us", ("main",))
    assert connector._count(
        {
            "sellerSku": "KIT",
            "inventoryDetails": {
                "fulfillableQuantity": 4,
                "reservedQuantity": {"pendingCustomerOrderQuantity": 1},
            },
        }
    ) == StockCount("KIT", 4, 1, warehouse="fba-us")
    http.close()
