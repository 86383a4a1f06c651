"""Issue 12 through the command line, with the seeds' numbers, on SQLite and PostgreSQL:
what a bundle costs (cost layers, FIFO/FEFO, landed cost in other currencies), what it
earned (revenue split by list price, to the cent) and where its lots went (builds,
expiry, transfers, trace). Every scenario ends with ``valuation --check``.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from sellable.config import load_settings
from sellable.costing.moves import expire_lots
from sellable.store.db import create_db_engine
from sellable.store.live import LiveStock
from tests.conftest import assert_ledger_balanced
from tests.orders.test_order_book import invoke

CONFIG = """[database]
url = "{url}"

[[warehouses]]
code = "main"
kind = "own"
assembly_on_demand = true

[[warehouses]]
code = "fba"
kind = "fba"

[[channels]]
code = "shop"
connector = "manual"
warehouses = ["main"]
"""

PRODUCTS = "sku,name,kind,price,labour_cost,packaging_cost,allow_backorder\n"
COMPONENTS = "parent_sku,component_sku,quantity\n"
RECEIPTS = "sku,warehouse,quantity,unit_cost,currency,lot,expires_on,received_at,reference\n"
ORDERS = "channel,order_id,sku,quantity,warehouse,status,unit_price,currency\n"


class Books:
    """Runs ``sellable`` commands against one configuration, writing CSV files as needed."""

    def __init__(self, folder: Path, url: str) -> None:
        self.folder = folder
        self.config = folder / "sellable.toml"
        self.config.write_text(CONFIG.format(url=url))
        self.files = 0
        self.ok("init")

    def run(self, *args: str) -> Any:
        return invoke(self.config, *args)

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return str(result.stdout)

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def write(self, header: str, *rows: str) -> str:
        self.files += 1
        path = self.folder / f"file{self.files}.csv"
        path.write_text(header + "".join(row + "\n" for row in rows), encoding="utf-8")
        return str(path)

    def products(self, *rows: str) -> None:
        self.ok("import", "products", self.write(PRODUCTS, *rows))

    def components(self, *rows: str) -> None:
        self.ok("import", "components", self.write(COMPONENTS, *rows))

    def receipts(self, *rows: str) -> None:
        self.ok("import", "receipts", self.write(RECEIPTS, *rows))

    def orders(self, *rows: str) -> dict[str, Any]:
        summary: dict[str, Any] = self.json("import", "orders", self.write(ORDERS, *rows))
        return summary

    def cogs(self, *args: str) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = self.json("cogs", *args)
        return lines

    def check(self) -> dict[str, Any]:
        result = self.run("valuation", "--check", "--json")
        data: dict[str, Any] = json.loads(result.stdout)
        assert result.exit_code == 0 and data["ok"], data
        return data

    def engine(self) -> Engine:
        return create_db_engine(load_settings(self.config))


@pytest.fixture
def books(tmp_path: Path, database_url: str) -> Any:
    opened = Books(tmp_path, database_url)
    yield opened
    engine = opened.engine()
    try:
        assert_ledger_balanced(engine)
    finally:
        engine.dispose()


def gift_kit(books: Books, prices: tuple[str, str, str] = ("5", "14", "1")) -> None:
    books.products(
        f"MUG,Mug,simple,{prices[0]},,,",
        f"COFFEE,Coffee,simple,{prices[1]},,,",
        f"SPOON,Spoon,simple,{prices[2]},,,",
        "GIFT,Gift kit,kit,20,,,",
    )
    books.components("GIFT,MUG,1", "GIFT,COFFEE,1", "GIFT,SPOON,1")


def test_seed_001_a_kit_costs_its_components_layers_at_shipment(books: Books) -> None:
    """Mug at $4 in January and $5 in February, coffee $8, spoon $1: the kit shipped
    before the February mugs are needed costs 13.00, the one after 14.00. The $20 kit's
    revenue splits 5.00 / 14.00 / 1.00 with list prices in proportion 5 : 14 : 1."""
    gift_kit(books, ("2.50", "7", "0.50"))  # 5 : 14 : 1, not the amounts themselves
    books.receipts(
        "MUG,main,1,4,,M-JAN,,2026-01-05,PO-1",
        "COFFEE,main,2,8,,,,2026-01-05,PO-1",
        "SPOON,main,2,1,,,,2026-01-05,PO-1",
        "MUG,main,1,5,,M-FEB,,2026-02-03,PO-2",
    )
    books.orders("shop,1001,GIFT,1,main,shipped,20,")
    # The second is imported open, then shipped: its revenue is read back from the store.
    books.orders("shop,1002,GIFT,1,main,open,20,USD")
    (stored,) = [o for o in books.json("orders") if o["order_id"] == "1002"]
    assert (stored["lines"][0]["revenue"], stored["lines"][0]["currency"]) == ("20.00", "USD")
    books.orders("shop,1002,GIFT,1,main,shipped,20,USD")
    january, february = books.cogs()
    assert (january["order_id"], january["cost"], january["revenue"]) == ("1001", "13.00", "20.00")
    assert (february["order_id"], february["cost"], february["margin"]) == ("1002", "14.00", "6.00")
    assert january["estimated"] is False
    assert [(c["sku"], c["quantity"], c["cost"], c["revenue"]) for c in january["components"]] == [
        ("MUG", 1, "4.00", "5.00"),
        ("COFFEE", 1, "8.00", "14.00"),
        ("SPOON", 1, "1.00", "1.00"),
    ]
    assert [c["cost"] for c in february["components"]] == ["5.00", "8.00", "1.00"]
    # The kit itself never holds cost: no layer of GIFT ever existed.
    assert books.json("layers", "GIFT") == []
    # The Sale movements name the lot and the value.
    sales = [m for m in books.json("ledger", "MUG") if m["type"] == "Sale"]
    assert [(m["lot"], m["value"]) for m in sales] == [("M-JAN", "-4.00"), ("M-FEB", "-5.00")]
    check = books.check()
    assert (check["receipts"], check["cogs"], check["valuation"]) == ("27.00", "27.00", "0.00")
    totals = books.ok("cogs")
    assert "revenue 40.00, cost 27.00, margin 13.00" in totals


def test_revenue_split_rounds_to_the_cent_by_largest_remainder(books: Books) -> None:
    """$10 over three equal prices: 3.34 / 3.33 / 3.33 (the parts add up exactly)."""
    gift_kit(books, ("1", "1", "1"))
    books.receipts("MUG,main,1,1,,,,,", "COFFEE,main,1,1,,,,,", "SPOON,main,1,1,,,,,")
    books.orders("shop,A,GIFT,1,main,shipped,10,")
    (line,) = books.cogs()
    parts = [c["revenue"] for c in line["components"]]
    assert parts == ["3.34", "3.33", "3.33"]
    # Without list prices the split follows cost.
    books.products("MUG,Mug,simple,,,,")  # the mug loses its price
    books.receipts("MUG,main,1,2,,,,,", "COFFEE,main,1,1,,,,,", "SPOON,main,1,1,,,,,")
    books.orders("shop,B,GIFT,1,main,shipped,10,")
    line = books.cogs("--order", "B")[0]
    assert [c["revenue"] for c in line["components"]] == ["5.00", "2.50", "2.50"]
    books.check()


def test_omnium_build_stores_components_labour_and_packaging_on_the_kit_layer(
    books: Books,
) -> None:
    """20 kits (1×A, 2×B, 1×C) from FIFO layers at two prices: the kit layer costs exactly
    the consumed layers plus labour and packaging; selling kits costs that layer."""
    books.products(
        "A,A,simple,,,,",
        "B,B,simple,,,,",
        "C,C,simple,,,,",
        "KIT,Kit,assembly,10,0.75,0.25,",
    )
    books.components("KIT,A,1", "KIT,B,2", "KIT,C,1")
    books.receipts(
        "A,main,10,2.00,,A-1,,2026-01-01,",
        "A,main,20,2.50,,A-2,,2026-02-01,",
        "B,main,30,1.00,,B-1,,2026-01-01,",
        "B,main,20,1.20,,B-2,,2026-02-01,",
        "C,main,20,0.50,,C-1,,2026-01-01,",
    )
    (made,) = books.json("build", "KIT", "20", "--warehouse", "main", "--lot", "KIT-1")
    # A: 10 × 2.00 + 10 × 2.50 = 45; B: 30 × 1.00 + 10 × 1.20 = 42; C: 20 × 0.50 = 10.
    assert made["cost"] == {
        "components": "97.00",
        "labour": "15.00",
        "packaging": "5.00",
        "unit_cost": "5.8500",
        "total": "117.00",
    }
    assert made["lot"] == "KIT-1"
    assert sorted(
        (c["sku"], c["lot"], c["quantity"], c["unit_cost"]) for c in made["consumed"]
    ) == [
        ("A", "A-1", 10, "2.0000"),
        ("A", "A-2", 10, "2.5000"),
        ("B", "B-1", 30, "1.0000"),
        ("B", "B-2", 10, "1.2000"),
        ("C", "C-1", 20, "0.5000"),
    ]
    (layer,) = books.json("layers", "KIT")
    assert (layer["quantity"], layer["unit_cost"], layer["lot"], layer["source"]) == (
        20,
        "5.8500",
        "KIT-1",
        "build",
    )
    books.orders("shop,K1,KIT,5,main,shipped,10,")
    (line,) = books.cogs()
    assert (line["cost"], line["revenue"], line["margin"]) == ("29.25", "50.00", "20.75")
    assert "components" not in line  # an assembly sale consumes the assembly's own layers
    check = books.check()
    assert (check["labour_and_packaging"], check["cogs"]) == ("20.00", "29.25")
    valuation = books.json("valuation")
    rows = {(r["sku"], r["warehouse"]): r for r in valuation["rows"]}
    assert (rows[("KIT", "main")]["quantity"], rows[("KIT", "main")]["value"]) == (15, "87.75")
    assert rows[("A", "main")]["unit_cost"] == "2.5000"


def test_a_receipt_in_another_currency_converts_at_the_rate_valid_on_its_date(
    books: Books,
) -> None:
    books.products("MUG,Mug,simple,,,,")
    books.ok(
        "import",
        "rates",
        books.write("currency,rate,valid_from\n", "EUR,1.10,2026-01-01", "EUR,1.2,2026-02-01"),
    )
    books.receipts(
        "MUG,main,2,10,EUR,,,2026-01-31,",
        "MUG,main,1,10,eur,,,2026-02-01T09:00:00Z,",
    )
    first, second = books.json("layers", "MUG")
    assert (first["unit_cost"], first["currency"], first["original_unit_cost"], first["rate"]) == (
        "11.0000",
        "EUR",
        "10.0000",
        "1.1",
    )
    assert (second["unit_cost"], second["rate"]) == ("12.0000", "1.2")
    # A missing rate rejects the row, naming the currency and the date; nothing is written.
    result = books.run(
        "import", "receipts", books.write(RECEIPTS, "MUG,main,1,3,GBP,,,2026-03-01,")
    )
    assert result.exit_code == 3
    assert "line 2" in result.output and "GBP" in result.output and "2026-03-01" in result.output
    result = books.run(
        "import", "receipts", books.write(RECEIPTS, "MUG,main,1,3,EUR,,,2025-12-31,")
    )
    assert result.exit_code == 3 and "no EUR rate valid on 2025-12-31" in result.output
    assert books.check()["receipts"] == "34.00"


def test_units_leave_earliest_expiry_first_then_oldest(books: Books) -> None:
    books.products("MILK,Milk,simple,,,,")
    books.receipts(
        "MILK,main,2,1.00,,OLD-NO-DATE,,2026-01-01,",
        "MILK,main,2,1.10,,LATE,2099-03-01,2026-01-02,",
        "MILK,main,2,1.20,,EARLY,2099-01-01,2026-01-03,",
    )
    assert [x["lot"] for x in books.json("layers", "MILK")] == ["EARLY", "LATE", "OLD-NO-DATE"]
    books.orders("shop,M1,MILK,3,main,shipped,,")
    sale = [m for m in books.json("ledger", "MILK") if m["type"] == "Sale"]
    assert [(m["lot"], m["value"]) for m in sale] == [("EARLY,LATE", "-3.50")]
    assert [(x["lot"], x["quantity"]) for x in books.json("layers", "MILK")] == [
        ("LATE", 1),
        ("OLD-NO-DATE", 2),
    ]
    books.check()


def test_built_lot_expires_with_its_earliest_component_and_trace_goes_both_ways(
    books: Books,
) -> None:
    """Two levels of assembly: PASTE (from FLOUR and EGG) then PIE (from PASTE and FRUIT),
    shipped in an order. ``trace`` walks from the egg lot to the order and back."""
    books.products(
        "FLOUR,Flour,simple,,,,",
        "EGG,Egg,simple,,,,",
        "FRUIT,Fruit,simple,,,,",
        "PASTE,Paste,assembly,,,,",
        "PIE,Pie,assembly,30,1,0.5,",
    )
    books.components("PASTE,FLOUR,1", "PASTE,EGG,2", "PIE,PASTE,1", "PIE,FRUIT,1")
    books.receipts(
        "FLOUR,main,5,1,,FL-1,2099-06-01,,",
        "EGG,main,10,0.25,,EGG-7,2099-02-01,,",
        "FRUIT,main,5,2,,FR-3,2099-04-01,,",
    )
    (paste,) = books.json("build", "PASTE", "4", "--warehouse", "main", "--lot", "PA-1")
    assert (paste["lot"], paste["expires_on"]) == ("PA-1", "2099-02-01")
    # --expires-on later than the components': the components' earliest wins.
    (pie,) = books.json(
        "build", "PIE", "3", "--warehouse", "main", "--lot", "PIE-1", "--expires-on", "2099-12-31"
    )
    assert (pie["lot"], pie["expires_on"]) == ("PIE-1", "2099-02-01")
    # PIE: PASTE (1 flour + 2 × 0.25 egg = 1.50) + FRUIT 2 + labour 1 + packaging 0.5 = 5.00
    assert pie["cost"]["unit_cost"] == "5.0000" and pie["cost"]["total"] == "15.00"
    # --expires-on earlier than the components' wins.
    (early,) = books.json(
        "build", "PASTE", "1", "--warehouse", "main", "--expires-on", "2099-01-15"
    )
    assert early["expires_on"] == "2099-01-15" and early["lot"] == early["id"]
    books.orders("shop,P1,PIE,2,main,shipped,60,")

    forward = books.json("trace", "EGG-7")
    (egg,) = forward["skus"]
    (paste_build,) = [b for b in egg["forward"]["builds"] if b["lot"] == "PA-1"]
    assert (paste_build["sku"], paste_build["quantity"], paste_build["built"]) == ("PASTE", 8, 4)
    (pie_build,) = paste_build["then"]["builds"]
    assert (pie_build["sku"], pie_build["lot"], pie_build["quantity"]) == ("PIE", "PIE-1", 3)
    assert pie_build["then"]["orders"] == [
        {"channel": "shop", "order_id": "P1", "line_id": "PIE", "quantity": 2}
    ]
    assert egg["on_hand"] == [{"warehouse": "main", "quantity": 0}] or egg["on_hand"] == []

    backward = books.json("trace", "PIE-1", "--sku", "PIE")
    (pie_entry,) = backward["skus"]
    components = {(c["sku"], c["lot"]): c for c in pie_entry["backward"]}
    assert components[("FRUIT", "FR-3")]["quantity"] == 3
    paste_part = components[("PASTE", "PA-1")]
    assert paste_part["quantity"] == 3
    inner = {(c["sku"], c["lot"], c["quantity"]) for c in paste_part["components"]}
    assert inner == {("FLOUR", "FL-1", 4), ("EGG", "EGG-7", 8)}
    assert pie_entry["on_hand"] == [{"warehouse": "main", "quantity": 1}]
    text = books.ok("trace", "EGG-7")
    assert "shipped 2 in order shop:P1 line PIE" in text
    books.check()


def test_an_expired_lot_is_not_sellable_and_drops_out_of_what_is_pushed(books: Books) -> None:
    books.products("MILK,Milk,simple,,,,")
    yesterday = (date.today() - timedelta(days=2)).isoformat()
    books.receipts(
        f"MILK,main,4,1,,SOUR,{yesterday},,",
        "MILK,main,3,1,,FRESH,2099-01-01,,",
    )
    (position,) = books.json("stock", "MILK", "--warehouse", "main")
    assert position["prepackaged"]["expired"] == 4
    assert (position["prepackaged"]["on_hand"], position["sellable"]) == (7, 3)
    # Four units are not on offer: an order of 4 is held (never served from SOUR) ...
    summary = books.orders("shop,E0,MILK,4,main,open,,")
    assert summary["lines_held"] == 1
    books.orders("shop,E0,MILK,4,main,cancelled,,")
    # ... and one of 2 is allocated from FRESH.
    summary = books.orders("shop,E1,MILK,2,main,open,,")
    assert summary["lines_allocated"] == 1
    # At a later date change the FRESH lot expires too: the daemon's sweep (and what the
    # channel is offered) follows.
    engine = books.engine()
    try:
        live = LiveStock(engine, load_settings(books.config))
        assert live.sellable_in("MILK", ["main"]) == 1
        changed = expire_lots(engine, date(2099, 1, 2), live.record_levels, live.known_stock)
        assert {(s, w) for s, w in changed} == {("MILK", "main")}
        assert live.sellable_in("MILK", ["main"]) == 0
    finally:
        engine.dispose()
    (position,) = books.json("stock", "MILK", "--warehouse", "main")
    assert position["prepackaged"]["expired"] == 7 and position["sellable"] == 0
    # The 2 units allocated before FRESH expired ship: they leave the expired FRESH layer
    # at their cost (not a deficit at an estimate, with expired units left on hand).
    books.orders("shop,E1,MILK,2,main,shipped,,")
    (line,) = books.cogs()
    assert (line["cost"], line["estimated"]) == ("2.00", False)
    (position,) = books.json("stock", "MILK", "--warehouse", "main")
    prepackaged = position["prepackaged"]
    assert (prepackaged["on_hand"], prepackaged["expired"], prepackaged["allocated"]) == (5, 5, 0)
    assert [(x["lot"], x["quantity"]) for x in books.json("layers", "MILK")] == [
        ("SOUR", 4),
        ("FRESH", 1),
    ]
    # A count that lowers on hand takes expired units first, and records the write-off.
    books.ok("import", "stock", books.write("sku,warehouse,on_hand\n", "MILK,main,2"))
    (position,) = books.json("stock", "MILK", "--warehouse", "main")
    assert (position["prepackaged"]["on_hand"], position["prepackaged"]["expired"]) == (2, 2)
    counted = [m for m in books.json("ledger", "MILK") if m["type"] == "Adjustment"]
    assert [(m["quantity"], m["expired_change"], m["value"]) for m in counted] == [
        (-3, -3, "-3.00")
    ]
    assert books.check()["write_offs"] == "3.00"


def test_transfers_keep_cost_lot_and_expiry_and_refuse_more_than_available(books: Books) -> None:
    """Pre-packed bundles go to FBA, as in seed 001."""
    books.products("BOX,Gift box,simple,,,,")
    books.receipts("BOX,main,5,13,,BX-1,2099-05-01,2026-01-01,", "BOX,main,5,14,,BX-2,,2026-02-01,")
    moved = books.json("transfer", "BOX", "6", "--from", "main", "--to", "fba")
    assert moved["value"] == "79.00"  # 5 × 13 (BX-1, earliest expiry) + 1 × 14
    fba = books.json("layers", "BOX", "--warehouse", "fba")
    assert [
        (x["lot"], x["quantity"], x["unit_cost"], x["expires_on"], x["source"]) for x in fba
    ] == [
        ("BX-1", 5, "13.0000", "2099-05-01", "transfer"),
        ("BX-2", 1, "14.0000", None, "transfer"),
    ]
    result = books.run("transfer", "BOX", "5", "--from", "main", "--to", "fba")
    assert result.exit_code == 3 and "only 4 available" in result.output
    result = books.run("transfer", "BOX", "1", "--from", "main", "--to", "fba", "--lot", "BX-1")
    assert result.exit_code == 3 and "lot 'BX-1'" in result.output
    check = books.check()
    assert (check["transfers"], check["valuation"]) == ("0.00", "135.00")
    trace = books.json("trace", "BX-1")
    (entry,) = trace["skus"]
    assert [(t["from"], t["quantity"]) for t in entry["forward"]["transfers"]] == [("main", 5)]
    assert entry["on_hand"] == [{"warehouse": "fba", "quantity": 5}]


def test_selling_past_stock_is_estimated_then_settled_by_the_next_receipt(books: Books) -> None:
    books.products("PRE,Preorder,simple,,,,true")
    books.receipts("PRE,main,1,4,,,,2026-01-01,")
    books.orders("shop,S1,PRE,3,main,shipped,10,")
    (line,) = books.cogs()
    assert (line["cost"], line["estimated"]) == ("12.00", True)  # 1 × 4 + 2 estimated at 4
    assert books.check()["valuation"] == "-8.00"
    books.receipts("PRE,main,5,5,,,,2026-02-01,")
    (line,) = books.cogs()
    assert (line["cost"], line["estimated"], line["margin"]) == ("14.00", False, "16.00")
    check = books.check()
    assert (check["adjustments"], check["valuation"]) == ("-2.00", "15.00")


def test_counts_open_layers_at_the_given_or_last_known_cost_else_uncosted(books: Books) -> None:
    books.products("NUT,Nut,simple,,,,", "BOLT,Bolt,simple,,,,")
    books.receipts("NUT,main,1,0.30,,,,,")
    stock = "sku,warehouse,on_hand,unit_cost\n"
    books.ok("import", "stock", books.write(stock, "NUT,main,5,", "BOLT,main,4,"))
    books.ok("import", "stock", books.write(stock, "NUT,main,7,0.40"))
    layers = books.json("layers", "NUT")
    assert [(x["quantity"], x["unit_cost"], x["source"]) for x in layers] == [
        (1, "0.3000", "receipt"),
        (4, "0.3000", "count"),
        (2, "0.4000", "count"),
    ]
    valuation = books.json("valuation")
    rows = {r["sku"]: r for r in valuation["rows"]}
    assert rows["BOLT"]["uncosted"] == 4 and rows["BOLT"]["value"] == "0.00"
    assert valuation["totals"] == {"quantity": 11, "value": "2.30", "uncosted": 4}
    assert "4 unit(s) uncosted" in books.ok("valuation")
    books.check()


def test_bad_receipt_rows_are_named_and_nothing_is_written(books: Books) -> None:
    books.products("MUG,Mug,simple,,,,")
    path = books.write(
        RECEIPTS,
        "MUG,main,2,4,,,,,",
        "NOPE,main,1,1,,,,,",
        "MUG,mars,1,1,,,,,",
        "MUG,main,0,1,,,,,",
        "MUG,main,1,-1,,,,,",
        "MUG,main,1,1,EU,,,,",
        "MUG,main,1,1,,,2026-13-01,,",
        "MUG,main,1,1,,,,yesterday,",
    )
    result = books.run("import", "receipts", path)
    assert result.exit_code == 3
    for expected in (
        "line 3",
        "'NOPE'",
        "line 4",
        "'mars'",
        "line 5",
        "line 6",
        "line 7",
        "'EU'",
        "line 8",
        "2026-13-01",
        "line 9",
        "yesterday",
    ):
        assert expected in result.output, (expected, result.output)
    assert books.json("layers", "MUG") == []


def test_a_read_only_database_still_reads_when_lots_are_due_to_expire(tmp_path: Path) -> None:
    """``stock`` marks lots past their date expired first; on a read-only database it says
    so on stderr and still reads (issue 18: a read-only database serves the readers)."""
    books = Books(tmp_path, f"sqlite:///{tmp_path / 'sellable.db'}")
    books.products("MILK,Milk,simple,,,,")
    books.receipts("MILK,main,4,1,,SOUR,2020-01-01,,")
    engine = books.engine()
    try:
        # As if the lot had expired since the last sweep: the layer and the row unmarked.
        with engine.begin() as connection:
            connection.execute(text("UPDATE cost_layers SET expired = false"))
            connection.execute(text("UPDATE stock SET expired = 0"))
            connection.execute(text("UPDATE movements SET expired_change = 0"))
    finally:
        engine.dispose()
    read_only = tmp_path / "ro"
    read_only.mkdir()
    config = read_only / "sellable.toml"
    config.write_text(
        CONFIG.format(url=f"sqlite:///file:{tmp_path / 'sellable.db'}?mode=ro&uri=true")
    )
    result = invoke(config, "stock", "MILK", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["prepackaged"]["expired"] == 0
    assert "could not be marked expired" in result.stderr  # and the figures still come
    # Writable again, the next reader sweeps.
    (position,) = books.json("stock", "MILK", "--warehouse", "main")
    assert (position["prepackaged"]["expired"], position["sellable"]) == (4, 0)


def test_a_component_built_past_stock_is_settled_into_what_the_build_made(books: Books) -> None:
    """X = A + C is built on demand while C is short (C allows orders exceeding stock): C
    is estimated at its last cost, 2.00. When C arrives at 5.00, the 3.00 difference goes
    to the X still on hand (its layer), so the X line later costs 8.00, not 5.00."""
    books.products("A,A,simple,,,,", "C,C,simple,,,,true", "X,X,assembly,,,,")
    books.components("X,A,1", "X,C,1")
    books.receipts("A,main,2,3,,,,2026-01-01,", "C,main,1,2,,,,2026-01-01,")
    books.orders("shop,C1,C,1,main,shipped,,")  # C's last known cost: 2.00
    books.orders("shop,X1,X,1,main,open,,")  # built on demand: C past stock
    (layer,) = books.json("layers", "X")
    assert (layer["quantity"], layer["unit_cost"]) == (1, "5.0000")
    books.receipts("C,main,1,5,,,,2026-02-01,")
    (layer,) = books.json("layers", "X")
    assert (layer["quantity"], layer["value"]) == (1, "8.00")
    books.orders("shop,X1,X,1,main,shipped,,")
    line = books.cogs("--order", "X1")[0]
    assert (line["cost"], line["estimated"]) == ("8.00", False)
    check = books.check()
    assert (check["receipts"], check["cogs"], check["valuation"]) == ("13.00", "10.00", "3.00")
