"""The order commands through the command line: ``import orders``, ``orders``, ``ledger``,
``build`` and ``stock``, on SQLite and PostgreSQL; bad input exits 3 naming file, line and
value, and writes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.orders.test_order_book import Store, invoke

ORDERS_HEADER = "channel,order_id,sku,quantity,warehouse,line_id,status,created_at\n"

CATALOG = {
    "BEANS": "simple",
    "MUG": "simple",
    "SCOOP": "simple",
    "SET": "assembly",
    "KIT": "kit",
}
BOMS = [
    ("SET", "BEANS", 1),
    ("SET", "MUG", 1),
    ("SET", "SCOOP", 1),
    ("KIT", "BEANS", 1),
    ("KIT", "MUG", 1),
]
STOCK = {"BEANS": 50, "MUG": 2, "SCOOP": 100, "SET": 1, "MUG@fba-us": 5}


#: The channels the orders of these tests come from: they take orders by CSV only.
MANUAL_SHOP = "".join(
    f'\n[[channels]]\ncode = "{code}"\nconnector = "manual"\nwarehouses = ["main", "fba-us"]\n'
    for code in ("shop", "web")
)


@pytest.fixture
def store(config_file: Path, tmp_path: Path) -> Iterator[Store]:
    with config_file.open("a") as handle:
        handle.write(MANUAL_SHOP)
    opened = Store(config_file, tmp_path)
    opened.load(CATALOG, BOMS, STOCK)
    yield opened
    opened.assert_ledger()
    opened.engine.dispose()


def ok(store: Store, *args: str) -> str:
    result = invoke(store.config, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def ok_json(store: Store, *args: str) -> Any:
    return json.loads(ok(store, *args, "--json"))


def orders_file(store: Store, *rows: str) -> Path:
    return store.file(ORDERS_HEADER + "".join(row + "\n" for row in rows), name="orders.csv")


def rejected(store: Store, *args: str) -> Result:
    """Run a command that must be refused with exit code 3 and write nothing."""
    before = store.snapshot()
    result = invoke(store.config, *args)
    assert result.exit_code == 3, result.output
    assert result.stdout == ""
    assert store.snapshot() == before
    return result


# -- import orders --------------------------------------------------------------------------------


def test_import_orders_prints_a_summary_and_the_held_lines(store: Store) -> None:
    path = orders_file(
        store,
        "shop,1,MUG,1,main,,open,2026-11-23T10:00:00Z",
        "shop,2,SET,3,main,l1,,",
        "shop,2,KIT,1,main,l2,,",
    )
    out = ok(store, "import", "orders", str(path))
    assert out == (
        f"{path}: 2 order(s): 2 created, 0 updated, 0 unchanged; lines: 1 allocated, 2 held, "
        "0 shipped, 0 cancelled; 0 assembly order(s); 5 movement(s); "
        "5 sellable value(s) changed\n"
        # SET: 1 assembled, the other 2 would need 2 mugs: one is left.
        "  held: order shop:2 line l1: short 1 × MUG in main (have 1, need 2)\n"
        # The held SET line claims the last mug (and the 2 it wants): the kit cannot have it.
        "  held: order shop:2 line l2: short 1 × MUG in main (have 0, need 1)\n"
    )
    # Movements: order 1's MUG allocation; order 2's claims netted per SKU: SET 1, BEANS
    # 2 + 1, MUG 2 + 1, SCOOP 2.
    assert [store.held(sku) for sku in ("SET", "BEANS", "MUG", "SCOOP", "KIT")] == [1, 3, 3, 2, 0]
    assert store.levels("MUG") == (2, 1, -2)
    assert [store.sellable(sku) for sku in ("MUG", "BEANS", "SCOOP", "SET", "KIT")] == [
        0,
        47,
        98,
        0,
        0,
    ]
    # Again: the held lines are tried again (their claims given back first) and held again
    # for the same reasons with the same claims: no movement, nothing changed.
    again = ok_json(store, "import", "orders", str(path))
    assert {k: again[k] for k in ("orders_created", "orders_updated", "orders_unchanged")} == {
        "orders_created": 0,
        "orders_updated": 1,
        "orders_unchanged": 1,
    }
    assert (again["movements"], again["changed_sellable"]) == (0, [])
    assert again["held"] == [
        {"order": "order shop:2", "line": "l1", "reason": "short 1 × MUG in main (have 1, need 2)"},
        {"order": "order shop:2", "line": "l2", "reason": "short 1 × MUG in main (have 0, need 1)"},
    ]


def test_import_orders_json_summary(store: Store) -> None:
    path = orders_file(store, "shop,1,SET,2,main,,,", "shop,2,MUG,1,main,,,")
    summary = ok_json(store, "import", "orders", str(path))
    assert summary == {
        "orders_created": 2,
        "orders_updated": 0,
        "orders_unchanged": 0,
        "lines_allocated": 2,
        "lines_held": 0,
        "lines_shipped": 0,
        "lines_cancelled": 0,
        "assembly_orders": 1,
        # SET: 1 assembled + 1 built (3 components -, SET +), one Allocation; MUG's.
        "movements": 6,
        "changed_sellable": [
            {"sku": "BEANS", "warehouse": "main"},
            {"sku": "KIT", "warehouse": "main"},
            {"sku": "MUG", "warehouse": "main"},
            {"sku": "SCOOP", "warehouse": "main"},
            {"sku": "SET", "warehouse": "main"},
        ],
        "held": [],
        "rejected": [],
        "notes": [],
        "meta": {"config": str(store.config)},
    }
    assert store.on_hand("SET", "BEANS", "MUG", "SCOOP") == (2, 49, 1, 99)
    assert store.levels("SET") == (2, 2, 0)
    assert store.levels("MUG") == (1, 1, 0)


def test_stock_json_shows_allocation_on_import_and_on_hand_on_shipment(store: Store) -> None:
    def mug() -> dict[str, int]:
        (position,) = ok_json(store, "stock", "MUG", "--warehouse", "main")
        return dict(position["prepackaged"]) | {"sellable": position["sellable"]}

    assert mug() == {
        "on_hand": 2,
        "locked": 0,
        "allocated": 0,
        "held": 0,
        "expired": 0,
        "available": 2,
        "sellable": 2,
    }
    ok(store, "import", "orders", str(orders_file(store, "shop,1,MUG,2,main,,open,")))
    assert mug() == {
        "on_hand": 2,
        "locked": 0,
        "allocated": 2,
        "held": 0,
        "expired": 0,
        "available": 0,
        "sellable": 0,
    }
    ok(store, "import", "orders", str(orders_file(store, "shop,1,MUG,2,main,,shipped,")))
    assert mug() == {
        "on_hand": 0,
        "locked": 0,
        "allocated": 0,
        "held": 0,
        "expired": 0,
        "available": 0,
        "sellable": 0,
    }


def test_cancel_through_the_csv_releases_the_allocation(store: Store) -> None:
    ok(store, "import", "orders", str(orders_file(store, "shop,1,KIT,2,main,,open,")))
    assert store.levels("MUG") == (2, 2, 0)
    summary = ok_json(
        store, "import", "orders", str(orders_file(store, "shop,1,KIT,2,main,,CANCELLED,"))
    )
    assert (summary["lines_cancelled"], summary["movements"]) == (1, 2)
    assert store.levels("MUG") == (2, 0, 2)
    assert store.levels("BEANS") == (50, 0, 50)


# -- a stock count retries held lines, oldest order first --------------------------------------


def test_stock_count_retries_held_lines_oldest_order_first(store: Store) -> None:
    path = orders_file(
        store,
        "shop,1,MUG,3,main,,,2026-11-22T09:00:00Z",
        "shop,2,MUG,3,main,,,2026-11-21T09:00:00Z",
    )
    ok(store, "import", "orders", str(path))
    assert [o["order_id"] for o in ok_json(store, "orders", "--held")] == ["1", "2"]
    # Each held line claims the 3 mugs it wants: 6 claimed of the 2 there.
    assert store.row("MUG") == (2, 0, 0, 6)
    assert [store.sellable(sku) for sku in ("MUG", "KIT", "SET")] == [0, 0, 1]
    count = store.file("sku,warehouse,on_hand\nMUG,main,4\n", name="count.csv")
    summary = ok_json(store, "import", "stock", str(count))
    assert (summary["held_lines_allocated"], summary["lines_still_held"]) == (1, 1)
    # MUG 2 -> 4: the held lines claim all 4 (and more), so no sellable value changes, before
    # or after order 2 is allocated 3 and order 1 goes on claiming 3.
    assert summary["sellable_changed"] == 0
    # Order 2 is the older one (created_at), so it gets the mugs although imported second.
    assert store.line_states() == {
        ("1", "MUG"): ("held", "short 2 × MUG in main (have 1, need 3)"),
        ("2", "MUG"): ("allocated", None),
    }
    assert store.row("MUG") == (4, 0, 3, 3)
    assert store.levels("MUG") == (4, 3, -2)
    assert [store.sellable(sku) for sku in ("MUG", "KIT", "SET")] == [0, 0, 1]
    text = ok(store, "import", "stock", str(store.file("sku,warehouse,on_hand\nMUG,main,6\n")))
    assert text.endswith(
        "; 0 sellable value(s) changed\nheld lines retried: 1 now allocated, 0 still held\n"
    )
    assert store.orders(held_only=True) == []
    assert store.row("MUG") == (6, 0, 6, 0)
    # One more mug is offered again once no held line claims it.
    ok(store, "import", "stock", str(store.file("sku,warehouse,on_hand\nMUG,main,7\n")))
    assert [store.sellable(sku) for sku in ("MUG", "KIT", "SET")] == [1, 1, 2]


def test_retry_order_is_the_same_on_both_databases(store: Store) -> None:
    """An order without created_at (imported now) is younger than one created days ago."""
    ok(store, "import", "orders", str(orders_file(store, "shop,untimed,MUG,3,main,,,")))
    ok(
        store,
        "import",
        "orders",
        str(orders_file(store, "shop,dated,MUG,3,main,,,2026-01-01T00:00:00Z")),
    )
    count = store.file("sku,warehouse,on_hand\nMUG,main,4\n", name="count.csv")
    ok(store, "import", "stock", str(count))
    assert [o["order_id"] for o in ok_json(store, "orders", "--held")] == ["untimed"]


# -- orders ---------------------------------------------------------------------------------------


def test_orders_json_and_held(store: Store) -> None:
    assert ok(store, "orders") == "(no orders)\n"
    path = orders_file(
        store,
        "shop,1,MUG,1,main,,open,2026-11-23T10:00:00Z",
        "web,7,SET,5,main,a,,",
        "web,7,SCOOP,1,main,b,,",
    )
    ok(store, "import", "orders", str(path))
    found = ok_json(store, "orders")
    assert [
        (o["channel"], o["order_id"], o["warehouse"], o["status"], o["created_at"]) for o in found
    ] == [
        ("shop", "1", "main", "open", found[0]["created_at"]),
        ("web", "7", "main", "open", None),
    ]
    created = datetime.fromisoformat(found[0]["created_at"])
    assert created.replace(tzinfo=created.tzinfo or UTC) == datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert set(found[0]) == {
        "channel",
        "order_id",
        "warehouse",
        "status",
        "created_at",
        "updated_at",
        "lines",
        "fulfilments",
    }
    assert found[0]["fulfilments"] == []
    assert found[0]["lines"] == [
        {
            "line_id": "MUG",
            "sku": "MUG",
            "quantity": 1,
            "status": "allocated",
            "hold_reason": None,
            "allocations": [{"warehouse": "main", "quantity": 1}],
            "options": {},
            "revenue": None,
            "currency": None,
        }
    ]
    assert found[1]["lines"] == [
        {
            "line_id": "a",
            "sku": "SET",
            "quantity": 5,
            "status": "held",
            "hold_reason": "short 3 × MUG in main (have 1, need 4)",
            "allocations": [],
            "options": {},
            "revenue": None,
            "currency": None,
        },
        {
            "line_id": "b",
            "sku": "SCOOP",
            "quantity": 1,
            "status": "allocated",
            "hold_reason": None,
            "allocations": [{"warehouse": "main", "quantity": 1}],
            "options": {},
            "revenue": None,
            "currency": None,
        },
    ]

    held = ok_json(store, "orders", "--held")
    assert [(o["order_id"], [line["line_id"] for line in o["lines"]]) for o in held] == [
        ("7", ["a"])
    ]
    text = ok(store, "orders", "--held")
    assert "short 3 × MUG in main (have 1, need 4)" in text
    assert "web:7" in text
    assert "shop:1" not in text


# -- ledger ---------------------------------------------------------------------------------------

LEDGER_KEYS = {
    "id",
    "at",
    "sku",
    "warehouse",
    "type",
    "quantity",
    "on_hand_change",
    "locked_change",
    "allocated_change",
    "held_change",
    "expired_change",
    "balance",
    "available",
    "reference",
    "lot",
    "value",
}


def test_ledger_json_carries_type_quantity_warehouse_reference_time_and_balances(
    store: Store,
) -> None:
    ok(store, "import", "orders", str(orders_file(store, "shop,1,MUG,2,main,,open,")))
    ok(store, "import", "orders", str(orders_file(store, "shop,1,MUG,2,main,,shipped,")))
    rows = ok_json(store, "ledger", "MUG")
    assert all(set(row) == LEDGER_KEYS for row in rows)
    for row in rows:
        datetime.fromisoformat(row["at"])
    assert [
        (r["warehouse"], r["type"], r["quantity"], r["reference"], r["balance"], r["available"])
        for r in rows
    ] == [
        ("main", "Adjustment", 2, "stock count file3.csv", 2, 2),
        ("fba-us", "Adjustment", 5, "stock count file3.csv", 5, 5),
        ("main", "Allocation", -2, "order shop:1", 2, 0),
        ("main", "Sale", -2, "order shop:1", 0, 0),
    ]
    only_fba = ok_json(store, "ledger", "MUG", "--warehouse", "fba-us")
    assert [(r["warehouse"], r["type"], r["quantity"]) for r in only_fba] == [
        ("fba-us", "Adjustment", 5)
    ]
    text = ok(store, "ledger", "MUG", "-w", "main")
    assert "Sale" in text
    assert "order shop:1" in text
    assert ok(store, "ledger", "KIT") == "(no movements of KIT)\n"


def test_ledger_of_an_unknown_sku_or_warehouse_is_refused(store: Store) -> None:
    result = rejected(store, "ledger", "NOPE")
    assert result.stderr == "error: unknown SKU 'NOPE'\n"
    wrong = invoke(store.config, "ledger", "MUG", "--warehouse", "moon")
    assert wrong.exit_code == 2
    assert "unknown warehouse 'moon' (known: main, fba-us)" in wrong.stderr


def test_json_times_carry_their_utc_offset(store: Store) -> None:
    path = orders_file(store, "shop,1,MUG,1,main,,open,2026-11-23T12:00:00+02:00")
    ok(store, "import", "orders", str(path))
    (found,) = ok_json(store, "orders")
    assert datetime.fromisoformat(found["created_at"]) == datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert datetime.fromisoformat(found["updated_at"]).utcoffset() is not None
    for row in ok_json(store, "ledger", "MUG"):
        assert datetime.fromisoformat(row["at"]).utcoffset() is not None


# -- build ----------------------------------------------------------------------------------------


def test_build_json_carries_id_time_warehouse_and_components(store: Store) -> None:
    made = ok_json(store, "build", "SET", "2", "--warehouse", "main")
    assert len(made) == 1
    (built,) = made
    assert set(built) == {
        "id",
        "sku",
        "quantity",
        "warehouse",
        "at",
        "origin",
        "reference",
        "components",
        "lot",
        "expires_on",
        "cost",
        "consumed",
    }
    assert (built["id"], built["sku"], built["quantity"], built["warehouse"]) == (
        "AO-1",
        "SET",
        2,
        "main",
    )
    assert (built["origin"], built["reference"]) == ("manual", None)
    assert datetime.fromisoformat(built["at"]).tzinfo is not None
    assert built["components"] == [
        {"sku": "BEANS", "quantity": 2},
        {"sku": "MUG", "quantity": 2},
        {"sku": "SCOOP", "quantity": 2},
    ]
    assert store.on_hand("SET", "BEANS", "MUG", "SCOOP") == (3, 48, 0, 98)
    assert store.ledger("MUG")[-1]["reference"] == "assembly order AO-1"
    store.count({"MUG": 1})
    text = ok(store, "build", "SET", "1", "-w", "main")
    assert text.startswith("AO-2: built 1 × SET in main at ")
    assert text.endswith(" from 1 × BEANS, 1 × MUG, 1 × SCOOP\n")


def test_build_short_of_components_exits_3_naming_the_bottleneck(store: Store) -> None:
    result = rejected(store, "build", "SET", "5", "--warehouse", "main")
    assert result.stderr == "error: cannot build 5 × SET: short 3 × MUG in main (have 2, need 5)\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("SET", "1", "-w", "fba-us"),
            "error: warehouse 'fba-us' does not use component inventory: it cannot assemble\n",
        ),
        (("NOPE", "1", "-w", "main"), "error: unknown SKU 'NOPE'\n"),
        (
            ("MUG", "1", "-w", "main"),
            "error: 'MUG' is a simple SKU: it has no components to build it from\n",
        ),
        (("SET", "0", "-w", "main"), "error: quantity must be a positive integer, got 0\n"),
    ],
    ids=["fba", "unknown-sku", "simple-sku", "zero"],
)
def test_build_refusals(store: Store, args: tuple[str, ...], message: str) -> None:
    assert rejected(store, "build", *args).stderr == message


def test_build_in_an_unknown_warehouse_is_a_configuration_error(store: Store) -> None:
    result = invoke(store.config, "build", "SET", "1", "-w", "moon")
    assert result.exit_code == 2
    assert "unknown warehouse 'moon'" in result.stderr


# -- bad rows: exit 3 naming file, line and value; nothing written --------------------------------


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (
            "shop,2,NOPE,1,main,,,",
            "line 3, column 'sku': unknown SKU (import it with 'sellable import products' first) "
            "(value 'NOPE')",
        ),
        (
            "shop,2,MUG,-2,main,,,",
            "line 3, column 'quantity': must be a positive integer (value '-2')",
        ),
        (
            "shop,2,MUG,0,main,,,",
            "line 3, column 'quantity': must be a positive integer (value '0')",
        ),
        (
            "shop,2,MUG,1.5,main,,,",
            "line 3, column 'quantity': must be a whole number (value '1.5')",
        ),
        (
            "shop,2,MUG,1,moon,,,",
            "line 3, column 'warehouse': unknown warehouse (known: fba-us, main) (value 'moon')",
        ),
        (
            "shop,2,MUG,1,main,,lost,",
            "line 3, column 'status': unknown status (expected one of: open, shipped, cancelled) "
            "(value 'lost')",
        ),
        (
            "shop,2,MUG,1,main,,,yesterday",
            "line 3, column 'created_at': must be an ISO 8601 time, e.g. 2026-11-23T10:00:00Z "
            "(value 'yesterday')",
        ),
        (
            "shop,1,MUG,1,fba-us,x,,",
            "line 3, column 'warehouse': order shop:1 has warehouse 'main' on line 2 "
            "(value 'fba-us')",
        ),
        (
            "shop,1,MUG,1,main,,,",
            "line 3, column 'sku': duplicate line in order shop:1 (line 2); give each line its "
            "own line_id (value 'MUG')",
        ),
    ],
    ids=[
        "unknown-sku",
        "negative-quantity",
        "zero-quantity",
        "fractional-quantity",
        "unknown-warehouse",
        "unknown-status",
        "bad-time",
        "two-warehouses-in-one-order",
        "duplicate-line",
    ],
)
def test_bad_row_rejects_the_whole_file(store: Store, row: str, problem: str) -> None:
    path = orders_file(store, "shop,1,MUG,1,main,,,", row)
    result = rejected(store, "import", "orders", str(path))
    assert result.stderr == (
        f"error: {path} {problem}\n{path}: rejected (1 problem(s)); nothing was written\n"
    )


def test_order_that_changes_warehouse_after_allocation_is_rejected(store: Store) -> None:
    ok(store, "import", "orders", str(orders_file(store, "shop,1,MUG,1,main,,,")))
    assert store.levels("MUG") == (2, 1, 1)
    path = orders_file(store, "shop,9,SCOOP,1,main,,,", "shop,1,MUG,1,fba-us,,,")
    result = rejected(store, "import", "orders", str(path))
    assert result.stderr == (
        f"error: {path} line 3, column 'warehouse': order shop:1 is already allocated in "
        "warehouse 'main' and cannot change warehouse (value 'fba-us')\n"
        f"{path}: rejected (1 problem(s)); nothing was written\n"
    )
    assert store.levels("SCOOP") == (100, 0, 100)


def test_every_bad_row_is_listed_at_once(store: Store) -> None:
    path = orders_file(store, "shop,1,NOPE,1,main,,,", "shop,2,MUG,-1,moon,,,")
    result = rejected(store, "import", "orders", str(path))
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"error: {path} line 2, column 'sku'")
    assert lines[1].startswith(f"{path} line 3, column 'quantity'")
    assert lines[2].startswith(f"{path} line 3, column 'warehouse'")
    assert lines[-1] == f"{path}: rejected (3 problem(s)); nothing was written"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("channel,order_id,sku,quantity\nshop,1,MUG,1\n", "missing column(s) 'warehouse'"),
        (
            "channel,order_id,sku,quantty,warehouse\nshop,1,MUG,1,main\n",
            "unknown column 'quantty'; did you mean 'quantity'?",
        ),
    ],
    ids=["missing-column", "misspelt-column"],
)
def test_bad_header_is_refused(store: Store, text: str, message: str) -> None:
    path = store.file(text, name="orders.csv")
    result = rejected(store, "import", "orders", str(path))
    assert f"{path} line 1: {message}" in result.stderr


def test_unknown_channel_is_refused_naming_the_known_ones(store: Store) -> None:
    path = orders_file(store, "shop,1,MUG,1,main,,,", "shpo,2,MUG,1,main,,,")
    result = rejected(store, "import", "orders", str(path))
    assert result.stderr == (
        f"error: {path} line 3, column 'channel': unknown channel (known: shop, web); declare "
        'a channel that takes orders by CSV only as [[channels]] with connector = "manual" '
        f"(value 'shpo')\n{path}: rejected (1 problem(s)); nothing was written\n"
    )
    assert store.levels("MUG") == (2, 0, 2)  # nothing allocated for the unknown channel


def test_orders_of_a_channel_with_a_connector_are_accepted(
    config_file: Path, tmp_path: Path
) -> None:
    with config_file.open("a") as handle:
        handle.write(
            '\n[[channels]]\ncode = "woo"\nconnector = "woocommerce"\nwarehouses = ["main"]\n'
            '[channels.settings]\nbase_url = "http://127.0.0.1:9"\n'
            'consumer_key = "ck_test"\nconsumer_secret = "cs_test"\n'
        )
    opened = Store(config_file, tmp_path)
    try:
        opened.load(CATALOG, BOMS, STOCK)
        path = orders_file(opened, "woo,1,MUG,1,main,,,")
        assert ok_json(opened, "import", "orders", str(path))["lines_allocated"] == 1
    finally:
        opened.engine.dispose()


def test_missing_file_is_refused(store: Store, tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    result = rejected(store, "import", "orders", str(missing))
    assert result.stderr == f"error: {missing}: file not found\n"


# -- one real process -----------------------------------------------------------------------------


def test_the_installed_module_runs_orders_ledger_and_build(store: Store, tmp_path: Path) -> None:
    def sellable(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sellable", "--config", str(store.config), *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )

    path = orders_file(store, "shop,1,SET,2,main,,,", "shop,2,MUG,5,main,,,")
    imported = sellable("import", "orders", str(path), "--json")
    assert imported.returncode == 0, imported.stderr
    summary = json.loads(imported.stdout)
    assert (summary["lines_allocated"], summary["lines_held"], summary["assembly_orders"]) == (
        1,
        1,
        1,
    )
    ledger = sellable("ledger", "SET", "--json")
    assert ledger.returncode == 0, ledger.stderr
    assert [(r["type"], r["quantity"], r["balance"]) for r in json.loads(ledger.stdout)] == [
        ("Adjustment", 1, 1),
        ("AssemblyBuild", 1, 2),
        ("Allocation", -2, 2),
    ]
    # The held MUG line claims all 5 mugs it wants: the last mug is not there for a build.
    short = sellable("build", "SET", "3", "--warehouse", "main")
    assert short.returncode == 3
    assert short.stderr == "error: cannot build 3 × SET: short 3 × MUG in main (have 0, need 3)\n"
    assert short.stdout == ""
    bad = sellable("import", "orders", str(orders_file(store, "shop,3,MUG,-1,main,,,")))
    assert bad.returncode == 3
    assert f"{path} line 2, column 'quantity': must be a positive integer (value '-1')" in (
        bad.stderr
    )
