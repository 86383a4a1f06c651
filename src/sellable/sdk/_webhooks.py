"""Webhooks as connectors see them (private; import from sellable.sdk).

A webhook is a poke, not the truth: a verified delivery only makes the daemon pull the
channel's orders now instead of at the next interval, and that pull stays the source of
truth. A connector that takes webhooks sets :attr:`Connector.webhooks` and implements
:meth:`Connector.verify_webhook` (check the signature of the raw body, say what the
delivery is) and :meth:`Connector.sync_webhooks` (create, repair and remove its
subscriptions on the channel).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from enum import StrEnum


class WebhookKind(StrEnum):
    """What a verified delivery asks of the daemon."""

    #: Something about orders changed: pull the channel's orders soon.
    ORDERS = "orders"
    #: Something about orders sent out to be shipped changed (a 3PL's shipment): poll the
    #: channel's fulfilments soon.
    FULFILMENTS = "fulfilments"
    #: A check that the address answers (WooCommerce's ping when a webhook is created).
    PING = "ping"
    #: The app was removed from the shop: the next pull will find the credentials refused.
    UNINSTALLED = "uninstalled"
    #: A topic we did not subscribe to: answered 200 and ignored.
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A delivery whose signature checked out (or an unsigned ping).

    ``delivery_id`` is the channel's id of the delivery (retries repeat it), None when the
    channel sends none. Deliveries with the same ``dedupe_key`` are the same delivery."""

    kind: WebhookKind
    topic: str
    delivery_id: str | None = None
    dedupe_key: str | None = None


class WebhookRejected(Exception):
    """The delivery is not the channel's (bad or missing signature): answered 401."""


@dataclass
class WebhookSubscriptions:
    """What :meth:`Connector.sync_webhooks` found and did on the channel.

    ``subscriptions`` lists the subscriptions we own after the check, each
    ``{"id", "topic", "url", "status"}``; ``healthy`` means every wanted topic has an
    active subscription to our URL."""

    healthy: bool = True
    created: int = 0
    repaired: int = 0
    removed: int = 0
    subscriptions: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def hmac_sha256_base64(secret: str | bytes, body: bytes) -> str:
    """base64(HMAC-SHA256(secret, body)): the signature Shopify and WooCommerce send."""
    key = secret.encode() if isinstance(secret, str) else secret
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def signature_matches(secret: str | bytes, body: bytes, given: str | None) -> bool:
    """Whether ``given`` is the base64 HMAC-SHA256 of the raw ``body``; compared in
    constant time, so that a forger learns nothing from how long the answer took."""
    if not given:
        return False
    expected = hmac_sha256_base64(secret, body)
    return hmac.compare_digest(expected.encode(), given.strip().encode())


__all__ = [
    "WebhookEvent",
    "WebhookKind",
    "WebhookRejected",
    "WebhookSubscriptions",
    "hmac_sha256_base64",
    "signature_matches",
]
