"""``sellable run`` with webhooks: a daemon subprocess subscribes at start-up, and an order
placed on Shopify reaches WooCommerce's quantity through the webhook alone, with the
interval pull at 5 minutes (issue 14). The emulators send their webhooks as soon as their
shop changes (``WebhookSender.start``).

Nothing waits a fixed time: each step polls for the state it needs within a deadline.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sellable.demo import toml_value
from sellable.emulators.shopify import ShopifyEmulator
from sellable.emulators.woocommerce import WooCommerceEmulator
from tests.e2e.test_webhooks import WOO_SECRET, free_port
from tests.imports import WAREHOUSES_TOML, open_store
from tests.sync.test_daemon import EXIT_WITHIN, Daemon, wait_for
from tests.sync.test_sync_engine import subprocess_env

SLOW = """
pull_orders_every = "5m"
push_every = "5m"
refresh_listings_every = "1h"
reconcile_every = "24h"
"""


@pytest.fixture
def shops() -> Iterator[tuple[ShopifyEmulator, WooCommerceEmulator]]:
    shop = ShopifyEmulator().start()
    woo = WooCommerceEmulator(rate_limit=0).start()
    shop.webhooks.start()
    woo.webhooks.start()
    try:
        yield shop, woo  # type: ignore[misc]
    finally:
        shop.stop()
        woo.stop()


def test_an_order_on_shopify_reaches_woocommerce_through_the_webhook_alone(
    tmp_path: Path,
    shops: tuple[ShopifyEmulator, WooCommerceEmulator],
    plugin_env: dict[str, str],
) -> None:
    shop, woo = shops
    port = free_port()
    base = f"http://127.0.0.1:{port}/webhooks"
    config = tmp_path / "sellable.toml"
    text = (
        f'[database]\nurl = "sqlite:///{tmp_path / "sellable.db"}"\n{WAREHOUSES_TOML}'
        f'\n[daemon]\nhttp_listen = "127.0.0.1:0"\nwebhook_listen = "127.0.0.1:{port}"\n'
        'push_debounce = "0s"\njitter = "0s"\nwebhook_debounce = "0s"\n'
    )
    for code, emulator, extra in (
        ("shop", shop, {"webhook_url": f"{base}/shop", "webhook_secret": shop.client_secret}),
        (
            "woo",
            woo,
            {
                "webhook_url": f"{base}/woo",
                "webhook_secret": WOO_SECRET,
                "requests_per_second": 100,
            },
        ),
    ):
        text += (
            f'\n[[channels]]\ncode = "{code}"\nconnector = "{emulator.connector}"\n'
            f'warehouses = ["main"]\n{SLOW}\n[channels.settings]\n'
        )
        for key, value in {**emulator.connector_settings(), **extra}.items():
            text += f"{key} = {toml_value(value)}\n"
    config.write_text(text)
    store = open_store(config)
    store.load_examples()
    store.engine.dispose()
    shop.add_listing("MUG-CERAMIC", 0, "Mug")
    woo.add_listing("MUG-CERAMIC", 0, "Mug")

    daemon = Daemon(config, subprocess_env(plugin_env), tmp_path / "daemon.log")
    try:
        daemon.wait_running()
        wait_for("the webhook listener", lambda: "webhooks for shop, woo on" in daemon.output())
        # the first pass subscribes and pushes: 30 mugs in main (the example catalog)
        wait_for(
            "both shops to show 30 mugs",
            lambda: (
                daemon.running()
                and shop.quantities().get("MUG-CERAMIC") == 30
                and woo.quantities().get("MUG-CERAMIC") == 30
            ),
        )
        assert len(shop.subscriptions) == 4
        assert sorted(h.topic for h in woo.hooks.values()) == [
            "order.created",
            "order.deleted",
            "order.updated",
        ]
        pulls_before = daemon.output().count("job=orders ok")
        shop.place_order([("MUG-CERAMIC", 4)])
        # the next interval pull is 5 minutes away: only the webhook can do this
        wait_for(
            "WooCommerce to show 26 mugs",
            lambda: daemon.running() and woo.quantities().get("MUG-CERAMIC") == 26,
        )
        assert daemon.output().count("job=orders ok") > pulls_before
        # a forged delivery is refused
        forged = httpx.post(
            f"{base}/shop",
            content=b'{"id": 1}',
            headers={"X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": "AAAA"},
        )
        assert forged.status_code == 401
        status = subprocess_status(config, plugin_env)
        assert status["shop"]["webhooks"]["enabled"] is True
        assert status["shop"]["webhooks"]["subscriptions"]["active"] == 4
    finally:
        code, seconds = daemon.stop(signal.SIGTERM)
    assert (code, seconds < EXIT_WITHIN) == (0, True)
    assert re.search(r"webhook rejected", daemon.output())
    assert WOO_SECRET not in daemon.output()
    assert shop.client_secret not in daemon.output()


def subprocess_status(config: Path, plugin_env: dict[str, str]) -> dict[str, dict]:  # type: ignore[type-arg]
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "sellable", "--config", str(config), "status", "--json"],
        env=subprocess_env(plugin_env),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(done.stdout)
    channels = report["channels"] if isinstance(report, dict) else report
    return {c["channel"]: c for c in channels}
