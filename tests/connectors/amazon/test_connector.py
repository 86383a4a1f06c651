"""The Amazon connector's HTTP mapping, with respx, built from the models' own sandbox
request/response pairs (``x-amzn-api-sandbox`` in the saved models) and the feed
processing report example. The FBA Inventory model has no sandbox pairs; its tests use
payloads built from the model's definitions.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from pydantic import ValidationError
from sellable_amazon.connector import AmazonConnector, AmazonSettings

from sellable.errors import AuthenticationError
from sellable.sdk import (
    ChannelError,
    ChannelHttp,
    ChannelOrder,
    ChannelOrderLine,
    ConnectorContext,
    Listing,
    OrderStatus,
    PushItem,
    PushResult,
    PushStatus,
    StockCount,
)

ENDPOINT = "https://sellingpartnerapi-fe.amazon.com"
LWA = "https://api.amazon.com/auth/o2/token"
SECRET = "amzn1.oa2-cs.v1.s3cr3t-c0ffee"
REFRESH = "Atzr|IwEBIrefresh-s3cr3t"
SELLER = "A3SELLER"
# Copied byte for byte from amzn/selling-partner-api-models (schemas/feeds/, Apache-2.0).
REPORT_EXAMPLE = Path(__file__).with_name("listings-feed-processing-report-schema-v2.example.json")


def model(name: str) -> Any:
    data = resources.files("sellable.emulators").joinpath("data", "amazon", name).read_bytes()
    return json.loads(data)


def sandbox(spec: str, path: str, method: str, status: str, index: int = 0) -> dict[str, Any]:
    op = model(spec)["paths"][path][method]
    pair: dict[str, Any] = op["responses"][status]["x-amzn-api-sandbox"]["static"][index]
    return pair


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.post(LWA).mock(
            return_value=httpx.Response(
                200,
                json={
                    "access_token": "Atza|first-token",
                    "token_type": "bearer",
                    "expires_in": 3600,
                },
            )
        )
        yield router


MakeConnector = Callable[..., AmazonConnector]


@pytest.fixture
def make_connector(fake_time: FakeTime) -> Iterator[MakeConnector]:
    made: list[ChannelHttp] = []

    def make(marketplace: str = "A1VC38T7YXB528", fba: str | None = "fba-jp") -> AmazonConnector:
        http = ChannelHttp("amazon", clock=fake_time.clock, sleep=fake_time.sleep, backoff_base=0.0)
        made.append(http)
        settings = AmazonSettings(
            endpoint=ENDPOINT,
            client_id="amzn1.application-oa2-client.abc",
            client_secret=SECRET,  # type: ignore[arg-type]
            refresh_token=REFRESH,  # type: ignore[arg-type]
            seller_id=SELLER,
            marketplace_id=marketplace,
            fba_warehouse=fba,
        )
        warehouses = (fba, "main") if fba else ("main",)
        connector = AmazonConnector(settings, ConnectorContext("amazon", warehouses, http))
        http.set_base_url(connector.base_url())
        http.authenticate = connector.authenticate
        return connector

    yield make
    for http in made:
        http.close()


def query(request: httpx.Request) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(request.url.query.decode()).items()}


# -- LWA -----------------------------------------------------------------------------------------


def test_lwa_token_is_fetched_once_sent_as_header_and_refreshed_before_expiry(
    api: respx.MockRouter, make_connector: MakeConnector, fake_time: FakeTime
) -> None:
    pair = sandbox("orders_2026-01-01.json", "/orders/2026-01-01/orders", "get", "200", 2)
    orders = api.get(f"{ENDPOINT}/orders/2026-01-01/orders").mock(
        return_value=httpx.Response(200, json=pair["response"])
    )
    connector = make_connector(marketplace="A2Q3Y263D00KWC")

    connector.pull_orders(datetime(2024, 12, 20, tzinfo=UTC), None)
    connector.pull_orders(datetime(2024, 12, 20, tzinfo=UTC), None)
    fake_time.now += 3600 - 59  # within a minute of expiry: refresh first
    connector.pull_orders(datetime(2024, 12, 20, tzinfo=UTC), None)

    token_calls = [c for c in api.calls if str(c.request.url) == LWA]
    assert len(token_calls) == 2
    form = parse_qs(token_calls[0].request.content.decode())
    assert form == {
        "grant_type": ["refresh_token"],
        "refresh_token": [REFRESH],
        "client_id": ["amzn1.application-oa2-client.abc"],
        "client_secret": [SECRET],
    }
    assert "x-amz-access-token" not in token_calls[0].request.headers
    sent = [c.request.headers["x-amz-access-token"] for c in orders.calls]
    assert sent == ["Atza|first-token"] * 3


def test_a_refused_token_request_never_shows_the_secrets(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    api.post(LWA).mock(
        return_value=httpx.Response(
            401, json={"error": "invalid_client", "error_description": f"bad {SECRET} {REFRESH}"}
        )
    )
    connector = make_connector()

    with pytest.raises(AuthenticationError) as caught:
        connector.pull_orders(datetime(2024, 12, 20, tzinfo=UTC), None)

    assert SECRET not in str(caught.value) and REFRESH not in str(caught.value)
    assert "invalid_client" in str(caught.value)


def test_a_403_for_an_expired_token_gets_one_fresh_token_and_one_more_try(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    pair = sandbox("orders_2026-01-01.json", "/orders/2026-01-01/orders", "get", "200", 2)
    expired = {
        "errors": [
            {
                "code": "Unauthorized",
                "message": "Access to requested resource is denied.",
                "details": "The access token you provided has expired.",
            }
        ]
    }
    api.get(f"{ENDPOINT}/orders/2026-01-01/orders").mock(
        side_effect=[httpx.Response(403, json=expired), httpx.Response(200, json=pair["response"])]
    )
    connector = make_connector(marketplace="A2Q3Y263D00KWC")

    page = connector.pull_orders(datetime(2024, 12, 20, tzinfo=UTC), None)

    assert [o.order_id for o in page.orders] == ["171-2345678-9012345"]
    assert connector.client.token_refreshes == 2


# -- orders --------------------------------------------------------------------------------------


def test_search_orders_maps_the_sandbox_orders_afn_to_fba_and_mfn_to_own(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    first = sandbox("orders_2026-01-01.json", "/orders/2026-01-01/orders", "get", "200", 0)
    second = sandbox("orders_2026-01-01.json", "/orders/2026-01-01/orders", "get", "200", 1)
    route = api.get(f"{ENDPOINT}/orders/2026-01-01/orders").mock(
        side_effect=[
            httpx.Response(200, json=first["response"]),
            httpx.Response(200, json=second["response"]),
        ]
    )
    connector = make_connector()

    page = connector.pull_orders(datetime(2024, 12, 25, tzinfo=UTC), None)
    last = connector.pull_orders(datetime(2024, 12, 25, tzinfo=UTC), page.next_cursor)

    assert page.next_cursor == "2YgYW55IGNhcm5hbCBwbGVhc3VyZS4"
    assert list(page.orders) == [
        ChannelOrder(
            "250-1234567-8901234",
            OrderStatus.SHIPPED,
            datetime(2024, 12, 25, 6, 45, tzinfo=UTC),
            (
                # the sandbox's own proceeds: ITEM only, in yen
                ChannelOrderLine(
                    "25012345678901",
                    "ECHO-DOT-4-JP-CHARCOAL",
                    1,
                    revenue=Decimal("5980"),
                    currency="JPY",
                ),
                ChannelOrderLine(
                    "25012345678902",
                    "FIRE-TV-4K-MAX-JP",
                    2,
                    revenue=Decimal("13960"),
                    currency="JPY",
                ),
            ),
            datetime(2024, 12, 25, 2, 30, tzinfo=UTC),
            "fba-jp",
        )
    ]
    assert list(last.orders) == [
        ChannelOrder(
            "202-7654321-1098765",
            OrderStatus.SHIPPED,
            datetime(2024, 12, 24, 18, 45, tzinfo=UTC),
            (
                ChannelOrderLine(
                    "20276543210987",
                    "ECHO-DOT-4-UK-CHARCOAL-SINGLE",
                    1,
                    revenue=Decimal("34.99"),
                    currency="GBP",
                ),
            ),
            datetime(2024, 12, 24, 14, 20, tzinfo=UTC),
            "main",
        )
    ]
    assert last.next_cursor is None
    assert query(route.calls[0].request) == {
        "lastUpdatedAfter": "2024-12-25T00:00:00Z",
        "marketplaceIds": "A1VC38T7YXB528",
        "maxResultsPerPage": "100",
        "includedData": "FULFILLMENT,PROCEEDS",
    }
    assert query(route.calls[1].request)["paginationToken"] == "2YgYW55IGNhcm5hbCBwbGVhc3VyZS4"


def test_orders_fulfilled_by_amazon_are_skipped_without_an_fba_warehouse(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    first = sandbox("orders_2026-01-01.json", "/orders/2026-01-01/orders", "get", "200", 0)
    api.get(f"{ENDPOINT}/orders/2026-01-01/orders").mock(
        return_value=httpx.Response(200, json=first["response"])
    )
    connector = make_connector(fba=None)

    assert list(connector.pull_orders(datetime(2024, 12, 25, tzinfo=UTC), None).orders) == []
    assert connector.pull_stock() == []


@pytest.mark.parametrize(
    ("warehouses", "mfn_warehouse"),
    [
        pytest.param(("main",), None, id="fba-not-listed-mfn-routed"),
        pytest.param(("main", "outlet"), None, id="fba-not-listed-two-own-mfn-routed"),
        pytest.param(("main", "fba-us"), "main", id="fba-listed-last-mfn-in-first-own"),
        pytest.param(("fba-us", "main"), "main", id="fba-listed-first-mfn-in-first-own"),
    ],
)
def test_fba_warehouse_may_be_anywhere_in_the_channels_warehouses_or_not_listed(
    api: respx.MockRouter,
    fake_time: FakeTime,
    warehouses: tuple[str, ...],
    mfn_warehouse: str | None,
) -> None:
    first = sandbox("orders_2026-01-01.json", "/orders/2026-01-01/orders", "get", "200", 0)
    second = sandbox("orders_2026-01-01.json", "/orders/2026-01-01/orders", "get", "200", 1)
    api.get(f"{ENDPOINT}/orders/2026-01-01/orders").mock(
        side_effect=[
            httpx.Response(200, json=first["response"]),
            httpx.Response(200, json=second["response"]),
        ]
    )
    http = ChannelHttp("amazon", clock=fake_time.clock, sleep=fake_time.sleep)
    settings = AmazonSettings(
        endpoint=ENDPOINT,
        client_id="c",
        client_secret="s",  # type: ignore[arg-type]
        refresh_token="r",  # type: ignore[arg-type]
        seller_id=SELLER,
        marketplace_id="A1VC38T7YXB528",
        fba_warehouse="fba-us",
    )
    connector = AmazonConnector(settings, ConnectorContext("amazon", warehouses, http))
    http.set_base_url(connector.base_url())
    http.authenticate = connector.authenticate

    afn = connector.pull_orders(datetime(2024, 12, 25, tzinfo=UTC), None)
    mfn = connector.pull_orders(datetime(2024, 12, 25, tzinfo=UTC), afn.next_cursor)

    assert connector.own == tuple(w for w in warehouses if w != "fba-us")
    # AFN: Amazon chose the warehouse. MFN: routed across the channel's warehouses by the
    # framework (None) unless that route would reach the FBA warehouse.
    assert [o.warehouse for o in afn.orders] == ["fba-us"]
    assert [o.warehouse for o in mfn.orders] == [mfn_warehouse]
    http.close()


def test_fba_warehouse_must_be_a_configured_warehouse_when_the_framework_says_which() -> None:
    raw = {
        "client_id": "c",
        "client_secret": "s",
        "refresh_token": "r",
        "seller_id": SELLER,
        "marketplace_id": "ATVPDKIKX0DER",
        "fba_warehouse": "fba-eu",
    }
    with pytest.raises(ValidationError) as caught:
        AmazonSettings.model_validate(raw, context={"warehouses": ("main", "fba-us")})
    assert [e["msg"] for e in caught.value.errors()] == [
        "Value error, not a configured warehouse (known: main, fba-us; declare it as a "
        '[[warehouses]] entry with kind = "fba")'
    ]
    # Without the context (settings built by hand) nothing is checked.
    assert AmazonSettings.model_validate(raw).fba_warehouse == "fba-eu"


# -- FBA stock -----------------------------------------------------------------------------------


def summary(sku: str, fulfillable: int, pending: int, transshipment: int = 0) -> dict[str, Any]:
    """An InventorySummary as fbaInventory.json defines it (details=true)."""
    return {
        "asin": "B0000000X1",
        "fnSku": "X000000001",
        "sellerSku": sku,
        "condition": "NewItem",
        "inventoryDetails": {
            "fulfillableQuantity": fulfillable,
            "inboundWorkingQuantity": 5,
            "inboundShippedQuantity": 0,
            "inboundReceivingQuantity": 0,
            "reservedQuantity": {
                "totalReservedQuantity": pending + transshipment,
                "pendingCustomerOrderQuantity": pending,
                "pendingTransshipmentQuantity": transshipment,
                "fcProcessingQuantity": 0,
            },
            "unfulfillableQuantity": {"totalUnfulfillableQuantity": 1},
        },
        "lastUpdatedTime": "2026-11-01T00:00:00Z",
        "productName": sku,
        "totalQuantity": fulfillable + pending + transshipment + 1,
    }


def page(summaries: list[dict[str, Any]], token: str | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "payload": {
            "granularity": {"granularityType": "Marketplace", "granularityId": "A1VC38T7YXB528"},
            "inventorySummaries": summaries,
        }
    }
    if token:
        answer["pagination"] = {"nextToken": token}
    return answer


def test_fba_stock_counts_fulfillable_units_and_reserved_customer_orders(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    route = api.get(f"{ENDPOINT}/fba/inventory/v1/summaries").mock(
        side_effect=[
            httpx.Response(200, json=page([summary("KIT", 8, 2, transshipment=3)], "t1")),
            httpx.Response(200, json=page([summary("MUG", 0, 0)])),
        ]
    )

    counts = make_connector().pull_stock()

    assert counts == [
        StockCount("KIT", 8, 2, warehouse="fba-jp"),
        StockCount("MUG", 0, 0, warehouse="fba-jp"),
    ]
    assert query(route.calls[0].request) == {
        "details": "true",
        "granularityType": "Marketplace",
        "granularityId": "A1VC38T7YXB528",
        "marketplaceIds": "A1VC38T7YXB528",
    }
    assert query(route.calls[1].request)["nextToken"] == "t1"


def test_an_expired_inventory_next_token_restarts_the_listing_cleanly(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    expired = {"errors": [{"code": "InvalidInput", "message": "Invalid nextToken", "details": ""}]}
    api.get(f"{ENDPOINT}/fba/inventory/v1/summaries").mock(
        side_effect=[
            httpx.Response(200, json=page([summary("KIT", 8, 0)], "t1")),
            httpx.Response(400, json=expired),
            httpx.Response(200, json=page([summary("KIT", 7, 1)], "t2")),
            httpx.Response(200, json=page([summary("MUG", 4, 0)])),
        ]
    )

    assert make_connector().pull_stock() == [
        StockCount("KIT", 7, 1, warehouse="fba-jp"),
        StockCount("MUG", 4, 0, warehouse="fba-jp"),
    ]


# -- listings and push ---------------------------------------------------------------------------

ITEMS = "/listings/2021-08-01/items/{sellerId}/{sku}"


def test_read_quantities_maps_the_sandbox_item_and_keeps_its_product_type(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    search = "/listings/2021-08-01/items/{sellerId}"
    pair = sandbox("listingsItems_2021-08-01.json", search, "get", "200")
    route = api.get(f"{ENDPOINT}/listings/2021-08-01/items/{SELLER}").mock(
        return_value=httpx.Response(200, json=pair["response"])
    )
    connector = make_connector(marketplace="ATVPDKIKX0DER")

    found = connector.read_quantities([Listing("GM-ZDPI-9B4E", "GM-ZDPI-9B4E")])

    assert found == {"GM-ZDPI-9B4E": 100}
    assert query(route.calls[0].request) == {
        "marketplaceIds": "ATVPDKIKX0DER",
        "includedData": "summaries,fulfillmentAvailability",
        "pageSize": "20",
        "identifiers": "GM-ZDPI-9B4E",
        "identifiersType": "SKU",
    }
    # The product type came with it: a push needs no lookup.
    assert connector._product_type(Listing("GM-ZDPI-9B4E", "GM-ZDPI-9B4E")) == "LUGGAGE"


def test_a_small_push_patches_with_merge_on_default_and_waits_for_the_change_to_show(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    accepted = sandbox("listingsItems_2021-08-01.json", ITEMS, "patch", "200", 0)
    item = sandbox("listingsItems_2021-08-01.json", ITEMS, "get", "200", 0)["response"]
    patch = api.patch(f"{ENDPOINT}/listings/2021-08-01/items/{SELLER}/GM-ZDPI-9B4E").mock(
        return_value=httpx.Response(
            200, json=accepted["response"], headers={"x-amzn-RateLimit-Limit": "10"}
        )
    )
    applied = [{"fulfillmentChannelCode": "DEFAULT", "quantity": 7}]
    shows = dict(item, fulfillmentAvailability=applied)
    get = api.get(f"{ENDPOINT}/listings/2021-08-01/items/{SELLER}/GM-ZDPI-9B4E").mock(
        side_effect=[
            httpx.Response(200, json=item),
            httpx.Response(200, json=item),
            httpx.Response(200, json=shows),
        ]
    )
    connector = make_connector(marketplace="ATVPDKIKX0DER")
    listing = Listing("GM-ZDPI-9B4E", "GM-ZDPI-9B4E", extra={})  # productType unknown

    first = connector.push_quantities([PushItem(listing, 7)])

    assert first == [
        PushResult(
            "GM-ZDPI-9B4E",
            PushStatus.RETRY,
            "accepted (submission f1dc2914-75dd-11ea-bc55-0242ac130003), not applied yet",
        )
    ]
    assert json.loads(patch.calls[0].request.content) == {
        "productType": "LUGGAGE",
        "patches": [
            {
                "op": "merge",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 7}],
            }
        ],
    }
    assert query(get.calls[0].request)["includedData"] == "summaries"
    assert connector.http.limiters["patchListingsItem"].rate == 10  # the header's figure
    # The same quantity again: not resent; still 100 on Amazon, then 7.
    assert connector.push_quantities([PushItem(listing, 7)])[0].status is PushStatus.RETRY
    assert connector.push_quantities([PushItem(listing, 7)]) == [PushResult.ok("GM-ZDPI-9B4E")]
    assert len(patch.calls) == 1
    assert len(get.calls) == 3  # productType looked up once, then one read back per cycle


def test_an_invalid_patch_inside_http_200_is_a_failed_item(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    invalid = sandbox("listingsItems_2021-08-01.json", ITEMS, "patch", "200", 2)
    api.patch(f"{ENDPOINT}/listings/2021-08-01/items/{SELLER}/VALIDATION_INVALID").mock(
        return_value=httpx.Response(200, json=invalid["response"])
    )
    listing = Listing("VALIDATION_INVALID", "VALIDATION_INVALID", extra={"productType": "LUGGAGE"})

    result = make_connector(marketplace="ATVPDKIKX0DER").push_quantities([PushItem(listing, 3)])

    assert result == [
        PushResult.failed("VALIDATION_INVALID", "INVALID: 90000900: The attributes are invalid.")
    ]


def test_a_large_push_goes_through_one_feed_and_its_report_settles_each_item(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    document = sandbox("feeds_2021-06-30.json", "/feeds/2021-06-30/documents", "post", "201")
    feed = sandbox("feeds_2021-06-30.json", "/feeds/2021-06-30/feeds", "post", "202")
    result_document = sandbox(
        "feeds_2021-06-30.json", "/feeds/2021-06-30/documents/{feedDocumentId}", "get", "200"
    )
    upload_url = document["response"]["url"]
    report = json.loads(REPORT_EXAMPLE.read_text())
    api.post(f"{ENDPOINT}/feeds/2021-06-30/documents").mock(
        return_value=httpx.Response(201, json=document["response"])
    )
    upload = api.put(upload_url).mock(side_effect=[httpx.Response(200), httpx.Response(200)])
    api.post(f"{ENDPOINT}/feeds/2021-06-30/feeds").mock(
        return_value=httpx.Response(202, json=feed["response"])
    )
    status = {
        "feedId": "3485934",
        "feedType": "JSON_LISTINGS_FEED",
        "createdTime": "2024-03-11T13:16:24.630Z",
    }
    api.get(f"{ENDPOINT}/feeds/2021-06-30/feeds/3485934").mock(
        side_effect=[
            httpx.Response(200, json={**status, "processingStatus": "IN_PROGRESS"}),
            httpx.Response(
                200,
                json={
                    **status,
                    "processingStatus": "DONE",
                    "resultFeedDocumentId": result_document["response"]["feedDocumentId"],
                },
            ),
        ]
    )
    api.get(
        f"{ENDPOINT}/feeds/2021-06-30/documents/{result_document['response']['feedDocumentId']}"
    ).mock(
        return_value=httpx.Response(
            200, json={**result_document["response"], "compressionAlgorithm": "GZIP"}
        )
    )
    gzipped = gzip.compress(json.dumps(report).encode())
    api.get(upload_url).mock(return_value=httpx.Response(200, content=gzipped))
    connector = make_connector(marketplace="ATVPDKIKX0DER")
    skus = ["My-SKU-A", "My-SKU-X", "My-SKU-Y", "My-SKU-B", "My-SKU-C"] + [
        f"SKU-{n}" for n in range(20)
    ]
    items = [
        PushItem(Listing(sku, sku, extra={"productType": "LUGGAGE"}), number)
        for number, sku in enumerate(skus)
    ]

    queued = connector.push_quantities(items)
    waiting = connector.push_quantities(items)
    settled = {r.listing_id: r for r in connector.push_quantities(items)}

    assert {r.status for r in queued} == {PushStatus.RETRY}
    assert queued[0].message == "in feed 3485934, queued"
    assert waiting[0] == PushResult.retry("My-SKU-A", "feed 3485934 IN_PROGRESS")
    sent = json.loads(upload.calls[0].request.content)
    assert sent["header"] == {"sellerId": SELLER, "version": "2.0"}
    assert sent["messages"][3] == {
        "messageId": 4,
        "sku": "My-SKU-B",
        "operationType": "PATCH",
        "productType": "LUGGAGE",
        "patches": [
            {
                "op": "merge",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 3}],
            }
        ],
    }
    assert upload.calls[0].request.headers["content-type"] == "application/json; charset=UTF-8"
    assert "x-amz-access-token" not in upload.calls[0].request.headers
    # The report's issues name messages 4 (two errors) and 5; the rest were applied.
    assert settled["My-SKU-B"] == PushResult.failed(
        "My-SKU-B",
        "90220: '[batteries_required]' is required but not supplied.; "
        "90220: '[supplier_declared_dg_hz_regulation]' is required but not supplied.",
    )
    assert settled["My-SKU-C"].status is PushStatus.FAILED
    assert str(settled["My-SKU-C"].message).startswith("99022: ")
    assert [r.listing_id for r in settled.values() if r.status is PushStatus.OK] == [
        sku for sku in skus if sku not in {"My-SKU-B", "My-SKU-C"}
    ]


def test_more_than_25000_changes_go_in_feeds_submitted_together_and_a_refused_one_goes_again(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    upload_url = "https://tortuga-prod-na.s3-external-1.amazonaws.com/feed-upload"
    api.post(f"{ENDPOINT}/feeds/2021-06-30/documents").mock(
        return_value=httpx.Response(201, json={"feedDocumentId": "D", "url": upload_url})
    )
    upload = api.put(upload_url).mock(return_value=httpx.Response(200))
    refused = {"errors": [{"code": "InvalidInput", "message": "Bad request", "details": ""}]}
    create = api.post(f"{ENDPOINT}/feeds/2021-06-30/feeds").mock(
        side_effect=[
            httpx.Response(202, json={"feedId": "F1"}),
            httpx.Response(400, json=refused),
            httpx.Response(202, json={"feedId": "F3"}),
            httpx.Response(202, json={"feedId": "F4"}),
        ]
    )
    api.get(url__regex=rf"{ENDPOINT}/feeds/2021-06-30/feeds/F\d").mock(
        return_value=httpx.Response(200, json={"processingStatus": "IN_PROGRESS"})
    )
    connector = make_connector(marketplace="ATVPDKIKX0DER")
    items = [
        PushItem(Listing(f"S{n}", f"S{n}", extra={"productType": "HOME"}), n % 7)
        for n in range(50_001)
    ]

    with pytest.raises(ChannelError, match="Bad request"):
        connector.push_quantities(items)  # the second of three feeds is refused

    sent = [json.loads(call.request.content)["messages"] for call in upload.calls]
    assert [len(messages) for messages in sent] == [25_000, 25_000, 1]
    assert [m[0]["messageId"] for m in sent] == [1, 1, 1]
    assert [m[0]["sku"] for m in sent] == ["S0", "S25000", "S50000"]
    # The feeds that were created are followed; the refused one's changes go again.
    again = {r.listing_id: r for r in connector.push_quantities(items)}
    assert create.call_count == 4
    assert again["S0"] == PushResult.retry("S0", "feed F1 IN_PROGRESS")
    assert again["S50000"] == PushResult.retry("S50000", "feed F3 IN_PROGRESS")
    assert again["S25000"] == PushResult.retry("S25000", "in feed F4, queued")
    assert len(json.loads(upload.calls[3].request.content)["messages"]) == 25_000


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("two", "'two' is not a whole number"),
        (1.5, "1.5 is not a whole number"),
        (-2, "-2 is negative"),
    ],
    ids=["text", "fraction", "negative"],
)
def test_search_orders_refuses_an_unreadable_order_by_id_and_reads_the_rest(
    api: respx.MockRouter, make_connector: MakeConnector, value: Any, reason: str
) -> None:
    answer = sandbox("orders_2026-01-01.json", "/orders/2026-01-01/orders", "get", "200", 0)
    body = json.loads(json.dumps(answer["response"]))
    good = body["orders"][0]
    bad = json.loads(json.dumps(good))
    bad["orderId"] = "250-0000000-0000000"
    bad["orderItems"][1]["quantityOrdered"] = value
    body["orders"] = [bad, good]
    body.pop("pagination", None)
    api.get(f"{ENDPOINT}/orders/2026-01-01/orders").mock(
        return_value=httpx.Response(200, json=body)
    )

    page = make_connector().pull_orders(datetime(2024, 12, 25, tzinfo=UTC), None)

    assert [o.order_id for o in page.orders] == ["250-1234567-8901234"]
    assert [(r.order_id, r.field, r.reason) for r in page.rejected] == [
        ("250-0000000-0000000", "orderItems[1].quantityOrdered", reason)
    ]
