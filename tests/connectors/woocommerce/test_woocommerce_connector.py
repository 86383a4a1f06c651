"""The WooCommerce connector against respx, with payloads from the REST API v3 docs'
own examples (https://woocommerce.github.io/woocommerce-rest-api-docs/: "List all
products" 799/794, "List all product variations" 732/733, "List all orders" 727/723,
"Batch update products"), cut to the fields the connector reads."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError
from sellable_woocommerce.connector import STATUSES, WooCommerceConnector, WooCommerceSettings

from sellable.sdk import (
    ChannelHttp,
    ChannelOrder,
    ChannelOrderLine,
    ConnectorContext,
    Listing,
    OrderStatus,
    PushItem,
    PushResult,
)

SITE = "https://example.com"
API = SITE + "/wp-json/wc/v3"
KEY, SECRET = "ck_docs", "cs_docs"

# "List all products": a variable product and a simple one (docs example ids).
PRODUCTS = [
    {
        "id": 799,
        "name": "Ship Your Idea",
        "type": "variable",
        "sku": "",
        "manage_stock": False,
        "stock_quantity": None,
        "stock_status": "instock",
        "variations": [732, 733],
    },
    {
        "id": 794,
        "name": "Premium Quality",
        "type": "simple",
        "sku": "",
        "manage_stock": False,
        "stock_quantity": None,
        "stock_status": "instock",
        "variations": [],
    },
]
# "List all product variations" of product 22 in the docs, here under 799.
VARIATIONS = [
    {
        "id": 733,
        "sku": "",
        "manage_stock": False,
        "stock_quantity": None,
        "stock_status": "instock",
    },
    {
        "id": 732,
        "sku": "",
        "manage_stock": False,
        "stock_quantity": None,
        "stock_status": "instock",
    },
]
# "List all orders": 727 (processing) and 723 (completed).
ORDERS = [
    {
        "id": 727,
        "status": "processing",
        "date_created_gmt": "2017-03-22T19:28:02",
        "date_modified_gmt": "2017-03-22T19:28:08",
        "line_items": [
            {"id": 315, "product_id": 93, "variation_id": 0, "quantity": 2, "sku": ""},
            {"id": 316, "product_id": 22, "variation_id": 23, "quantity": 1, "sku": "Bar3"},
        ],
    },
    {
        "id": 723,
        "status": "completed",
        "date_created_gmt": "2017-03-21T19:16:00",
        "date_modified_gmt": "2017-03-21T19:54:51",
        "line_items": [
            {"id": 311, "product_id": 87, "variation_id": 0, "quantity": 1, "sku": ""},
            {"id": 313, "product_id": 34, "variation_id": 0, "quantity": 1, "sku": ""},
        ],
    },
]


def pages(total: int, pages_: int) -> dict[str, str]:
    return {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages_)}


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def connector(router: respx.MockRouter) -> Iterator[WooCommerceConnector]:
    http = ChannelHttp("woo", rate=None, sleep=lambda _s: None, backoff_base=0.0)
    settings = WooCommerceSettings(base_url=SITE, consumer_key=KEY, consumer_secret=SECRET)  # type: ignore[arg-type]
    shop = WooCommerceConnector(settings, ConnectorContext("woo", ("main",), http))
    http.set_base_url(shop.base_url())
    http.authenticate = shop.authenticate
    yield shop
    http.close()


def query(route: respx.Route, call: int = -1) -> dict[str, str]:
    return dict(route.calls[call].request.url.params)


# -- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://shop.example.com", "uses plain HTTP"),
        ("https://shop.example.com/wp-json/wc/v3", "already ends with /wp-json/wc/v3"),
        ("ftp://shop.example.com", "must be an http(s) URL"),
    ],
    ids=["plain-http-remote", "api-path-given", "not-http"],
)
def test_woocommerce_settings_refuse_unsafe_or_wrong_urls(url: str, error: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(error)):
        WooCommerceSettings(base_url=url, consumer_key=KEY, consumer_secret=SECRET)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    ["https://shop.example.com", "http://127.0.0.1:8080", "http://localhost/", "http://[::1]:9"],
)
def test_woocommerce_settings_accept_https_and_loopback_http(url: str) -> None:
    settings = WooCommerceSettings(base_url=url, consumer_key=KEY, consumer_secret=SECRET)  # type: ignore[arg-type]
    assert settings.base_url == url
    assert KEY not in repr(settings) and SECRET not in repr(settings)


# -- listings --------------------------------------------------------------------------------


def test_woocommerce_lists_products_and_variations_with_basic_auth(
    connector: WooCommerceConnector, router: respx.MockRouter
) -> None:
    products = router.get(f"{API}/products").mock(
        return_value=httpx.Response(200, json=PRODUCTS, headers=pages(2, 1))
    )
    variations = router.get(f"{API}/products/799/variations").mock(
        return_value=httpx.Response(200, json=VARIATIONS, headers=pages(2, 1))
    )

    page = connector.list_listings(None)

    assert page.next_cursor is None
    assert list(page.listings) == [
        Listing("733", None, "799", extra={"manage_stock": "false"}),
        Listing("732", None, "799", extra={"manage_stock": "false"}),
        Listing("794", None, None, extra={"manage_stock": "false"}),
    ]
    assert query(products) == {"per_page": "100", "offset": "0", "orderby": "id", "order": "asc"}
    assert query(variations) == {"per_page": "100", "page": "1", "orderby": "id", "order": "asc"}
    expected = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert products.calls[0].request.headers["Authorization"] == expected


def shop_of(ids: list[int]) -> Callable[[httpx.Request], httpx.Response]:
    """``GET /products?offset=…`` over the product ids in ``ids`` (changed by the test)."""

    def answer(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        chunk = ids[offset : offset + 100]
        body = [
            {"id": n, "type": "simple", "sku": f"S{n}", "manage_stock": True, "stock_quantity": 1}
            for n in chunk
        ]
        return httpx.Response(200, json=body, headers=pages(len(ids), -(-len(ids) // 100)))

    return answer


def test_woocommerce_listing_pages_overlap_by_one_and_skip_nothing_when_unchanged(
    connector: WooCommerceConnector, router: respx.MockRouter
) -> None:
    ids = list(range(1, 251))
    route = router.get(f"{API}/products").mock(side_effect=shop_of(ids))

    first = connector.list_listings(None)
    ids.append(251)  # created meanwhile: it comes last, the rest does not move
    second = connector.list_listings(first.next_cursor)
    third = connector.list_listings(second.next_cursor)

    assert (first.next_cursor, second.next_cursor, third.next_cursor) == (
        "100:100",
        "199:199",
        None,
    )
    assert first.listings[0] == Listing("1", "S1", None, quantity=1)
    read = [x.listing_id for page in (first, second, third) for x in page.listings]
    assert read == [str(n) for n in range(1, 252)]
    assert [query(route, n) for n in (0, 1)] == [
        {"per_page": "100", "offset": "0", "orderby": "id", "order": "asc"},
        {"per_page": "100", "offset": "99", "orderby": "id", "order": "asc"},
    ]
    assert len(route.calls) == 3


def test_woocommerce_listing_steps_back_when_products_went_between_pages(
    connector: WooCommerceConnector, router: respx.MockRouter
) -> None:
    ids = list(range(1, 151))
    route = router.get(f"{API}/products").mock(side_effect=shop_of(ids))

    first = connector.list_listings(None)
    del ids[:21]  # 1..21 deleted: offset 99 now starts at 121, past the last id read
    second = connector.list_listings(first.next_cursor)
    third = connector.list_listings(second.next_cursor)

    read = [x.listing_id for page in (first, second, third) for x in page.listings]
    assert read == [str(n) for n in range(1, 151)]  # page numbers would have lost 101..121
    assert [query(route, n)["offset"] for n in range(4)] == ["0", "99", "0", "99"]
    assert (second.next_cursor, third.next_cursor) == ("100:121", None)


def test_woocommerce_variations_page_on_inherited_skus_unmatched_duplicates_listed(
    connector: WooCommerceConnector, router: respx.MockRouter
) -> None:
    parent = {"id": 50, "type": "variable", "sku": "TEE", "variations": []}
    many = [
        {"id": 100 + n, "sku": f"TEE-{n}", "manage_stock": True, "stock_quantity": 1}
        for n in range(100)
    ]
    last = [
        {"id": 300, "sku": "TEE", "manage_stock": True, "stock_quantity": 4},  # parent's SKU
        {"id": 301, "sku": "MUG", "manage_stock": True, "stock_quantity": 2},
    ]
    router.get(f"{API}/products").mock(
        return_value=httpx.Response(
            200,
            json=[
                parent,
                {
                    "id": 60,
                    "type": "simple",
                    "sku": "MUG",
                    "manage_stock": True,
                    "stock_quantity": 2,
                },
            ],
            headers=pages(2, 1),
        )
    )
    router.get(f"{API}/products/50/variations", params={"page": "1"}).mock(
        return_value=httpx.Response(200, json=many, headers=pages(102, 2))
    )
    router.get(f"{API}/products/50/variations", params={"page": "2"}).mock(
        return_value=httpx.Response(200, json=last, headers=pages(102, 2))
    )

    listings = {x.listing_id: x for x in connector.list_listings(None).listings}

    assert len(listings) == 103
    assert listings["300"] == Listing("300", None, "50", quantity=4, extra={"inherited_sku": "TEE"})
    # A SKU on two listings is reported as it is: the engine's one duplicate policy decides.
    assert listings["301"] == Listing("301", "MUG", "50", quantity=2)
    assert listings["60"] == Listing("60", "MUG", None, quantity=2)
    assert listings["199"] == Listing("199", "TEE-99", "50", quantity=1)


# -- orders ----------------------------------------------------------------------------------


def test_woocommerce_pulls_the_docs_orders_with_gmt_dates(
    connector: WooCommerceConnector, router: respx.MockRouter
) -> None:
    trashed = {**ORDERS[0], "id": 728, "status": "trash"}
    trash = router.get(f"{API}/orders", params={"status": "trash"}).mock(
        return_value=httpx.Response(200, json=[trashed], headers=pages(1, 1))
    )
    route = router.get(f"{API}/orders").mock(
        return_value=httpx.Response(200, json=ORDERS, headers=pages(2, 1))
    )
    since = datetime(2017, 3, 20, 10, 0, 0, 250_000, tzinfo=UTC)

    page = connector.pull_orders(since, None)
    trash_page = connector.pull_orders(since, page.next_cursor)

    # then the pass over trashed orders, which status=any leaves out
    assert json.loads(page.next_cursor or "") == {
        "a": "2017-03-20T09:59:59",
        "s": 0,
        "i": [],
        "t": 1,
    }
    assert [(o.order_id, o.status) for o in trash_page.orders] == [("728", OrderStatus.CANCELLED)]
    assert trash_page.next_cursor is None
    assert query(trash)["status"] == "trash"
    assert query(trash)["modified_after"] == "2017-03-20T09:59:59"
    assert list(page.orders) == [
        ChannelOrder(
            "727",
            OrderStatus.OPEN,
            datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC),
            (ChannelOrderLine("315", "", 2), ChannelOrderLine("316", "Bar3", 1)),
            created_at=datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC),
        ),
        ChannelOrder(
            "723",
            OrderStatus.SHIPPED,
            datetime(2017, 3, 21, 19, 54, 51, tzinfo=UTC),
            (ChannelOrderLine("311", "", 1), ChannelOrderLine("313", "", 1)),
            created_at=datetime(2017, 3, 21, 19, 16, 0, tzinfo=UTC),
        ),
    ]
    assert query(route) == {
        "modified_after": "2017-03-20T09:59:59",  # one second early: the filter is strict
        "dates_are_gmt": "true",
        "orderby": "modified",
        "order": "asc",
        "per_page": "100",
        "page": "1",
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("pending", OrderStatus.OPEN),
        ("on-hold", OrderStatus.OPEN),
        ("processing", OrderStatus.OPEN),
        ("completed", OrderStatus.SHIPPED),
        ("cancelled", OrderStatus.CANCELLED),
        ("refunded", OrderStatus.CANCELLED),
        ("failed", OrderStatus.CANCELLED),
        ("trash", OrderStatus.CANCELLED),
        ("checkout-draft", OrderStatus.OPEN),  # a status of a plugin: held, never released
    ],
)
def test_woocommerce_order_statuses_map_to_ours(
    connector: WooCommerceConnector, router: respx.MockRouter, status: str, expected: OrderStatus
) -> None:
    router.get(f"{API}/orders").mock(
        return_value=httpx.Response(
            200, json=[{**ORDERS[0], "status": status}], headers=pages(1, 1)
        )
    )
    (order,) = connector.pull_orders(datetime(2017, 1, 1, tzinfo=UTC), None).orders
    assert order.status is expected
    assert len(STATUSES) == 8


def order_at(order_id: int, modified: str) -> dict[str, Any]:
    return {
        "id": order_id,
        "status": "processing",
        "date_modified_gmt": modified,
        "line_items": [{"id": order_id * 10, "quantity": 1, "sku": "MUG"}],
    }


def test_woocommerce_order_pages_restart_from_the_last_second_read_and_skip_its_ids(
    connector: WooCommerceConnector, router: respx.MockRouter
) -> None:
    first = [order_at(n, f"2026-05-01T10:00:{n // 2:02d}") for n in range(1, 101)]  # 100 orders
    route = router.get(f"{API}/orders").mock(
        side_effect=[
            httpx.Response(200, json=first, headers=pages(130, 2)),
            # orders 99 and 100 (second :50) come again, then the rest
            httpx.Response(
                200,
                json=[first[98], first[99], order_at(101, "2026-05-01T10:00:51")],
                headers=pages(3, 1),
            ),
        ]
    )
    since = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)

    one = connector.pull_orders(since, None)
    two = connector.pull_orders(since, one.next_cursor)

    assert [o.order_id for o in one.orders] == [str(n) for n in range(1, 101)]
    assert json.loads(one.next_cursor or "") == {
        "a": "2026-05-01T10:00:49",
        "s": 0,
        "i": ["100@2026-05-01T10:00:50"],
    }
    assert [o.order_id for o in two.orders] == ["99", "101"]  # 100 was returned already
    assert query(route, 1)["modified_after"] == "2026-05-01T10:00:49"
    assert query(route, 1)["page"] == "1"
    assert json.loads(two.next_cursor or "")["t"] == 1  # the trash pass comes next


def test_woocommerce_a_page_of_one_second_reads_on_by_offset_with_an_overlap(
    connector: WooCommerceConnector, router: respx.MockRouter
) -> None:
    same = [order_at(n, "2026-05-01T10:00:00") for n in range(1, 101)]
    later = [order_at(n, "2026-05-01T10:00:00") for n in range(91, 121)]
    route = router.get(f"{API}/orders").mock(
        side_effect=[
            httpx.Response(200, json=same, headers=pages(120, 2)),
            httpx.Response(200, json=later, headers=pages(120, 2)),
        ]
    )
    since = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)

    one = connector.pull_orders(since, None)
    two = connector.pull_orders(since, one.next_cursor)

    assert len(one.orders) == 100
    assert query(route, 1) == {
        "modified_after": "2026-05-01T08:59:59",
        "dates_are_gmt": "true",
        "orderby": "modified",
        "order": "asc",
        "per_page": "100",
        "offset": "90",  # 100 read, 10 read again
    }
    assert [o.order_id for o in two.orders] == [str(n) for n in range(101, 121)]
    assert json.loads(two.next_cursor or "") == {
        "a": "2026-05-01T08:59:59",
        "s": 0,
        "i": [],
        "t": 1,
    }


def test_woocommerce_a_block_steps_back_when_more_orders_changed_than_the_overlap(
    connector: WooCommerceConnector, router: respx.MockRouter
) -> None:
    block = [order_at(n, "2026-05-01T10:00:00") for n in range(1, 121)]

    def answer(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params.get("offset", "0"))
        return httpx.Response(200, json=block[offset : offset + 100], headers=pages(120, 2))

    route = router.get(f"{API}/orders").mock(side_effect=answer)
    since = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)

    one = connector.pull_orders(since, None)
    changed = [order_at(n, "2026-05-01T10:00:01") for n in range(1, 16)]
    block[:] = block[15:] + changed  # 15 orders of page one changed: 16 moved to the top
    two = connector.pull_orders(since, one.next_cursor)
    three = connector.pull_orders(since, two.next_cursor)

    assert [query(route, n).get("offset") for n in range(4)] == [None, "90", "0", "90"]
    assert [o.order_id for o in two.orders] == [str(n) for n in range(101, 116)]
    assert [(o.order_id, o.updated_at.second) for o in three.orders] == [
        *((str(n), 0) for n in range(116, 121)),
        *((str(n), 1) for n in range(1, 16)),  # their new state
    ]


# -- pushing ---------------------------------------------------------------------------------


def item(listing_id: str, quantity: int, parent: str | None = None) -> PushItem:
    return PushItem(Listing(listing_id, f"SKU-{listing_id}", parent), quantity)


def updated(product_id: int, quantity: int) -> dict[str, Any]:
    return {"id": product_id, "manage_stock": True, "stock_quantity": quantity}


def test_woocommerce_push_batches_per_parent_and_isolates_item_errors(
    connector: WooCommerceConnector, router: respx.MockRouter
) -> None:
    products = router.post(f"{API}/products/batch").mock(
        return_value=httpx.Response(
            200,
            json={
                "update": [
                    updated(794, 5),
                    {
                        "id": 795,
                        "error": {
                            "code": "woocommerce_rest_product_invalid_id",
                            "message": "Invalid ID.",
                            "data": {"status": 400},
                        },
                    },
                    {"id": 796, "manage_stock": True, "stock_quantity": 3},  # not what we sent
                ]
            },
        )
    )
    variations = router.post(f"{API}/products/799/variations/batch").mock(
        return_value=httpx.Response(200, json={"update": [updated(732, 0), updated(733, 7)]})
    )

    results = connector.push_quantities(
        [
            item("794", 5),
            item("732", 0, "799"),
            item("795", 1),
            item("733", 7, "799"),
            item("796", 4),
        ]
    )

    assert sorted(results, key=lambda r: r.listing_id) == [
        PushResult.ok("732"),
        PushResult.ok("733"),
        PushResult.ok("794"),
        PushResult.failed("795", "woocommerce_rest_product_invalid_id: Invalid ID."),
        PushResult.failed(
            "796", "not applied: the channel shows stock_quantity=3, manage_stock=True"
        ),
    ]
    assert json.loads(products.calls[0].request.content) == {
        "update": [
            {"id": 794, "manage_stock": True, "stock_quantity": 5},
            {"id": 795, "manage_stock": True, "stock_quantity": 1},
            {"id": 796, "manage_stock": True, "stock_quantity": 4},
        ]
    }
    assert json.loads(variations.calls[0].request.content) == {
        "update": [
            {"id": 732, "manage_stock": True, "stock_quantity": 0},
            {"id": 733, "manage_stock": True, "stock_quantity": 7},
        ]
    }


def test_woocommerce_push_halves_a_batch_the_site_refuses_with_413(
    connector: WooCommerceConnector, router: respx.MockRouter
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)["update"]
        if len(body) > 30:  # a site with woocommerce_rest_batch_items_limit = 30
            return httpx.Response(
                413,
                json={
                    "code": "woocommerce_rest_request_entity_too_large",
                    "message": "Unable to accept more than 30 items for this request.",
                    "data": {"status": 413},
                },
            )
        return httpx.Response(
            200, json={"update": [updated(x["id"], x["stock_quantity"]) for x in body]}
        )

    route = router.post(f"{API}/products/batch").mock(side_effect=answer)

    results = connector.push_quantities([item(str(n), n) for n in range(1, 101)])

    assert sorted(int(r.listing_id) for r in results if r.status.value == "ok") == list(
        range(1, 101)
    )
    sizes = [len(json.loads(c.request.content)["update"]) for c in route.calls]
    assert sizes == [100, 50, 25, 25, 50, 25, 25]


def test_woocommerce_reads_quantities_of_managed_listings_by_include(
    connector: WooCommerceConnector, router: respx.MockRouter
) -> None:
    products = router.get(f"{API}/products").mock(
        return_value=httpx.Response(
            200,
            json=[updated(794, 6), {"id": 795, "manage_stock": False, "stock_quantity": None}],
            headers=pages(2, 1),
        )
    )
    variations = router.get(f"{API}/products/799/variations").mock(
        return_value=httpx.Response(200, json=[updated(732, 2)], headers=pages(1, 1))
    )

    found = connector.read_quantities(
        [Listing("794", "A"), Listing("795", "B"), Listing("732", "C", "799")]
    )

    assert found == {"794": 6, "732": 2}
    assert query(products)["include"] == "794,795"
    assert query(variations)["include"] == "732"
