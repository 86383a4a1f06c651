"""Sellable's Shopify connector (Admin GraphQL API, 2026-04+ inventory semantics)."""

from __future__ import annotations

from sellable_shopify.connector import ShopifyConnector, ShopifySettings

__all__ = ["ShopifyConnector", "ShopifySettings"]
