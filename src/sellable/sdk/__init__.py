"""Everything a connector author imports. See docs/writing-a-connector.md.

A connector is a class registered under the entry-point group ``sellable.connectors``.
It declares what it can do (:class:`Capability`), a pydantic model of its settings and its
rate limits (:meth:`Connector.rate_limits`), and implements small hooks; the framework owns
the schedule, retries, rate limits, cursors, the listing map, the stock arithmetic and the
database. Connectors never sleep, retry, schedule or touch the database; what they keep in
memory (an access token, Amazon's feeds still in flight) must be safe to lose at a restart.

This module is the public surface: the modules behind it (``_connector``, ``_models``,
``_http``) are private and may change. :mod:`sellable.sdk.testing` is the connector
contract suite.
"""

from __future__ import annotations

from sellable.errors import (
    AuthenticationError,
    ChannelError,
    ChannelPayloadError,
    OrderPayloadError,
    TemporaryChannelError,
)
from sellable.orders.model import OrderStatus
from sellable.sdk._collection import collection_resumed
from sellable.sdk._connector import Capability, Connector, ConnectorContext, ConnectorSettings
from sellable.sdk._fulfilment import (
    CancelOutcome,
    CancelResult,
    FulfilmentLine,
    FulfilmentPage,
    FulfilmentRequest,
    FulfilmentUpdate,
    Shipment,
    ShipmentStatus,
    ShippingAddress,
    SubmitOutcome,
    SubmitResult,
)
from sellable.sdk._http import (
    USER_AGENT,
    ChannelHttp,
    RateLimit,
    TokenBucket,
    is_loopback_host,
    parse_retry_after,
)
from sellable.sdk._models import (
    ChannelOrder,
    ChannelOrderLine,
    Listing,
    ListingPage,
    OrderPage,
    PushesInFlight,
    PushItem,
    PushResult,
    PushStatus,
    RejectedOrder,
    StockCount,
    collect_orders,
    currency_code,
    money_amount,
    order_time,
    whole_quantity,
)
from sellable.sdk._webhooks import (
    WebhookEvent,
    WebhookKind,
    WebhookRejected,
    WebhookSubscriptions,
    hmac_sha256_base64,
    signature_matches,
)

__all__ = [
    "USER_AGENT",
    "AuthenticationError",
    "CancelOutcome",
    "CancelResult",
    "Capability",
    "ChannelError",
    "ChannelHttp",
    "ChannelOrder",
    "ChannelOrderLine",
    "ChannelPayloadError",
    "Connector",
    "ConnectorContext",
    "ConnectorSettings",
    "FulfilmentLine",
    "FulfilmentPage",
    "FulfilmentRequest",
    "FulfilmentUpdate",
    "Listing",
    "ListingPage",
    "OrderPage",
    "OrderPayloadError",
    "OrderStatus",
    "PushItem",
    "PushResult",
    "PushStatus",
    "PushesInFlight",
    "RateLimit",
    "RejectedOrder",
    "Shipment",
    "ShipmentStatus",
    "ShippingAddress",
    "StockCount",
    "SubmitOutcome",
    "SubmitResult",
    "TemporaryChannelError",
    "TokenBucket",
    "WebhookEvent",
    "WebhookKind",
    "WebhookRejected",
    "WebhookSubscriptions",
    "collect_orders",
    "collection_resumed",
    "currency_code",
    "hmac_sha256_base64",
    "is_loopback_host",
    "money_amount",
    "order_time",
    "parse_retry_after",
    "signature_matches",
    "whole_quantity",
]
