"""A thin typed client of the Selling Partner API on the framework's HTTP client.

It owns three things the connector should not think about:

* the Login with Amazon (LWA) access token: fetched with the refresh token, refreshed a
  minute before it expires, and fetched again once when a call answers 403 (an expired or
  revoked token) -- https://developer-docs.amazon.com/sp-api/docs/connecting-to-the-selling-partner-api
* one token bucket per operation at the published usage plan (the ``Usage Plan`` table of
  each operation in the saved models), updated from the ``x-amzn-RateLimit-Limit``
  header of every answer -- https://developer-docs.amazon.com/sp-api/docs/usage-plans-and-rate-limits
* never sending the access token anywhere but the SP-API host (not to LWA, not to the
  presigned S3 URLs of the Feeds and Reports APIs).

Retries of 429 (``QuotaExceeded``), 5xx and transport errors are the framework's.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

from sellable.sdk import (
    AuthenticationError,
    ChannelError,
    ChannelHttp,
    ChannelPayloadError,
    RateLimit,
    TemporaryChannelError,
)

log = logging.getLogger("sellable.amazon")

#: Marks a request that must not carry the access token (LWA itself, presigned URLs);
#: removed by :meth:`SpApiClient.authenticate` before the request is sent.
NO_AUTH = "x-sellable-no-auth"

#: Published usage plans (rate per second, burst) of every operation we call, from the
#: "Usage Plan" tables of the saved models (orders_2026-01-01.json, fbaInventory.json,
#: listingsItems_2021-08-01.json, feeds_2021-06-30.json, reports_2021-06-30.json).
OPERATIONS: dict[str, tuple[float, int]] = {
    "searchOrders": (0.0056, 20),
    "getInventorySummaries": (2.0, 2),
    "searchListingsItems": (5.0, 5),
    "getListingsItem": (5.0, 10),
    "patchListingsItem": (5.0, 5),
    "createFeedDocument": (0.5, 15),
    "createFeed": (0.0083, 15),
    "getFeed": (2.0, 15),
    "getFeedDocument": (0.0222, 10),
    "createReport": (0.0167, 15),
    "getReport": (2.0, 15),
    "getReportDocument": (0.0167, 15),
}
#: JSON_LISTINGS_FEED has a limit of its own on top of createFeed: 5 feeds per 5 minutes
#: per region (SP-API changelog, May 2025; research/channel-apis.md "Other feed facts").
LISTINGS_FEED_LIMIT = ("JSON_LISTINGS_FEED", 5 / 300, 5)

FEED_CONTENT_TYPE = "application/json; charset=UTF-8"
TOKEN_MARGIN = 60.0  # refresh this many seconds before the token's announced expiry


@dataclass(frozen=True, slots=True)
class Credentials:
    lwa_endpoint: str
    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr


class SpApiClient:
    """Usage::

    client = SpApiClient(http, credentials, seller_id, marketplace_id)
    http.authenticate = client.authenticate
    data = client.search_orders(since="2026-01-01T00:00:00Z")
    """

    def __init__(
        self,
        http: ChannelHttp,
        credentials: Credentials,
        seller_id: str,
        marketplace_id: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.credentials = credentials
        self.seller_id = seller_id
        self.marketplace_id = marketplace_id
        self.clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self.token_refreshes = 0
        # AmazonConnector.rate_limits() declared them; a client built alone adds the missing.
        for name, limit in rate_limits().items():
            if name is not None and name not in http.limiters:
                http.limiter(name, limit.rate, limit.burst)

    # -- LWA ------------------------------------------------------------------------------------

    def authenticate(self, headers: dict[str, str]) -> None:
        """The framework calls this for every request: add the access token, except on the
        requests marked :data:`NO_AUTH`."""
        if headers.pop(NO_AUTH, None) is not None:
            return
        headers["x-amz-access-token"] = self.access_token()

    def access_token(self) -> str:
        if self._token is None or self.clock() >= self._expires_at - TOKEN_MARGIN:
            self._refresh()
        assert self._token is not None
        return self._token

    def _refresh(self) -> None:
        # POST https://api.amazon.com/auth/o2/token, form-encoded (LWA), answer
        # {access_token, token_type: "bearer", expires_in: 3600}.
        form = urlencode(
            {
                "grant_type": "refresh_token",
                "refresh_token": self.credentials.refresh_token.get_secret_value(),
                "client_id": self.credentials.client_id,
                "client_secret": self.credentials.client_secret.get_secret_value(),
            }
        )
        started = self.clock()
        try:
            _response, data = self.http.request_json(
                "POST",
                self.credentials.lwa_endpoint,
                content=form,
                headers={
                    NO_AUTH: "1",
                    "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
                },
            )
        except TemporaryChannelError:
            raise
        except ChannelError as err:
            # LWA answers 400/401 {"error": "invalid_grant", ...} for bad credentials; keep
            # the secrets out of the message even if the answer echoed them.
            raise AuthenticationError(
                f"LWA token request refused: {self._scrub(str(err))}", channel=self.http.channel
            ) from None
        token = data.get("access_token") if isinstance(data, dict) else None
        expires = data.get("expires_in") if isinstance(data, dict) else None
        if not isinstance(token, str) or not isinstance(expires, int | float):
            raise ChannelPayloadError(
                "LWA token answer lacks access_token/expires_in", channel=self.http.channel
            )
        self._token = token
        self._expires_at = started + float(expires)
        self.token_refreshes += 1
        log.debug("channel %s: LWA access token refreshed", self.http.channel)

    def _scrub(self, text: str) -> str:
        for secret in (
            self.credentials.client_secret.get_secret_value(),
            self.credentials.refresh_token.get_secret_value(),
            self._token or "",
        ):
            if secret:
                text = text.replace(secret, "[redacted]")
        return text

    # -- one call -------------------------------------------------------------------------------

    def call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> tuple[httpx.Response, Any]:
        """One SP-API operation, paced by its own bucket; a 403 (expired token) gets one
        fresh token and one more try."""
        self.access_token()  # refresh before the limiter wait, not inside it
        try:
            response, data = self.http.request_json(
                method, path, params=params, json=json, limiter=operation
            )
        except AuthenticationError:
            # 403 "Unauthorized ... The access token you provided has expired" (or was
            # revoked): https://developer-docs.amazon.com/sp-api/docs/sp-api-errors
            self._token = None
            response, data = self.http.request_json(
                method, path, params=params, json=json, limiter=operation
            )
        self._observe(operation, response)
        return response, data

    def _observe(self, operation: str, response: httpx.Response) -> None:
        """Take the usage plan the answer announces (sellers can get more than the
        default), keeping the published burst."""
        raw = response.headers.get("x-amzn-RateLimit-Limit")
        if not raw:
            return
        try:
            rate = float(raw)
        except ValueError:
            return
        if rate > 0:
            _default, burst = OPERATIONS[operation]
            bucket = self.http.limiters[operation]
            if abs(bucket.rate - rate) > 1e-9:
                self.http.limiter(operation, rate, _in_hand(burst))

    # -- operations -----------------------------------------------------------------------------

    def search_orders(self, since: str, pagination_token: str | None = None) -> Any:
        # Orders API 2026-01-01 searchOrders; items come inline, FULFILLMENT gives
        # fulfilledBy/fulfillmentStatus, PROCEEDS each item's price, discount and tax
        # (includedData is a comma-separated array). Same filters on every page plus
        # paginationToken.
        params: dict[str, Any] = {
            "lastUpdatedAfter": since,
            "marketplaceIds": self.marketplace_id,
            "maxResultsPerPage": 100,
            "includedData": "FULFILLMENT,PROCEEDS",
        }
        if pagination_token:
            params["paginationToken"] = pagination_token
        return self.call("searchOrders", "GET", "/orders/2026-01-01/orders", params=params)[1]

    def inventory_summaries(self, next_token: str | None = None) -> Any:
        params: dict[str, Any] = {
            "details": "true",
            "granularityType": "Marketplace",
            "granularityId": self.marketplace_id,
            "marketplaceIds": self.marketplace_id,
        }
        if next_token:
            params["nextToken"] = next_token
        return self.call(
            "getInventorySummaries", "GET", "/fba/inventory/v1/summaries", params=params
        )[1]

    def search_listings(self, page_token: str | None = None, skus: list[str] | None = None) -> Any:
        params: dict[str, Any] = {
            "marketplaceIds": self.marketplace_id,
            "includedData": "summaries,fulfillmentAvailability",
            "pageSize": 20,  # the model's maximum
        }
        if skus:
            params["identifiers"] = ",".join(skus)  # at most 20
            params["identifiersType"] = "SKU"
        if page_token:
            params["pageToken"] = page_token
        return self.call(
            "searchListingsItems",
            "GET",
            f"/listings/2021-08-01/items/{self.seller_id}",
            params=params,
        )[1]

    def get_listings_item(self, sku: str, included: str) -> Any:
        return self.call(
            "getListingsItem",
            "GET",
            f"/listings/2021-08-01/items/{self.seller_id}/{_quote(sku)}",
            params={"marketplaceIds": self.marketplace_id, "includedData": included},
        )[1]

    def patch_quantity(self, sku: str, product_type: str, quantity: int) -> Any:
        return self.call(
            "patchListingsItem",
            "PATCH",
            f"/listings/2021-08-01/items/{self.seller_id}/{_quote(sku)}",
            params={"marketplaceIds": self.marketplace_id},
            json={"productType": product_type, "patches": [quantity_patch(quantity)]},
        )[1]

    def create_feed_document(self) -> tuple[str, str]:
        _r, data = self.call(
            "createFeedDocument",
            "POST",
            "/feeds/2021-06-30/documents",
            json={"contentType": FEED_CONTENT_TYPE},
        )
        return _field(data, "feedDocumentId", self), _field(data, "url", self)

    def upload(self, url: str, body: bytes) -> None:
        """PUT the feed document to the presigned URL (no SP-API token; it expires after
        5 minutes -- https://developer-docs.amazon.com/sp-api/docs/feeds-api-v2021-06-30-use-case-guide)."""
        self.http.request(
            "PUT", url, content=body, headers={NO_AUTH: "1", "Content-Type": FEED_CONTENT_TYPE}
        )

    def create_feed(self, document_id: str) -> str:
        self.http.limiters[LISTINGS_FEED_LIMIT[0]].acquire()
        _r, data = self.call(
            "createFeed",
            "POST",
            "/feeds/2021-06-30/feeds",
            json={
                "feedType": "JSON_LISTINGS_FEED",
                "marketplaceIds": [self.marketplace_id],
                "inputFeedDocumentId": document_id,
            },
        )
        return _field(data, "feedId", self)

    def get_feed(self, feed_id: str) -> Any:
        return self.call("getFeed", "GET", f"/feeds/2021-06-30/feeds/{_quote(feed_id)}")[1]

    def get_feed_document(self, document_id: str) -> Any:
        return self.call(
            "getFeedDocument", "GET", f"/feeds/2021-06-30/documents/{_quote(document_id)}"
        )[1]

    def create_report(self, report_type: str) -> str:
        # Reports API 2021-06-30 createReport: 202 {"reportId"}; one marketplace per report
        # for the listings reports (report-type-values-inventory).
        _r, data = self.call(
            "createReport",
            "POST",
            "/reports/2021-06-30/reports",
            json={"reportType": report_type, "marketplaceIds": [self.marketplace_id]},
        )
        return _field(data, "reportId", self)

    def get_report(self, report_id: str) -> Any:
        return self.call("getReport", "GET", f"/reports/2021-06-30/reports/{_quote(report_id)}")[1]

    def get_report_document(self, document_id: str) -> Any:
        return self.call(
            "getReportDocument", "GET", f"/reports/2021-06-30/documents/{_quote(document_id)}"
        )[1]

    def download_range(self, url: str, start: int, size: int) -> DocumentPiece:
        """``size`` bytes of a presigned document from ``start`` (an HTTP Range request,
        which S3 serves as 206 with ``Content-Range``), without the access token."""
        response = self.http.request(
            "GET", url, headers={NO_AUTH: "1", "Range": f"bytes={start}-{start + size - 1}"}
        )
        total: int | None = None
        if response.status_code == 206:
            # Content-Range: bytes 0-1048575/73400320
            _span, _slash, length = response.headers.get("Content-Range", "").partition("/")
            total = int(length) if length.isdigit() else None
        elif start == 0:  # 200: the server ignored the Range and sent it all
            total = len(response.content)
        else:
            raise ChannelPayloadError(
                f"document download: HTTP {response.status_code} to a Range request from "
                f"byte {start}",
                channel=self.http.channel,
            )
        return DocumentPiece(response.content, total, _charset(response))

    def download(self, url: str, compression: str | None) -> bytes:
        response = self.http.request("GET", url, headers={NO_AUTH: "1"})
        body = response.content
        if compression == "GZIP":
            body = gzip.decompress(body)
        return body


@dataclass(frozen=True, slots=True)
class DocumentPiece:
    """Part of a report document: its bytes, the document's size when the server said
    (``Content-Range``), and the charset of its ``Content-Type`` if any."""

    content: bytes
    total: int | None
    charset: str | None


def _charset(response: httpx.Response) -> str | None:
    for part in response.headers.get("Content-Type", "").split(";")[1:]:
        name, _eq, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            return str(value.strip('"'))
    return None


def quantity_patch(quantity: int) -> dict[str, Any]:
    """The MFN quantity as one JSON Patch. ``merge`` (June 2025) leaves the other fields of
    the DEFAULT entry (restock date, handling time) as they are; only ``DEFAULT`` (merchant
    fulfilled) is settable, Amazon owns the FBA figures --
    https://developer-docs.amazon.com/sp-api/docs/listings-items-api-v2021-08-01-use-case-guide"""
    return {
        "op": "merge",
        "path": "/attributes/fulfillment_availability",
        "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": quantity}],
    }


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _field(data: Any, name: str, client: SpApiClient) -> str:
    value = data.get(name) if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise ChannelPayloadError(f"answer lacks {name}", channel=client.http.channel)
    return value


def rate_limits() -> dict[str | None, RateLimit]:
    """The named limiters of the SP-API: one per operation as published
    (:data:`OPERATIONS`, keeping one token of each burst in hand), and the listings feed's."""
    limits: dict[str | None, RateLimit] = {
        op: RateLimit(rate, _in_hand(burst)) for op, (rate, burst) in OPERATIONS.items()
    }
    feed, feed_rate, feed_burst = LISTINGS_FEED_LIMIT
    limits[feed] = RateLimit(feed_rate, feed_burst)
    return limits


def _in_hand(burst: int) -> int:
    """The burst we use of a published one: one token fewer. Our bucket and Amazon's refill
    from different instants, and requests sent back to back at the very edge of the limit
    arrive with jittered spacing, so a bucket exactly as large as Amazon's still meets the
    odd 429 (seen polling getFeed at 2/s). One token in hand absorbs that jitter."""
    return max(1, burst - 1)
