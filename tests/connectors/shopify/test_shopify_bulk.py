"""The Shopify connector's bulk operations: the JSONL parser on its own (pieces cut anywhere,
``__parentId`` lines before or after their variant) and the calls with respx (start, the
polls paced by the framework's limiter, ranged downloads without the access token, a
failed operation and its partial data, an operation already running, an expired URL)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx
from sellable_shopify.bulk import CHUNK_BYTES, LEVELS_QUERY, BulkLevelsReader
from sellable_shopify.connector import ShopifyConnector, ShopifySettings

from sellable.sdk import (
    ChannelError,
    ChannelHttp,
    ChannelPayloadError,
    ConnectorContext,
    Listing,
    TemporaryChannelError,
)
from tests.connectors.shopify.test_shopify_client import SHOP, Clock, cost

ENDPOINT = f"{SHOP}/admin/api/2026-10/graphql.json"
RESULT = "https://storage.googleapis.com/shopify-tiers-assets/bulk/op1.jsonl?X-Goog-Signature=s"
PARTIAL = "https://storage.googleapis.com/shopify-tiers-assets/bulk/op1-partial.jsonl?sig=p"
OPERATION = "gid://shopify/BulkOperation/1"
L1, L2, L3 = (f"gid://shopify/Location/{n}" for n in (1, 2, 3))
MAPPED = {L1: "main", L2: "outlet"}


def variant(n: int, sku: str | None = None) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/ProductVariant/{n}",
        "sku": sku if sku is not None else f"SKU-{n}",
        "inventoryItem": {"id": f"gid://shopify/InventoryItem/{n}"},
    }


def level(parent: str, location: str, quantity: int | None) -> dict[str, Any]:
    quantities = [] if quantity is None else [{"quantity": quantity}]
    return {"location": {"id": location}, "quantities": quantities, "__parentId": parent}


def jsonl(*rows: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


def described(listings: list[Listing]) -> list[tuple[Any, ...]]:
    return sorted((x.listing_id, x.sku, x.parent_id, x.warehouses, x.quantity) for x in listings)


# A variant's levels before it, after it, naming the variant or its inventory item as
# parent; a level at an unmapped location; a variant without SKU; one stocked nowhere.
NESTED = jsonl(
    level("gid://shopify/ProductVariant/2", L1, 4),
    variant(1),
    level("gid://shopify/ProductVariant/1", L1, 5),
    level("gid://shopify/ProductVariant/1", L3, 9),
    variant(2, sku=""),
    level("gid://shopify/InventoryItem/2", L2, 0),
    variant(3),
    level("gid://shopify/ProductVariant/1", L2, -2),
    variant(4),
)
EXPECTED = [
    (
        "gid://shopify/InventoryItem/1|gid://shopify/Location/1",
        "SKU-1",
        "gid://shopify/ProductVariant/1",
        ("main",),
        5,
    ),
    (
        "gid://shopify/InventoryItem/1|gid://shopify/Location/2",
        "SKU-1",
        "gid://shopify/ProductVariant/1",
        ("outlet",),
        -2,
    ),
    (
        "gid://shopify/InventoryItem/2|gid://shopify/Location/1",
        None,
        "gid://shopify/ProductVariant/2",
        ("main",),
        4,
    ),
    (
        "gid://shopify/InventoryItem/2|gid://shopify/Location/2",
        None,
        "gid://shopify/ProductVariant/2",
        ("outlet",),
        0,
    ),
]


# -- the parser ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 7, 64, len(NESTED)], ids=["bytes", "7", "64", "whole"])
def test_bulk_reader_joins_parent_id_lines_to_their_variant_in_any_order_and_any_pieces(
    size: int,
) -> None:
    reader = BulkLevelsReader(MAPPED)
    found: list[Listing] = []
    for start in range(0, len(NESTED), size):
        found.extend(reader.feed(NESTED[start : start + size]))
    found.extend(reader.finish())

    assert described(found) == EXPECTED
    assert reader.lines == 9


def test_bulk_reader_reads_a_last_line_without_newline_and_the_channel_total() -> None:
    reader = BulkLevelsReader({L1: None})
    body = jsonl(variant(7)) + json.dumps(level("gid://shopify/ProductVariant/7", L1, 3)).encode()

    found = reader.feed(body) + reader.finish()

    assert described(found) == [
        (
            "gid://shopify/InventoryItem/7|gid://shopify/Location/1",
            "SKU-7",
            "gid://shopify/ProductVariant/7",
            None,
            3,
        )
    ]


def test_bulk_reader_refuses_a_level_whose_variant_never_comes_unless_partial() -> None:
    body = jsonl(variant(1), level("gid://shopify/ProductVariant/9", L1, 1))
    strict = BulkLevelsReader(MAPPED, channel="shopify")
    strict.feed(body)
    with pytest.raises(ChannelPayloadError, match=r"1 inventory level\(s\) name a parent .*/9"):
        strict.finish()

    partial = BulkLevelsReader(MAPPED, partial=True)
    assert partial.feed(body) + partial.finish() == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"{not json\n", "line 1 is not JSON"),
        (b"[1, 2]\n", "line 1 is not an object"),
        (b'{"sku": "X"}\n', "line 1: a variant without id or inventoryItem.id"),
        (b'{"__parentId": "gid://shopify/ProductVariant/1"}\n', "without location.id"),
    ],
    ids=["json", "array", "variant", "level"],
)
def test_bulk_reader_names_the_line_it_cannot_read(line: bytes, message: str) -> None:
    with pytest.raises(ChannelPayloadError, match=re.escape(message)):
        BulkLevelsReader(MAPPED).feed(line)


# -- the calls (respx) ---------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
def make_connector(clock: Clock) -> Iterator[Callable[..., ShopifyConnector]]:
    made: list[ChannelHttp] = []

    def make(**settings: Any) -> ShopifyConnector:
        http = ChannelHttp("shopify", clock=clock.monotonic, sleep=clock.sleep, backoff_base=0.0)
        made.append(http)
        values = {
            "shop_url": "example-shop.myshopify.com",
            "access_token": "shpat_secret",
            "locations": MAPPED,
        }
        connector = ShopifyConnector(
            ShopifySettings(**{**values, **settings}),
            ConnectorContext("shopify", ("main", "outlet"), http),
        )
        http.set_base_url(connector.base_url())
        http.authenticate = connector.authenticate
        return connector

    yield make
    for http in made:
        http.close()


def operation(status: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": OPERATION,
        "status": status,
        "errorCode": None,
        "objectCount": "0",
        "url": None,
        "partialDataUrl": None,
        "query": LEVELS_QUERY,
        **fields,
    }


class Shopify:
    """The GraphQL answers in order, and the result files by URL (served with Range)."""

    def __init__(self, api: respx.MockRouter, *answers: dict[str, Any]) -> None:
        self.answers = list(answers)
        self.bodies: list[dict[str, Any]] = []
        self.downloads: list[httpx.Request] = []
        self.files: dict[str, bytes] = {}
        api.post(ENDPOINT).mock(side_effect=self.graphql)
        api.get(url__startswith="https://storage.googleapis.com/").mock(side_effect=self.file)

    def graphql(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        data = self.answers.pop(0)
        return httpx.Response(200, json={"data": data, "extensions": cost(10, 10, 990.0)})

    def file(self, request: httpx.Request) -> httpx.Response:
        self.downloads.append(request)
        body = self.files.get(str(request.url))
        if body is None:  # what Google Cloud Storage answers once a signed URL expired
            return httpx.Response(403, content=b"<Error><Code>ExpiredToken</Code></Error>")
        found = re.fullmatch(r"bytes=(\d+)-(\d+)", request.headers.get("range", ""))
        if found is None:
            return httpx.Response(200, content=body)
        start, end = int(found[1]), min(int(found[2]), len(body) - 1)
        headers = {"Content-Range": f"bytes {start}-{end}/{len(body)}"}
        return httpx.Response(206, content=body[start : end + 1], headers=headers)

    def names(self) -> list[str]:
        return [body["operationName"] for body in self.bodies]


def run(status: str = "CREATED") -> dict[str, Any]:
    return {"bulkOperationRunQuery": {"bulkOperation": operation(status), "userErrors": []}}


def polled(status: str, **fields: Any) -> dict[str, Any]:
    return {"bulkOperation": operation(status, **fields)}


def test_shopify_bulk_refresh_polls_at_the_limiter_pace_and_downloads_in_ranges(
    api: respx.MockRouter, make_connector: Callable[..., ShopifyConnector], clock: Clock
) -> None:
    rows: list[dict[str, Any]] = []
    for n in range(1, 4501):  # about 1.1 MiB: two ranges
        rows.append(variant(n))
        rows.append(level(f"gid://shopify/ProductVariant/{n}", L1, n % 11))
    body = jsonl(*rows)
    assert CHUNK_BYTES < len(body) < 2 * CHUNK_BYTES
    shop = Shopify(
        api,
        run(),
        polled("RUNNING", objectCount="1200"),
        polled("COMPLETED", objectCount="9000", url=RESULT),
    )
    shop.files[RESULT] = body
    connector = make_connector()

    pages = [connector.list_listings(None)]
    while pages[-1].next_cursor is not None:
        pages.append(connector.list_listings(pages[-1].next_cursor))

    listings = [x for page in pages for x in page.listings]
    assert len(pages) == 2
    assert pages[0].next_cursor == f"bulk:{OPERATION}:{CHUNK_BYTES}"
    assert len(listings) == 4500 and len({x.listing_id for x in listings}) == 4500
    assert listings[41] == Listing(
        "gid://shopify/InventoryItem/42|gid://shopify/Location/1",
        "SKU-42",
        "gid://shopify/ProductVariant/42",
        ("main",),
        42 % 11,
    )
    assert shop.names() == ["SellableBulkRun", "SellableBulkOperation", "SellableBulkOperation"]
    assert shop.bodies[0]["variables"] == {"query": LEVELS_QUERY}
    assert shop.bodies[1]["variables"] == {"id": OPERATION}
    # the first poll at once, the second a second later: the poll limiter's pace
    assert clock.sleeps == [1.0]
    assert [r.headers["range"] for r in shop.downloads] == [
        f"bytes=0-{CHUNK_BYTES - 1}",
        f"bytes={CHUNK_BYTES}-{2 * CHUNK_BYTES - 1}",
    ]
    # the URL is pre-signed and on another host: it never gets the access token
    assert all("x-shopify-access-token" not in r.headers for r in shop.downloads)


def test_shopify_bulk_refresh_of_an_empty_shop_downloads_nothing(
    api: respx.MockRouter, make_connector: Callable[..., ShopifyConnector]
) -> None:
    shop = Shopify(api, run("COMPLETED"))

    page = make_connector().list_listings(None)

    assert (page.listings, page.next_cursor) == ([], None)
    assert shop.downloads == []


@pytest.mark.parametrize(
    ("code", "error"),
    [("TIMEOUT", TemporaryChannelError), ("INTERNAL_SERVER_ERROR", TemporaryChannelError)],
)
def test_shopify_failed_bulk_operation_fails_the_refresh_and_leaves_listings_alone(
    api: respx.MockRouter,
    make_connector: Callable[..., ShopifyConnector],
    code: str,
    error: type[Exception],
) -> None:
    shop = Shopify(api, run(), polled("FAILED", errorCode=code, partialDataUrl=PARTIAL))

    with pytest.raises(error, match=f"bulk operation {OPERATION} ended FAILED \\({code}\\)"):
        make_connector().list_listings(None)
    assert shop.downloads == []


def test_shopify_reconcile_reads_a_failed_operations_partial_data_and_answers_each_once(
    api: respx.MockRouter, make_connector: Callable[..., ShopifyConnector]
) -> None:
    shop = Shopify(
        api,
        run(),
        polled("FAILED", errorCode="TIMEOUT", objectCount="3", partialDataUrl=PARTIAL),
        run(),
        polled("COMPLETED", url=RESULT),
    )
    # the partial file ends with a level whose variant was not reached: dropped
    shop.files[PARTIAL] = jsonl(
        variant(1),
        level("gid://shopify/ProductVariant/1", L1, 5),
        level("gid://shopify/ProductVariant/2", L1, 6),
    )
    shop.files[RESULT] = jsonl(
        variant(1), level("gid://shopify/ProductVariant/1", L1, 7), variant(2)
    )
    connector = make_connector()
    one = Listing("gid://shopify/InventoryItem/1|gid://shopify/Location/1", "SKU-1")
    two = Listing("gid://shopify/InventoryItem/2|gid://shopify/Location/1", "SKU-2")

    first = connector.read_quantities([one, two])
    # the next reconcile asks for the same listings: a new operation, not the old snapshot
    second = connector.read_quantities([one])

    assert first == {one.listing_id: 5}
    assert second == {one.listing_id: 7}
    assert shop.names().count("SellableBulkRun") == 2


def test_shopify_bulk_joins_its_own_operation_already_running(
    api: respx.MockRouter, make_connector: Callable[..., ShopifyConnector]
) -> None:
    busy = {
        "bulkOperationRunQuery": {
            "bulkOperation": None,
            "userErrors": [
                {
                    "field": ["query"],
                    "message": "A bulk query operation for this app and shop is already in "
                    "progress",
                    "code": "OPERATION_IN_PROGRESS",
                }
            ],
        }
    }
    shop = Shopify(
        api,
        busy,
        {"currentBulkOperation": operation("RUNNING")},
        polled("COMPLETED", url=RESULT),
    )
    shop.files[RESULT] = jsonl(variant(1), level("gid://shopify/ProductVariant/1", L2, 3))

    page = make_connector().list_listings(None)

    assert [(x.listing_id, x.quantity) for x in page.listings] == [
        ("gid://shopify/InventoryItem/1|gid://shopify/Location/2", 3)
    ]
    assert shop.names() == [
        "SellableBulkRun",
        "SellableCurrentBulkOperation",
        "SellableBulkOperation",
    ]


def test_shopify_bulk_refuses_to_wait_on_another_query_of_the_app(
    api: respx.MockRouter, make_connector: Callable[..., ShopifyConnector]
) -> None:
    busy = {
        "bulkOperationRunQuery": {
            "bulkOperation": None,
            "userErrors": [
                {"field": None, "message": "already in progress", "code": "OPERATION_IN_PROGRESS"}
            ],
        }
    }
    other = operation("RUNNING", query="{ products { edges { node { id } } } }")
    Shopify(api, busy, {"currentBulkOperation": other})

    with pytest.raises(TemporaryChannelError, match="another bulk query of this app is running"):
        make_connector().list_listings(None)


def test_shopify_bulk_result_url_expired_fails_the_run_as_temporary(
    api: respx.MockRouter, make_connector: Callable[..., ShopifyConnector]
) -> None:
    shop = Shopify(api, run(), polled("COMPLETED", url=RESULT))  # no file: it expired

    with pytest.raises(TemporaryChannelError, match="expires seven days after"):
        make_connector().list_listings(None)
    assert len(shop.downloads) == 1


def test_shopify_bulk_cursor_of_another_read_is_refused(
    make_connector: Callable[..., ShopifyConnector],
) -> None:
    with pytest.raises(ChannelError, match="not the bulk read in progress"):
        make_connector().list_listings("bulk:gid://shopify/BulkOperation/9:1048576")
