"""``sellable orders``: each line's allocations per warehouse (``order_lines.allocated_in``,
written by the order book: a routed line may be split) and the options the customer chose
(``order_lines.options``), in JSON and in the text table, on SQLite and PostgreSQL.

The columns are set here as the order book stores them, so that this tests the reading
alone; how a routed line gets split is the order book's tests' subject.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from sellable.errors import InputError
from sellable.orders.queries import allocations_of, describe_allocations, options_of
from sellable.store import schema
from tests.orders.test_order_book import Store, invoke

CHANNEL = '\n[[channels]]\ncode = "shop"\nconnector = "manual"\nwarehouses = ["main", "fba-us"]\n'
ORDERS = (
    "channel,order_id,sku,quantity,warehouse,line_id\n"
    "shop,1,MUG,5,main,a\n"
    "shop,1,SET,1,main,b\n"
    "shop,1,BEANS,1,main,c\n"
)


@pytest.fixture
def store(config_file: Path, tmp_path: Path) -> Iterator[Store]:
    with config_file.open("a") as handle:
        handle.write(CHANNEL)
    opened = Store(config_file, tmp_path)
    opened.load(
        {"MUG": "simple", "MUG-RED": "simple", "BEANS": "simple", "SET": "kit"},
        [("SET", "MUG", 1, "mug"), ("SET", "MUG-RED", 1, "mug"), ("SET", "BEANS", 1)],
        {"MUG": 10, "MUG-RED": 10, "BEANS": 10},
    )
    result = invoke(opened.config, "import", "orders", str(opened.file(ORDERS)))
    assert result.exit_code == 0, result.output
    yield opened
    opened.engine.dispose()


def set_line(store: Store, line_key: str, **values: Any) -> None:
    ol = schema.order_lines.c
    with store.engine.begin() as connection:
        connection.execute(
            update(schema.order_lines).where(ol.line_key == line_key).values(**values)
        )


def test_orders_json_lists_each_lines_allocations_and_options(store: Store) -> None:
    set_line(store, "a", allocated_in="main=3;fba-us=2")
    set_line(store, "b", allocated_in="main=1", options="mug=MUG-RED")
    set_line(store, "c", allocated_in="")

    result = invoke(store.config, "orders", "--json")

    assert result.exit_code == 0, result.output
    (found,) = json.loads(result.stdout)
    assert [(line["line_id"], line["allocations"], line["options"]) for line in found["lines"]] == [
        (
            "a",
            [{"warehouse": "main", "quantity": 3}, {"warehouse": "fba-us", "quantity": 2}],
            {},
        ),
        ("b", [{"warehouse": "main", "quantity": 1}], {"mug": "MUG-RED"}),
        ("c", [], {}),
    ]
    # The keys the command always had are still there.
    assert set(found["lines"][0]) == {
        "line_id",
        "sku",
        "quantity",
        "status",
        "hold_reason",
        "allocations",
        "options",
        "revenue",
        "currency",
    }


def test_orders_text_shows_allocations_compactly_and_options_beside_the_sku(
    store: Store,
) -> None:
    set_line(store, "a", allocated_in="main=3;fba-us=2")
    set_line(store, "b", allocated_in="main=1", options="mug=MUG-RED")
    set_line(store, "c", allocated_in=None)

    result = invoke(store.config, "orders")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "ORDER   WAREHOUSE  STATUS  LINE  SKU              QTY  LINE STATUS  ALLOCATED IN       "
        "REASON",
        "shop:1  main       open    a     MUG                5  allocated    main 3 + fba-us 2",
        "shop:1  main       open    b     SET mug=MUG-RED    1  allocated    main 1",
        "shop:1  main       open    c     BEANS              1  allocated",
    ]


def test_an_unreadable_allocated_in_is_an_error_naming_the_order_and_line(store: Store) -> None:
    set_line(store, "a", allocated_in="main=three")

    result = invoke(store.config, "orders", "--json")

    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        "error: order shop:1 line a: unreadable allocated_in 'main=three' "
        "('three' is not a number)\n"
    )


@pytest.mark.parametrize(
    ("text", "allocations", "compact"),
    [
        pytest.param(None, [], "", id="null"),
        pytest.param("", [], "", id="empty"),
        pytest.param("main=3", [{"warehouse": "main", "quantity": 3}], "main 3", id="one"),
        pytest.param(
            "main=3;tpl=2",
            [{"warehouse": "main", "quantity": 3}, {"warehouse": "tpl", "quantity": 2}],
            "main 3 + tpl 2",
            id="split",
        ),
    ],
)
def test_allocated_in_is_read_in_warehouse_order(
    text: str | None, allocations: list[dict[str, Any]], compact: str
) -> None:
    assert allocations_of(text) == allocations
    assert describe_allocations(allocations_of(text)) == compact


@pytest.mark.parametrize(
    ("text", "options"),
    [
        pytest.param(None, {}, id="null"),
        pytest.param("", {}, id="empty"),
        pytest.param("mug=MUG-RED;beans=BEANS", {"mug": "MUG-RED", "beans": "BEANS"}, id="two"),
    ],
)
def test_options_are_read_as_slot_to_sku(text: str | None, options: dict[str, str]) -> None:
    assert options_of(text) == options


@pytest.mark.parametrize("text", ["main", "=3", "main="], ids=["no-equals", "no-name", "no-value"])
def test_malformed_stored_pairs_are_refused_naming_the_line(text: str) -> None:
    with pytest.raises(InputError) as caught:
        allocations_of(text, "order shop:1 line a")
    assert str(caught.value) == (
        f"order shop:1 line a: unreadable allocated_in {text!r} (expected name=value;...)"
    )
