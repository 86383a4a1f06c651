"""The Amazon SP-API emulator over real loopback HTTP, on a ManualClock."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest

from sellable.emulators import emulator_class
from sellable.emulators.amazon import (
    CLIENT_ID,
    CLIENT_SECRET,
    MARKETPLACE_ID,
    REFRESH_TOKEN,
    SELLER_ID,
    AmazonEmulator,
)
from sellable.emulators.base import ManualClock

START = datetime(2026, 11, 1, tzinfo=UTC)
ORDERS = "/orders/2026-01-01/orders"
SUMMARIES = "/fba/inventory/v1/summaries"
ITEM = f"/listings/2021-08-01/items/{SELLER_ID}"
JSON_UTF8 = "application/json; charset=UTF-8"
FBA_PARAMS = {
    "granularityType": "Marketplace",
    "granularityId": MARKETPLACE_ID,
    "marketplaceIds": MARKETPLACE_ID,
    "details": "true",
}


class Api:
    def __init__(self, emulator: AmazonEmulator, clock: ManualClock) -> None:
        self.emulator = emulator
        self.clock = clock
        self.http = httpx.Client(base_url=emulator.url)
        self.token = self.login().json()["access_token"]

    def login(self, **form: str) -> httpx.Response:
        body = {
            "grant_type": "refresh_token",
            "refresh_token": REFRESH_TOKEN,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            **form,
        }
        return self.http.post("/auth/o2/token", data=body)

    def call(self, method: str, path: str, **options: Any) -> httpx.Response:
        headers = {"x-amz-access-token": self.token, **options.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **options)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def emulator(clock: ManualClock) -> Iterator[AmazonEmulator]:
    emulator = AmazonEmulator(clock=clock, patch_delay=5.0)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def api(emulator: AmazonEmulator, clock: ManualClock) -> Iterator[Api]:
    api = Api(emulator, clock)
    try:
        yield api
    finally:
        api.http.close()


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["errors"][0]["code"]
    return code


def test_registered_and_constructible_with_defaults() -> None:
    cls = emulator_class("amazon")
    assert cls is AmazonEmulator
    with cls(port=0) as emulator:
        assert (emulator.name, emulator.connector) == ("amazon", "amazon")
        settings = emulator.connector_settings()
        assert settings["lwa_endpoint"] == f"{emulator.url}/auth/o2/token"
        assert (settings["seller_id"], settings["marketplace_id"]) == (SELLER_ID, MARKETPLACE_ID)
        assert httpx.get(f"{emulator.url}/_emulator/state").json()["quantities"] == {}


def test_lwa_tokens_expire_on_the_clock(api: Api, clock: ManualClock) -> None:
    assert api.login(client_secret="wrong").status_code == 401
    assert api.login(refresh_token="wrong").json()["error"] == "invalid_grant"
    assert api.call("GET", SUMMARIES, params=FBA_PARAMS).status_code == 200
    assert (
        api.call(
            "GET", SUMMARIES, params=FBA_PARAMS, headers={"x-amz-access-token": "x"}
        ).status_code
        == 403
    )

    clock.advance(3600)
    expired = api.call("GET", SUMMARIES, params=FBA_PARAMS)

    assert expired.status_code == 403
    assert expired.json()["errors"][0] == {
        "code": "Unauthorized",
        "message": "Access to requested resource is denied.",
        "details": "The access token you provided has expired.",
    }


@pytest.mark.parametrize(
    ("method", "path", "options", "message"),
    [
        ("GET", ORDERS, {"params": {"marketplaceIds": MARKETPLACE_ID}}, "Exactly one of"),
        (
            "GET",
            ORDERS,
            {"params": {"lastUpdatedAfter": "2026-10-01T00:00:00Z", "maxResultsPerPage": "101"}},
            "between 1 and 100",
        ),
        (
            "GET",
            ORDERS,
            {"params": {"lastUpdatedAfter": "yesterday"}},
            "not an ISO 8601 date-time",
        ),
        (
            "GET",
            ORDERS,
            {"params": {"lastUpdatedAfter": "2026-10-01T00:00:00Z", "fulfilledBy": "ME"}},
            "Invalid fulfilledBy value 'ME'",
        ),
        (
            "GET",
            SUMMARIES,
            {"params": {"granularityId": MARKETPLACE_ID, "marketplaceIds": MARKETPLACE_ID}},
            "Missing required parameter: granularityType",
        ),
        (
            "PATCH",
            f"{ITEM}/MUG",
            {"params": {"marketplaceIds": MARKETPLACE_ID}, "json": {"patches": []}},
            "Invalid request body at body: 'productType' is a required property",
        ),
        (
            "GET",
            ITEM,
            {"params": {"marketplaceIds": MARKETPLACE_ID, "pageSize": "21"}},
            "pageSize must be at most 20",
        ),
        (
            "POST",
            "/feeds/2021-06-30/feeds",
            {"json": {"feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [MARKETPLACE_ID]}},
            "'inputFeedDocumentId' is a required property",
        ),
    ],
)
def test_requests_the_models_refuse_get_400_invalid_input(
    api: Api, method: str, path: str, options: dict[str, Any], message: str
) -> None:
    api.emulator.add_listing("MUG", 3)

    response = api.call(method, path, **options)

    assert response.status_code == 400
    assert error_code(response) == "InvalidInput"
    assert message in response.json()["errors"][0]["message"]


def test_per_operation_buckets_at_the_published_rates(api: Api, clock: ManualClock) -> None:
    first = api.call("GET", SUMMARIES, params=FBA_PARAMS)
    api.call("GET", SUMMARIES, params=FBA_PARAMS)
    over = api.call("GET", SUMMARIES, params=FBA_PARAMS)
    other = api.call("GET", ORDERS, params={"lastUpdatedAfter": "2026-10-01T00:00:00Z"})
    clock.advance(0.5)  # 2 per second
    again = api.call("GET", SUMMARIES, params=FBA_PARAMS)

    assert first.headers["x-amzn-RateLimit-Limit"] == "2"
    assert other.headers["x-amzn-RateLimit-Limit"] == "0.0056"
    assert over.status_code == 429
    assert over.json() == {
        "errors": [
            {
                "code": "QuotaExceeded",
                "message": "You exceeded your quota for the requested resource.",
                "details": "",
            }
        ]
    }
    assert "x-amzn-RateLimit-Limit" not in over.headers
    assert (other.status_code, again.status_code) == (200, 200)


def test_injected_faults_answer_in_amazons_words(api: Api) -> None:
    api.emulator.inject({"status": 429}, {"status": 503})
    assert error_code(api.call("GET", SUMMARIES, params=FBA_PARAMS)) == "QuotaExceeded"
    assert api.call("GET", SUMMARIES, params=FBA_PARAMS).status_code == 503


def test_search_orders_pages_over_live_data(api: Api, clock: ManualClock) -> None:
    api.emulator.add_listing("MUG", 10)
    api.emulator.add_fba_listing("KIT", 8)
    first = api.emulator.place_order([("MUG", 1)])
    clock.advance(1)
    second = api.emulator.place_order([("KIT", 2)], fulfilled_by="AMAZON")
    clock.advance(1)
    third = api.emulator.place_order([("MUG", 2)])
    params = {
        "lastUpdatedAfter": "2026-10-01T00:00:00Z",
        "maxResultsPerPage": "2",
        "includedData": "FULFILLMENT",
    }

    page = api.call("GET", ORDERS, params=params).json()
    clock.advance(1)
    api.emulator.ship_order(first)  # changes between pages: served again, later
    rest = api.call(
        "GET", ORDERS, params={**params, "paginationToken": page["pagination"]["nextToken"]}
    ).json()

    assert [o["orderId"] for o in page["orders"]] == [first, second]
    assert [o["orderId"] for o in rest["orders"]] == [third, first]
    assert "pagination" not in rest
    assert rest["orders"][1]["fulfillment"] == {
        "fulfillmentStatus": "SHIPPED",
        "fulfilledBy": "MERCHANT",
        "fulfillmentServiceLevel": "STANDARD",
    }
    assert page["orders"][1]["orderItems"][0]["product"]["sellerSku"] == "KIT"
    assert api.emulator.quantities() == {"MUG": 7, "KIT": 6}


def test_inventory_next_token_expires_after_30_seconds(
    clock: ManualClock,
) -> None:
    with AmazonEmulator(clock=clock, inventory_page_size=1) as emulator:
        assert isinstance(emulator, AmazonEmulator)
        emulator.add_fba_listing("A", 5)
        emulator.add_fba_listing("B", 7)
        emulator.place_order([("A", 2)], fulfilled_by="AMAZON")
        api = Api(emulator, clock)
        page = api.call("GET", SUMMARIES, params=FBA_PARAMS).json()
        token = page["pagination"]["nextToken"]
        clock.advance(31)
        expired = api.call("GET", SUMMARIES, params={**FBA_PARAMS, "nextToken": token})
        clock.advance(0.5)
        fresh = api.call("GET", SUMMARIES, params=FBA_PARAMS).json()
        clock.advance(10)
        last = api.call(
            "GET", SUMMARIES, params={**FBA_PARAMS, "nextToken": fresh["pagination"]["nextToken"]}
        ).json()
        api.http.close()

    assert expired.status_code == 400 and error_code(expired) == "InvalidInput"
    details = page["payload"]["inventorySummaries"][0]["inventoryDetails"]
    assert (
        details["fulfillableQuantity"],
        details["reservedQuantity"]["pendingCustomerOrderQuantity"],
    ) == (3, 2)
    assert [s["sellerSku"] for s in last["payload"]["inventorySummaries"]] == ["B"]
    assert "pagination" not in last


def patch_body(
    quantity: Any, product_type: str = "HOME", channel: str = "DEFAULT"
) -> dict[str, Any]:
    return {
        "productType": product_type,
        "patches": [
            {
                "op": "merge",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": channel, "quantity": quantity}],
            }
        ],
    }


def test_patch_is_accepted_then_applied_after_the_delay(api: Api, clock: ManualClock) -> None:
    api.emulator.add_listing("MUG", 3)
    api.emulator.add_fba_listing("KIT", 8)
    params = {"marketplaceIds": MARKETPLACE_ID}

    accepted = api.call("PATCH", f"{ITEM}/MUG", params=params, json=patch_body(9)).json()
    shown = api.emulator.quantities()["MUG"]
    clock.advance(5)
    read = api.call(
        "GET", f"{ITEM}/MUG", params={**params, "includedData": "fulfillmentAvailability"}
    ).json()
    preview = api.call(
        "PATCH", f"{ITEM}/MUG", params={**params, "mode": "VALIDATION_PREVIEW"}, json=patch_body(1)
    ).json()
    wrong_type = api.call(
        "PATCH", f"{ITEM}/MUG", params=params, json=patch_body(2, "LUGGAGE")
    ).json()
    negative = api.call("PATCH", f"{ITEM}/MUG", params=params, json=patch_body(-1)).json()
    fba = api.call("PATCH", f"{ITEM}/KIT", params=params, json=patch_body(2)).json()
    missing = api.call("PATCH", f"{ITEM}/NOPE", params=params, json=patch_body(2))
    clock.advance(10)

    assert (accepted["status"], accepted["issues"], shown) == ("ACCEPTED", [], 3)
    assert read["fulfillmentAvailability"] == [{"fulfillmentChannelCode": "DEFAULT", "quantity": 9}]
    assert preview["status"] == "VALID"
    assert [x["status"] for x in (wrong_type, negative, fba)] == ["INVALID"] * 3
    assert wrong_type["issues"][0]["code"] == "4000003"
    assert negative["issues"][0]["message"] == "'quantity' must be a whole number >= 0, got -1."
    assert fba["issues"][0]["code"] == "8560"
    assert missing.status_code == 404
    assert api.emulator.quantities() == {"MUG": 9, "KIT": 8}


def upload_feed(api: Api, document: Any, content_type: str = JSON_UTF8) -> str:
    created = api.call(
        "POST",
        "/feeds/2021-06-30/documents",
        json={"contentType": JSON_UTF8},
    )
    assert created.status_code == 201
    url = created.json()["url"]
    put = httpx.put(
        url, content=json.dumps(document).encode(), headers={"Content-Type": content_type}
    )
    assert put.status_code == 200, put.text
    feed = api.call(
        "POST",
        "/feeds/2021-06-30/feeds",
        json={
            "feedType": "JSON_LISTINGS_FEED",
            "marketplaceIds": [MARKETPLACE_ID],
            "inputFeedDocumentId": created.json()["feedDocumentId"],
        },
    )
    assert feed.status_code == 202
    feed_id: str = feed.json()["feedId"]
    return feed_id


def message(number: int, sku: str, quantity: Any, product_type: str = "HOME") -> dict[str, Any]:
    return {
        "messageId": number,
        "sku": sku,
        "operationType": "PATCH",
        **patch_body(quantity, product_type),
    }


def report_of(api: Api, feed: dict[str, Any]) -> dict[str, Any]:
    info = api.call("GET", f"/feeds/2021-06-30/documents/{feed['resultFeedDocumentId']}").json()
    assert info["compressionAlgorithm"] == "GZIP"
    report: dict[str, Any] = json.loads(gzip.decompress(httpx.get(info["url"]).content))
    schema = json.loads(
        resources.files("sellable.emulators")
        .joinpath("data", "amazon", "listings-feed-processing-report-schema-v2.json")
        .read_bytes()
    )
    jsonschema.validate(report, schema)
    return report


def test_feed_moves_through_its_states_and_reports_per_message_issues(
    api: Api, clock: ManualClock
) -> None:
    for sku in ("A", "B", "C"):
        api.emulator.add_listing(sku, 0)
    api.emulator.refuse("C")
    document = {
        "header": {"sellerId": SELLER_ID, "version": "2.0"},
        "messages": [
            message(1, "A", 4),
            message(2, "B", 5, "SHOES"),
            message(3, "C", 6),
            message(4, "Z", 1),
        ],
    }

    feed_id = upload_feed(api, document)
    states = []
    for step in (0, 2, 3 + 0.004):
        clock.advance(step)
        states.append(api.call("GET", f"/feeds/2021-06-30/feeds/{feed_id}").json())

    assert [s["processingStatus"] for s in states] == ["IN_QUEUE", "IN_PROGRESS", "DONE"]
    report = report_of(api, states[-1])
    assert [(i["messageId"], i["code"]) for i in report["issues"]] == [
        (2, "4000003"),
        (3, "90220"),
        (4, "4000001"),
    ]
    assert report["summary"] == {
        "errors": 3,
        "warnings": 0,
        "messagesProcessed": 4,
        "messagesAccepted": 1,
        "messagesInvalid": 3,
    }
    assert api.emulator.quantities() == {"A": 4, "B": 0, "C": 0}


def test_a_feed_document_against_the_schema_is_fatal_and_expired_upload_urls_refuse(
    api: Api, clock: ManualClock
) -> None:
    api.emulator.add_listing("A", 0)
    bad = {"header": {"sellerId": SELLER_ID, "version": "1.0"}, "messages": [message(1, "A", 2)]}
    feed_id = upload_feed(api, bad)
    clock.advance(10)
    feed = api.call("GET", f"/feeds/2021-06-30/feeds/{feed_id}").json()

    assert feed["processingStatus"] == "FATAL"
    assert report_of(api, feed)["issues"][0]["message"].startswith(
        "Schema violation at header/version"
    )
    created = api.call(
        "POST",
        "/feeds/2021-06-30/documents",
        json={"contentType": JSON_UTF8},
    ).json()
    clock.advance(301)
    late = httpx.put(created["url"], content=b"{}", headers={"Content-Type": JSON_UTF8})
    assert late.status_code == 403 and b"Request has expired" in late.content


def test_feeds_can_stick_in_progress_and_json_listings_feeds_are_limited_to_5_per_5_minutes(
    clock: ManualClock,
) -> None:
    with AmazonEmulator(clock=clock, feed_stuck=True) as emulator:
        assert isinstance(emulator, AmazonEmulator)
        emulator.add_listing("A", 0)
        api = Api(emulator, clock)
        document = {
            "header": {"sellerId": SELLER_ID, "version": "2.0"},
            "messages": [message(1, "A", 2)],
        }
        feeds = [upload_feed(api, document) for _ in range(5)]
        created = api.call(
            "POST",
            "/feeds/2021-06-30/documents",
            json={"contentType": JSON_UTF8},
        ).json()
        sixth = api.call(
            "POST",
            "/feeds/2021-06-30/feeds",
            json={
                "feedType": "JSON_LISTINGS_FEED",
                "marketplaceIds": [MARKETPLACE_ID],
                "inputFeedDocumentId": created["feedDocumentId"],
            },
        )
        clock.advance(timedelta(hours=5).total_seconds())
        api.token = api.login().json()["access_token"]
        stuck = api.call("GET", f"/feeds/2021-06-30/feeds/{feeds[0]}").json()
        api.http.close()

    assert sixth.status_code == 429 and error_code(sixth) == "QuotaExceeded"
    assert stuck["processingStatus"] == "IN_PROGRESS"
    assert emulator.quantities() == {"A": 0}


def test_search_orders_proceeds_split_item_discount_and_tax_and_add_up(
    clock: ManualClock,
) -> None:
    with AmazonEmulator(clock=clock, tax_rate="0.20") as emulator:
        api = Api(emulator, clock)
        emulator.add_listing("KIT", 10, price="12.34")
        emulator.place_order([("KIT", 3)], promotion_percent="10")
        params = {"lastUpdatedAfter": "2026-10-01T00:00:00Z", "includedData": "PROCEEDS"}
        (order,) = api.call("GET", ORDERS, params=params).json()["orders"]
        plain = api.call("GET", ORDERS, params={**params, "includedData": "FULFILLMENT"})
        api.http.close()

    (item,) = order["orderItems"]
    usd = "USD"
    assert item["product"]["price"] == {"unitPrice": {"amount": "12.34", "currencyCode": usd}}
    assert item["proceeds"] == {
        "proceedsTotal": {"amount": "39.98", "currencyCode": usd},
        "breakdowns": [
            {"type": "ITEM", "subtotal": {"amount": "37.02", "currencyCode": usd}},
            {
                "type": "DISCOUNT",
                "subtotal": {"amount": "-3.70", "currencyCode": usd},
                "detailedBreakdowns": [
                    {"subtype": "ITEM", "value": {"amount": "-3.70", "currencyCode": usd}}
                ],
            },
            {
                "type": "TAX",
                "subtotal": {"amount": "6.66", "currencyCode": usd},
                "detailedBreakdowns": [
                    {"subtype": "ITEM", "value": {"amount": "7.40", "currencyCode": usd}},
                    {"subtype": "DISCOUNT", "value": {"amount": "-0.74", "currencyCode": usd}},
                ],
            },
        ],
    }
    # The order's proceeds add its items' up, as the model's examples do.
    assert order["proceeds"]["grandTotal"] == {"amount": "39.98", "currencyCode": usd}
    # Without includedData=PROCEEDS there are none.
    assert "proceeds" not in plain.json()["orders"][0]["orderItems"][0]


# -- reports ------------------------------------------------------------------------------------

REPORTS = "/reports/2021-06-30/reports"
LISTINGS_REPORT = {
    "reportType": "GET_MERCHANT_LISTINGS_ALL_DATA",
    "marketplaceIds": [MARKETPLACE_ID],
}


def report_status(api: Api, report_id: str) -> dict[str, Any]:
    answer = api.call("GET", f"{REPORTS}/{report_id}")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def test_listings_report_moves_through_its_states_and_serves_a_gzip_tsv(
    api: Api, clock: ManualClock
) -> None:
    api.emulator.add_listing("MUG-RED", 7, "Red\tmug")
    api.emulator.add_fba_listing("MUG-FBA", 4)
    report_id = api.call("POST", REPORTS, json=LISTINGS_REPORT).json()["reportId"]

    assert report_status(api, report_id)["processingStatus"] == "IN_QUEUE"
    clock.advance(2.0)
    assert report_status(api, report_id)["processingStatus"] == "IN_PROGRESS"
    clock.advance(3.0)  # base 3 s + 0.1 ms x 2 listings: not yet
    assert report_status(api, report_id)["processingStatus"] == "IN_PROGRESS"
    clock.advance(0.001)
    done = report_status(api, report_id)
    assert done["processingStatus"] == "DONE"
    info = api.call("GET", f"/reports/2021-06-30/documents/{done['reportDocumentId']}").json()
    assert info["compressionAlgorithm"] == "GZIP"
    assert info["url"].startswith(f"{api.emulator.url}/s3/report-documents/")

    body = httpx.get(info["url"])  # presigned: no access token
    lines = gzip.decompress(body.content).decode().splitlines()
    header = lines[0].split("\t")
    rows = [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]
    assert header[:6] == [
        "item-name",
        "item-description",
        "listing-id",
        "seller-sku",
        "price",
        "quantity",
    ]
    assert header[-3:] == ["fulfillment-channel", "merchant-shipping-group", "status"]
    assert [(r["seller-sku"], r["quantity"], r["fulfillment-channel"]) for r in rows] == [
        ("MUG-FBA", "", "AMAZON_NA"),
        ("MUG-RED", "7", "DEFAULT"),
    ]
    assert rows[1]["item-name"] == "Red mug"  # no tab inside a cell
    assert rows[1]["asin1"] == api.emulator.listings["MUG-RED"].asin


def test_report_document_urls_serve_ranges_expire_and_refuse_the_access_token(
    clock: ManualClock,
) -> None:
    emulator = AmazonEmulator(clock=clock, report_gzip=False)
    emulator.start()
    try:
        api = Api(emulator, clock)
        emulator.add_listing("A-1", 1)
        report_id = api.call("POST", REPORTS, json=LISTINGS_REPORT).json()["reportId"]
        clock.advance(10)
        document_id = report_status(api, report_id)["reportDocumentId"]
        info = api.call("GET", f"/reports/2021-06-30/documents/{document_id}").json()
        assert "compressionAlgorithm" not in info
        whole = httpx.get(info["url"]).content
        assert whole.startswith(b"item-name\t")

        part = httpx.get(info["url"], headers={"Range": "bytes=5-9"})
        assert part.status_code == 206
        assert part.content == whole[5:10]
        assert part.headers["Content-Range"] == f"bytes 5-9/{len(whole)}"
        beyond = httpx.get(info["url"], headers={"Range": f"bytes={len(whole)}-"})
        assert beyond.status_code == 416

        with_token = httpx.get(info["url"], headers={"x-amz-access-token": api.token})
        assert with_token.status_code == 403
        forged = httpx.get(info["url"].replace("Signature=", "Signature=0"))
        assert forged.status_code == 403
        clock.advance(301)
        expired = httpx.get(info["url"])
        assert expired.status_code == 403 and b"Request has expired" in expired.content
        fresh = api.call("GET", f"/reports/2021-06-30/documents/{document_id}").json()["url"]
        assert httpx.get(fresh).content == whole
        api.http.close()
    finally:
        emulator.stop()


def test_next_report_cancelled_or_fatal_by_method_and_control_and_empty_means_cancelled(
    api: Api, clock: ManualClock
) -> None:
    emulator = api.emulator
    first = api.call("POST", REPORTS, json=LISTINGS_REPORT).json()["reportId"]  # no listings
    clock.advance(10.0)
    assert report_status(api, first)["processingStatus"] == "CANCELLED"
    emulator.add_listing("A-1", 1)
    emulator.cancel_next_report()
    cancelled = api.call("POST", REPORTS, json=LISTINGS_REPORT).json()["reportId"]
    control = httpx.post(f"{emulator.url}/_emulator/reports/next", json={"outcome": "FATAL"})
    assert control.json() == {"next_report": "FATAL"}
    fatal = api.call("POST", REPORTS, json=LISTINGS_REPORT).json()["reportId"]
    bad = httpx.post(f"{emulator.url}/_emulator/reports/next", json={"outcome": "DONE"})
    assert bad.status_code == 400
    clock.advance(2.0)
    assert report_status(api, cancelled)["processingStatus"] == "CANCELLED"
    clock.advance(10.0)

    assert "reportDocumentId" not in report_status(api, first)
    assert "reportDocumentId" not in report_status(api, cancelled)
    failed = report_status(api, fatal)
    assert failed["processingStatus"] == "FATAL" and failed["reportDocumentId"]


def test_reports_are_checked_against_the_model_and_limited_at_published_rates(
    api: Api, clock: ManualClock
) -> None:
    created = [api.call("POST", REPORTS, json=LISTINGS_REPORT) for _ in range(16)]

    assert [r.status_code for r in created] == [202] * 15 + [429]  # createReport: burst 15
    assert created[0].headers["x-amzn-RateLimit-Limit"] == "0.0167"
    report_id = created[0].json()["reportId"]
    polls = [api.call("GET", f"{REPORTS}/{report_id}").status_code for _ in range(16)]
    assert polls == [200] * 15 + [429]  # getReport: burst 15 at 2/s
    clock.advance(0.5)
    assert api.call("GET", f"{REPORTS}/{report_id}").status_code == 200
    clock.advance(60)
    assert api.call("POST", REPORTS, json=LISTINGS_REPORT).status_code == 202  # 0.0167/s
    clock.advance(180)
    missing = api.call("POST", REPORTS, json={"reportType": "GET_MERCHANT_LISTINGS_ALL_DATA"})
    assert missing.status_code == 400
    other = api.call("POST", REPORTS, json={**LISTINGS_REPORT, "reportType": "GET_V2_SETTLEMENT"})
    assert other.status_code == 400
