"""The SKU page's 30-day chart: on hand, available and sellable at each day's end, worked
back from the stock rows through the ledger and computed by the core; the API, the page
and ``sellable stock --json`` give the same figures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from sellable.cli import cli
from sellable.imports import import_components, import_products, import_stock
from sellable.orders import OrderBook, read_orders_csv
from sellable.store import schema
from sellable.web import Dashboard, create_app
from tests.imports import Store, open_store

PRODUCTS = """sku,name,kind
CUP,Cup,simple
LID,Lid,simple
DUO,Two cups and a lid,kit
"""
COMPONENTS = """parent_sku,component_sku,quantity
DUO,CUP,2
DUO,LID,1
"""


@pytest.fixture
def store(config_file: Path) -> Iterator[Store]:
    with config_file.open("a") as handle:
        handle.write('\n[[channels]]\ncode = "shop"\nconnector = "manual"\nwarehouses = ["main"]\n')
    opened = open_store(config_file)
    import_products(opened.engine, opened.csv("products.csv", PRODUCTS))
    import_components(opened.engine, opened.csv("components.csv", COMPONENTS))
    yield opened
    assert opened.ledger_mismatches() == []
    opened.engine.dispose()


def backdate(store: Store, since_id: int, at: datetime) -> int:
    """Date the movements after ``since_id`` at ``at``; returns the newest id."""
    m = schema.movements.c
    with store.engine.begin() as connection:
        stamp = at.replace(tzinfo=None) if connection.dialect.name == "sqlite" else at
        connection.execute(update(schema.movements).where(m.id > since_id).values(at=stamp))
        return int(connection.execute(select(func.max(m.id))).scalar() or 0)


def test_sku_history_shows_a_kits_sellable_change_on_the_day_its_component_changed(
    store: Store,
) -> None:
    now = datetime.now(UTC)
    # Day -10: 10 CUP and 8 LID in main (5 DUO from components), 3 pre-packed DUO at FBA.
    import_stock(
        store.engine,
        store.settings,
        store.csv("s1.csv", "sku,warehouse,on_hand\nCUP,main,10\nLID,main,8\nDUO,fba-us,3\n"),
    )
    last = backdate(store, 0, now - timedelta(days=10))
    # Day -3: a count finds 4 CUP (2 DUO).
    import_stock(
        store.engine, store.settings, store.csv("s2.csv", "sku,warehouse,on_hand\nCUP,main,4\n")
    )
    last = backdate(store, last, now - timedelta(days=3))
    # Day -1: an order for 1 DUO allocates 2 CUP and 1 LID (1 DUO left).
    book = OrderBook(store.engine, store.settings)
    orders = store.csv(
        "orders.csv",
        "channel,order_id,sku,quantity,warehouse,line_id,status\nshop,1,DUO,1,main,1,open\n",
    )
    book.apply(read_orders_csv(orders, store.settings, book.live.catalog, store.engine))
    backdate(store, last, now - timedelta(days=1))

    board = Dashboard(store.engine, store.settings)
    try:
        with TestClient(create_app(board)) as client:
            daily = client.get("/api/skus/DUO").json()["daily"]
            page = client.get("/skus/DUO").text
            cup = client.get("/api/skus/CUP").json()["daily"]
    finally:
        board.close()

    today = datetime.now(UTC).date()
    assert daily["days"] == [(today - timedelta(days=29 - i)).isoformat() for i in range(30)]
    main = daily["by_warehouse"]["main"]
    fba = daily["by_warehouse"]["fba-us"]
    # Index 19 is day -10, 26 day -3, 28 day -1, 29 today.
    assert main["sellable"] == [0] * 19 + [5] * 7 + [2] * 2 + [1] * 2
    assert fba["sellable"] == [0] * 19 + [3] * 11
    assert fba["on_hand"] == fba["available"] == [0] * 19 + [3] * 11
    assert main["on_hand"] == main["available"] == [0] * 30  # no pre-packed DUO in main
    assert daily["sellable"] == [0] * 19 + [8] * 7 + [5] * 2 + [4] * 2
    assert daily["on_hand"] == [0] * 19 + [3] * 11
    assert cup["on_hand"] == [0] * 19 + [10] * 7 + [4] * 4
    assert cup["available"] == [0] * 19 + [10] * 7 + [4] * 2 + [2] * 2
    assert cup["sellable"] == cup["available"]

    # The page prints the same figures (the chart's legend and its table).
    assert "sellable: 4</text>" in page
    day3 = (today - timedelta(days=3)).isoformat()
    day4 = (today - timedelta(days=4)).isoformat()
    assert f'<tr data-day="{day4}"><th scope="row">{day4}</th>' in page
    row4 = page.split(f'<tr data-day="{day4}">')[1].split("</tr>")[0]
    row3 = page.split(f'<tr data-day="{day3}">')[1].split("</tr>")[0]
    assert '<td class="num" data-col="main-sellable">5</td>' in row4
    assert '<td class="num" data-col="main-sellable">2</td>' in row3
    assert '<td class="num" data-col="sellable">8</td>' in row4

    # Today's point is the CLI's figure.
    result = CliRunner().invoke(cli, ["--config", str(store.config), "stock", "DUO", "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    items = printed["items"] if isinstance(printed, dict) else printed
    by_warehouse = {item["warehouse"]: item["sellable"] for item in items}
    assert by_warehouse == {"main": main["sellable"][-1], "fba-us": fba["sellable"][-1]}
