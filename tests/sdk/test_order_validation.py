"""The SDK's own validation of ChannelOrder and ChannelOrderLine, and collect_orders: a
third-party connector gets issue 18's rule (one bad order is refused by id, the rest of
the page is read) without writing it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from sellable.sdk import (
    ChannelOrder,
    ChannelOrderLine,
    ChannelPayloadError,
    OrderPayloadError,
    OrderStatus,
    RejectedOrder,
    collect_orders,
    whole_quantity,
)

AT = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("two", "'two' is not a whole number"),
        ("2", "'2' is not a whole number"),
        (1.5, "1.5 is not a whole number"),
        (2.0, "2.0 is not a whole number"),
        (True, "True is not a whole number"),
        (None, "None is not a whole number"),
        (-2, "-2 is negative"),
    ],
    ids=["text", "digits", "fraction", "float", "bool", "none", "negative"],
)
def test_whole_quantity_refuses_what_is_not_a_whole_number_of_units(
    value: Any, reason: str
) -> None:
    with pytest.raises(OrderPayloadError) as excinfo:
        whole_quantity(value, "line_items[0].quantity")
    assert (excinfo.value.field, excinfo.value.reason) == ("line_items[0].quantity", reason)
    assert str(excinfo.value) == f"field line_items[0].quantity: {reason}"


def test_whole_quantity_accepts_zero_a_line_with_nothing_left() -> None:
    assert (whole_quantity(0), whole_quantity(7)) == (0, 7)


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"line_id": ""}, "line_id", "'' is not non-empty text"),
        ({"sku": None}, "lines[L1].sku", "None is not text"),
        ({"quantity": 1.5}, "lines[L1].quantity", "1.5 is not a whole number"),
        ({"quantity": -2}, "lines[L1].quantity", "-2 is negative"),
        ({"status": "shipped"}, "lines[L1].status", "'shipped' is not a status"),
        ({"options": (("slot",),)}, "lines[L1].options", "('slot',) is not a (slot, SKU) pair"),
    ],
    ids=["line-id", "sku", "fraction", "negative", "status", "options"],
)
def test_channel_order_line_refuses_a_bad_field_naming_it(
    fields: dict[str, Any], field: str, reason: str
) -> None:
    values: dict[str, Any] = {"line_id": "L1", "sku": "MUG", "quantity": 1, **fields}
    with pytest.raises(OrderPayloadError) as excinfo:
        ChannelOrderLine(**values)
    assert (excinfo.value.order_id, excinfo.value.field, excinfo.value.reason) == (
        None,
        field,
        reason,
    )


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"status": "open"}, "status", "'open' is not a status"),
        ({"updated_at": "2026-12-06"}, "updated_at", "'2026-12-06' is not a datetime"),
        ({"created_at": 0}, "created_at", "0 is not a datetime"),
        ({"lines": "MUG"}, "lines", "'MUG' is not a list of lines"),
        ({"lines": (("L1", "MUG", 1),)}, "lines", "('L1', 'MUG', 1) is not a ChannelOrderLine"),
        ({"warehouse": ""}, "warehouse", "'' is not non-empty text"),
    ],
    ids=["status", "updated", "created", "lines-text", "line-tuple", "warehouse"],
)
def test_channel_order_refuses_a_bad_field_naming_the_order(
    fields: dict[str, Any], field: str, reason: str
) -> None:
    values: dict[str, Any] = {
        "order_id": "1001",
        "status": OrderStatus.OPEN,
        "updated_at": AT,
        "lines": (ChannelOrderLine("L1", "MUG", 1),),
        **fields,
    }
    with pytest.raises(OrderPayloadError) as excinfo:
        ChannelOrder(**values)
    assert (excinfo.value.order_id, excinfo.value.field, excinfo.value.reason) == (
        "1001",
        field,
        reason,
    )
    assert str(excinfo.value) == f"order '1001', field {field}: {reason}"


def test_channel_order_reads_a_time_without_zone_as_utc_and_lines_as_a_tuple() -> None:
    plus_two = timezone(timedelta(hours=2))
    order = ChannelOrder(
        "1001",
        OrderStatus.OPEN,
        datetime(2026, 12, 6, 4, 0),
        [ChannelOrderLine("L1", "MUG", 1)],  # type: ignore[arg-type]
        created_at=datetime(2026, 12, 6, 6, 0, tzinfo=plus_two),
    )
    assert (order.updated_at, order.created_at, order.lines) == (
        AT,
        datetime(2026, 12, 6, 6, 0, tzinfo=plus_two),
        (ChannelOrderLine("L1", "MUG", 1),),
    )


def test_an_order_id_that_is_empty_is_refused() -> None:
    with pytest.raises(OrderPayloadError) as excinfo:
        ChannelOrder(" ", OrderStatus.OPEN, AT, ())
    assert (excinfo.value.field, excinfo.value.reason) == ("order_id", "' ' is not non-empty text")


def parse(raw: dict[str, Any]) -> ChannelOrder:
    """A third-party connector's mapping, written without a thought for bad payloads."""
    if raw.get("broken"):
        raise ChannelPayloadError("the order's address block is unreadable")
    return ChannelOrder(
        order_id=str(raw["id"]),
        status=OrderStatus.OPEN,
        updated_at=datetime.fromisoformat(raw["updated"]),
        lines=tuple(
            ChannelOrderLine(str(n), line["sku"], line["qty"])
            for n, line in enumerate(raw["lines"])
        ),
    )


