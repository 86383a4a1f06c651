"""Sellable's ShipBob connector (API 2026-01). See connectors/shipbob/README.md."""

from __future__ import annotations

from sellable_shipbob.client import ShipBobClient
from sellable_shipbob.connector import ShipBobConnector, ShipBobSettings

__all__ = ["ShipBobClient", "ShipBobConnector", "ShipBobSettings"]
