"""``sellable explain SKU --warehouse W``: the demand per unit over every path, and what
binds, in text and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sellable.imports import import_components, import_products, import_stock
from tests.cli.test_cli_commands import invoke
from tests.imports import open_store

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def shared(config_file: Path) -> Path:
    """X = 1×A + 1×K, K = 1×A, 10 A and 3 K on hand in main."""
    store = open_store(config_file)
    import_products(
        store.engine,
        store.csv("p.csv", "sku,name,kind\nA,Part,simple\nK,Sub,assembly\nX,Top,kit\n"),
    )
    import_components(
        store.engine,
        store.csv("c.csv", "parent_sku,component_sku,quantity\nX,A,1\nX,K,1\nK,A,1\n"),
    )
    import_stock(
        store.engine,
        store.settings,
        store.csv("s.csv", "sku,warehouse,on_hand,locked\nA,main,10,0\nK,main,3,0\n"),
    )
    store.engine.dispose()
    return config_file


@SQLITE_ONLY
def test_cli_explain_shows_demand_per_unit_over_every_path_and_what_binds(shared: Path) -> None:
    result = invoke("explain", "X", "--warehouse", "main", "-c", shared)

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-4:] == [
        "demand per unit of X, over every path:",
        "  A: 2 per unit (1 direct, 1 via K)",
        "  K: 1 per unit (1 direct)",
        "binds: A",  # the position's component bottleneck, as ``stock`` shows it
    ]


@SQLITE_ONLY
def test_cli_explain_json_has_demand_per_unit_and_binds(shared: Path) -> None:
    result = invoke("explain", "X", "--warehouse", "main", "--json", "-c", shared)
    (position,) = json.loads(invoke("stock", "X", "-w", "main", "--json", "-c", shared).stdout)

    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["demand_per_unit"] == [
        {
            "sku": "A",
            "per_unit": 2,
            "paths": [{"via": None, "quantity": 1}, {"via": "K", "quantity": 1}],
        },
        {"sku": "K", "per_unit": 1, "paths": [{"via": None, "quantity": 1}]},
    ]
    assert report["one_of"] == []
    assert report["binds"] == position["component"]["bottleneck"] == "A"


@SQLITE_ONLY
def test_cli_explain_of_a_simple_sku_has_no_demand(shared: Path) -> None:
    text = invoke("explain", "A", "--warehouse", "main", "-c", shared)
    as_json = json.loads(invoke("explain", "A", "-w", "main", "--json", "-c", shared).stdout)

    assert text.stdout.splitlines() == ["A (simple) in main: sellable 10"]
    assert (as_json["demand_per_unit"], as_json["one_of"], as_json["binds"]) == ([], [], None)
