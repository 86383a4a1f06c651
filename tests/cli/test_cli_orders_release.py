"""What would release each held line: ``sellable orders --held --json``'s ``release``, the
same on ``/api/orders?held=1`` and on the Orders page, from the line's shortfall against its
warehouse's stock as a retry would plan it (older held lines first, options, component
inventory per warehouse)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from sellable.cli import cli
from sellable.imports import import_components, import_products, import_stock
from sellable.orders import OrderBook, read_orders_csv
from sellable.web import Dashboard, create_app
from tests.imports import Store, open_store

PRODUCTS = """sku,name,kind
MUG,Mug,simple
BEANS,Beans,simple
SET,Mug and two bags of beans,kit
RED,Red lid,simple
BLUE,Blue lid,simple
PACK,A lid of your colour,bundle
LID,Lid,simple
CAP,Cap,simple
PAIR,Lid and cap,kit
"""
COMPONENTS = """parent_sku,component_sku,quantity,slot
SET,MUG,1,
SET,BEANS,2,
PACK,RED,1,colour
PACK,BLUE,1,colour
PAIR,LID,1,
PAIR,CAP,1,
"""
STOCK = """sku,warehouse,on_hand
MUG,main,2
BEANS,main,10
BLUE,main,5
"""
# Oldest first: A (5 SET: short of MUG, claims the BEANS), B (3 BEANS: the BEANS are A's),
# C (1 SET at FBA, which ships only pre-packed units), D (2 PACK in red: BLUE does not
# count), E (2 PAIR: short of both parts).
ORDERS = """channel,order_id,sku,quantity,warehouse,line_id,status,created_at,options
shop,A,SET,5,main,1,open,2026-01-01T10:00:00Z,
shop,B,BEANS,3,main,1,open,2026-01-02T10:00:00Z,
shop,C,SET,1,fba-us,1,open,2026-01-03T10:00:00Z,
shop,D,PACK,2,main,1,open,2026-01-04T10:00:00Z,colour=RED
shop,E,PAIR,2,main,1,open,2026-01-05T10:00:00Z,
"""


@pytest.fixture
def store(config_file: Path) -> Iterator[Store]:
    with config_file.open("a") as handle:
        handle.write(
            '\n[[channels]]\ncode = "shop"\nconnector = "manual"\nwarehouses = ["main", "fba-us"]\n'
        )
    opened = open_store(config_file)
    import_products(opened.engine, opened.csv("products.csv", PRODUCTS))
    import_components(opened.engine, opened.csv("components.csv", COMPONENTS))
    import_stock(opened.engine, opened.settings, opened.csv("stock.csv", STOCK))
    book = OrderBook(opened.engine, opened.settings)
    path = opened.csv("orders.csv", ORDERS)
    result = book.apply(read_orders_csv(path, opened.settings, book.live.catalog, opened.engine))
    assert result.lines_held == 5
    yield opened
    assert opened.ledger_mismatches() == []
    opened.engine.dispose()


def held_json(store: Store) -> list[dict[str, Any]]:
    printed = CliRunner().invoke(cli, ["--config", str(store.config), "orders", "--held", "--json"])
    assert printed.exit_code == 0, printed.output
    found: list[dict[str, Any]] = json.loads(printed.stdout)
    return found


def releases(orders: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["order_id"]: o["lines"][0]["release"] for o in orders}


def need(sku: str, warehouse: str, available: int, needed: int) -> dict[str, Any]:
    return {
        "sku": sku,
        "warehouse": warehouse,
        "more": needed - available,
        "available": available,
        "needed": needed,
    }


def test_orders_held_json_says_what_would_release_each_line(store: Store) -> None:
    orders = held_json(store)
    # The existing keys stay as they were.
    assert orders[0]["lines"][0]["hold_reason"] == "short 3 × MUG in main (have 2, need 5)"
    found = releases(orders)
    assert found == {
        "A": {
            "ready": False,
            "needs": [need("MUG", "main", 2, 5)],
            "text": "needs 3 more MUG in main (2 available to it, 5 needed)",
        },
        "B": {
            "ready": False,
            "needs": [need("BEANS", "main", 0, 3)],
            "text": "needs 3 more BEANS in main (0 available to it, 3 needed)",
        },
        "C": {
            "ready": False,
            "needs": [need("SET", "fba-us", 0, 1)],
            "text": "needs 1 more SET in fba-us (0 available to it, 1 needed)",
        },
        "D": {
            "ready": False,
            "needs": [need("RED", "main", 0, 2)],
            "text": "needs 2 more RED in main (0 available to it, 2 needed)",
        },
        "E": {
            "ready": False,
            "needs": [need("LID", "main", 0, 2), need("CAP", "main", 0, 2)],
            "text": "needs 2 more LID in main (0 available to it, 2 needed); "
            "needs 2 more CAP in main (0 available to it, 2 needed)",
        },
    }

    board = Dashboard(store.engine, store.settings)
    try:
        with TestClient(create_app(board)) as client:
            assert client.get("/api/orders", params={"held": 1}).json() == orders
            page = client.get("/orders").text
    finally:
        board.close()
    for release in found.values():
        assert release["text"] in page


def test_a_held_line_whose_stock_arrived_is_ready_for_a_retry(store: Store) -> None:
    # A count written without the order book retries nothing: D's red lids are there.
    import_stock(
        store.engine, store.settings, store.csv("red.csv", "sku,warehouse,on_hand\nRED,main,2\n")
    )
    found = releases(held_json(store))
    assert found["D"] == {
        "ready": True,
        "needs": [],
        "text": "the stock is there in main now: retrying held lines allocates it "
        "(a stock count or receipt retries them too)",
    }
    assert found["A"]["text"] == "needs 3 more MUG in main (2 available to it, 5 needed)"

    book = OrderBook(store.engine, store.settings)
    retried = book.retry_held()
    assert retried.lines_allocated == 1
    after = releases(held_json(store))
    assert sorted(after) == ["A", "B", "C", "E"]


def test_orders_held_text_lists_what_would_release(store: Store) -> None:
    printed = CliRunner().invoke(cli, ["--config", str(store.config), "orders", "--held"])
    assert printed.exit_code == 0, printed.output
    assert "needs 3 more MUG in main (2 available to it, 5 needed)" in printed.output
