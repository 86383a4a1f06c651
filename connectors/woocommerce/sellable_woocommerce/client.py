"""A thin typed client of the WooCommerce REST API v3 endpoints the connector uses.

Reference: https://woocommerce.github.io/woocommerce-rest-api-docs/ ("Products",
"Product variations", "Orders", "Pagination"). Every call goes through the framework's
HTTP client (rate limit, retries, ``Retry-After``); this module only shapes requests and
reads answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from sellable.sdk import ChannelError, ChannelHttp, ChannelPayloadError

#: WooCommerce core refuses ``per_page`` above 100 (400 ``rest_invalid_param``):
#: ``per_page`` is "1-100, default 10" in the "Pagination" section of the docs.
PER_PAGE = 100
#: Objects per batch request over create/update/delete together; more gets 413
#: ``woocommerce_rest_request_entity_too_large`` (``WC_REST_Controller::check_batch_limit``,
#: changeable by sites with the ``woocommerce_rest_batch_items_limit`` filter).
BATCH_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a collection and the ``X-WP-Total``/``X-WP-TotalPages`` headers
    (None when a proxy stripped them)."""

    items: list[dict[str, Any]]
    total: int | None
    total_pages: int | None


class BatchTooLarge(Exception):
    """The site refused a batch with 413 (its batch limit is lower than 100)."""


@dataclass(frozen=True, slots=True)
class BatchAnswer:
    """The ``update`` part of a batch answer: one object per item, in request order; a
    refused item is ``{"id": ..., "error": {"code", "message", "data"}}`` inside HTTP 200."""

    updated: list[dict[str, Any]]


class WooCommerceClient:
    """``GET /products``, ``/products/{id}/variations``, ``/orders`` and the two batch
    endpoints. Usage::

        client = WooCommerceClient(connector.http)
        page = client.products(page=1)
    """

    def __init__(self, http: ChannelHttp) -> None:
        self.http = http

    def products(self, *, offset: int = 0, include: Sequence[str] = ()) -> Page:
        """Top-level products (simple, variable, ...) in id order from ``offset``: products
        created while we page land at the end instead of shifting the others."""
        params: dict[str, Any] = {
            "per_page": PER_PAGE,
            "offset": offset,
            "orderby": "id",
            "order": "asc",
        }
        if include:
            params["include"] = ",".join(include)
        return self._page("/products", params)

    def variations(self, product_id: str, *, page: int = 1, include: Sequence[str] = ()) -> Page:
        params: dict[str, Any] = {
            "per_page": PER_PAGE,
            "page": page,
            "orderby": "id",
            "order": "asc",
        }
        if include:
            params["include"] = ",".join(include)
        return self._page(f"/products/{product_id}/variations", params)

    def orders(
        self,
        *,
        modified_after: str,
        page: int = 1,
        offset: int | None = None,
        status: str | None = None,
    ) -> Page:
        """Orders modified strictly after ``modified_after`` (GMT, ``YYYY-MM-DDTHH:MM:SS``),
        oldest change first.

        ``dates_are_gmt=true``: without it WooCommerce reads the date in the site's time zone
        (``class-wc-rest-crud-controller.php``, collection params). ``orderby=modified`` is
        accepted by core although the docs' table omits it. ``status`` None leaves the
        default ``any``, which covers every status but ``trash`` (WordPress's ``any``
        excludes statuses hidden from search); ``"trash"`` asks for those alone.
        """
        params: dict[str, Any] = {
            "modified_after": modified_after,
            "dates_are_gmt": "true",
            "orderby": "modified",
            "order": "asc",
            "per_page": PER_PAGE,
        }
        if status is not None:
            params["status"] = status
        if offset is not None:
            params["offset"] = offset
        else:
            params["page"] = page
        return self._page("/orders", params)

    def update_batch(self, parent_id: str | None, updates: list[dict[str, Any]]) -> BatchAnswer:
        """``POST /products/batch`` (parent None) or ``/products/{id}/variations/batch``."""
        path = "/products/batch" if parent_id is None else f"/products/{parent_id}/variations/batch"
        try:
            _response, data = self.http.request_json("POST", path, json={"update": updates})
        except ChannelError as err:
            if err.status_code == 413:
                raise BatchTooLarge(f"POST {path} with {len(updates)} objects: HTTP 413") from err
            raise
        if not isinstance(data, dict) or not isinstance(data.get("update"), list):
            raise ChannelPayloadError(f"POST {path}: expected an object with an 'update' list")
        return BatchAnswer(data["update"])

    def webhooks(self, *, page: int = 1) -> Page:
        """``GET /webhooks``: the shop's webhooks (every status), oldest first."""
        params = {"per_page": PER_PAGE, "page": page, "orderby": "id", "order": "asc"}
        return self._page("/webhooks", params)

    def create_webhook(self, fields: dict[str, Any]) -> dict[str, Any]:
        """``POST /webhooks``: WooCommerce pings the delivery URL before answering."""
        return self._object("POST", "/webhooks", fields)

    def update_webhook(self, webhook_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        return self._object("PUT", f"/webhooks/{webhook_id}", fields)

    def delete_webhook(self, webhook_id: int) -> None:
        """``DELETE /webhooks/{id}?force=true`` (webhooks have no trash)."""
        self.http.request_json("DELETE", f"/webhooks/{webhook_id}", params={"force": "true"})

    def _object(self, method: str, path: str, fields: dict[str, Any]) -> dict[str, Any]:
        _response, data = self.http.request_json(method, path, json=fields)
        if not isinstance(data, dict):
            raise ChannelPayloadError(f"{method} {path}: expected an object")
        return data

    def _page(self, path: str, params: dict[str, Any]) -> Page:
        response, data = self.http.request_json("GET", path, params=params)
        if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
            raise ChannelPayloadError(f"GET {path}: expected a list of objects")
        return Page(
            data,
            _int_header(response, "X-WP-Total"),
            _int_header(response, "X-WP-TotalPages"),
        )


def _int_header(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
