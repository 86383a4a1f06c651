"""What the order job hands the order book for a channel's order: the route (the channel's
warehouses in order) unless the channel chose the warehouse, and the customer's options.

Where a routed line is then booked is the order book's subject (tests/orders)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sellable.config import ChannelSettings
from sellable.orders import OrderIn, OrderLineIn, OrderStatus
from sellable.sdk import ChannelOrder, ChannelOrderLine
from sellable.sync.jobs.orders import order_in_for

OPEN, SHIPPED = OrderStatus.OPEN, OrderStatus.SHIPPED
UPDATED = datetime(2026, 11, 23, 10, tzinfo=UTC)
CREATED = datetime(2026, 11, 23, 9, tzinfo=UTC)


def channel(*warehouses: str) -> ChannelSettings:
    return ChannelSettings(code="woo", connector="woocommerce", warehouses=list(warehouses))


def channel_order(warehouse: str | None = None) -> ChannelOrder:
    return ChannelOrder(
        "1001",
        OPEN,
        UPDATED,
        (
            ChannelOrderLine("l1", "SET", 2, options=(("mug", "MUG-RED"), ("beans", "BEANS"))),
            ChannelOrderLine("l2", "MUG", 1, SHIPPED),
        ),
        CREATED,
        warehouse,
    )


LINES = (
    OrderLineIn("l1", "SET", 2, None, options=(("mug", "MUG-RED"), ("beans", "BEANS"))),
    OrderLineIn("l2", "MUG", 1, SHIPPED),
)


@pytest.mark.parametrize(
    ("warehouses", "chosen", "expected_warehouse", "expected_route"),
    [
        pytest.param(("main", "tpl"), None, "main", ("main", "tpl"), id="routed-two"),
        pytest.param(("tpl", "main"), None, "tpl", ("tpl", "main"), id="routed-in-listed-order"),
        pytest.param(("main",), None, "main", ("main",), id="routed-one"),
        pytest.param(("main", "tpl"), "tpl", "tpl", (), id="channel-chose-one-of-its-own"),
        pytest.param(("main",), "fba-us", "fba-us", (), id="channel-chose-fba-not-listed"),
    ],
)
def test_a_channel_order_is_routed_unless_the_channel_chose_its_warehouse(
    warehouses: tuple[str, ...],
    chosen: str | None,
    expected_warehouse: str,
    expected_route: tuple[str, ...],
) -> None:
    converted = order_in_for(channel(*warehouses), channel_order(chosen))

    assert converted == OrderIn(
        channel="woo",
        order_id="1001",
        warehouse=expected_warehouse,
        status=OPEN,
        lines=LINES,
        created_at=CREATED,
        route=expected_route,
    )
    assert converted.warehouses == (expected_route or (expected_warehouse,))
