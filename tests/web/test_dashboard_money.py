"""The money page's margin per kit and assembly: every composite sold, a kit's cost from
its components and an assembly's from its own built units, each ``cogs --json``'s lines
totalled; simple SKUs are not listed there."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from sellable.cli import cli
from sellable.imports import import_components, import_products
from sellable.web import Dashboard, create_app
from tests.imports import EXAMPLES, Store, open_store

STOCK = """sku,warehouse,on_hand,unit_cost
BEANS-12OZ,main,50,6.50
MUG-CERAMIC,main,30,3.20
SCOOP-WOOD,main,100,0.80
GIFT-SET-COFFEE,main,10,11.00
"""
# The assembly's 3 from its 10 built units (3 x 11.00); the kit's 2 from components
# (2 x (6.50 + 3.20 + 0.80)); the mug is simple.
ORDERS = """channel,order_id,sku,quantity,warehouse,line_id,status,created_at,unit_price
shop,1,GIFT-SET-COFFEE,3,main,1,shipped,,29.00
shop,2,GIFT-KIT-COFFEE,2,main,1,shipped,,27.00
shop,3,MUG-CERAMIC,1,main,1,shipped,,9.00
"""


def run(store: Store, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--config", str(store.config), *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def store(config_file: Path) -> Iterator[Store]:
    with config_file.open("a") as handle:
        handle.write('\n[[channels]]\ncode = "shop"\nconnector = "manual"\nwarehouses = ["main"]\n')
    opened = open_store(config_file)
    import_products(opened.engine, EXAMPLES / "products.csv")
    import_components(opened.engine, EXAMPLES / "components.csv")
    run(opened, "import", "stock", str(opened.csv("stock.csv", STOCK)), "--json")
    run(opened, "import", "orders", str(opened.csv("orders.csv", ORDERS)), "--json")
    yield opened
    assert opened.ledger_mismatches() == []
    opened.engine.dispose()


def test_money_margin_lists_every_composite_sold_kits_and_assemblies(store: Store) -> None:
    board = Dashboard(store.engine, store.settings)
    try:
        with TestClient(create_app(board)) as client:
            margin = client.get("/api/money").json()["margin"]
            page = client.get("/money").text
    finally:
        board.close()
    assert margin["by_composite"] == [
        {
            "sku": "GIFT-KIT-COFFEE",
            "kind": "kit",
            "lines": 1,
            "revenue": "54.00",
            "cost": "21.00",
            "margin": "33.00",
            "lines_without_revenue": 0,
        },
        {
            "sku": "GIFT-SET-COFFEE",
            "kind": "assembly",
            "lines": 1,
            "revenue": "87.00",
            "cost": "33.00",
            "margin": "54.00",
            "lines_without_revenue": 0,
        },
    ]
    # by_kit stays what it was: the lines whose cost came from components.
    assert [k["sku"] for k in margin["by_kit"]] == ["GIFT-KIT-COFFEE"]

    # The same figures as the CLI's cogs lines.
    lines = run(store, "cogs", "--json")
    lines = lines["lines"] if isinstance(lines, dict) else lines
    by_sku = {line["sku"]: line for line in lines}
    assert by_sku["GIFT-SET-COFFEE"]["cost"] == "33.00"
    assert by_sku["GIFT-KIT-COFFEE"]["cost"] == "21.00"

    table = page.split('<table id="margin-kits"')[1].split("</table>")[0]
    assert re.findall(r'<tr data-sku="([^"]+)">', table) == ["GIFT-KIT-COFFEE", "GIFT-SET-COFFEE"]
    assert '<td data-col="kind">assembly</td>' in table
    assert '<td data-col="margin" class="num">54.00</td>' in table
    assert "MUG-CERAMIC" not in table
