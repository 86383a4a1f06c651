"""The seeds' worked examples, reproduced exactly through the CLI, CSV files and the order book,
on SQLite and PostgreSQL.

* 004 FAQ: the complete assembly lifecycle table and its transaction records; a kit sale.
* 002 Omnium: kit (pre-assembled) assembly process, 20 kits of 1×A, 2×B, 1×C.
* 000 Luminous: assembly-on-demand walk-through with the coffee gift set.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.orders.test_order_book import Store, invoke, order
from tests.orders.workers import MANUAL_SHOP

ORDERS_HEADER = "channel,order_id,sku,quantity,warehouse,status\n"


@pytest.fixture
def store(config_file: Path, tmp_path: Path) -> Iterator[Store]:
    with config_file.open("a") as handle:  # the orders' channel: it takes orders by CSV only
        handle.write(MANUAL_SHOP)
    opened = Store(config_file, tmp_path)
    yield opened
    opened.assert_ledger()
    opened.engine.dispose()


def run(store: Store, *args: str) -> str:
    """``sellable --config FILE ARGS...``; must succeed; returns stdout."""
    result = invoke(store.config, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def run_json(store: Store, *args: str) -> Any:
    return json.loads(run(store, *args, "--json"))


def import_orders(store: Store, *rows: str) -> dict[str, Any]:
    """``sellable import orders`` of a file with ``rows`` (channel,order_id,sku,qty,wh,status)."""
    path = store.file(ORDERS_HEADER + "".join(row + "\n" for row in rows))
    summary: dict[str, Any] = run_json(store, "import", "orders", str(path))
    return summary


def types(store: Store, sku: str) -> list[tuple[str, int]]:
    """The ledger of ``sku`` in main as ``sellable ledger --json`` prints it: (type, qty)."""
    return [(r["type"], r["quantity"]) for r in run_json(store, "ledger", sku, "-w", "main")]


# -- 004 FAQ: Complete Assembly Lifecycle ---------------------------------------------------------


def test_faq_complete_assembly_lifecycle(store: Store) -> None:
    store.load(
        {"FAQ-ASM": "assembly", "COMP-A": "simple", "COMP-B": "simple"},
        [("FAQ-ASM", "COMP-A", 2), ("FAQ-ASM", "COMP-B", 1)],
        {"FAQ-ASM": 0, "COMP-A": 100, "COMP-B": 100},
    )
    skus = ("FAQ-ASM", "COMP-A", "COMP-B")
    # Starting stock.
    assert store.on_hand(*skus) == (0, 100, 100)

    # Build 10 assemblies (2×A + 1×B each): +10 -> 10 | -20 -> 80 | -10 -> 90.
    (built,) = run_json(store, "build", "FAQ-ASM", "10", "--warehouse", "main")
    assert (built["id"], built["sku"], built["quantity"], built["warehouse"]) == (
        "AO-1",
        "FAQ-ASM",
        10,
        "main",
    )
    assert built["components"] == [
        {"sku": "COMP-A", "quantity": 20},
        {"sku": "COMP-B", "quantity": 10},
    ]
    assert store.on_hand(*skus) == (10, 80, 90)
    assert types(store, "FAQ-ASM") == [("AssemblyBuild", 10)]
    assert types(store, "COMP-A") == [("Adjustment", 100), ("AssemblyBuild", -20)]
    assert types(store, "COMP-B") == [("Adjustment", 100), ("AssemblyBuild", -10)]

    # Sell 3: -3 -> 7 | (unchanged) 80 | (unchanged) 90.
    imported = import_orders(store, "shop,1001,FAQ-ASM,3,main,open")
    assert (imported["lines_allocated"], imported["assembly_orders"]) == (1, 0)
    assert store.levels("FAQ-ASM") == (10, 3, 7)
    import_orders(store, "shop,1001,FAQ-ASM,3,main,shipped")
    assert store.on_hand(*skus) == (7, 80, 90)
    assert store.levels("FAQ-ASM") == (7, 0, 7)
    assert types(store, "FAQ-ASM") == [("AssemblyBuild", 10), ("Allocation", -3), ("Sale", -3)]
    # Components: no transaction at time of sale.
    assert types(store, "COMP-A") == [("Adjustment", 100), ("AssemblyBuild", -20)]
    assert types(store, "COMP-B") == [("Adjustment", 100), ("AssemblyBuild", -10)]

    # Build 5 more: +5 -> 12 | -10 -> 70 | -5 -> 85.
    (again,) = run_json(store, "build", "FAQ-ASM", "5", "--warehouse", "main")
    assert (again["id"], again["quantity"]) == ("AO-2", 5)
    assert again["components"] == [
        {"sku": "COMP-A", "quantity": 10},
        {"sku": "COMP-B", "quantity": 5},
    ]
    assert store.on_hand(*skus) == (12, 70, 85)
    assert types(store, "COMP-A")[-1] == ("AssemblyBuild", -10)
    assert types(store, "COMP-B")[-1] == ("AssemblyBuild", -5)

    # Sell 8: -8 -> 4 | (unchanged) 70 | (unchanged) 85. Taken from built stock: no build.
    sold = import_orders(store, "shop,1002,FAQ-ASM,8,main,open")
    assert sold["assembly_orders"] == 0
    import_orders(store, "shop,1002,FAQ-ASM,8,main,shipped")
    assert store.on_hand(*skus) == (4, 70, 85)
    assert types(store, "FAQ-ASM") == [
        ("AssemblyBuild", 10),
        ("Allocation", -3),
        ("Sale", -3),
        ("AssemblyBuild", 5),
        ("Allocation", -8),
        ("Sale", -8),
    ]
    assert types(store, "COMP-A") == [
        ("Adjustment", 100),
        ("AssemblyBuild", -20),
        ("AssemblyBuild", -10),
    ]
    assert types(store, "COMP-B") == [
        ("Adjustment", 100),
        ("AssemblyBuild", -10),
        ("AssemblyBuild", -5),
    ]
    # The History tab's running balance ends at the table's last row.
    assert [r["balance"] for r in run_json(store, "ledger", "FAQ-ASM")] == [10, 10, 7, 12, 12, 4]
    assert store.assembly_orders() == [
        ("FAQ-ASM", 10, "manual", None, [("COMP-A", 20), ("COMP-B", 10)]),
        ("FAQ-ASM", 5, "manual", None, [("COMP-A", 10), ("COMP-B", 5)]),
    ]


# -- 004 FAQ: Selling a Kit -----------------------------------------------------------------------


def test_faq_kit_sale_deducts_each_component_and_never_the_kit(store: Store) -> None:
    store.load(
        {"COMP-A": "simple", "COMP-B": "simple", "FAQ-KIT": "kit"},
        [("FAQ-KIT", "COMP-A", 1), ("FAQ-KIT", "COMP-B", 1)],
        {"COMP-A": 50, "COMP-B": 30},
    )
    assert store.sellable("FAQ-KIT") == 30
    import_orders(store, "shop,2001,FAQ-KIT,1,main,open")
    assert store.levels("COMP-A") == (50, 1, 49)
    assert store.levels("COMP-B") == (30, 1, 29)
    import_orders(store, "shop,2001,FAQ-KIT,1,main,shipped")
    # Component A 50 -> 49, component B 30 -> 29.
    assert store.on_hand("COMP-A", "COMP-B") == (49, 29)
    assert store.levels("COMP-A") == (49, 0, 49)
    assert store.levels("COMP-B") == (29, 0, 29)
    # Each component: Sale (negative quantity); the kit: no stock, no transaction.
    assert types(store, "COMP-A") == [("Adjustment", 50), ("Allocation", -1), ("Sale", -1)]
    assert types(store, "COMP-B") == [("Adjustment", 30), ("Allocation", -1), ("Sale", -1)]
    assert run_json(store, "ledger", "FAQ-KIT") == []
    assert store.on_hand("FAQ-KIT") == (0,)
    sale = run_json(store, "ledger", "COMP-A")[-1]
    assert (sale["reference"], sale["balance"], sale["available"]) == ("order shop:2001", 49, 49)
    assert store.sellable("FAQ-KIT") == 29


# -- 002 Omnium: kit assembly process --------------------------------------------------------------


def test_omnium_kit_assembly_process(store: Store) -> None:
    # Omnium's "kit" is pre-assembled with its own inventory: an assembly here.
    store.load(
        {"OMNI-A": "simple", "OMNI-B": "simple", "OMNI-C": "simple", "OMNI-KIT": "assembly"},
        [("OMNI-KIT", "OMNI-A", 1), ("OMNI-KIT", "OMNI-B", 2), ("OMNI-KIT", "OMNI-C", 1)],
        {"OMNI-A": 100, "OMNI-B": 80, "OMNI-C": 150},
    )
    skus = ("OMNI-A", "OMNI-B", "OMNI-C", "OMNI-KIT")
    assert store.on_hand(*skus) == (100, 80, 150, 0)
    (made,) = run_json(store, "build", "OMNI-KIT", "20", "-w", "main")
    assert made["components"] == [
        {"sku": "OMNI-A", "quantity": 20},
        {"sku": "OMNI-B", "quantity": 40},
        {"sku": "OMNI-C", "quantity": 20},
    ]
    assert store.on_hand(*skus) == (80, 40, 130, 20)
    assert types(store, "OMNI-KIT") == [("AssemblyBuild", 20)]
    assert types(store, "OMNI-B") == [("Adjustment", 80), ("AssemblyBuild", -40)]


# -- 000 Luminous: assembly-on-demand ------------------------------------------------------------


def test_luminous_assembly_on_demand_walk_through(store: Store) -> None:
    store.load(
        {
            "BEANS-12OZ": "simple",
            "MUG-CERAMIC": "simple",
            "SCOOP-WOOD": "simple",
            "GIFT-SET-COFFEE": "assembly",
        },
        [
            ("GIFT-SET-COFFEE", "BEANS-12OZ", 1),
            ("GIFT-SET-COFFEE", "MUG-CERAMIC", 1),
            ("GIFT-SET-COFFEE", "SCOOP-WOOD", 1),
        ],
        {"GIFT-SET-COFFEE": 10, "BEANS-12OZ": 50, "MUG-CERAMIC": 30, "SCOOP-WOOD": 100},
    )
    components = ("BEANS-12OZ", "MUG-CERAMIC", "SCOOP-WOOD")
    # Assembled on hand 10 | assemblable from components 30 | sellable 40.
    (position,) = run_json(store, "stock", "GIFT-SET-COFFEE", "-w", "main")
    assert position["prepackaged"]["on_hand"] == 10
    assert position["component"]["available"] == 30
    assert position["component"]["bottleneck"] == "MUG-CERAMIC"
    assert position["sellable"] == 40

    # Orders 1-10: fulfilled from assembled inventory.
    book = store.book()
    first = book.apply([order(str(n), ("GIFT-SET-COFFEE", 1)) for n in range(1, 11)])
    assert (first.orders_created, first.lines_allocated, first.lines_held) == (10, 10, 0)
    assert first.assembly_orders == 0
    assert store.assembly_orders() == []
    assert store.levels("GIFT-SET-COFFEE") == (10, 10, 0)
    assert store.on_hand(*components) == (50, 30, 100)
    assert store.sellable("GIFT-SET-COFFEE") == 30

    # Order 11: insufficient assembled stock -> assembly order created and completed.
    eleventh = book.apply([order("11", ("GIFT-SET-COFFEE", 1))])
    assert (eleventh.lines_allocated, eleventh.assembly_orders) == (1, 1)
    assert store.assembly_orders() == [
        (
            "GIFT-SET-COFFEE",
            1,
            "on-demand",
            "order shop:11",
            [("BEANS-12OZ", 1), ("MUG-CERAMIC", 1), ("SCOOP-WOOD", 1)],
        )
    ]
    assert store.levels("GIFT-SET-COFFEE") == (11, 11, 0)
    assert store.on_hand(*components) == (49, 29, 99)
    assert store.moves("GIFT-SET-COFFEE")[-2:] == [("AssemblyBuild", 1), ("Allocation", -1)]
    for sku in components:
        last = store.ledger(sku)[-1]
        assert (last["type"], last["quantity"], last["reference"]) == (
            "AssemblyBuild",
            -1,
            "assembly order AO-1 for order shop:11",
        )
    assert store.sellable("GIFT-SET-COFFEE") == 29
    assert eleventh.changed_pairs == {
        ("GIFT-SET-COFFEE", "main"),
        ("BEANS-12OZ", "main"),
        ("MUG-CERAMIC", "main"),
        ("SCOOP-WOOD", "main"),
    }

    # No mugs left: the next order is held, naming the mug, and nothing is half-assembled.
    store.count({"MUG-CERAMIC": 0})
    assert store.sellable("GIFT-SET-COFFEE") == 0
    before = store.counts()
    held = store.book().apply([order("12", ("GIFT-SET-COFFEE", 1))])
    reason = "short 1 × MUG-CERAMIC in main (have 0, need 1)"
    assert held.held == [("order shop:12", "GIFT-SET-COFFEE", reason)]
    # Nothing is built or allocated; the held line claims one of each component (the mug
    # it wants too, though there is none): one Hold movement each.
    assert (held.assembly_orders, held.movements) == (0, 3)
    after = store.counts()
    assert after["assembly_orders"] == before["assembly_orders"] == 1
    assert after["movements"] == before["movements"] + 3
    assert store.on_hand(*components) == (49, 0, 99)
    assert [store.held(sku) for sku in ("GIFT-SET-COFFEE", *components)] == [0, 1, 1, 1]
    assert store.moves("MUG-CERAMIC")[-1] == ("Hold", -1)
    assert [store.sellable(sku) for sku in components] == [48, 0, 98]
    (held_order,) = run_json(store, "orders", "--held")
    assert held_order["order_id"] == "12"
    assert held_order["lines"] == [
        {
            "line_id": "GIFT-SET-COFFEE",
            "sku": "GIFT-SET-COFFEE",
            "quantity": 1,
            "status": "held",
            "hold_reason": reason,
            "allocations": [],
            "options": {},
            "revenue": None,
            "currency": None,
            "release": {
                "ready": False,
                "needs": [
                    {
                        "sku": "MUG-CERAMIC",
                        "warehouse": "main",
                        "more": 1,
                        "available": 0,
                        "needed": 1,
                    }
                ],
                "text": "needs 1 more MUG-CERAMIC in main (0 available to it, 1 needed)",
            },
        }
    ]
