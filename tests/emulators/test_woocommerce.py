"""The WooCommerce emulator over real loopback HTTP: auth, pagination headers and drift,
dates, stock gating, orders moving stock, batches (limit, per-item errors), throttling."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from sellable.emulators import ManualClock, emulator_class
from sellable.emulators.woocommerce import API, WooCommerceEmulator

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def shop(clock: ManualClock) -> Iterator[WooCommerceEmulator]:
    with WooCommerceEmulator(clock=clock, rate_limit=0) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def api(shop: WooCommerceEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=shop.url + API, auth=(shop.consumer_key, shop.consumer_secret)
    ) as client:
        yield client


def test_woocommerce_emulator_is_registered_and_starts_with_defaults() -> None:
    cls = emulator_class("woocommerce")
    assert cls is WooCommerceEmulator
    with cls(port=0) as shop:
        assert isinstance(shop, WooCommerceEmulator)
        assert (shop.rate_limit, shop.rate_window, shop.batch_limit) == (25, 10.0, 100)
        assert shop.connector_settings() == {
            "base_url": shop.url,
            "consumer_key": shop.consumer_key,
            "consumer_secret": shop.consumer_secret,
        }


@pytest.mark.parametrize(
    ("auth", "method", "code", "message"),
    [
        (None, "GET", "woocommerce_rest_cannot_view", "Sorry, you cannot list resources."),
        (
            None,
            "POST",
            "woocommerce_rest_cannot_edit",
            "Sorry, you are not allowed to edit this resource.",
        ),
        (
            ("ck_wrong", "x"),
            "GET",
            "woocommerce_rest_authentication_error",
            "Consumer key is invalid.",
        ),
        (
            "bad-secret",
            "GET",
            "woocommerce_rest_authentication_error",
            "Consumer secret is invalid.",
        ),
    ],
    ids=["no-credentials-read", "no-credentials-write", "wrong-key", "wrong-secret"],
)
def test_woocommerce_emulator_refuses_bad_credentials_with_401(
    shop: WooCommerceEmulator, auth: object, method: str, code: str, message: str
) -> None:
    credentials = (shop.consumer_key, "cs_wrong") if auth == "bad-secret" else auth
    answer = httpx.request(
        method,
        shop.url + API + ("/products/batch" if method == "POST" else "/products"),
        auth=credentials,  # type: ignore[arg-type]
        json={"update": []} if method == "POST" else None,
    )
    assert answer.status_code == 401
    assert answer.json() == {"code": code, "message": message, "data": {"status": 401}}


def test_woocommerce_emulator_read_only_key_cannot_write(clock: ManualClock) -> None:
    with WooCommerceEmulator(clock=clock, read_only=True, rate_limit=0) as shop:
        auth = (shop.consumer_key, shop.consumer_secret)
        assert httpx.get(shop.url + API + "/products", auth=auth).status_code == 200
        answer = httpx.post(shop.url + API + "/products/batch", auth=auth, json={"update": []})
    assert answer.status_code == 401
    assert answer.json()["message"] == "The API key provided does not have write permissions."


def test_woocommerce_emulator_pages_with_wp_headers_and_refuses_per_page_over_100(
    shop: WooCommerceEmulator, api: httpx.Client
) -> None:
    ids = [int(shop.add_listing(f"SKU-{n:03d}", n)) for n in range(250)]

    pages = [
        api.get("/products", params={"per_page": 100, "page": p, "orderby": "id", "order": "asc"})
        for p in (1, 2, 3, 4)
    ]

    assert [len(p.json()) for p in pages] == [100, 100, 50, 0]
    assert {(p.headers["X-WP-Total"], p.headers["X-WP-TotalPages"]) for p in pages} == {
        ("250", "3")
    }
    assert [item["id"] for p in pages for item in p.json()] == ids
    assert 'rel="next"' in pages[0].headers["Link"] and 'rel="prev"' not in pages[0].headers["Link"]
    assert 'rel="prev"' in pages[2].headers["Link"] and 'rel="next"' not in pages[2].headers["Link"]
    refused = api.get("/products", params={"per_page": 101})
    assert refused.status_code == 400
    assert refused.json()["code"] == "rest_invalid_param"
    assert refused.json()["data"]["params"] == {
        "per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"
    }


def test_woocommerce_emulator_page_numbers_drift_when_an_order_changes_between_pages(
    shop: WooCommerceEmulator, api: httpx.Client, clock: ManualClock
) -> None:
    orders = []
    for n in range(4):
        shop.add_listing(f"S{n}", 10)
    for n in range(4):
        orders.append(int(shop.place_order([(f"S{n}", 1)])))
        clock.advance(1)
    params = {"orderby": "modified", "order": "asc", "per_page": 2, "dates_are_gmt": "true"}

    first = [o["id"] for o in api.get("/orders", params={**params, "page": 1}).json()]
    shop.set_order_status(orders[0], "completed")  # moves to the end
    second = [o["id"] for o in api.get("/orders", params={**params, "page": 2}).json()]

    assert first == orders[:2]
    assert second == [orders[3], orders[0]]  # orders[2] slipped onto page 1: page numbers lose it


def test_woocommerce_emulator_dates_are_local_unless_dates_are_gmt(
    shop: WooCommerceEmulator, api: httpx.Client, clock: ManualClock
) -> None:
    shop.add_listing("MUG", 5)
    order_id = int(shop.place_order([("MUG", 1)]))
    order = api.get(f"/orders/{order_id}").json()
    assert (order["date_modified_gmt"], order["date_modified"]) == (
        "2026-03-01T12:00:00",
        "2026-03-01T14:00:00",  # the site runs at UTC+2
    )

    def found(after: str, gmt: bool) -> list[int]:
        params = {"modified_after": after, "dates_are_gmt": "true" if gmt else "false"}
        return [o["id"] for o in api.get("/orders", params=params).json()]

    assert found("2026-03-01T11:59:59", gmt=True) == [order_id]
    assert found("2026-03-01T12:00:00", gmt=True) == []  # strictly after
    assert found("2026-03-01T13:00:00", gmt=False) == [order_id]  # 11:00 GMT
    assert found("2026-03-01T13:00:00", gmt=True) == []


def test_woocommerce_emulator_ignores_stock_quantity_unless_stock_is_managed(
    shop: WooCommerceEmulator, api: httpx.Client
) -> None:
    product = shop.add_product("LOOSE", None, manage_stock=False)

    ignored = api.put(f"/products/{product.id}", json={"stock_quantity": 7}).json()
    managed = api.put(
        f"/products/{product.id}", json={"manage_stock": True, "stock_quantity": 0}
    ).json()

    assert (ignored["manage_stock"], ignored["stock_quantity"], ignored["stock_status"]) == (
        False,
        None,
        "instock",
    )
    assert (managed["manage_stock"], managed["stock_quantity"], managed["stock_status"]) == (
        True,
        0,
        "outofstock",
    )


def test_woocommerce_emulator_variation_without_sku_shows_its_parents(
    shop: WooCommerceEmulator, api: httpx.Client
) -> None:
    parent, (small, plain) = shop.add_variable_product("TEE", [("TEE-S", 3), ("", 2)])

    answer = api.get(f"/products/{parent.id}/variations", params={"orderby": "id", "order": "asc"})

    assert [(v["id"], v["sku"], v["stock_quantity"]) for v in answer.json()] == [
        (small.id, "TEE-S", 3),
        (plain.id, "TEE", 2),
    ]
    assert answer.headers["X-WP-Total"] == "2"


def test_woocommerce_emulator_orders_reduce_stock_and_cancelling_restores_it_once(
    shop: WooCommerceEmulator, api: httpx.Client
) -> None:
    shop.add_listing("MUG", 5)
    _, (small,) = shop.add_variable_product("TEE", [("TEE-S", 3)])

    order_id = shop.place_order([("MUG", 2), ("TEE-S", 1)])
    assert shop.quantities() == {"MUG": 3, "TEE-S": 2}
    line = api.get(f"/orders/{order_id}").json()["line_items"][1]
    assert (line["product_id"], line["variation_id"], line["sku"]) == (
        small.parent_id,
        small.id,
        "TEE-S",
    )

    for _ in range(2):  # cancelling twice gives the stock back once
        answer = api.put(f"/orders/{order_id}", json={"status": "cancelled"})
        assert answer.json()["status"] == "cancelled"
    assert shop.quantities() == {"MUG": 5, "TEE-S": 3}

    pending = shop.place_order([("MUG", 1)], status="pending")  # not paid: nothing reserved
    assert shop.quantities()["MUG"] == 5
    shop.set_order_status(pending, "on-hold")
    assert shop.quantities()["MUG"] == 4
    with pytest.raises(ValueError, match="not enough stock of 'MUG': 4 < 9"):
        shop.place_order([("MUG", 9)])


def test_woocommerce_emulator_batch_over_the_limit_is_413_and_item_errors_stay_in_200(
    shop: WooCommerceEmulator, api: httpx.Client
) -> None:
    ids = [int(shop.add_listing(f"B{n}", 0)) for n in range(101)]

    too_big = api.post("/products/batch", json={"update": [{"id": i} for i in ids]})
    assert too_big.status_code == 413
    assert too_big.json() == {
        "code": "woocommerce_rest_request_entity_too_large",
        "message": "Unable to accept more than 100 items for this request.",
        "data": {"status": 413},
    }

    shop.failing_updates[ids[1]] = 1
    answer = api.post(
        "/products/batch",
        json={
            "update": [
                {"id": ids[0], "manage_stock": True, "stock_quantity": 4},
                {"id": ids[1], "manage_stock": True, "stock_quantity": 5},
                {"id": 999_999, "manage_stock": True, "stock_quantity": 6},
                {"id": ids[2], "manage_stock": True, "stock_quantity": "many"},
            ]
        },
    )

    assert answer.status_code == 200
    update = answer.json()["update"]
    assert (update[0]["id"], update[0]["stock_quantity"]) == (ids[0], 4)
    assert update[1] == {
        "id": ids[1],
        "error": {
            "code": "db_update_error",
            "message": "Could not update post in the database.",
            "data": {"status": 500},
        },
    }
    assert update[2] == {
        "id": 999_999,
        "error": {
            "code": "woocommerce_rest_product_invalid_id",
            "message": "Invalid ID.",
            "data": {"status": 400},
        },
    }
    assert update[3]["error"]["code"] == "rest_invalid_param"
    assert shop.batch_sizes == [4]
    assert shop.quantities()["B0"] == 4 and shop.quantities()["B1"] == 0


def test_woocommerce_emulator_variation_batch_refuses_another_products_variation(
    shop: WooCommerceEmulator, api: httpx.Client
) -> None:
    parent, (small,) = shop.add_variable_product("TEE", [("TEE-S", 3)])
    _other, (mug,) = shop.add_variable_product("CUP", [("CUP-S", 1)])

    answer = api.post(
        f"/products/{parent.id}/variations/batch",
        json={
            "update": [{"id": small.id, "stock_quantity": 9}, {"id": mug.id, "stock_quantity": 9}]
        },
    ).json()["update"]

    assert answer[0]["stock_quantity"] == 9
    assert answer[1]["error"]["code"] == "woocommerce_rest_product_variation_invalid_id"
    assert shop.quantities() == {"TEE-S": 9, "CUP-S": 1}


def test_woocommerce_emulator_throttles_over_its_limit_with_retry_after(
    clock: ManualClock,
) -> None:
    with WooCommerceEmulator(clock=clock, rate_limit=5, rate_window=10.0) as shop:
        auth = (shop.consumer_key, shop.consumer_secret)
        statuses = [
            httpx.get(shop.url + API + "/products", auth=auth).status_code for _ in range(6)
        ]
        refused = httpx.get(shop.url + API + "/products", auth=auth)
        clock.advance(2.0)  # 0.5 requests/s: one more allowed
        again = httpx.get(shop.url + API + "/products", auth=auth)

    assert statuses == [200] * 5 + [429]
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "2"
    assert refused.json()["data"] == {"status": 429}
    assert again.status_code == 200
    assert shop.throttled_count == 2


def test_woocommerce_emulator_injected_429_answers_in_its_own_words(
    shop: WooCommerceEmulator, api: httpx.Client
) -> None:
    shop.inject({"status": 429})

    answer = api.get("/orders")

    assert (answer.status_code, answer.headers["Retry-After"]) == (429, "1")
    assert answer.json()["code"] == "rest_too_many_requests"
    assert api.get("/orders").status_code == 200


@pytest.mark.parametrize(
    ("prices_include_tax", "subtotal", "total", "subtotal_tax", "total_tax"),
    [
        (False, "37.02", "33.32", "7.40", "6.66"),
        # 37.02 paid includes its tax: 30.85 before the coupon, 27.76 after it
        (True, "30.85", "27.76", "6.17", "5.55"),
    ],
    ids=["tax-added", "tax-included"],
)
def test_woocommerce_emulator_order_lines_give_totals_before_and_after_coupons_without_tax(
    clock: ManualClock,
    prices_include_tax: bool,
    subtotal: str,
    total: str,
    subtotal_tax: str,
    total_tax: str,
) -> None:
    with WooCommerceEmulator(
        clock=clock,
        rate_limit=0,
        tax_rate="0.20",
        prices_include_tax=prices_include_tax,
        currency="USD",
    ) as shop:
        shop.add_product("KIT", 10, price="12.34")
        shop.place_order([("KIT", 3)], discount_percent="10")
        with httpx.Client(
            base_url=shop.url + API, auth=(shop.consumer_key, shop.consumer_secret)
        ) as api:
            (order,) = api.get("/orders").json()

    (line,) = order["line_items"]
    assert (order["currency"], order["prices_include_tax"]) == ("USD", prices_include_tax)
    assert {k: line[k] for k in ("subtotal", "total", "subtotal_tax", "total_tax")} == {
        "subtotal": subtotal,
        "total": total,
        "subtotal_tax": subtotal_tax,
        "total_tax": total_tax,
    }
    assert line["taxes"] == [{"id": 1, "total": total_tax, "subtotal": subtotal_tax}]
    assert order["discount_total"] == str(Decimal(subtotal) - Decimal(total))
    assert order["total"] == str(Decimal(total) + Decimal(total_tax))
