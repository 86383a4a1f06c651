"""The listing refresh through the Reports API 2021-06-30, with respx: createReport,
getReport until DONE / CANCELLED / FATAL, getReportDocument, the presigned download in
Range pieces (gzipped or not), and the tab-separated GET_MERCHANT_LISTINGS_ALL_DATA rows.
"""

# The fixtures of test_connector.py are imported, and named again as test parameters.
# ruff: noqa: F811

from __future__ import annotations

import gzip
import json
import re

import httpx
import pytest
import respx
from sellable_amazon.client import DocumentPiece
from sellable_amazon.connector import AmazonConnector
from sellable_amazon.report import RANGE_BYTES, TEXT_BYTES, DocumentError, DocumentReader

from sellable.errors import ChannelError, ChannelPayloadError, TemporaryChannelError
from sellable.sdk import Listing, PushItem, PushStatus
from tests.connectors.amazon.test_connector import (  # noqa: F401 - fixtures
    ENDPOINT,
    SELLER,
    FakeTime,
    MakeConnector,
    api,
    fake_time,
    make_connector,
    query,
)

REPORTS = f"{ENDPOINT}/reports/2021-06-30/reports"
DOCUMENT_ID = "amzn1.spdoc.1.4.na.0356cf79-b8b0-4226-b4b9-0ee058ea5760"
# A presigned S3 URL as getReportDocument gives it (its signature is in the query).
S3 = "https://tortuga-prod-na.s3-external-1.amazonaws.com/NinetyDays/amzn1.tortuga.4.na.T1"
PRESIGNED = f"{S3}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=300&X-Amz-Signature=abc"
COLUMNS = [
    *("item-name", "item-description", "listing-id", "seller-sku", "price", "quantity"),
    *("open-date", "image-url", "item-is-marketplace", "product-id-type"),
    *("zshop-shipping-fee", "item-note", "item-condition", "zshop-category1"),
    *("zshop-browse-path", "zshop-storefront-feature", "asin1", "asin2", "asin3"),
    *("will-ship-internationally", "expedited-shipping", "zshop-boldface", "product-id"),
    *("bid-for-featured-placement", "add-delete", "pending-quantity"),
    *("fulfillment-channel", "merchant-shipping-group", "status"),
]


def row(sku: str, quantity: str, channel: str = "DEFAULT", asin: str = "B000000001") -> str:
    cells = dict.fromkeys(COLUMNS, "")
    cells.update(
        {
            "item-name": f"Item {sku}",
            "listing-id": "0119Z000001",
            "seller-sku": sku,
            "price": "12.50",
            "quantity": quantity,
            "asin1": asin,
            "product-id": asin,
            "fulfillment-channel": channel,
            "status": "Active",
        }
    )
    return "\t".join(cells[c] for c in COLUMNS)


def document(*rows: str, newline: str = "\n") -> bytes:
    return (newline.join(["\t".join(COLUMNS), *rows]) + newline).encode()


def serve(
    api: respx.MockRouter, content: bytes, *, expired_first: bool = False
) -> list[httpx.Request]:
    """Route the presigned URL to ``content``, answering Range requests as S3 does; the
    requests it saw are returned (filled in as they come)."""
    seen: list[httpx.Request] = []
    refused = [expired_first]

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if refused[0]:
            refused[0] = False
            return httpx.Response(403, text="<Error><Code>AccessDenied</Code></Error>")
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", request.headers.get("Range", ""))
        if match is None:
            return httpx.Response(200, content=content)
        start, end = int(match[1]), min(int(match[2]), len(content) - 1)
        return httpx.Response(
            206,
            content=content[start : end + 1],
            headers={"Content-Range": f"bytes {start}-{end}/{len(content)}"},
        )

    api.get(url__startswith=S3).mock(side_effect=answer)
    return seen


def report_answers(
    api: respx.MockRouter, *statuses: str, document: str | None = DOCUMENT_ID
) -> respx.Route:
    def report(status: str) -> httpx.Response:
        body = {
            "reportId": "ID323",
            "reportType": "GET_MERCHANT_LISTINGS_ALL_DATA",
            "createdTime": "2026-12-06T20:00:00Z",
            "processingStatus": status,
        }
        if status in ("DONE", "FATAL") and document:
            body["reportDocumentId"] = document
        return httpx.Response(200, json=body)

    api.post(REPORTS).mock(return_value=httpx.Response(202, json={"reportId": "ID323"}))
    return api.get(f"{REPORTS}/ID323").mock(side_effect=[report(s) for s in statuses])


