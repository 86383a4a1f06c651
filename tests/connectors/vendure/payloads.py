"""Vendure 3.7.3 Admin API answers, as recorded from the test server (see
test_vendure_e2e.py), and a scripted respx responder that checks each request's operation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import respx
from sellable_vendure.connector import VendureConnector, VendureSettings

from sellable.sdk import ChannelHttp, ConnectorContext

URL = "http://vendure.test/admin-api"
TOKEN = "b3a4c1e05c1f4f0d9d4b0b6f0a5cbbd6"

LOGIN_OK = {
    "data": {"login": {"__typename": "CurrentUser", "id": "2", "identifier": "sync@example.com"}}
}
LOGIN_REFUSED = {
    "data": {
        "login": {
            "__typename": "InvalidCredentialsError",
            "errorCode": "INVALID_CREDENTIALS_ERROR",
            "message": "The provided credentials are invalid",
        }
    }
}
FORBIDDEN = {
    "errors": [
        {
            "message": "You are not currently authorized to perform this action",
            "locations": [{"line": 3, "column": 3}],
            "path": ["productVariants"],
            "extensions": {"code": "FORBIDDEN"},
        }
    ],
    "data": None,
}
GLOBAL_SETTINGS = {"outOfStockThreshold": 1, "trackInventory": True}
DEFAULT_LOCATION = {"id": "1", "name": "Default Stock Location"}
SECOND_LOCATION = {"id": "2", "name": "Berlin"}


def variant(
    id_: str,
    sku: str,
    levels: list[tuple[str, int, int]],
    *,
    threshold: int = 0,
    use_global: bool = True,
) -> dict[str, Any]:
    """A productVariants item with (location, stockOnHand, stockAllocated) levels."""
    return {
        "id": id_,
        "productId": id_,
        "sku": sku,
        "name": sku.title(),
        "enabled": True,
        "trackInventory": "TRUE",
        "outOfStockThreshold": threshold,
        "useGlobalOutOfStockThreshold": use_global,
        "stockLevels": [
            {"stockLocationId": location, "stockOnHand": on_hand, "stockAllocated": allocated}
            for location, on_hand, allocated in levels
        ],
    }


def variants_page(
    items: list[dict[str, Any]], total: int, locations: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    locations = locations if locations is not None else [DEFAULT_LOCATION]
    return {
        "data": {
            "productVariants": {"totalItems": total, "items": items},
            "stockLocations": {"totalItems": len(locations), "items": locations},
            "globalSettings": GLOBAL_SETTINGS,
        }
    }


def variants_by_id(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "data": {
            "productVariants": {"totalItems": len(items), "items": items},
            "globalSettings": GLOBAL_SETTINGS,
        }
    }


def order(
    id_: str,
    state: str,
    lines: list[tuple[str, str, int]],
    fulfillments: Sequence[tuple[str, list[tuple[str, int]]]] = (),
    *,
    updated: str = "2026-11-23T04:27:03.097Z",
    placed: str | None = "2026-11-23T04:27:03.863Z",
    active: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """An orders item: lines (line id, sku, quantity), fulfillments (state, [(line, qty)]);
    ``extra``: more fields (``shippingAddress``, ``customer``)."""
    return {
        **extra,
        "id": id_,
        "code": f"CODE{id_}",
        "state": state,
        "active": active,
        "createdAt": "2026-11-23T04:27:02.611Z",
        "updatedAt": updated,
        "orderPlacedAt": placed,
        "lines": [
            {"id": line, "quantity": quantity, "productVariant": {"id": "9", "sku": sku}}
            for line, sku, quantity in lines
        ],
        "fulfillments": [
            {
                "id": str(n),
                "state": f_state,
                "lines": [{"orderLineId": line, "quantity": qty} for line, qty in f_lines],
            }
            for n, (f_state, f_lines) in enumerate(fulfillments, start=1)
        ],
    }


def orders_page(items: list[dict[str, Any]], total: int | None = None) -> dict[str, Any]:
    return {
        "data": {"orders": {"totalItems": len(items) if total is None else total, "items": items}}
    }


@dataclass
class Sent:
    operation: str
    body: dict[str, Any]
    headers: httpx.Headers

    @property
    def variables(self) -> dict[str, Any]:
        variables: dict[str, Any] = self.body["variables"]
        return variables


@dataclass
class Script:
    """Answers in order, each for a named GraphQL operation; records what was sent."""

    answers: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)

    def then(
        self, operation: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Script:
        self.answers.append((operation, body, headers or {}))
        return self

    def login(self) -> Script:
        return self.then("SellableLogin", LOGIN_OK, {"vendure-auth-token": TOKEN})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        operation = body["query"].split("(")[0].split()[-1]
        self.sent.append(Sent(operation, body, request.headers))
        assert self.answers, f"unexpected request {operation}"
        expected, answer, headers = self.answers.pop(0)
        assert operation == expected, f"sent {operation}, expected {expected}"
        return httpx.Response(200, json=answer, headers=headers)

    def operations(self) -> list[str]:
        return [s.operation for s in self.sent]


@contextmanager
def connector(
    script: Script, warehouses: tuple[str, ...] = ("main",), **settings: Any
) -> Iterator[VendureConnector]:
    """A VendureConnector over a ChannelHttp whose requests the script answers."""
    values: dict[str, Any] = {
        "admin_api_url": URL,
        "username": "sync@example.com",
        "password": "s3cret-pass",
        **settings,
    }
    http = ChannelHttp("vendure", sleep=lambda _: None, backoff_base=0.0)
    made = VendureConnector(
        VendureSettings.model_validate(values), ConnectorContext("vendure", warehouses, http)
    )
    http.set_base_url(made.base_url())
    http.authenticate = made.authenticate
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{URL}/").mock(side_effect=script)
        router.post(URL).mock(side_effect=script)
        try:
            yield made
        finally:
            http.close()
    assert not script.answers, f"answers left unused: {[a[0] for a in script.answers]}"
