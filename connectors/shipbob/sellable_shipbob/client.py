"""A thin typed client of the ShipBob API (2026-01) endpoints the connector uses.

Reference: ShipBob's OpenAPI specification ``openapi-2026-01.json`` (the operations named
below are its ``summary`` lines). Every call goes through the framework's HTTP client
(rate limit, retries, ``x-retry-after``); this module only shapes requests and reads
answers, and follows ``next`` links.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from sellable.sdk import ChannelHttp, ChannelPayloadError

#: Items per page of the inventory-level and inventory reads. The spec gives ``PageSize``
#: no maximum; 250 is the largest ShipBob documents for its paged reads (``GET /product``,
#: ``GET /order``'s ``Limit``), and what its portal uses.
PAGE_SIZE = 250
#: ``Limit`` of ``GET /order``: "maximum 250" in the spec.
ORDER_LIMIT = 250
#: Webhook subscriptions per page: ``RecordsPerPage`` "maximum 250".
WEBHOOK_PAGE = 250
#: Pages of one walk before it is called a loop (``next`` never null).
MAX_PAGES = 100_000


class ShipBobClient:
    """The ShipBob calls of the connector, under the dated path prefix ``api_version``.

    Usage::

        client = ShipBobClient(connector.http, "2026-01", channel="sb")
        for page in client.inventory_levels_by_location():
            ...
    """

    def __init__(
        self, http: ChannelHttp, api_version: str, *, channel: str, host: str | None
    ) -> None:
        self.http = http
        self.prefix = f"/{api_version}"
        self.channel = channel
        #: The API's host: a ``next`` link to any other host is refused (it would get our
        #: token).
        self.host = host

    # -- paging ---------------------------------------------------------------------------------

    def _pages(
        self, path: str, params: Mapping[str, Any], what: str
    ) -> Iterator[list[dict[str, Any]]]:
        """Each page's ``items``, following ``next`` (a path with its query, or a URL on the
        API's host) until it is null. A ``next`` seen before ends with an error, never a
        loop."""
        url: str = self.prefix + path
        query: Mapping[str, Any] | None = params
        seen: set[str] = set()
        for _page in range(MAX_PAGES):
            _response, data = self.http.request_json("GET", url, params=query)
            if not isinstance(data, dict):
                raise ChannelPayloadError(
                    f"{what}: the answer is not an object with items", channel=self.channel
                )
            items = data.get("items")
            if items is None:
                items = []
            if not isinstance(items, list):
                raise ChannelPayloadError(f"{what}: items is not a list", channel=self.channel)
            yield [item for item in items if isinstance(item, dict)]
            link = data.get("next")
            if not link:
                return
            if not isinstance(link, str) or link in seen:
                raise ChannelPayloadError(
                    f"{what}: next {str(link)[:80]!r} repeats a page (a loop)",
                    channel=self.channel,
                )
            seen.add(link)
            url, query = self._next(link, what), None
        raise ChannelPayloadError(f"{what}: more than {MAX_PAGES} pages", channel=self.channel)

    def _next(self, link: str, what: str) -> str:
        parts = urlsplit(link)
        if parts.scheme or parts.netloc:
            if parts.scheme not in ("http", "https") or (
                self.host is not None and parts.hostname != self.host
            ):
                raise ChannelPayloadError(
                    f"{what}: next points at another host ({parts.hostname!r}); not followed",
                    channel=self.channel,
                )
            return link
        return link if link.startswith("/") else "/" + link

    # -- channels -------------------------------------------------------------------------------

    def channels(self) -> list[dict[str, Any]]:
        """Get Channels: every channel of the token (``items[]{id, name, scopes}``)."""
        found: list[dict[str, Any]] = []
        for page in self._pages("/channel", {"RecordsPerPage": 50}, "GET /channel"):
            found.extend(page)
        return found

    # -- inventory ------------------------------------------------------------------------------

    def inventory_levels_by_location(self) -> Iterator[list[dict[str, Any]]]:
        """Get All Inventory Levels Grouped By Fulfillment Center, active items only, page by
        page: ``items[]{inventory_id, sku, locations[]{location_id, on_hand_quantity,
        committed_quantity, ...}}``."""
        params = {"IsActive": "true", "PageSize": PAGE_SIZE}
        return self._pages("/inventory-level/locations", params, "GET /inventory-level/locations")

    def inventory_items(self, inventory_ids: Sequence[int]) -> list[dict[str, Any]]:
        """These inventory items (``InventoryIds`` comma separated, active or not) as the
        inventory-level read gives them: ``items[]{inventory_id, sku, locations}``. The
        same endpoint as the stock pull, so that a SKU is read from one place."""
        params = {"InventoryIds": ",".join(str(i) for i in inventory_ids), "PageSize": PAGE_SIZE}
        found: list[dict[str, Any]] = []
        path = "/inventory-level/locations"
        for page in self._pages(path, params, f"GET {path}"):
            found.extend(page)
        return found

    # -- orders ---------------------------------------------------------------------------------

    def create_order(self, body: Mapping[str, Any], channel_id: int) -> dict[str, Any]:
        """Create Order (201: the order). ``shipbob_channel_id`` is required here."""
        _response, data = self.http.request_json(
            "POST",
            f"{self.prefix}/order",
            json=body,
            headers={"shipbob_channel_id": str(channel_id)},
        )
        if not isinstance(data, dict):
            raise ChannelPayloadError("POST /order: the answer is not an order object")
        return data

    def orders(self, params: Mapping[str, Any], channel_id: int | None) -> list[dict[str, Any]]:
        """Get Orders: a JSON array of orders (the spec declares no paging links: a page
        shorter than ``Limit`` is the last)."""
        headers = {"shipbob_channel_id": str(channel_id)} if channel_id is not None else None
        _response, data = self.http.request_json(
            "GET", f"{self.prefix}/order", params=params, headers=headers
        )
        if not isinstance(data, list):
            raise ChannelPayloadError(
                "GET /order: the answer is not a list of orders", channel=self.channel
            )
        return [order for order in data if isinstance(order, dict)]

    def cancel_order(self, order_id: int) -> dict[str, Any]:
        """Cancel Order: ``{order_id, status, canceled_shipment_results[]{shipment_id,
        is_success, reason}}``."""
        _response, data = self.http.request_json("POST", f"{self.prefix}/order/{order_id}:cancel")
        return data if isinstance(data, dict) else {}

    # -- webhooks -------------------------------------------------------------------------------

    def webhooks(self) -> list[dict[str, Any]]:
        """Get Subscriptions: ``items[]{id, topics, url, description, enabled}``."""
        found: list[dict[str, Any]] = []
        params = {"RecordsPerPage": WEBHOOK_PAGE}
        for page in self._pages("/webhook", params, "GET /webhook"):
            found.extend(page)
        return found

    def create_webhook(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create Subscription: ``{topics, url, secret, description}``."""
        _response, data = self.http.request_json("POST", f"{self.prefix}/webhook", json=body)
        return data if isinstance(data, dict) else {}

    def delete_webhook(self, webhook_id: str) -> None:
        """Delete Subscription (204)."""
        self.http.request("DELETE", f"{self.prefix}/webhook/{webhook_id}")


__all__ = ["ORDER_LIMIT", "PAGE_SIZE", "ShipBobClient"]
