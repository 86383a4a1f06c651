"""Sellable's WooCommerce connector (REST API v3). See docs/connectors/woocommerce.md."""

from __future__ import annotations

from sellable_woocommerce.client import WooCommerceClient
from sellable_woocommerce.connector import WooCommerceConnector, WooCommerceSettings

__all__ = ["WooCommerceClient", "WooCommerceConnector", "WooCommerceSettings"]
