"""The Vendure connector against a real Vendure 3.7.3 (npm, PostgreSQL, loopback), driven
through the daemon's own paths: ``sellable sync --once`` and ``status --json`` on the
command line, then SyncEngine passes in-process.

Vendure is seeded (server/products.csv) with 100 units of BEANS-12OZ, MUG-CERAMIC,
GIFT-KIT-COFFEE (a kit in our catalog), CAMERA-STARTER-KIT (a package), ALPHABET-BUNDLE
(a bundle) and VENDURE-TSHIRT (unknown to us); a global out-of-stock threshold of 1 and,
for MUG-CERAMIC, a threshold of its own of 2. The connector logs in as an administrator
whose role has only the permissions docs/connectors/vendure.md lists. Our side is the
example catalog, whose sellable quantities in ``main`` are BEANS 50, MUG 30, GIFT-KIT 30
(min of its components), CAMERA-STARTER-KIT 7, ALPHABET-BUNDLE 50 (and its 8 prepackaged
units in ``fba-us``). Each test has a Vendure of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sellable_vendure.client import parse_time
from sellable_vendure.connector import VendureConnector, VendureSettings
from sqlalchemy import update

from sellable.orders import list_orders
from sellable.sdk import ChannelHttp, ConnectorContext
from sellable.store import schema
from sellable.sync.engine import JobResult, SyncEngine
from tests.connectors.vendure.vendure_server import SYNC_USER, VendureServer, running_vendure
from tests.imports import WAREHOUSES_TOML, Store, open_store
from tests.sync.test_sync_engine import SELLABLE

LISTED = ("BEANS-12OZ", "MUG-CERAMIC", "GIFT-KIT-COFFEE", "CAMERA-STARTER-KIT")


@pytest.fixture(scope="module")
def vendure(
    postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VendureServer]:
    with running_vendure(postgres_server, tmp_path_factory.mktemp("vendure")) as server:
        yield server


@pytest.fixture(scope="module")
def vendure_berlin(
    postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VendureServer]:
    """A Vendure with a second stock location, "Berlin" (id 2), holding nothing yet."""
    with running_vendure(postgres_server, tmp_path_factory.mktemp("vendure")) as server:
        created = server.admin('mutation { createStockLocation(input: {name: "Berlin"}) { id } }')[
            "createStockLocation"
        ]
        assert created == {"id": "2"}
        yield server


def open_example_store(
    work: Path, server: VendureServer, *, warehouses: str = '["main"]', settings: str = ""
) -> Store:
    """The example catalog on SQLite, with a ``vendure`` channel on ``server``."""
    user, password = SYNC_USER
    config = work / "sellable.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{work / "sellable.db"}"\n{WAREHOUSES_TOML}'
        f'\n[[channels]]\ncode = "vendure"\nconnector = "vendure"\nwarehouses = {warehouses}\n'
        f'[channels.settings]\nadmin_api_url = "{server.admin_api_url}"\n'
        f'username = "{user}"\npassword = "{password}"\n{settings}'
    )
    opened = open_store(config)
    opened.load_examples()
    return opened


@pytest.fixture
def store(tmp_path: Path, vendure: VendureServer) -> Iterator[Store]:
    opened = open_example_store(tmp_path, vendure)
    yield opened
    opened.engine.dispose()


def cli(store: Store, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SELLABLE_")}
    done = subprocess.run(
        [sys.executable, "-m", "sellable", "--config", str(store.config), *args, "--json"],
        env=env,
        cwd=store.config.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def by_job(results: list[JobResult]) -> dict[str, JobResult]:
    found = {r.job: r for r in results}
    failed = {job: r.error for job, r in found.items() if not r.ok}
    assert not failed, failed
    return found


def vendure_stock(server: VendureServer) -> dict[str, tuple[int, int]]:
    """(stockOnHand, stockAllocated) per listed SKU."""
    return {sku: server.stock(sku) for sku in LISTED}


def vendure_saleable(server: VendureServer) -> dict[str, int]:
    return {sku: server.saleable(sku) for sku in LISTED}


def book(store: Store) -> dict[str, tuple[str, list[tuple[str, int, str]]]]:
    """Our orders: Vendure code -> (status, [(sku, quantity, line status)])."""
    with store.engine.connect() as connection:
        return {
            order["order_id"]: (
                order["status"],
                [(line["sku"], line["quantity"], line["status"]) for line in order["lines"]],
            )
            for order in list_orders(connection)
        }


def updated_pass_only(server: VendureServer, since: datetime) -> list[str]:
    """Order codes the ``updatedAt`` pass alone returns (re-check off)."""
    http = ChannelHttp("probe", rate=50, burst=50)
    settings = VendureSettings(
        admin_api_url=server.admin_api_url,
        username=SYNC_USER[0],
        password=SecretStr(SYNC_USER[1]),
        recheck_days=0,
    )
    connector = VendureConnector(settings, ConnectorContext("probe", ("main",), http))
    http.set_base_url(connector.base_url())
    http.authenticate = connector.authenticate
    try:
        codes: list[str] = []
        cursor: str | None = None
        while True:
            page = connector.pull_orders(since, cursor)
            codes.extend(order.order_id for order in page.orders)
            if page.next_cursor is None:
                return codes
            cursor = page.next_cursor
    finally:
        http.close()


def test_vendure_full_cycle_listings_push_orders_shipping_and_cancel(
    store: Store, vendure: VendureServer
) -> None:
    # The figures below start from the example catalog's (the sync engine tests' table).
    assert {sku: SELLABLE[sku] for sku in (*LISTED, "ALPHABET-BUNDLE")} == {
        "BEANS-12OZ": 50,
        "MUG-CERAMIC": 30,
        "GIFT-KIT-COFFEE": 30,
        "CAMERA-STARTER-KIT": 7,
        "ALPHABET-BUNDLE": 50,
    }
    # 1. `sellable sync --once`: listings matched by SKU, the unknown variant reported, our
    # sellable pushed as stockOnHand = sellable + allocated (0) + threshold.
    passes = {r["job"]: r for r in cli(store, "sync", "--once")}
    assert all(r["ok"] for r in passes.values()), passes
    assert passes["listings"]["counts"]["listings"] == 6
    assert passes["listings"]["reports"]["unmatched_listings"] == ["VENDURE-TSHIRT"]
    assert passes["reconcile"]["counts"]["pushed"] == 5  # LISTED and ALPHABET-BUNDLE
    (status,) = cli(store, "status")
    assert status["unmatched_listings"] == {"count": 1, "skus": ["VENDURE-TSHIRT"]}
    assert vendure_stock(vendure) == {
        "BEANS-12OZ": (51, 0),
        "MUG-CERAMIC": (32, 0),  # its own threshold is 2
        "GIFT-KIT-COFFEE": (31, 0),
        "CAMERA-STARTER-KIT": (8, 0),
    }
    assert vendure_saleable(vendure) == {
        "BEANS-12OZ": 50,
        "MUG-CERAMIC": 30,
        "GIFT-KIT-COFFEE": 30,
        "CAMERA-STARTER-KIT": 7,
    }
    assert vendure.stock("VENDURE-TSHIRT") == (100, 0)  # not ours: left alone

    # 2. Two orders placed in Vendure's shop and paid: the pull allocates them in our book
    # (the kit takes its components), and what is pushed drops by the right amounts.
    first = vendure.place_order([("GIFT-KIT-COFFEE", 2), ("MUG-CERAMIC", 1)], "a@example.com")
    second = vendure.place_order([("BEANS-12OZ", 1)], "b@example.com")
    cart = vendure.shop()  # a cart never checked out is not an order
    cart(
        "mutation($id: ID!) { addItemToOrder(productVariantId: $id, quantity: 5) { __typename } }",
        {"id": vendure.variant_ids["BEANS-12OZ"]},
    )
    engine = SyncEngine(store.engine, store.settings)
    try:
        results = by_job(engine.run_once())
        # each read twice (updatedAt pass, then re-check), applied and counted once
        assert results["orders"].counts["orders"] == 2
        assert results["orders"].reports["rejected_orders"] == []
        assert book(store) == {
            first["code"]: (
                "open",
                [("GIFT-KIT-COFFEE", 2, "allocated"), ("MUG-CERAMIC", 1, "allocated")],
            ),
            second["code"]: ("open", [("BEANS-12OZ", 1, "allocated")]),
        }
        # The shipping address the checkout set, stored for a fulfilment provider.
        assert stored_address(store, first["code"]) == {
            "name": "Test Buyer",
            "address1": "1 Loopback Road",
            "city": "London",
            "zip_code": "N1 1AA",
            "country": "GB",
            "email": "a@example.com",
        }
        # Ours: BEANS 50-2-1 = 47, MUG 30-2-1 = 27, GIFT-KIT min(47, 27, 98) = 27.
        assert vendure_stock(vendure) == {
            "BEANS-12OZ": (49, 1),  # 47 + 1 allocated + threshold 1
            "MUG-CERAMIC": (30, 1),  # 27 + 1 + 2
            "GIFT-KIT-COFFEE": (30, 2),  # 27 + 2 + 1
            "CAMERA-STARTER-KIT": (8, 0),
        }
        assert vendure_saleable(vendure) == {
            "BEANS-12OZ": 47,
            "MUG-CERAMIC": 27,
            "GIFT-KIT-COFFEE": 27,
            "CAMERA-STARTER-KIT": 7,
        }

        # 3. The first order shipped in Vendure's admin: its updatedAt does not move, so
        # only the re-check of placed orders can see it.
        before = vendure.order(first["id"])
        vendure.ship(first["id"])
        after = vendure.order(first["id"])
        assert (after["state"], after["updatedAt"]) == ("Shipped", before["updatedAt"])
        past_it = parse_time(after["updatedAt"]) + timedelta(seconds=1)
        assert first["code"] not in updated_pass_only(vendure, past_it)
        # Ten minutes on, the cursor's overlap no longer covers the order's updatedAt.
        with store.engine.begin() as connection:
            connection.execute(
                update(schema.channel_cursors)
                .where(schema.channel_cursors.c.channel == "vendure")
                .values(value=datetime.now(UTC).isoformat())
            )
        results = by_job(engine.run_once())
        assert book(store)[first["code"]] == (
            "shipped",
            [("GIFT-KIT-COFFEE", 2, "shipped"), ("MUG-CERAMIC", 1, "shipped")],
        )
        assert results["reconcile"].counts["pushed"] == 0  # shipping changes no sellable
        assert vendure_stock(vendure) == {
            "BEANS-12OZ": (49, 1),
            "MUG-CERAMIC": (29, 0),  # Vendure sold the unit it had allocated
            "GIFT-KIT-COFFEE": (28, 0),
            "CAMERA-STARTER-KIT": (8, 0),
        }
        assert vendure_saleable(vendure)["GIFT-KIT-COFFEE"] == 27

        # 4. The second order cancelled in Vendure: our allocation is released and BEANS
        # goes back up by one.
        vendure.cancel(second["id"])
        results = by_job(engine.run_once())
        assert book(store)[second["code"]] == ("cancelled", [("BEANS-12OZ", 1, "cancelled")])
        assert results["reconcile"].counts["pushed"] == 1
        assert vendure_stock(vendure)["BEANS-12OZ"] == (49, 0)  # 48 + 0 + 1
        assert vendure_saleable(vendure) == {
            "BEANS-12OZ": 48,
            "MUG-CERAMIC": 27,
            "GIFT-KIT-COFFEE": 27,
            "CAMERA-STARTER-KIT": 7,
        }
        assert store.ledger_mismatches() == []
    finally:
        engine.close()


def test_vendure_stock_locations_each_get_their_warehouse_and_the_threshold_once(
    tmp_path: Path, vendure_berlin: VendureServer
) -> None:
    vendure = vendure_berlin
    store = open_example_store(
        tmp_path,
        vendure,
        warehouses='["main", "fba-us"]',
        settings='stock_locations = { "1" = "main", "2" = "fba-us" }\n',
    )
    engine = SyncEngine(store.engine, store.settings)
    try:
        results = by_job(engine.run_once())
        assert results["listings"].counts["listings"] == 12  # 6 variants x 2 locations
        assert results["listings"].reports["unmatched_listings"] == ["VENDURE-TSHIRT"]
        assert results["reconcile"].counts["pushed"] == 10
        # main gets main's sellable + the threshold (it is listed first); fba-us its own:
        # only ALPHABET-BUNDLE has stock there (8 prepackaged; FBA builds nothing).
        assert vendure.levels("ALPHABET-BUNDLE") == {"1": (51, 0), "2": (8, 0)}
        assert vendure.levels("BEANS-12OZ") == {"1": (51, 0), "2": (0, 0)}
        assert vendure.levels("MUG-CERAMIC") == {"1": (32, 0), "2": (0, 0)}
        assert vendure.levels("VENDURE-TSHIRT") == {"1": (100, 0)}
        assert vendure.saleable("ALPHABET-BUNDLE") == 58  # 50 in main + 8 in fba-us
        assert vendure.saleable("BEANS-12OZ") == 50

        # Vendure allocates a paid order at its first location with stock; the pull
        # allocates it in main (the channel's first warehouse), the bundle from components.
        placed = vendure.place_order([("ALPHABET-BUNDLE", 3), ("BEANS-12OZ", 1)], "c@example.com")
        results = by_job(engine.run_once())
        lines = [("ALPHABET-BUNDLE", 3, "allocated"), ("BEANS-12OZ", 1, "allocated")]
        assert book(store) == {placed["code"]: ("open", lines)}
        assert results["reconcile"].counts["pushed"] == 2  # ALPHABET-BUNDLE and BEANS in main
        assert vendure.levels("ALPHABET-BUNDLE") == {"1": (51, 3), "2": (8, 0)}  # 47 + 3 + 1
        assert vendure.levels("BEANS-12OZ") == {"1": (51, 1), "2": (0, 0)}  # 49 + 1 + 1
        assert vendure.saleable("ALPHABET-BUNDLE") == 55
        assert vendure.saleable("BEANS-12OZ") == 49

        # Only the BEANS line shipped: Vendure says PartiallyShipped. The order stays open
        # (the bundle's components stay allocated) and its BEANS line is sold.
        vendure.ship(placed["id"], "BEANS-12OZ")
        assert vendure.order(placed["id"])["state"] == "PartiallyShipped"
        results = by_job(engine.run_once())
        shipped = [("ALPHABET-BUNDLE", 3, "allocated"), ("BEANS-12OZ", 1, "shipped")]
        assert book(store) == {placed["code"]: ("open", shipped)}
        assert results["reconcile"].counts["pushed"] == 0
        assert vendure.levels("BEANS-12OZ") == {"1": (50, 0), "2": (0, 0)}  # Vendure's Sale
        assert vendure.saleable("BEANS-12OZ") == 49
        assert store.ledger_mismatches() == []
    finally:
        engine.close()
        store.engine.dispose()


def stored_address(store: Store, code: str) -> dict[str, str] | None:
    """The order's stored shipping address (``orders.shipping_address``, JSON)."""
    import json

    from sqlalchemy import select

    from sellable.store import schema

    o = schema.orders.c
    with store.engine.connect() as connection:
        text = connection.execute(
            select(o.shipping_address).where(o.external_id == code)
        ).scalar_one()
    return None if text is None else dict(json.loads(text))
