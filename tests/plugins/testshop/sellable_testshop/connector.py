"""The testshop connector: a complete, small connector over a plain JSON API."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import Field, SecretStr

from sellable.sdk import (
    Capability,
    ChannelOrder,
    ChannelOrderLine,
    ChannelPayloadError,
    Connector,
    ConnectorSettings,
    Listing,
    ListingPage,
    OrderPage,
    OrderStatus,
    PushItem,
    PushResult,
    RateLimit,
)

STATUSES = {
    "pending": OrderStatus.OPEN,
    "processing": OrderStatus.OPEN,
    "completed": OrderStatus.SHIPPED,
    "cancelled": OrderStatus.CANCELLED,
}


class TestShopSettings(ConnectorSettings):
    base_url: str
    token: SecretStr
    page_size: int = Field(default=50, ge=1, le=500)


class TestShopConnector(Connector):
    name = "testshop"
    capabilities = frozenset(
        {
            Capability.PULL_ORDERS,
            Capability.LIST_LISTINGS,
            Capability.PUSH_QUANTITIES,
            Capability.READ_QUANTITIES,
        }
    )
    Settings = TestShopSettings
    rate_limit = RateLimit(rate=200, burst=50)
    max_push_batch = 50

    settings: TestShopSettings

    def base_url(self) -> str:
        return self.settings.base_url.rstrip("/")

    def authenticate(self, request_headers: dict[str, str]) -> None:
        request_headers["Authorization"] = f"Bearer {self.settings.token.get_secret_value()}"

    def list_listings(self, cursor: str | None) -> ListingPage:
        _, data = self.http.request_json(
            "GET", "/listings", params={"page": cursor or "1", "per_page": self.settings.page_size}
        )
        try:
            listings = [
                Listing(listing_id=str(item["id"]), sku=item.get("sku"), quantity=item["quantity"])
                for item in data["listings"]
            ]
        except (KeyError, TypeError) as err:
            raise ChannelPayloadError(f"unexpected listing payload: {err!r}") from err
        next_page = data.get("next_page")
        return ListingPage(listings, str(next_page) if next_page else None)

    def pull_orders(self, since: datetime, cursor: str | None) -> OrderPage:
        _, data = self.http.request_json(
            "GET",
            "/orders",
            params={
                "updated_after": since.isoformat(),
                "page": cursor or "1",
                "per_page": self.settings.page_size,
            },
        )
        try:
            orders = [
                ChannelOrder(
                    order_id=str(item["id"]),
                    status=STATUSES[item["status"]],
                    updated_at=datetime.fromisoformat(item["updated_at"]),
                    lines=tuple(
                        ChannelOrderLine(str(line["id"]), line["sku"], int(line["quantity"]))
                        for line in item["lines"]
                    ),
                )
                for item in data["orders"]
            ]
        except (KeyError, TypeError, ValueError) as err:
            raise ChannelPayloadError(f"unexpected order payload: {err!r}") from err
        next_page = data.get("next_page")
        return OrderPage(orders, str(next_page) if next_page else None)

    def push_quantities(self, items: Sequence[PushItem]) -> list[PushResult]:
        body = {"items": [{"id": i.listing.listing_id, "quantity": i.quantity} for i in items]}
        _, data = self.http.request_json("POST", "/quantities", json=body)
        results = []
        for answer in data.get("results", []):
            if answer.get("ok"):
                results.append(PushResult.ok(str(answer["id"])))
            else:
                results.append(PushResult.failed(str(answer["id"]), str(answer.get("error"))))
        return results

    def read_quantities(self, listings: Sequence[Listing]) -> dict[str, int]:
        ids = ",".join(listing.listing_id for listing in listings)
        _, data = self.http.request_json("GET", "/quantities", params={"ids": ids})
        return {str(k): int(v) for k, v in data["quantities"].items()}
