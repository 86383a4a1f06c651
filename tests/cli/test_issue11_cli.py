"""Issue 11 as a new user meets it: a configuration file, ``sellable init``, the catalog,
stock and orders as CSV files, and what ``stock --json``, ``orders --json`` and
``explain --channel`` then say. On SQLite and PostgreSQL.

1. a component reached by two paths: X = A + K, K = A, 10 A sell 5; 5 allocated, 6 held;
2. a held line claims its demand (``prepackaged.held``), and the next mug goes to it;
3. an order without a warehouse routes among its channel's warehouses (``allocations``);
4. a SKU allowing orders exceeding stock takes any quantity;
and the new CSV columns: products ``use_component_inventory``, orders ``options``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

# The issue's configuration: main (assembles on demand) and tpl, channel woo over both.
from tests.orders.test_issue11_reproductions import CONFIG
from tests.orders.test_order_book import invoke

PRODUCTS = "sku,name,kind,allow_backorder,assembly_on_demand\n"
COMPONENTS = "parent_sku,component_sku,quantity,slot\n"
STOCK = "sku,warehouse,on_hand\n"
ORDERS = "channel,order_id,sku,quantity,warehouse,line_id,status,created_at\n"


class NewUser:
    """Runs ``sellable`` commands against one configuration, writing CSV files as needed."""

    def __init__(self, folder: Path, url: str) -> None:
        self.folder = folder
        self.config = folder / "sellable.toml"
        self.config.write_text(CONFIG.format(url=url))
        self.files = 0
        self.ok("init")

    def ok(self, *args: str) -> str:
        result = invoke(self.config, *args)
        assert result.exit_code == 0, result.output
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def write(self, header: str, *rows: str) -> str:
        self.files += 1
        path = self.folder / f"file{self.files}.csv"
        path.write_text(header + "".join(row + "\n" for row in rows), encoding="utf-8")
        return str(path)

    def load(self, products: list[str], components: list[str], stock: list[str]) -> None:
        self.ok("import", "products", self.write(PRODUCTS, *products))
        if components:
            self.ok("import", "components", self.write(COMPONENTS, *components))
        self.ok("import", "stock", self.write(STOCK, *stock))

    def orders(self, *rows: str, header: str = ORDERS) -> dict[str, Any]:
        summary: dict[str, Any] = self.json("import", "orders", self.write(header, *rows))
        return summary

    def position(self, sku: str, warehouse: str = "main") -> dict[str, Any]:
        (found,) = self.json("stock", sku, "--warehouse", warehouse)
        return dict(found)

    def sellable(self, sku: str, warehouse: str = "main") -> int:
        return int(self.position(sku, warehouse)["sellable"])

    def line(self, order_id: str) -> dict[str, Any]:
        (order,) = [o for o in self.json("orders") if o["order_id"] == order_id]
        (line,) = order["lines"]
        return dict(line)


@pytest.fixture
def user(tmp_path: Path, database_url: str) -> NewUser:
    return NewUser(tmp_path, database_url)


def test_cli_issue11_1_shared_component_sells_5_allocates_5_holds_6(user: NewUser) -> None:
    user.load(
        ["A,Part A,simple,false,", "K,Kit of A,kit,false,", "X,A and K,kit,false,"],
        ["X,A,1,", "X,K,1,", "K,A,1,"],
        ["A,main,10"],
    )
    assert (user.sellable("A"), user.sellable("K"), user.sellable("X")) == (10, 10, 5)

    assert user.orders("woo,five,X,5,main,,,")["lines_allocated"] == 1
    assert user.line("five")["allocations"] == [{"warehouse": "main", "quantity": 5}]
    assert user.position("A")["prepackaged"]["allocated"] == 10
    user.orders("woo,five,X,5,main,,cancelled,")
    assert user.sellable("X") == 5

    summary = user.orders("woo,six,X,6,main,,,")
    assert (summary["lines_allocated"], summary["lines_held"]) == (0, 1)
    assert user.line("six")["hold_reason"].startswith("short 2 × A")


def test_cli_issue11_2_held_line_shows_as_held_and_gets_the_next_mug(user: NewUser) -> None:
    user.load(
        [
            "BEANS,Beans,simple,false,",
            "MUG,Mug,simple,false,",
            "SCOOP,Scoop,simple,false,",
            "SET,Coffee gift set,kit,false,",
            "PAIR,Two mugs,kit,false,",
        ],
        ["SET,BEANS,1,", "SET,MUG,1,", "SET,SCOOP,1,", "PAIR,MUG,2,"],
        ["BEANS,main,50", "MUG,main,29", "SCOOP,main,100"],
    )
    assert user.sellable("SET") == 29

    assert user.orders("woo,thirty,SET,30,main,,,2026-12-01T09:00:00Z")["lines_held"] == 1

    mug = user.position("MUG")
    assert mug["prepackaged"]["held"] == 30
    assert mug["sellable"] == 0
    assert (user.sellable("SET"), user.sellable("PAIR"), user.sellable("BEANS")) == (0, 0, 20)

    summary = user.json("import", "stock", user.write(STOCK, "MUG,main,30"))
    assert summary["held_lines_allocated"] == 1
    assert user.line("thirty")["status"] == "allocated"
    mug = user.position("MUG")
    assert (mug["prepackaged"]["held"], mug["prepackaged"]["allocated"]) == (0, 30)
    assert (mug["sellable"], user.sellable("BEANS")) == (0, 20)


def test_cli_issue11_3_an_order_without_warehouse_routes_among_the_channel_warehouses(
    user: NewUser,
) -> None:
    user.load(["MUG,Mug,simple,false,"], [], ["MUG,main,2", "MUG,tpl,10"])
    (listing,) = user.json("explain", "MUG", "--channel", "woo")["listings"]
    assert listing["quantity"] == 12

    assert user.orders("woo,five,MUG,5,,,,")["lines_allocated"] == 1
    assert user.line("five")["allocations"] == [{"warehouse": "tpl", "quantity": 5}]
    user.orders("woo,five,MUG,5,,,cancelled,")

    assert user.orders("woo,twelve,MUG,12,,,,")["lines_allocated"] == 1
    assert user.line("twelve")["allocations"] == [
        {"warehouse": "main", "quantity": 2},
        {"warehouse": "tpl", "quantity": 10},
    ]
    (listing,) = user.json("explain", "MUG", "--channel", "woo")["listings"]
    assert listing["quantity"] == 0
    user.orders("woo,twelve,MUG,12,,,cancelled,")

    assert user.orders("woo,thirteen,MUG,13,,,,")["lines_held"] == 1
    assert user.position("MUG", "main")["prepackaged"]["held"] == 13


def test_cli_issue11_4_backorder_sku_with_nothing_on_hand_takes_any_quantity(
    user: NewUser,
) -> None:
    user.load(["BO,May be backordered,simple,true,"], [], ["BO,main,0"])
    assert user.sellable("BO") == 0

    assert user.orders("woo,many,BO,1000,main,,,")["lines_allocated"] == 1
    assert user.position("BO")["prepackaged"]["allocated"] == 1000


def test_cli_products_use_component_inventory_column_sells_only_assembled_kits(
    user: NewUser,
) -> None:
    """Omnium's kit, sold only from assembled units; the blank row follows the warehouse."""
    user.ok(
        "import",
        "products",
        user.write(
            "sku,name,kind,use_component_inventory\n",
            "A,A,simple,",
            "B,B,simple,",
            "C,C,simple,",
            "KIT,Assembled only,kit,false",
            "LOOSE,From components,kit,",
        ),
    )
    user.ok(
        "import",
        "components",
        user.write(COMPONENTS, "KIT,A,1,", "KIT,B,2,", "KIT,C,1,", "LOOSE,A,1,"),
    )
    user.ok("import", "stock", user.write(STOCK, "A,main,80", "B,main,40", "C,main,130"))
    assert (user.sellable("KIT"), user.sellable("LOOSE")) == (0, 80)

    user.ok("import", "stock", user.write(STOCK, "KIT,main,20"))
    assert (user.sellable("KIT"), user.sellable("LOOSE")) == (20, 80)
    assert user.orders("woo,kits,KIT,21,main,,,")["lines_held"] == 1


def test_cli_orders_options_column_takes_the_chosen_option(user: NewUser) -> None:
    user.load(
        [
            "CAM,Camera,simple,false,",
            "LENS-S,Short lens,simple,false,",
            "LENS-L,Long lens,simple,false,",
            "STARTER,Camera starter kit,package,false,",
        ],
        ["STARTER,CAM,1,camera", "STARTER,LENS-S,1,lens", "STARTER,LENS-L,1,lens"],
        ["CAM,main,10", "LENS-S,main,3", "LENS-L,main,4"],
    )
    assert user.sellable("STARTER") == 7
    header = ORDERS.rstrip("\n") + ",options\n"

    summary = user.orders("woo,short,STARTER,3,main,,,,lens=LENS-S", header=header)
    assert summary["lines_allocated"] == 1
    assert user.position("LENS-S")["prepackaged"]["allocated"] == 3
    assert user.position("LENS-L")["prepackaged"]["allocated"] == 0
    assert user.orders("woo,more,STARTER,1,main,,,,lens=LENS-S", header=header)["lines_held"] == 1