def test_collect_orders_refuses_each_unreadable_order_by_id_and_keeps_the_others() -> None:
    def raw(order_id: Any, **fields: Any) -> dict[str, Any]:
        return {
            "id": order_id,
            "updated": "2026-12-06T04:00:00+00:00",
            "lines": [{"sku": "MUG", "qty": 1}],
            **fields,
        }

    raws = [
        raw(1),
        raw(2, lines=[{"sku": "MUG", "qty": "two"}]),
        raw(3, lines=[{"sku": "MUG"}]),
        raw(4, updated="05/12/2026 4:22 PM"),
        raw(5, broken=True),
        raw(None, lines=[{"sku": "MUG", "qty": -2}]),
        raw(7, lines=[{"sku": "MUG", "qty": 3}]),
    ]

    orders, rejected = collect_orders(
        raws,
        parse,
        order_id=lambda r: r["id"],
        updated_at=lambda r: datetime.fromisoformat(r["updated"]),
    )

    assert [o.order_id for o in orders] == ["1", "7"]
    assert rejected == [
        RejectedOrder("2", "lines[0].quantity", "'two' is not a whole number", AT),
        RejectedOrder("3", "qty", "missing", AT),
        RejectedOrder(
            "4",
            "order",
            "ValueError: Invalid isoformat string: '05/12/2026 4:22 PM'",
            None,
        ),
        RejectedOrder("5", "order", "the order's address block is unreadable", AT),
        RejectedOrder("(no id: order 6 of its page)", "lines[0].quantity", "-2 is negative", AT),
    ]
    assert rejected[0].describe() == "order 2: lines[0].quantity: 'two' is not a whole number"


def test_order_time_reads_iso_8601_and_names_the_field_it_cannot_read() -> None:
    from datetime import UTC, datetime

    from sellable.errors import OrderPayloadError
    from sellable.sdk import order_time

    assert order_time({"at": "2026-12-05T16:22:00Z"}, "at") == datetime(
        2026, 12, 5, 16, 22, tzinfo=UTC
    )
    assert order_time({"at": "2026-12-05T16:22:00"}, "at").tzinfo is UTC  # no zone: UTC
    for raw, reason in (
        ({}, "missing"),
        ({"at": 5}, "5 is not a date"),
        ({"at": "05/12/2026 4:22 PM"}, "'05/12/2026 4:22 PM' is not an ISO 8601 date"),
    ):
        try:
            order_time(raw, "at")
        except OrderPayloadError as error:
            assert (error.field, error.reason) == ("at", reason)
        else:
            raise AssertionError(f"{raw} was read")
