"""Sellable's Vendure connector: Vendure's Admin GraphQL API as a sales channel.

See docs/connectors/vendure.md for the settings, the permissions the admin user needs and
how the pushed ``stockOnHand`` is worked out.
"""

from __future__ import annotations

from sellable_vendure.client import VendureAdminClient
from sellable_vendure.connector import VendureConnector, VendureSettings

__all__ = ["VendureAdminClient", "VendureConnector", "VendureSettings"]
