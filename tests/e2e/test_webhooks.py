"""Webhooks end to end: the Shopify and WooCommerce emulators deliver signed webhooks over
real loopback HTTP to the daemon's webhook listener (``WebhookHub`` served by the same
``WebServer`` as in ``sellable run``), whose pokes schedule order pulls.

The pokes are collected (the hub's ``pull_soon``) and the test runs the order pull for
each channel poked, as the scheduler would: deterministic, without timing. A webhook is a
poke, not the truth, so duplicated, reordered and lost deliveries must leave the order book
exactly as the pulls read it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from sellable.demo import toml_value
from sellable.emulators import ManualClock
from sellable.emulators.shopify import ShopifyEmulator
from sellable.emulators.woocommerce import WooCommerceEmulator
from sellable.orders import list_orders
from sellable.sync.engine import SyncEngine
from sellable.sync.status import channel_status, render_status
from sellable.sync.webhooks import WebhookHub
from sellable.web.server import WebServer
from tests.imports import Store, open_store

WOO_SECRET = "wooSecret0123456789abcdef"
LISTED = ("BEANS-12OZ", "MUG-CERAMIC", "GIFT-KIT-COFFEE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Hooked:
    store: Store
    engine: SyncEngine
    hub: WebhookHub
    woo: WooCommerceEmulator
    shop: ShopifyEmulator
    base: str
    pokes: list[str] = field(default_factory=list)

    def deliver(self) -> list[int | None]:
        """Every queued delivery of both shops, sent now; then the pulls they poked."""
        statuses = self.woo.webhooks.flush() + self.shop.webhooks.flush()
        self.pull_poked()
        return statuses

    def pull_poked(self) -> None:
        for code in dict.fromkeys(self.pokes):
            result = self.engine.run_job(code, "orders")
            assert result.ok, result
        self.pokes.clear()

    def orders(self, channel: str) -> dict[str, int]:
        """Channel order id -> units ordered, as the order book holds them."""
        found: dict[str, int] = {}
        with self.store.engine.connect() as connection:
            for order in list_orders(connection):
                if order["channel"] == channel:
                    found[str(order["order_id"])] = sum(
                        int(line["quantity"]) for line in order["lines"]
                    )
        return found


@pytest.fixture
def hooked(config_file: Path) -> Iterator[Hooked]:
    port = free_port()
    base = f"http://127.0.0.1:{port}/webhooks"
    # WooCommerce's clock stands still (at the real now): deliveries within one of its
    # seconds share a delivery id, deterministically
    woo = WooCommerceEmulator(rate_limit=0, clock=ManualClock(datetime.now(UTC)))
    shop = ShopifyEmulator()
    with config_file.open("a") as handle:
        handle.write(f'\n[daemon]\nwebhook_listen = "127.0.0.1:{port}"\nwebhook_debounce = "0s"\n')
        for code, emulator, extra in (
            (
                "woo",
                woo,
                {
                    "webhook_url": f"{base}/woo",
                    "webhook_secret": WOO_SECRET,
                    "requests_per_second": 100,
                },
            ),
            (
                "shop",
                shop,
                {"webhook_url": f"{base}/shop", "webhook_secret": shop.client_secret},
            ),
        ):
            handle.write(
                f'\n[[channels]]\ncode = "{code}"\nconnector = "{emulator.connector}"\n'
                'warehouses = ["main"]\n\n[channels.settings]\n'
            )
            for key, value in {**emulator.connector_settings(), **extra}.items():
                handle.write(f"{key} = {toml_value(value)}\n")
    woo.start()
    shop.start()
    store = open_store(config_file)
    store.load_examples()
    for sku in LISTED:
        woo.add_listing(sku, 0, sku)
        shop.add_listing(sku, 0, sku)
    engine = SyncEngine(store.engine, store.settings)
    pokes: list[str] = []
    hub = WebhookHub(engine, pokes.append)
    server = WebServer(f"127.0.0.1:{port}", hub.app())
    server.start()
    state = Hooked(store, engine, hub, woo, shop, base, pokes)
    try:
        # the first listing refresh subscribes (WooCommerce pings each new webhook)
        for code in ("woo", "shop"):
            assert engine.run_job(code, "listings").ok
            assert engine.run_job(code, "push").ok  # the shops can sell what we have
        yield state
    finally:
        server.stop()
        engine.close()
        woo.stop()
        shop.stop()
        store.engine.dispose()


def test_subscriptions_are_created_at_the_first_listing_refresh(hooked: Hooked) -> None:
    woo_hooks = sorted((h.topic, h.delivery_url, h.status) for h in hooked.woo.hooks.values())
    assert woo_hooks == [
        ("order.created", f"{hooked.base}/woo", "active"),
        ("order.deleted", f"{hooked.base}/woo", "active"),
        ("order.updated", f"{hooked.base}/woo", "active"),
    ]
    # WooCommerce's unsigned ping at each creation was answered 2xx, and poked nothing
    assert hooked.woo.pings == [(f"{hooked.base}/woo", 200)] * 3
    assert hooked.pokes == []
    shop_subscriptions = sorted((r["topic"], r["uri"]) for r in hooked.shop.subscriptions.values())
    assert shop_subscriptions == [
        ("APP_UNINSTALLED", f"{hooked.base}/shop"),
        ("ORDERS_CANCELLED", f"{hooked.base}/shop"),
        ("ORDERS_CREATE", f"{hooked.base}/shop"),
        ("ORDERS_UPDATED", f"{hooked.base}/shop"),
    ]
    # a second refresh changes nothing
    for code in ("woo", "shop"):
        result = hooked.engine.run_job(code, "listings")
        assert result.reports["webhook_subscriptions"]["created"] == 0
        assert result.reports["webhook_subscriptions"]["healthy"] is True
    assert len(hooked.woo.hooks) == 3
    assert len(hooked.shop.subscriptions) == 4


def test_an_order_is_pulled_as_soon_as_its_webhook_comes(hooked: Hooked) -> None:
    woo_order = hooked.woo.place_order([("MUG-CERAMIC", 2)])
    shop_order = hooked.shop.place_order([("BEANS-12OZ", 3)])
    assert hooked.orders("woo") == {}
    statuses = hooked.deliver()
    assert statuses == [200, 200]
    assert hooked.orders("woo") == {woo_order: 2}
    assert list(hooked.orders("shop").values()) == [3]
    assert shop_order.endswith("/" + next(iter(hooked.orders("shop"))).rsplit("/", 1)[-1])
    hooked.hub.flush()
    report = {c["channel"]: c["webhooks"] for c in channel_status(hooked.engine)}
    assert report["woo"]["received"] == 1
    assert report["shop"]["received"] == 1
    assert report["woo"]["rejected_signatures"] == 0
    assert report["woo"]["enabled"] is True
    assert report["woo"]["subscriptions"]["active"] == 3
    assert report["shop"]["subscriptions"]["active"] == 4
    assert report["woo"]["last_received"] is not None
    assert "webhooks: on" in render_status(channel_status(hooked.engine))


def test_duplicated_deliveries_poke_once(hooked: Hooked) -> None:
    hooked.shop.webhooks.inject("duplicate")
    order = hooked.shop.place_order([("MUG-CERAMIC", 1)])
    statuses = hooked.shop.webhooks.flush()
    assert statuses == [200, 200]
    assert hooked.pokes == ["shop"]
    hooked.pull_poked()
    assert sum(hooked.orders("shop").values()) == 1
    hooked.hub.flush()
    shop = {c["channel"]: c["webhooks"] for c in channel_status(hooked.engine)}["shop"]
    assert (shop["received"], shop["duplicates"]) == (1, 1)
    assert order


def test_woocommerce_deliveries_sharing_a_delivery_id_are_never_lost(hooked: Hooked) -> None:
    # Two orders within one second: WooCommerce gives both deliveries the same delivery id
    # (a hash of the webhook id and the second). The second must still poke.
    first = hooked.woo.place_order([("MUG-CERAMIC", 1)])
    second = hooked.woo.place_order([("BEANS-12OZ", 4)])
    queued = list(hooked.woo.webhooks.queue)
    assert len({d.headers["X-WC-Webhook-Delivery-ID"] for d in queued}) == 1
    assert queued[0].body != queued[1].body
    assert hooked.woo.webhooks.flush() == [200, 200]
    assert hooked.pokes == ["woo", "woo"]
    hooked.pull_poked()
    assert hooked.orders("woo") == {first: 1, second: 4}


def test_reordered_and_dropped_deliveries_change_nothing_the_pull_reads(hooked: Hooked) -> None:
    hooked.woo.webhooks.inject("reorder")
    created = hooked.woo.place_order([("MUG-CERAMIC", 2)], status="pending")
    hooked.woo.set_order_status(created, "processing")
    # the update arrives before the creation: both poke, the pull reads the order as it is
    topics = [d.headers["X-WC-Webhook-Topic"] for d in hooked.woo.webhooks.queue]
    assert topics == ["order.updated", "order.created"]
    assert hooked.deliver() == [200, 200]
    assert hooked.orders("woo") == {created: 2}
    # a lost delivery: nothing pokes, and the interval pull still finds the order
    hooked.woo.webhooks.inject("drop")
    lost = hooked.woo.place_order([("BEANS-12OZ", 5)])
    assert hooked.woo.webhooks.flush() == []
    assert hooked.woo.webhooks.dropped == 1
    assert hooked.pokes == []
    assert hooked.orders("woo") == {created: 2}
    assert hooked.engine.run_job("woo", "orders").ok  # the interval pull
    assert hooked.orders("woo") == {created: 2, lost: 5}


def test_a_bad_signature_is_refused_counted_and_pulls_nothing(hooked: Hooked) -> None:
    hooked.shop.webhooks.inject("bad_signature")
    hooked.shop.place_order([("MUG-CERAMIC", 1)])
    assert hooked.shop.webhooks.flush() == [401]
    assert hooked.pokes == []
    hooked.hub.flush()
    shop = {c["channel"]: c["webhooks"] for c in channel_status(hooked.engine)}["shop"]
    assert (shop["received"], shop["rejected_signatures"]) == (0, 1)
    assert shop["last_rejected"] is not None


def test_woocommerce_disables_a_failing_webhook_and_the_refresh_re_enables_it(
    hooked: Hooked,
) -> None:
    # the receiver is too slow 6 times in a row: WooCommerce disables the webhook
    for _ in range(6):
        hooked.woo.webhooks.inject("slow")
        order = hooked.woo.place_order([("BEANS-12OZ", 1)])
        assert hooked.woo.webhooks.flush() == [None]
    created = next(h for h in hooked.woo.hooks.values() if h.topic == "order.created")
    assert created.status == "disabled"
    hooked.pokes.clear()  # a slow answer may still have poked: harmless, the pull is truth
    result = hooked.engine.run_job("woo", "listings")
    summary = result.reports["webhook_subscriptions"]
    assert (summary["repaired"], summary["created"], summary["healthy"]) == (1, 0, True)
    assert "re-enabled" in summary["problem"]
    assert created.status == "active"
    hooked.woo.place_order([("MUG-CERAMIC", 1)])
    assert hooked.deliver() == [200]
    assert order in hooked.orders("woo")


def test_the_refresh_repairs_removes_and_recreates_subscriptions(hooked: Hooked) -> None:
    # WooCommerce: one of ours pointing elsewhere, one of somebody else's, one deleted
    woo = hooked.woo
    ours = next(h for h in woo.hooks.values() if h.topic == "order.updated")
    ours.delivery_url = "https://old.example.com/webhooks/woo"
    with woo.lock:
        foreign = woo._create_hook(
            {"name": "ERP sync", "topic": "order.updated", "delivery_url": "https://erp.test/"}
        )
    deleted = next(h for h in woo.hooks.values() if h.topic == "order.deleted")
    del woo.hooks[deleted.id]
    result = hooked.engine.run_job("woo", "listings")
    summary = result.reports["webhook_subscriptions"]
    assert (summary["created"], summary["removed"], summary["repaired"]) == (2, 1, 0)
    assert foreign.id in woo.hooks  # not ours: left alone
    mine = sorted(
        (h.topic, h.delivery_url) for h in woo.hooks.values() if h.name.startswith("sellable")
    )
    assert mine == [
        ("order.created", f"{hooked.base}/woo"),
        ("order.deleted", f"{hooked.base}/woo"),
        ("order.updated", f"{hooked.base}/woo"),
    ]
    # Shopify: a stale address on one of our topics, a topic of another feature, one gone
    shop = hooked.shop
    stale = next(n for n, r in shop.subscriptions.items() if r["topic"] == "ORDERS_UPDATED")
    shop.subscriptions[stale]["uri"] = "https://old.example.com/webhooks/shop"
    other = max(shop.subscriptions) + 100
    shop.subscriptions[other] = {
        "topic": "PRODUCTS_UPDATE",
        "uri": "https://elsewhere.test/",
        "created": shop.clock.now(),
        "failures": 0,
    }
    gone = next(n for n, r in shop.subscriptions.items() if r["topic"] == "ORDERS_CANCELLED")
    del shop.subscriptions[gone]
    result = hooked.engine.run_job("shop", "listings")
    summary = result.reports["webhook_subscriptions"]
    assert (summary["created"], summary["removed"]) == (2, 1)
    assert other in shop.subscriptions
    assert sorted((r["topic"], r["uri"]) for n, r in shop.subscriptions.items() if n != other) == [
        ("APP_UNINSTALLED", f"{hooked.base}/shop"),
        ("ORDERS_CANCELLED", f"{hooked.base}/shop"),
        ("ORDERS_CREATE", f"{hooked.base}/shop"),
        ("ORDERS_UPDATED", f"{hooked.base}/shop"),
    ]


def test_a_changed_woocommerce_secret_is_written_again(hooked: Hooked, config_file: Path) -> None:
    # the secret is write-only: a new one in the configuration reaches every webhook of ours
    text = config_file.read_text().replace(WOO_SECRET, "newSecret9876543210fedcba")
    config_file.write_text(text)
    store = open_store(config_file)
    engine = SyncEngine(store.engine, store.settings)
    try:
        result = engine.run_job("woo", "listings")
        assert result.reports["webhook_subscriptions"]["repaired"] == 3
        assert {h.secret for h in hooked.woo.hooks.values()} == {"newSecret9876543210fedcba"}
    finally:
        engine.close()
        store.engine.dispose()


def test_the_listener_refuses_what_it_cannot_trust(hooked: Hooked) -> None:
    url = f"{hooked.base}/shop"
    with httpx.Client(timeout=5) as client:
        unsigned = client.post(
            url, content=b'{"id": 1}', headers={"X-Shopify-Topic": "orders/create"}
        )
        assert unsigned.status_code == 401
        empty = client.post(url, content=b"")
        assert empty.status_code == 401
        unknown = client.post(f"{hooked.base}/nowhere", content=b"{}")
        assert unknown.status_code == 404
        too_big = client.post(url, content=b"x" * (hooked.hub.max_body + 1))
        assert too_big.status_code == 413
        assert client.get(url).status_code == 405
    assert hooked.pokes == []
    hooked.hub.flush()
    shop = {c["channel"]: c["webhooks"] for c in channel_status(hooked.engine)}["shop"]
    assert shop["rejected_signatures"] == 2
    metrics = hooked.engine.metrics.render().decode()
    assert 'sellable_webhooks_total{channel="shop",outcome="rejected"} 2.0' in metrics


def test_turning_webhooks_off_removes_our_subscriptions(hooked: Hooked, config_file: Path) -> None:
    with hooked.woo.lock:
        foreign = hooked.woo._create_hook(
            {"name": "ERP sync", "topic": "order.updated", "delivery_url": "https://erp.test/"}
        )
    lines = [
        line
        for line in config_file.read_text().splitlines()
        if not line.startswith(("webhook_url", "webhook_secret", "webhook_listen"))
    ]
    config_file.write_text("\n".join(lines) + "\n")
    store = open_store(config_file)
    engine = SyncEngine(store.engine, store.settings)
    try:
        for code in ("woo", "shop"):
            result = engine.run_job(code, "listings")
            assert result.ok, result
            assert result.reports["webhook_subscriptions"]["removed"] == (3 if code == "woo" else 4)
        assert list(hooked.woo.hooks) == [foreign.id]
        assert hooked.shop.subscriptions == {}
        # nothing of ours left: the next refresh asks nothing about webhooks
        before = hooked.woo.request_count
        assert engine.run_job("woo", "listings").ok
        assert "webhook_subscriptions" not in engine.run_job("shop", "listings").reports
        assert hooked.woo.request_count - before == 1  # the product page only
        status = {c["channel"]: c["webhooks"] for c in channel_status(engine)}
        assert status["woo"]["enabled"] is False
    finally:
        engine.close()
        store.engine.dispose()
