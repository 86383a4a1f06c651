"""Issue 18, items 1 and 2, end to end: one order the shop sends corrupt is refused by id
and field, the rest of the page is imported, the refusal is in ``status`` and logged once,
and the order is imported when the shop fixes it. The daemon's SyncEngine against the
WooCommerce emulator over loopback HTTP (``WooCommerceEmulator.corrupt_order``)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from sellable.emulators.woocommerce import DROP
from sellable.sync.jobs.orders import REFUSED_HOLD
from sellable.sync.status import channel_status, render_status
from tests.conftest import assert_ledger_balanced, property_settings
from tests.connectors.woocommerce.test_woocommerce_e2e import (  # noqa: F401 (a fixture)
    SQLITE_ONLY,
    OpenWoo,
    Woo,
    open_woo,
)

CORRUPTIONS = [
    pytest.param("line_items.0.quantity", "two", "line_items[0].quantity",
                 "'two' is not a whole number", id="quantity-text"),
    pytest.param("line_items.0.quantity", 1.5, "line_items[0].quantity",
                 "1.5 is not a whole number", id="quantity-fraction"),
    pytest.param("line_items.0.quantity", -2, "line_items[0].quantity", "-2 is negative",
                 id="quantity-negative"),
    pytest.param("line_items.0.quantity", True, "line_items[0].quantity",
                 "True is not a whole number", id="quantity-bool"),
    pytest.param("line_items", DROP, "line_items", "missing", id="no-line-items"),
    pytest.param("line_items.0", "MUG", "line_items[0]", "'MUG' is not a line item",
                 id="line-not-an-object"),
    pytest.param("date_modified_gmt", "05/12/2026 4:22 PM", "date_modified_gmt",
                 "'05/12/2026 4:22 PM' is not an ISO 8601 date", id="modified-not-a-date"),
    pytest.param("date_created_gmt", "yesterday", "date_created_gmt",
                 "'yesterday' is not an ISO 8601 date", id="created-not-a-date"),
]  # fmt: skip


def three_orders(woo: Woo) -> tuple[str, str, str]:
    """Three orders of 1 MUG-CERAMIC, a second apart."""
    woo.shop.add_listing("MUG-CERAMIC", 30)
    placed = []
    for _ in range(3):
        placed.append(woo.shop.place_order([("MUG-CERAMIC", 1)]))
        woo.clock.advance(1)
    first, bad, last = placed
    return first, bad, last


def refusal_lines(caplog: pytest.LogCaptureFixture, order_id: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "sellable.sync" and f"order={order_id} " in r.getMessage()
    ]


def stored_orders(woo: Woo) -> dict[str, list[tuple[str, int]]]:
    return {o["order_id"]: [(x["sku"], x["quantity"]) for x in o["lines"]] for o in woo.orders()}


@SQLITE_ONLY
@pytest.mark.parametrize(("path", "value", "field", "reason"), CORRUPTIONS)
def test_woocommerce_a_corrupt_order_is_refused_by_id_and_the_rest_imported_until_fixed(
    open_woo: OpenWoo,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    path: str,
    value: Any,
    field: str,
    reason: str,
) -> None:
    woo = open_woo(rate_limit=0, engine_clock=True)
    first, bad, last = three_orders(woo)
    woo.shop.corrupt_order(bad, path, value)

    with caplog.at_level(logging.INFO, logger="sellable"):
        pulled = woo.run("orders")
        for _ in range(5):  # five more pulls read it again, and log nothing more
            woo.clock.advance(60)
            again = woo.run("orders")

        assert (pulled.ok, again.ok) == (True, True), (pulled.error, again.error)
        assert stored_orders(woo) == {first: [("MUG-CERAMIC", 1)], last: [("MUG-CERAMIC", 1)]}
        assert pulled.reports["rejected_orders"] == [f"order {bad}: {field}: {reason}"]
        assert (pulled.counts["orders"], pulled.counts["refused"]) == (2, 1)
        assert again.counts["refused"] == 1
        (channel,) = channel_status(woo.engine)
        refused = channel["refused_orders"]["orders"]
        assert [(r["order_id"], r["field"], r["reason"]) for r in refused] == [(bad, field, reason)]
        assert f"order {bad} {field}: {reason}" in render_status([channel])
        assert refusal_lines(caplog, bad) == [
            f"channel=woo order={bad} refused: field {field}: {reason}; the channel's other "
            "orders are imported, this one when it reads whole (fix it on the channel)"
        ]  # once, not once per pull

        # A fix that leaves the modification time alone is imported too: the cursor waited.
        woo.shop.repair_order(bad, touch=False)
        woo.clock.advance(60)
        fixed = woo.run("orders")

    assert fixed.ok, fixed.error
    assert sorted(stored_orders(woo), key=int) == [first, bad, last]
    assert fixed.counts["refused"] == 0
    (channel,) = channel_status(woo.engine)
    assert channel["refused_orders"] == {"count": 0, "orders": []}
    lines = refusal_lines(caplog, bad)
    assert len(lines) == 2  # log lines per bad order: one refusal, one recovery
    assert lines[1].startswith(f"channel=woo order={bad} imported: it reads whole again")


@SQLITE_ONLY
def test_woocommerce_an_order_refused_for_good_stops_holding_the_cursor_but_stays_listed(
    open_woo: OpenWoo,  # noqa: F811
) -> None:
    woo = open_woo(rate_limit=0, engine_clock=True)
    _first, bad, _last = three_orders(woo)
    woo.shop.corrupt_order(bad, "line_items.0.quantity", "two")
    woo.run("orders")
    held = woo.engine.state.cursor("woo", "orders")

    woo.clock.advance(REFUSED_HOLD.total_seconds() + 60)
    later = woo.shop.place_order([("MUG-CERAMIC", 1)])
    woo.clock.advance(1)
    moved = woo.run("orders")

    cursor = woo.engine.state.cursor("woo", "orders")
    assert moved.ok, moved.error
    assert held is not None and cursor is not None
    assert cursor - held > REFUSED_HOLD
    assert later in stored_orders(woo)
    (channel,) = channel_status(woo.engine)
    assert [r["order_id"] for r in channel["refused_orders"]["orders"]] == [bad]

    # Fixed in the admin (which stamps a modification): the order comes into the window.
    woo.shop.repair_order(bad)
    woo.clock.advance(1)
    fixed = woo.run("orders")

    assert fixed.ok, fixed.error
    assert bad in stored_orders(woo)
    (channel,) = channel_status(woo.engine)
    assert channel["refused_orders"]["count"] == 0


@SQLITE_ONLY
def test_woocommerce_a_page_whose_every_date_is_corrupt_is_read_on_by_offset(
    open_woo: OpenWoo,  # noqa: F811
) -> None:
    woo = open_woo(rate_limit=0, engine_clock=True)
    woo.shop.add_listing("ABC", 500)
    placed = []
    for _ in range(120):  # more than a page of 100
        placed.append(woo.shop.place_order([("ABC", 1)]))
        woo.clock.advance(1)
    for order_id in placed[:100]:
        woo.shop.corrupt_order(order_id, "date_modified_gmt", "soon")

    result = woo.run("orders")

    assert result.ok, result.error
    assert sorted(stored_orders(woo), key=int) == placed[100:]
    assert result.counts["refused"] == 100


# -- the property: a random mix of valid and corrupt orders --------------------------------------

PROPERTY_SKUS = ("P-ONE", "P-TWO", "P-THREE")
CORRUPT = {  # what a corruption sends -> (path, value) of the first line or the order
    "text": ("line_items.0.quantity", "two"),
    "fraction": ("line_items.0.quantity", 1.5),
    "negative": ("line_items.0.quantity", -2),
    "bool": ("line_items.0.quantity", True),
    "null": ("line_items.0.quantity", None),
    "no-lines": ("line_items", DROP),
    "lines-not-a-list": ("line_items", {"0": 1}),
    "modified": ("date_modified_gmt", "05/12/2026 4:22 PM"),
    "created": ("date_created_gmt", "9999-99-99"),
    "line-id": ("line_items.0.id", None),
    "status": ("status", 7),
}


def order_cases() -> Any:
    from hypothesis import strategies as st

    line = st.tuples(st.sampled_from(PROPERTY_SKUS), st.integers(1, 3))
    order = st.tuples(
        st.lists(line, min_size=1, max_size=3, unique_by=lambda x: x[0]),
        st.one_of(st.none(), st.sampled_from(sorted(CORRUPT))),
        st.sampled_from(["processing", "on-hold", "cancelled"]),
    )
    return st.lists(order, min_size=1, max_size=8)


@SQLITE_ONLY
def test_woocommerce_valid_orders_are_imported_once_and_corrupt_ones_refused_by_id(
    open_woo: OpenWoo,  # noqa: F811
) -> None:
    from hypothesis import given

    woo = open_woo(rate_limit=0, engine_clock=True, catalog=dict.fromkeys(PROPERTY_SKUS, 10_000))
    for sku in PROPERTY_SKUS:
        woo.shop.add_listing(sku, 100_000)

    @property_settings(examples=15, deep_examples=300)
    @given(cases=order_cases())
    def check(cases: list[tuple[list[tuple[str, int]], str | None, str]]) -> None:
        valid: dict[str, list[tuple[str, int]]] = {}
        corrupt: dict[str, str] = {}
        for lines, corruption, status in cases:
            order_id = woo.shop.place_order(lines, status=status)
            if corruption is None:
                valid[order_id] = sorted(lines) if status != "cancelled" else []
            else:
                woo.shop.corrupt_order(order_id, *CORRUPT[corruption])
                corrupt[order_id] = corruption
            woo.clock.advance(1)

        pulled = woo.run("orders")

        assert pulled.ok, pulled.error
        stored = woo.orders()
        ids = [o["order_id"] for o in stored]
        assert len(ids) == len(set(ids))  # no order twice
        lines_of = {
            o["order_id"]: sorted(
                (x["sku"], x["quantity"]) for x in o["lines"] if x["status"] != "cancelled"
            )
            for o in stored
        }
        assert {i: lines_of.get(i) for i in valid} == valid
        assert not set(corrupt) & set(lines_of)
        refused = {r.split(":")[0] for r in pulled.reports["rejected_orders"]}
        assert refused == {f"order {i}" for i in corrupt}
        assert set(woo.engine.state.refused_orders("woo")) == set(corrupt)
        assert_ledger_balanced(woo.store.engine)

        for order_id in corrupt:  # fixed in the shop, silently: the held cursor reads them
            woo.shop.repair_order(order_id, touch=False)
        woo.clock.advance(60)
        fixed = woo.run("orders")

        assert fixed.ok, fixed.error
        assert fixed.reports["rejected_orders"] == []
        assert woo.engine.state.refused_orders("woo") == {}
        stored = woo.orders()
        ids = [o["order_id"] for o in stored]
        assert len(ids) == len(set(ids))
        assert set(corrupt) <= set(ids)
        assert_ledger_balanced(woo.store.engine)

    check()