def document_answers(api: respx.MockRouter, gzip_: bool, count: int = 1) -> respx.Route:
    body: dict[str, str] = {"reportDocumentId": DOCUMENT_ID, "url": PRESIGNED}
    if gzip_:
        body["compressionAlgorithm"] = "GZIP"
    return api.get(f"{ENDPOINT}/reports/2021-06-30/documents/{DOCUMENT_ID}").mock(
        side_effect=[httpx.Response(200, json=body) for _ in range(count)]
    )


def refresh(connector: AmazonConnector) -> tuple[list[Listing], int]:
    """list_listings as the framework calls it (sync/jobs/listings.py): until no cursor,
    never with a repeated one."""
    listings: list[Listing] = []
    cursor: str | None = None
    cursors: set[str] = set()
    calls = 0
    while True:
        page = connector.list_listings(cursor)
        calls += 1
        listings.extend(page.listings)
        if page.next_cursor is None:
            return listings, calls
        assert page.next_cursor not in cursors
        cursors.add(page.next_cursor)
        cursor = page.next_cursor


def mfn(sku: str, quantity: int | None) -> Listing:
    return Listing(sku, sku, warehouses=("main",), quantity=quantity)


def test_report_is_requested_polled_and_its_gzip_document_read_without_the_token(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    polls = report_answers(api, "IN_QUEUE", "IN_PROGRESS", "IN_PROGRESS", "DONE")
    opened = document_answers(api, gzip_=True)
    content = document(
        row("MUG-RED", "7"),
        row("MUG-FBA", "", channel="AMAZON_NA"),  # fulfilled by Amazon: not a listing
        row("MUG-BLUE", "0"),
        row("MUG-NEW", ""),  # blank quantity: unknown, not 0
    )
    downloads = serve(api, gzip.compress(content))
    connector = make_connector(marketplace="ATVPDKIKX0DER")

    listings, calls = refresh(connector)

    assert listings == [mfn("MUG-RED", 7), mfn("MUG-BLUE", 0), mfn("MUG-NEW", None)]
    assert calls == 4  # three waits (one getReport each), then the document in one piece
    assert len(polls.calls) == 4 and len(opened.calls) == 1
    create = next(
        c.request for c in api.calls if c.request.method == "POST" and c.request.url == REPORTS
    )
    assert json.loads(create.content) == {
        "reportType": "GET_MERCHANT_LISTINGS_ALL_DATA",
        "marketplaceIds": ["ATVPDKIKX0DER"],
    }
    assert [r.headers["Range"] for r in downloads] == [f"bytes=0-{RANGE_BYTES - 1}"]
    assert "x-amz-access-token" not in downloads[0].headers  # never sent to S3
    assert "x-amz-access-token" in polls.calls[0].request.headers


def test_a_report_cancelled_without_data_means_no_listings(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    report_answers(api, "IN_QUEUE", "CANCELLED", document=None)
    opened = document_answers(api, gzip_=False)

    listings, calls = refresh(make_connector(marketplace="ATVPDKIKX0DER"))

    assert (listings, calls) == ([], 2)
    assert not opened.calls


def test_a_fatal_report_fails_the_refresh_naming_it(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    report_answers(api, "IN_PROGRESS", "FATAL")
    connector = make_connector(marketplace="ATVPDKIKX0DER")

    with pytest.raises(ChannelError, match=r"report ID323 ended FATAL; document .* reason") as err:
        refresh(connector)

    assert not isinstance(err.value, TemporaryChannelError)
    # The next refresh starts a new report, it does not resume the failed one.
    with pytest.raises(TemporaryChannelError, match="not the report being read"):
        connector.list_listings("report:ID323:1")


def test_a_large_plain_document_is_read_in_range_pieces_with_lines_cut_between_them(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    report_answers(api, "DONE")
    document_answers(api, gzip_=False)
    count = 12_000  # about 1.9 MiB: two ranges, a line cut at their edge
    content = document(*(row(f"SKU-{i:06d}", str(i % 50)) for i in range(count)))
    downloads = serve(api, content)

    listings, calls = refresh(make_connector(marketplace="ATVPDKIKX0DER"))

    assert listings == [mfn(f"SKU-{i:06d}", i % 50) for i in range(count)]
    ranges = [r.headers["Range"] for r in downloads]
    assert ranges == [
        f"bytes={start}-{start + RANGE_BYTES - 1}" for start in range(0, len(content), RANGE_BYTES)
    ]
    assert len(ranges) == 2
    assert calls == len(ranges)  # the first call also finds the report DONE


def test_a_gzip_document_is_inflated_a_bounded_piece_at_a_time(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    report_answers(api, "DONE")
    document_answers(api, gzip_=True)
    count = 15_000  # about 3 MiB of text, far less gzipped: one range, several pages
    content = document(*(row(f"SKU-{i:06d}", "3") for i in range(count)))
    packed = gzip.compress(content)
    assert len(packed) < RANGE_BYTES < len(content)
    serve(api, packed)
    connector = make_connector(marketplace="ATVPDKIKX0DER")

    page = connector.list_listings(None)
    pages = [len(page.listings)]
    while page.next_cursor is not None:
        page = connector.list_listings(page.next_cursor)
        pages.append(len(page.listings))

    assert sum(pages) == count
    assert len(pages) == -(-len(content) // TEXT_BYTES)  # one page per MiB of text
    assert max(pages) < count


def test_an_expired_document_url_is_renewed_once_and_reading_goes_on(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    report_answers(api, "DONE")
    opened = document_answers(api, gzip_=False, count=2)
    downloads = serve(api, document(row("A-1", "4")), expired_first=True)

    listings, _calls = refresh(make_connector(marketplace="ATVPDKIKX0DER"))

    assert listings == [mfn("A-1", 4)]
    assert len(opened.calls) == 2 and len(downloads) == 2


def test_report_lines_crlf_bom_reordered_columns_and_blank_channel(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    report_answers(api, "DONE")
    document_answers(api, gzip_=False)
    content = (
        "\ufeffstatus\tquantity\tfulfillment-channel\tseller-sku\tasin1\r\n"
        "Active\t5\t\tPLAIN-1\tB01\r\n"  # no fulfillment channel: merchant fulfilled
        "\r\n"
        "Inactive\t\tAMAZON_EU\tFBA-1\tB02\r\n"
        "Active\t 12 \tDEFAULT\t  SPACED  \tB03\r\n"
    ).encode()
    serve(api, content)

    listings, _calls = refresh(make_connector(marketplace="ATVPDKIKX0DER"))

    assert listings == [mfn("PLAIN-1", 5), mfn("SPACED", 12)]


def test_a_report_row_without_seller_sku_is_a_payload_error_naming_the_line(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    report_answers(api, "DONE")
    document_answers(api, gzip_=False)
    serve(api, document(row("OK-1", "1"), row("", "2")))

    with pytest.raises(ChannelPayloadError, match="line 3: no seller-sku"):
        refresh(make_connector(marketplace="ATVPDKIKX0DER"))


def test_a_document_that_is_not_gzip_is_a_payload_error(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    report_answers(api, "DONE")
    document_answers(api, gzip_=True)
    serve(api, document(row("OK-1", "1")))  # said GZIP, sent plain

    with pytest.raises(ChannelPayloadError, match="not a gzip document"):
        refresh(make_connector(marketplace="ATVPDKIKX0DER"))


@pytest.mark.parametrize(
    ("content", "error"),
    [
        pytest.param(b"", "no header line", id="empty"),
        pytest.param(gzip.compress(b"seller-sku\nA\n")[:-12], "ends before", id="truncated-gzip"),
    ],
)
def test_document_reader_refuses_an_unreadable_document(content: bytes, error: str) -> None:
    reader = DocumentReader("GZIP" if content else None)

    def fetch(start: int, size: int) -> DocumentPiece:
        return DocumentPiece(content[start : start + size], len(content), None)

    with pytest.raises(DocumentError, match=error):
        while not reader.done:
            reader.next_rows(fetch)


def test_document_reader_decodes_the_charset_the_server_names() -> None:
    content = "seller-sku\titem-name\nA-1\tCaf\xe9 mug\n".encode("cp1252")
    reader = DocumentReader(None)

    rows = reader.next_rows(lambda start, size: DocumentPiece(content, len(content), "cp1252"))

    assert reader.done
    assert [(r.get("seller-sku"), r.get("item-name")) for r in rows] == [("A-1", "Café mug")]


# -- productType: the report has none -------------------------------------------------------------


def listing_item(sku: str, asin: str, product_type: str) -> dict[str, object]:
    """A Listings Items API item with its summary (listingsItems_2021-08-01.json Item)."""
    return {
        "sku": sku,
        "summaries": [
            {
                "marketplaceId": "ATVPDKIKX0DER",
                "asin": asin,
                "productType": product_type,
                "conditionType": "new_new",
                "status": ["BUYABLE"],
                "createdDate": "2026-01-01T00:00:00Z",
                "lastUpdatedDate": "2026-01-01T00:00:00Z",
            }
        ],
    }


def test_a_feed_push_reads_product_types_twenty_skus_per_search_and_keeps_them(
    api: respx.MockRouter, make_connector: MakeConnector, fake_time: FakeTime
) -> None:
    skus = [f"SKU-{i:02d}" for i in range(25)]

    def searched(request: httpx.Request) -> httpx.Response:
        wanted = query(request)["identifiers"].split(",")
        items = [listing_item(sku, "B0X", "MUG") for sku in wanted]
        return httpx.Response(200, json={"numberOfResults": len(items), "items": items})

    search = api.get(f"{ENDPOINT}/listings/2021-08-01/items/{SELLER}").mock(side_effect=searched)
    api.post(f"{ENDPOINT}/feeds/2021-06-30/documents").mock(
        return_value=httpx.Response(201, json={"feedDocumentId": "D1", "url": f"{S3}/feed"})
    )
    upload = api.put(f"{S3}/feed").mock(return_value=httpx.Response(200))
    api.post(f"{ENDPOINT}/feeds/2021-06-30/feeds").mock(
        return_value=httpx.Response(202, json={"feedId": "F1"})
    )
    connector = make_connector(marketplace="ATVPDKIKX0DER")
    items = [PushItem(Listing(s, s, warehouses=("main",)), 3) for s in skus]

    results = connector.push_quantities(items)

    assert {r.status for r in results} == {PushStatus.RETRY}
    assert [query(c.request)["identifiers"].split(",") for c in search.calls] == [
        skus[:20],
        skus[20:],
    ]
    sent = json.loads(upload.calls[0].request.content)
    assert {m["productType"] for m in sent["messages"]} == {"MUG"}
    assert len(sent["messages"]) == 25


def test_a_refused_or_reassigned_sku_has_its_product_type_read_again(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    item = f"{ENDPOINT}/listings/2021-08-01/items/{SELLER}/MUG-1"
    get = api.get(item).mock(
        side_effect=[
            httpx.Response(200, json=listing_item("MUG-1", "B0OLD", "MUG")),
            # read back while 2 is in flight (not shown yet), then the new product type
            httpx.Response(200, json=listing_item("MUG-1", "B0OLD", "MUG")),
            httpx.Response(200, json=listing_item("MUG-1", "B0NEW", "KITCHEN")),
        ]
    )
    patch = api.patch(item).mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "sku": "MUG-1",
                    "status": "INVALID",
                    "submissionId": "s1",
                    "issues": [
                        {
                            "code": "4000003",
                            "message": "The product type does not match.",
                            "severity": "ERROR",
                        }
                    ],
                },
            ),
            httpx.Response(
                200,
                json={"sku": "MUG-1", "status": "ACCEPTED", "submissionId": "s2", "issues": []},
            ),
            httpx.Response(
                200,
                json={"sku": "MUG-1", "status": "ACCEPTED", "submissionId": "s3", "issues": []},
            ),
        ]
    )
    connector = make_connector(marketplace="ATVPDKIKX0DER")
    # The stored listing carries a product type from an earlier refresh: wrong here.
    listing = Listing("MUG-1", "MUG-1", warehouses=("main",), extra={"productType": "STALE"})

    first = connector.push_quantities([PushItem(listing, 2)])
    second = connector.push_quantities([PushItem(listing, 2)])

    assert first[0].status is PushStatus.FAILED and second[0].status is PushStatus.RETRY
    sent = [json.loads(c.request.content)["productType"] for c in patch.calls]
    assert sent == ["STALE", "MUG"]  # refused: the stored one is no longer trusted
    assert len(get.calls) == 1

    # A later report shows another ASIN behind the SKU: its product type is read again.
    report_answers(api, "DONE")
    document_answers(api, gzip_=False)
    serve(api, document(row("MUG-1", "2", asin="B0NEW")))
    listings, _calls = refresh(connector)
    # An empty product type for the new ASIN: the framework drops the stored one.
    assert listings == [
        Listing("MUG-1", "MUG-1", warehouses=("main",), quantity=2, extra={"productType": ""})
    ]
    assert connector.take_learned_extra() == {"MUG-1": {"productType": ""}}
    connector.push_quantities([PushItem(listings[0], 5)])
    assert json.loads(patch.calls[2].request.content)["productType"] == "KITCHEN"
    assert query(get.calls[2].request)["includedData"] == "summaries"
