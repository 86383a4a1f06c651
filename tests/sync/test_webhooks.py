"""Webhooks in pieces: signatures, what each connector makes of a delivery, its subscription
calls with respx, the configuration's refusals, and the scheduler's debounced pull.

The end-to-end behaviour (emulators delivering to the listener) is tests/e2e/test_webhooks.py
and tests/sync/test_daemon_webhooks.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError
from sellable_shopify.connector import ShopifyConnector, ShopifySettings
from sellable_woocommerce.connector import WooCommerceConnector, WooCommerceSettings

from sellable.config import load_settings
from sellable.errors import ConfigError
from sellable.sdk import (
    ChannelError,
    ChannelHttp,
    ConnectorContext,
    WebhookKind,
    WebhookRejected,
    hmac_sha256_base64,
    signature_matches,
)

SECRET = "wooSecret0123456789abcdef"
SHOPIFY_SECRET = "shpss_0123456789"
SITE = "https://shop.example.com"
SHOP = "https://example-shop.myshopify.com"
WOO_URL = "https://hooks.example.com/webhooks/woo"
SHOP_URL = "https://hooks.example.com/webhooks/shop"


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


# -- signatures ----------------------------------------------------------------------------------


def test_signature_is_base64_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"id":7,"permalink":"https:\\/\\/shop.example.com\\/?p=7"}'
    good = sign(SECRET, body)
    assert hmac_sha256_base64(SECRET, body) == good
    assert signature_matches(SECRET, body, good)
    assert signature_matches(SECRET, body, f" {good}\n")  # a proxy's stray whitespace
    assert not signature_matches("anotherSecret0123456789", body, good)  # a wrong secret
    assert not signature_matches(SECRET, body.replace(b"7", b"8", 1), good)  # changed body
    assert not signature_matches(SECRET, body.replace(b"\\/", b"/"), good)  # re-encoded
    assert not signature_matches(SECRET, body, None)
    assert not signature_matches(SECRET, body, "")
    assert signature_matches(SECRET, b"", sign(SECRET, b""))  # an empty body signs too


# -- connectors ----------------------------------------------------------------------------------


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


def woo(**settings: Any) -> WooCommerceConnector:
    http = ChannelHttp("woo", rate=None, sleep=lambda _s: None, backoff_base=0.0)
    values = {
        "base_url": SITE,
        "consumer_key": "ck_x",
        "consumer_secret": "cs_x",
        "webhook_url": WOO_URL,
        "webhook_secret": SECRET,
    }
    shop = WooCommerceConnector(
        WooCommerceSettings(**{**values, **settings}), ConnectorContext("woo", ("main",), http)
    )
    http.set_base_url(shop.base_url())
    http.authenticate = shop.authenticate
    return shop


def shopify(**settings: Any) -> ShopifyConnector:
    http = ChannelHttp("shop", sleep=lambda _s: None, backoff_base=0.0)
    values = {
        "shop_url": SHOP,
        "access_token": "shpat_x",
        "webhook_url": SHOP_URL,
        "webhook_secret": SHOPIFY_SECRET,
    }
    connector = ShopifyConnector(
        ShopifySettings(**{**values, **settings}), ConnectorContext("shop", ("main",), http)
    )
    http.set_base_url(connector.base_url())
    http.authenticate = connector.authenticate
    return connector


def test_woocommerce_reads_a_delivery_a_ping_and_refuses_a_forgery() -> None:
    connector = woo()
    body = b'{"id":7,"status":"processing","permalink":"https:\\/\\/shop.example.com\\/?p=7"}'
    headers = {
        "x-wc-webhook-topic": "order.updated",
        "x-wc-webhook-signature": sign(SECRET, body),
        "x-wc-webhook-delivery-id": "5f2b",
    }
    event = connector.verify_webhook(headers, body)
    assert (event.kind, event.topic, event.delivery_id) == (
        WebhookKind.ORDERS,
        "order.updated",
        "5f2b",
    )
    # the same delivery id with another body (two changes within one second) is another key
    other = body.replace(b"processing", b"completed")
    again = connector.verify_webhook(
        {**headers, "x-wc-webhook-signature": sign(SECRET, other)}, other
    )
    assert again.dedupe_key != event.dedupe_key
    assert connector.verify_webhook(headers, body).dedupe_key == event.dedupe_key
    # WooCommerce's unsigned ping when a webhook is created
    ping = connector.verify_webhook(
        {"content-type": "application/x-www-form-urlencoded"}, b"webhook_id=42"
    )
    assert ping.kind is WebhookKind.PING
    # a topic we never asked for is taken and ignored
    product = {**headers, "x-wc-webhook-topic": "product.updated"}
    assert connector.verify_webhook(product, body).kind is WebhookKind.IGNORED
    with pytest.raises(WebhookRejected, match="missing"):
        connector.verify_webhook({"x-wc-webhook-topic": "order.updated"}, body)
    with pytest.raises(WebhookRejected, match="does not match"):
        connector.verify_webhook({**headers, "x-wc-webhook-signature": sign("x" * 20, body)}, body)
    with pytest.raises(WebhookRejected, match="does not match"):
        connector.verify_webhook(headers, body + b" ")
    with pytest.raises(WebhookRejected):
        connector.verify_webhook({}, b"")  # empty and unsigned: not a ping


def test_shopify_reads_order_and_uninstall_topics_and_refuses_a_forgery() -> None:
    connector = shopify()
    body = b'{"id":820982911946154508,"name":"#9999"}'
    headers = {
        "x-shopify-topic": "orders/create",
        "x-shopify-hmac-sha256": sign(SHOPIFY_SECRET, body),
        "x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    }
    event = connector.verify_webhook(headers, body)
    assert (event.kind, event.dedupe_key) == (
        WebhookKind.ORDERS,
        "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    )
    gone = {**headers, "x-shopify-topic": "app/uninstalled"}
    assert connector.verify_webhook(gone, body).kind is WebhookKind.UNINSTALLED
    products = {**headers, "x-shopify-topic": "products/update"}
    assert connector.verify_webhook(products, body).kind is WebhookKind.IGNORED
    with pytest.raises(WebhookRejected):
        connector.verify_webhook({**headers, "x-shopify-hmac-sha256": sign("other", body)}, body)
    with pytest.raises(WebhookRejected):
        connector.verify_webhook({"x-shopify-topic": "orders/create"}, body)


def test_settings_refuse_a_url_without_a_secret_and_an_unsafe_woocommerce_secret() -> None:
    with pytest.raises(ValidationError, match="webhook_url needs webhook_secret"):
        WooCommerceSettings(
            base_url=SITE, consumer_key="k", consumer_secret="s", webhook_url=WOO_URL
        )  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="letters and digits only"):
        WooCommerceSettings(
            base_url=SITE,
            consumer_key="k",
            consumer_secret="s",
            webhook_url=WOO_URL,
            webhook_secret="has&amp;entities0123",
        )  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="webhook_url needs webhook_secret"):
        ShopifySettings(shop_url=SHOP, access_token="x", webhook_url=SHOP_URL)  # type: ignore[arg-type]
    assert SECRET not in repr(woo().settings)


def test_woocommerce_subscribes_with_its_secret_and_removes_stale_ones(
    router: respx.MockRouter,
) -> None:
    api = f"{SITE}/wp-json/wc/v3"
    listed = router.get(f"{api}/webhooks").respond(
        200,
        json=[
            # ours, pointing at an old address: removed
            {"id": 3, "name": "sellable 00000000", "topic": "order.updated",
             "delivery_url": "https://old.example.com/", "status": "active"},
            # somebody else's: left alone
            {"id": 4, "name": "ERP", "topic": "order.updated",
             "delivery_url": "https://erp.example.com/", "status": "active"},
        ],
        headers={"X-WP-Total": "2", "X-WP-TotalPages": "1"},
    )  # fmt: skip
    removed = router.delete(f"{api}/webhooks/3").respond(200, json={"id": 3})
    created = router.post(f"{api}/webhooks").mock(
        side_effect=lambda request: httpx.Response(
            201, json={"id": 10, **json.loads(request.content), "secret": None}
        )
    )
    found = woo().sync_webhooks()
    assert listed.called and removed.call_count == 1
    sent = [json.loads(call.request.content) for call in created.calls]
    fingerprint = hashlib.sha256(SECRET.encode()).hexdigest()[:8]
    assert sent == [
        {"name": f"sellable {fingerprint}", "topic": topic, "delivery_url": WOO_URL,
         "secret": SECRET, "status": "active"}
        for topic in ("order.created", "order.updated", "order.deleted")
    ]  # fmt: skip
    assert dict(removed.calls[0].request.url.params) == {"force": "true"}
    assert (found.created, found.removed, found.repaired, found.healthy) == (3, 1, 0, True)


def test_shopify_subscription_errors_are_channel_errors(router: respx.MockRouter) -> None:
    endpoint = f"{SHOP}/admin/api/2026-10/graphql.json"
    answers = iter(
        [
            {"data": {"webhookSubscriptions": {"nodes": [], "pageInfo": {"hasNextPage": False}}}},
            {
                "data": {
                    "webhookSubscriptionCreate": {
                        "webhookSubscription": None,
                        "userErrors": [{"field": ["uri"], "message": "Address is invalid"}],
                    }
                }
            },
        ]
    )
    route = router.post(endpoint).mock(
        side_effect=lambda _r: httpx.Response(200, json=next(answers))
    )
    with pytest.raises(ChannelError, match="SellableWebhookCreate: Address is invalid"):
        shopify().sync_webhooks()
    sent = json.loads(route.calls[1].request.content)
    assert sent["variables"] == {
        "topic": "ORDERS_CREATE",
        "webhookSubscription": {"uri": SHOP_URL, "format": "JSON"},
    }


# -- configuration -------------------------------------------------------------------------------


def test_a_webhook_url_without_a_listener_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "sellable.toml"
    config.write_text(
        '[[channels]]\ncode = "woo"\nconnector = "woocommerce"\nwarehouses = ["main"]\n'
        "[channels.settings]\n"
        f'base_url = "{SITE}"\nconsumer_key = "k"\nconsumer_secret = "s"\n'
        f'webhook_url = "{WOO_URL}"\nwebhook_secret = "{SECRET}"\n'
    )
    with pytest.raises(ConfigError, match=r"webhook_url.*webhook_listen is not set"):
        load_settings(config)
    config.write_text(config.read_text() + '\n[daemon]\nwebhook_listen = "somewhere"\n')
    with pytest.raises(ConfigError, match="webhook_listen"):
        load_settings(config)
