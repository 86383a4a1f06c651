"""The connector's mapping: listings per stock location, the stockOnHand it pushes, the
quantities it reads, and the two passes of an order pull with their status mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sellable_vendure.client import _order as parse_order
from sellable_vendure.client import parse_time
from sellable_vendure.connector import (
    OrderCursor,
    VendureSettings,
    order_status,
    to_channel_order,
)

from sellable.sdk import (
    ChannelError,
    ChannelOrder,
    ChannelOrderLine,
    Listing,
    OrderStatus,
    PushItem,
    PushResult,
)
from tests.connectors.vendure.payloads import (
    DEFAULT_LOCATION,
    SECOND_LOCATION,
    Script,
    connector,
    order,
    orders_page,
    variant,
    variants_by_id,
    variants_page,
)

BEANS = variant("1", "BEANS-12OZ", [("1", 100, 0)])
MUG = variant("2", "MUG-CERAMIC", [("1", 40, 3), ("2", 10, 1)], threshold=2, use_global=False)


def listing(variant_id: str, location: str, sku: str) -> Listing:
    return Listing(
        listing_id=f"{variant_id}@{location}",
        sku=sku,
        parent_id=variant_id,
        extra={"variant_id": variant_id, "stock_location_id": location},
    )


# -- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        pytest.param(
            {"admin_api_url": "vendure.test/admin-api"}, "must be an http(s) URL", id="url"
        ),
        pytest.param({"recheck_days": -1}, "greater than or equal to 0", id="recheck"),
        pytest.param({"token": "x"}, "Extra inputs are not permitted", id="unknown-key"),
    ],
)
def test_settings_refuse_bad_values(values: dict[str, Any], problem: str) -> None:
    base = {"admin_api_url": "http://vendure.test/admin-api", "username": "u", "password": "p"}
    with pytest.raises(ValidationError) as raised:
        VendureSettings.model_validate({**base, **values})
    assert problem in str(raised.value)


def test_settings_defaults_and_trailing_slash() -> None:
    settings = VendureSettings.model_validate(
        {"admin_api_url": "https://shop.example/admin-api/", "username": "u", "password": "pw-1"}
    )
    assert (settings.admin_api_url, settings.stock_locations, settings.recheck_days) == (
        "https://shop.example/admin-api",
        {},
        14,
    )
    assert "pw-1" not in repr(settings)


# -- listings -------------------------------------------------------------------------------------


def test_listings_without_a_table_use_the_oldest_stock_location_for_the_channel_total() -> None:
    page = variants_page([BEANS, MUG], 250, [DEFAULT_LOCATION, SECOND_LOCATION])
    script = Script().login().then("SellableVariants", page)

    with connector(script) as vendure:
        result = vendure.list_listings("100")

    # Vendure's maximum page (adminListQueryLimit, 1000 by default)
    assert script.sent[1].variables["options"] == {"skip": 100, "take": 1000, "sort": {"id": "ASC"}}
    assert result.next_cursor == "102"
    assert list(result.listings) == [
        Listing("1@1", "BEANS-12OZ", "1", None, 99, {"variant_id": "1", "stock_location_id": "1"}),
        # 40 on hand - 3 allocated - its own threshold 2
        Listing("2@1", "MUG-CERAMIC", "2", None, 35, {"variant_id": "2", "stock_location_id": "1"}),
    ]


def test_listings_with_a_table_give_one_listing_per_location_and_the_threshold_once() -> None:
    page = variants_page([BEANS, MUG], 2, [DEFAULT_LOCATION, SECOND_LOCATION])
    script = Script().login().then("SellableVariants", page)

    with connector(
        script, ("main", "berlin"), stock_locations={"2": "berlin", "1": "main"}
    ) as vendure:
        result = vendure.list_listings(None)

    assert result.next_cursor is None
    assert [(x.listing_id, x.sku, x.warehouses, x.quantity) for x in result.listings] == [
        ("1@2", "BEANS-12OZ", ("berlin",), -1),  # no stock at 2; carries the global threshold 1
        ("1@1", "BEANS-12OZ", ("main",), 100),
        ("2@2", "MUG-CERAMIC", ("berlin",), 7),  # 10 - 1 - its threshold 2
        ("2@1", "MUG-CERAMIC", ("main",), 37),  # 40 - 3
    ]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        pytest.param(
            {"7": "main"},
            "stock location '7' in stock_locations is not a stock location of this Vendure "
            "channel (known: 1 (Default Stock Location), 2 (Berlin))",
            id="unknown-location",
        ),
        pytest.param(
            {"1": "fba-us"},
            "warehouse 'fba-us' in stock_locations is not one of the channel's warehouses (main)",
            id="foreign-warehouse",
        ),
    ],
)
def test_listings_refuse_a_table_that_does_not_fit(table: dict[str, str], message: str) -> None:
    page = variants_page([BEANS], 1, [DEFAULT_LOCATION, SECOND_LOCATION])
    script = Script().login().then("SellableVariants", page)

    with connector(script, stock_locations=table) as vendure, pytest.raises(ChannelError) as err:
        vendure.list_listings(None)

    assert str(err.value) == f"vendure: {message}"


# -- quantities -----------------------------------------------------------------------------------


def test_push_sends_sellable_plus_allocated_plus_threshold_per_location() -> None:
    script = Script().login().then("SellableVariantsById", variants_by_id([MUG, BEANS]))
    answer = {
        "data": {
            "updateProductVariants": [
                # Vendure answers in its own order, not the input's
                {"id": "1", "stockLevels": [{"stockLocationId": "1", "stockOnHand": 99}]},
                {
                    "id": "2",
                    "stockLevels": [
                        {"stockLocationId": "1", "stockOnHand": 13},
                        {"stockLocationId": "2", "stockOnHand": 4},
                    ],
                },
            ]
        }
    }
    script.then("SellableSetStockTogether", answer)
    items = [
        PushItem(listing("2", "1", "MUG-CERAMIC"), 10),
        PushItem(listing("2", "2", "MUG-CERAMIC"), 3),
        PushItem(listing("1", "1", "BEANS-12OZ"), 50),
        PushItem(listing("404", "1", "GONE"), 5),
    ]

    with connector(script, ("main", "berlin"), stock_locations={"1": "main", "2": "berlin"}) as v:
        results = v.push_quantities(items)

    assert script.sent[1].variables == {
        "options": {"filter": {"id": {"in": ["1", "2", "404"]}}, "take": 3}
    }
    assert script.sent[2].variables == {
        "input": [
            {
                "id": "2",
                "stockLevels": [
                    {"stockLocationId": "1", "stockOnHand": 15},  # 10 + 3 allocated + 2
                    {"stockLocationId": "2", "stockOnHand": 4},  # 3 + 1 allocated
                ],
            },
            {"id": "1", "stockLevels": [{"stockLocationId": "1", "stockOnHand": 51}]},
        ]
    }
    assert sorted(results, key=lambda r: r.listing_id) == [
        PushResult.failed("1@1", "Vendure holds stockOnHand 99 at location 1, not the 51 sent"),
        PushResult.failed("2@1", "Vendure holds stockOnHand 13 at location 1, not the 15 sent"),
        PushResult.ok("2@2"),
        PushResult.failed("404@1", "variant 404 no longer exists in Vendure"),
    ]


def test_push_confirms_each_listing_vendure_now_holds() -> None:
    script = Script().login().then("SellableVariantsById", variants_by_id([BEANS]))
    answer = {
        "data": {
            "updateProductVariants": [
                {"id": "1", "stockLevels": [{"stockLocationId": "1", "stockOnHand": 51}]}
            ]
        }
    }
    script.then("SellableSetStockTogether", answer)

    with connector(script) as vendure:
        results = vendure.push_quantities([PushItem(listing("1", "1", "BEANS-12OZ"), 50)])

    assert results == [PushResult.ok("1@1")]


def test_push_writes_nothing_where_vendure_already_holds_the_stock_on_hand() -> None:
    # BEANS holds 100 on hand, 0 allocated, global threshold 1: saleable 99.
    script = Script().login().then("SellableVariantsById", variants_by_id([BEANS]))

    with connector(script) as vendure:
        results = vendure.push_quantities([PushItem(listing("1", "1", "BEANS-12OZ"), 99)])

    assert results == [PushResult.ok("1@1")]
    assert script.operations() == ["SellableLogin", "SellableVariantsById"]


def test_read_quantities_read_at_most_a_page_of_variants_a_request() -> None:
    script = Script().login()
    script.then("SellableVariantsById", variants_by_id([BEANS]))
    script.then("SellableVariantsById", variants_by_id([MUG]))

    with connector(script, page_size=1) as vendure:
        found = vendure.read_quantities(
            [listing("1", "1", "BEANS-12OZ"), listing("2", "1", "MUG-CERAMIC")]
        )

    assert found == {"1@1": 99, "2@1": 35}
    assert [sent.variables for sent in script.sent[1:]] == [
        {"options": {"filter": {"id": {"in": ["1"]}}, "take": 1}},
        {"options": {"filter": {"id": {"in": ["2"]}}, "take": 1}},
    ]


def test_read_quantities_give_vendures_saleable_share_per_listing() -> None:
    script = Script().login().then("SellableVariantsById", variants_by_id([MUG]))

    with connector(script, ("main", "berlin"), stock_locations={"1": "main", "2": "berlin"}) as v:
        found = v.read_quantities(
            [
                listing("2", "1", "MUG-CERAMIC"),
                listing("2", "2", "MUG-CERAMIC"),
                listing("5", "1", "X"),
            ]
        )

    assert found == {"2@1": 35, "2@2": 9}


def test_push_and_read_of_nothing_send_nothing() -> None:
    with connector(Script()) as vendure:
        assert (vendure.push_quantities([]), vendure.read_quantities([])) == ([], {})


# -- orders ---------------------------------------------------------------------------------------

SINCE = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
SETTLED = order("1", "PaymentSettled", [("1", "GIFT-KIT-COFFEE", 2), ("2", "MUG-CERAMIC", 1)])
SHIPPED = order(
    "2",
    "Shipped",
    [("3", "BEANS-12OZ", 2)],
    [("Shipped", [("3", 2)])],
    updated="2026-11-20T10:00:00.000Z",
    placed="2026-11-20T10:00:01.000Z",
)


def test_pull_orders_reads_updated_orders_then_rechecks_placed_ones() -> None:
    script = Script().login().then("SellableOrders", orders_page([SETTLED]))
    script.then("SellableOrders", orders_page([SHIPPED, SETTLED]))

    with connector(script) as vendure:
        first = vendure.pull_orders(SINCE, None)
        second = vendure.pull_orders(SINCE, first.next_cursor)

    assert script.sent[1].variables["options"] == {
        "filter": {
            "active": {"eq": False},
            "orderPlacedAt": {"isNull": False},
            "updatedAt": {"after": "2026-11-23T03:59:59.999Z"},
        },
        "sort": {"updatedAt": "ASC", "id": "ASC"},
        "skip": 0,
        "take": 100,
    }
    assert first.next_cursor == "placed|2026-11-09T04:00:00.000Z|0"
    assert script.sent[2].variables["options"] == {
        "filter": {
            "active": {"eq": False},
            "orderPlacedAt": {"after": "2026-11-09T03:59:59.999Z"},
            "state": {"notIn": ["Cancelled"]},
        },
        "sort": {"orderPlacedAt": "ASC", "id": "ASC"},
        "skip": 0,
        "take": 100,
    }
    assert second.next_cursor is None
    assert list(first.orders) == [
        ChannelOrder(
            order_id="CODE1",
            status=OrderStatus.OPEN,
            updated_at=datetime(2026, 11, 23, 4, 27, 3, 97000, tzinfo=UTC),
            lines=(
                ChannelOrderLine("1", "GIFT-KIT-COFFEE", 2),
                ChannelOrderLine("2", "MUG-CERAMIC", 1),
            ),
            created_at=datetime(2026, 11, 23, 4, 27, 3, 863000, tzinfo=UTC),
        )
    ]
    assert [(o.order_id, o.status) for o in second.orders] == [
        ("CODE2", OrderStatus.SHIPPED),
        ("CODE1", OrderStatus.OPEN),
    ]


def test_pull_orders_without_recheck_stops_after_the_updated_pass() -> None:
    script = Script().login().then("SellableOrders", orders_page([]))

    with connector(script, recheck_days=0) as vendure:
        page = vendure.pull_orders(SINCE, None)

    assert (list(page.orders), page.next_cursor) == ([], None)


def test_pull_orders_pages_by_key_and_skips_the_orders_already_read_at_that_key() -> None:
    full = [
        order(str(n), "PaymentSettled", [("1", "BEANS-12OZ", 1)], updated=stamp)
        for n, stamp in enumerate(
            ["2026-11-23T04:00:00.000Z"] * 97 + ["2026-11-23T04:00:05.000Z"] * 3
        )
    ]
    script = Script().login().then("SellableOrders", orders_page(full, 150))
    script.then("SellableOrders", orders_page([]))

    with connector(script) as vendure:
        first = vendure.pull_orders(SINCE, None)
        vendure.pull_orders(SINCE, first.next_cursor)

    assert first.next_cursor == "updated|2026-11-23T04:00:05.000Z|3"
    options = script.sent[2].variables["options"]
    assert (options["filter"]["updatedAt"], options["skip"]) == (
        {"after": "2026-11-23T04:00:04.999Z"},
        3,
    )


def test_order_cursor_counts_ties_across_pages_at_the_same_key() -> None:
    key = datetime(2026, 11, 23, 4, 0, 5, tzinfo=UTC)
    cursor = OrderCursor("placed", key, 100)

    following = cursor.after([key] * 100)

    assert following.encode() == "placed|2026-11-23T04:00:05.000Z|200"
    assert OrderCursor.parse(following.encode(), SINCE).ties == 200


@pytest.mark.parametrize("bad", ["nonsense", "later|2026-11-23T04:00:05.000Z|1", "updated|x|1"])
def test_order_cursor_refuses_a_malformed_token(bad: str) -> None:
    with pytest.raises(ChannelError, match="malformed"):
        OrderCursor.parse(bad, SINCE)


@pytest.mark.parametrize(
    ("state", "fulfillments", "expected"),
    [
        pytest.param("PaymentAuthorized", [], OrderStatus.OPEN, id="authorized"),
        pytest.param("PaymentSettled", [], OrderStatus.OPEN, id="settled"),
        pytest.param(
            "PartiallyShipped", [("Shipped", [("1", 2)])], OrderStatus.OPEN, id="partly-shipped"
        ),
        pytest.param(
            "Shipped",
            [("Shipped", [("1", 2)]), ("Shipped", [("2", 1)])],
            OrderStatus.SHIPPED,
            id="shipped",
        ),
        pytest.param(
            "PartiallyDelivered",
            [("Delivered", [("1", 2)]), ("Shipped", [("2", 1)])],
            OrderStatus.SHIPPED,
            id="partly-delivered-all-left",
        ),
        pytest.param(
            "PartiallyDelivered",
            [("Delivered", [("1", 2)]), ("Pending", [("2", 1)])],
            OrderStatus.OPEN,
            id="partly-delivered-one-pending",
        ),
        pytest.param(
            "Delivered", [("Delivered", [("1", 2), ("2", 1)])], OrderStatus.SHIPPED, id="delivered"
        ),
        pytest.param("Cancelled", [], OrderStatus.CANCELLED, id="cancelled"),
        pytest.param("Modifying", [], OrderStatus.OPEN, id="modifying"),
        pytest.param("MyCustomReview", [], OrderStatus.OPEN, id="custom-state"),
    ],
)
def test_order_status_maps_vendure_states_and_fulfillments(
    state: str, fulfillments: list[tuple[str, list[tuple[str, int]]]], expected: OrderStatus
) -> None:
    item = order("1", state, [("1", "GIFT-KIT-COFFEE", 2), ("2", "MUG-CERAMIC", 1)], fulfillments)

    assert order_status(parse_order(item)) == expected


@pytest.mark.parametrize(
    ("state", "fulfillments", "expected"),
    [
        pytest.param(
            "PartiallyShipped",
            [("Shipped", [("1", 2)])],
            (OrderStatus.SHIPPED, None),
            id="first-line-left",
        ),
        pytest.param(
            "PartiallyShipped",
            [("Shipped", [("1", 1)]), ("Pending", [("1", 1), ("2", 1)])],
            (None, None),
            id="one-unit-of-two-left",
        ),
        pytest.param(
            "PartiallyDelivered",
            [("Delivered", [("2", 1)]), ("Shipped", [("1", 1)]), ("Shipped", [("1", 1)])],
            (None, None),  # every line left: the order itself is shipped
            id="all-left-in-three-parcels",
        ),
        pytest.param("PaymentSettled", [], (None, None), id="nothing-left"),
    ],
)
def test_channel_order_says_which_lines_of_an_open_order_shipped(
    state: str,
    fulfillments: list[tuple[str, list[tuple[str, int]]]],
    expected: tuple[OrderStatus | None, OrderStatus | None],
) -> None:
    item = order("1", state, [("1", "GIFT-KIT-COFFEE", 2), ("2", "MUG-CERAMIC", 1)], fulfillments)

    mapped = to_channel_order(parse_order(item))

    assert tuple(line.status for line in mapped.lines) == expected


def test_pull_orders_drops_carts_and_drafts_whatever_the_server_returns() -> None:
    cart = order("5", "AddingItems", [("9", "BEANS-12OZ", 1)], active=True, placed=None)
    draft = order("6", "Draft", [("9", "BEANS-12OZ", 1)], placed=None)
    script = Script().login().then("SellableOrders", orders_page([cart, draft, SETTLED]))

    with connector(script, recheck_days=0) as vendure:
        page = vendure.pull_orders(SINCE - timedelta(days=1), None)

    assert [o.order_id for o in page.orders] == ["CODE1"]


def test_parse_time_reads_vendures_utc_milliseconds() -> None:
    assert parse_time("2026-11-23T04:27:03.097Z") == datetime(
        2026, 11, 23, 4, 27, 3, 97000, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("path", "value", "field", "reason"),
    [
        ("quantity", "two", "lines[0].quantity", "'two' is not a whole number"),
        ("quantity", 1.5, "lines[0].quantity", "1.5 is not a whole number"),
        ("quantity", -2, "lines[0].quantity", "-2 is negative"),
        (
            "updatedAt",
            "05/12/2026 4:22 PM",
            "updatedAt",
            "'05/12/2026 4:22 PM' is not an ISO 8601 date",
        ),
        ("lines", None, "lines", "missing"),
    ],
    ids=["text", "fraction", "negative", "date", "no-lines"],
)
def test_pull_orders_refuses_an_unreadable_order_by_code_and_reads_the_rest(
    path: str, value: Any, field: str, reason: str
) -> None:
    bad = order("2", "PaymentSettled", [("3", "MUG-CERAMIC", 1)])
    if path == "quantity":
        bad["lines"][0]["quantity"] = value
    else:
        bad[path] = value
    good = order("3", "PaymentSettled", [("4", "MUG-CERAMIC", 1)])
    script = Script().login().then("SellableOrders", orders_page([SETTLED, bad, good]))

    with connector(script, recheck_days=0) as vendure:
        page = vendure.pull_orders(SINCE, None)

    assert [o.order_id for o in page.orders] == ["CODE1", "CODE3"]
    assert [(r.order_id, r.field, r.reason) for r in page.rejected] == [("CODE2", field, reason)]
