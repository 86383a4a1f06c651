"""ShipBob as the 3PL, end to end (issue 17, "What it must show"): the WooCommerce emulator
as the storefront and the ShipBob emulator as the fulfilment provider, both over real
loopback HTTP, driven by the real engine (its jobs run one by one, as the scheduler would)
or by ``sellable run`` in a subprocess (the kill -9 test).

The ShipBob emulator checks every request against ShipBob's own OpenAPI file
(``tests/connectors/shipbob/spec.py``) and records what it refused in ``violations``: every
test ends with none.

Catalog: MUG and BEANS (simple), KIT = 1 MUG + 2 BEANS (a kit: no stock of its own).
ShipBob keeps MUG 10 / BEANS 30 at Cicero (10, our ``sb-chicago``) and MUG 4 / BEANS 20 at
Moreno Valley (21, ``sb-moreno``); both warehouses are ``kind = "3pl"`` with
``use_component_inventory = true``. WooCommerce sells from ``sb-chicago``.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from sellable.demo import toml_value
from sellable.emulators import ManualClock
from sellable.emulators.shipbob import Order as ShipBobOrder
from sellable.emulators.shipbob import ShipBobEmulator
from sellable.emulators.woocommerce import WooCommerceEmulator
from sellable.imports import import_components, import_products
from sellable.store import schema
from sellable.sync.engine import JobResult, SyncEngine
from sellable.sync.webhooks import WebhookHub
from sellable.web.server import WebServer
from tests.connectors.shipbob.spec import check_request
from tests.imports import Store, open_store
from tests.orders.test_order_book import invoke

T = TypeVar("T")

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
PRODUCTS = "sku,name,kind\nMUG,Mug,simple\nBEANS,Beans,simple\nKIT,Kit,kit\n"
COMPONENTS = "parent_sku,component_sku,quantity\nKIT,MUG,1\nKIT,BEANS,2\n"
LISTED = ("KIT", "MUG", "BEANS")
CHICAGO, MORENO = 10, 21
SHIPBOB_STOCK = {
    ("MUG", CHICAGO): 10,
    ("BEANS", CHICAGO): 30,
    ("MUG", MORENO): 4,
    ("BEANS", MORENO): 20,
}
SECRET = "whsec_" + base64.b64encode(b"sellable-e2e-shipbob-secret!").decode()[:32]
SHIPPING = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company": "Analytical Engines",
    "address_1": "12 Analytical Row",
    "address_2": "Unit 3",
    "city": "Chicago",
    "state": "IL",
    "postcode": "60601",
    "country": "US",
}
WAREHOUSES = """
[[warehouses]]
code = "sb-chicago"
kind = "3pl"
use_component_inventory = true

[[warehouses]]
code = "sb-moreno"
kind = "3pl"
use_component_inventory = true
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, condition: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.02)


def channels_toml(
    woo: WooCommerceEmulator, shipbob: ShipBobEmulator, *, extra: str = "", sb: dict[str, Any]
) -> str:
    text = WAREHOUSES
    for code, emulator, warehouses, settings in (
        ("woo", woo, '["sb-chicago"]', {"requests_per_second": 100}),
        ("sb", shipbob, '["sb-chicago", "sb-moreno"]', sb),
    ):
        text += (
            f'\n[[channels]]\ncode = "{code}"\nconnector = "{emulator.connector}"\n'
            f"warehouses = {warehouses}\n{extra}\n[channels.settings]\n"
        )
        for key, value in {**emulator.connector_settings(), **settings}.items():
            text += f"{key} = {toml_value(value)}\n"
    return text


@dataclass
class World:
    store: Store
    woo: WooCommerceEmulator
    shipbob: ShipBobEmulator
    engines: list[SyncEngine] = field(default_factory=list)
    pokes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def engine(self) -> SyncEngine:
        if not self.engines:
            self.engines.append(self.new_engine())
        return self.engines[-1]

    def new_engine(self) -> SyncEngine:
        """The engine, its HTTP pacing and backoff on ShipBob's manual clock: the connector
        keeps to 149 requests a minute as the emulator counts them, without waiting."""
        clock = self.shipbob.clock
        assert isinstance(clock, ManualClock)
        return SyncEngine(
            self.store.engine,
            self.store.settings,
            http_options={"clock": clock.monotonic, "sleep": clock.advance},
        )

    def run(self, code: str, *jobs: str) -> list[JobResult]:
        results = [self.engine.run_job(code, job) for job in jobs]
        assert [r.describe() for r in results if not r.ok] == []
        return results

    def sync(self) -> None:
        """A pass as the daemon makes it: ShipBob's stock, the shop's orders, fulfil, push."""
        self.run("sb", "stock")
        self.run("woo", "orders")
        self.run("sb", "fulfil", "shipments")
        self.run("woo", "push")

    def cli(self, *args: str) -> Any:
        result = invoke(self.store.config, *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def sellable(self, sku: str) -> dict[str, int]:
        """Warehouse -> sellable of ``sku``, as ``sellable stock --json`` shows it."""
        return {
            p["warehouse"]: int(p["sellable"])
            for p in self.cli("stock", "--json", sku)
            if p["sku"] == sku
        }

    def stock(self, sku: str, warehouse: str = "sb-chicago") -> tuple[int, int, int]:
        """(on hand, locked, allocated) in our store."""
        s, k, w = schema.stock.c, schema.skus.c, schema.warehouses.c
        with self.store.engine.connect() as connection:
            row = connection.execute(
                select(s.on_hand, s.locked, s.allocated)
                .join(schema.skus, k.id == s.sku_id)
                .join(schema.warehouses, w.id == s.warehouse_id)
                .where((k.sku == sku) & (w.code == warehouse))
            ).one()
        return (int(row[0]), int(row[1]), int(row[2]))

    def fulfilments(self) -> list[tuple[str, str, str | None]]:
        """(reference, status, remote id) of every request we made, in order."""
        f = schema.fulfilments.c
        with self.store.engine.connect() as connection:
            return [
                (r.reference, r.status, r.remote_id)
                for r in connection.execute(
                    select(f.reference, f.status, f.remote_id).order_by(f.id)
                )
            ]

    def shipbob_orders(self, reference: str) -> list[ShipBobOrder]:
        with self.shipbob.lock:
            return [o for o in self.shipbob.orders.values() if o.reference_id == reference]

    def order_json(self, order_id: str, *flags: str) -> dict[str, Any]:
        (found,) = [
            o
            for o in self.cli("orders", "--json", *flags)
            if o["channel"] == "woo" and str(o["order_id"]) == order_id
        ]
        return dict(found)

    def status(self, code: str) -> dict[str, Any]:
        (found,) = [c for c in self.cli("status", "--json") if c["channel"] == code]
        return dict(found)


def open_world(
    config_file: Path, *, extra: str = "", **sb: Any
) -> tuple[Store, WooCommerceEmulator, ShipBobEmulator]:
    # ShipBob's clock at the real now: its webhooks are signed with timestamps we check
    shipbob = ShipBobEmulator(
        clock=ManualClock(datetime.now(UTC)), request_validator=check_request
    ).start()
    woo = WooCommerceEmulator(rate_limit=0).start()
    settings = {"locations": {"sb-chicago": CHICAGO, "sb-moreno": MORENO}, **sb}
    with config_file.open("a") as handle:
        handle.write(channels_toml(woo, shipbob, extra=extra, sb=settings))
    store = open_store(config_file)
    import_products(store.engine, store.csv("products.csv", PRODUCTS))
    import_components(store.engine, store.csv("components.csv", COMPONENTS))
    for (sku, location), units in SHIPBOB_STOCK.items():
        shipbob.set_inventory(sku, location, on_hand=units)
    for sku in LISTED:
        woo.add_listing(sku, 0, sku)
    return store, woo, shipbob


@pytest.fixture
def world(config_file: Path) -> Iterator[World]:
    store, woo, shipbob = open_world(config_file)
    made = World(store, woo, shipbob)
    try:
        made.run("woo", "listings")
        made.run("sb", "stock")
        made.run("woo", "push")
        yield made
    finally:
        for engine in made.engines:
            engine.close()
        woo.stop()
        shipbob.stop()
        store.engine.dispose()


def only_order(world: World, reference: str) -> ShipBobOrder:
    found = world.shipbob_orders(reference)
    assert len(found) == 1, found
    return found[0]


# -- one order, one ShipBob order ------------------------------------------------------------


def test_a_kit_ordered_on_the_shop_becomes_one_shipbob_order_and_its_shipment_a_sale(
    world: World, ledger_check: Callable[[Engine], None]
) -> None:
    # a kit at Cicero: min(MUG 10, BEANS 30 / 2) = 10
    assert world.woo.quantities() == {"KIT": 10, "MUG": 10, "BEANS": 30}
    order_id = world.woo.place_order([("KIT", 2)], shipping=SHIPPING, email="ada@example.com")
    reference = f"woo:{order_id}"
    world.sync()

    sent = only_order(world, reference)
    body = sent.body
    assert (body["type"], body["location_id"], body["shipping_method"]) == (
        "DTC",
        CHICAGO,
        "Standard",
    )
    assert body["recipient"]["name"] == "Ada Lovelace"
    assert body["recipient"]["address"] == {
        "address1": "12 Analytical Row",
        "address2": "Unit 3",
        "company_name": "Analytical Engines",
        "city": "Chicago",
        "state": "IL",
        "zip_code": "60601",
        "country": "US",
    }
    # the kit goes as its components
    assert sorted((p["reference_id"], p["quantity"]) for p in body["products"]) == [
        ("BEANS", 4),
        ("MUG", 2),
    ]
    assert world.fulfilments() == [(reference, "sent", str(sent.id))]
    # ShipBob committed our own units: not locked a second time
    assert world.stock("MUG") == (10, 0, 2)
    assert world.stock("BEANS") == (30, 0, 4)
    assert world.woo.quantities() == {"KIT": 8, "MUG": 8, "BEANS": 26}

    # a second pass sends nothing again
    world.sync()
    assert len(world.shipbob.orders) == 1

    (shipment,) = sent.shipments
    world.shipbob.ship(shipment.id, carrier="UPS", tracking_number="1Z999AA10123456784")
    world.sync()
    assert world.stock("MUG") == (8, 0, 0)
    assert world.stock("BEANS") == (26, 0, 0)
    assert world.woo.quantities() == {"KIT": 8, "MUG": 8, "BEANS": 26}
    ledger_check(world.store.engine)
    assert world.order_json(order_id)["fulfilments"] == [
        {
            "channel": "sb",
            "remote_id": str(sent.id),
            "reference": reference,
            "status": "shipped",
            "tracking": ["1Z999AA10123456784"],
            "reason": None,
        }
    ]
    assert world.shipbob.violations == []


@SQLITE_ONLY
def test_a_signed_shipbob_webhook_books_the_shipment(config_file: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/sb"
    with config_file.open("a") as handle:
        handle.write(f'\n[daemon]\nwebhook_listen = "127.0.0.1:{port}"\nwebhook_debounce = "0s"\n')
    store, woo, shipbob = open_world(config_file, webhook_url=url, webhook_secret=SECRET)
    world = World(store, woo, shipbob)
    hub = WebhookHub(
        world.engine,
        lambda code: world.pokes.append((code, "orders")),
        run_soon=lambda c, j: world.pokes.append((c, j)),
    )
    server = WebServer(f"127.0.0.1:{port}", hub.app())
    server.start()
    try:
        assert shipbob.hooks == {}
        world.run("woo", "listings")
        # ShipBob lists no listings: its first job to run subscribes, as the daemon would
        (stock,) = world.run("sb", "stock")
        world.run("woo", "push")
        assert stock.reports["webhook_subscriptions"]["created"] == 1
        subscriptions = world.status("sb")["webhooks"]["subscriptions"]
        # one subscription of 4 topics, listed per topic
        assert (subscriptions["healthy"], subscriptions["active"]) == (True, 4)
        assert [(h.url, sorted(h.topics)) for h in shipbob.hooks.values()] == [
            (
                url,
                [
                    "order.shipment.cancelled",
                    "order.shipment.exception",
                    "order.shipment.on_hold",
                    "order.shipped",
                ],
            )
        ]
        order_id = woo.place_order([("KIT", 3)])
        reference = f"woo:{order_id}"
        world.run("woo", "orders")
        world.run("sb", "fulfil")
        sent = only_order(world, reference)
        assert world.stock("MUG") == (10, 0, 3)

        shipbob.webhooks.inject("duplicate")  # ShipBob delivers it twice: one poke
        shipbob.ship(sent.shipments[0].id, tracking_number="9400111899223197428490")
        assert shipbob.webhooks.flush() == [200, 200]
        assert world.pokes == [("sb", "shipments")]
        world.run("sb", "shipments")
        assert world.stock("MUG") == (7, 0, 0)
        assert world.stock("BEANS") == (24, 0, 0)
        (fulfilment,) = world.order_json(order_id)["fulfilments"]
        assert (fulfilment["status"], fulfilment["remote_id"], fulfilment["tracking"]) == (
            "shipped",
            str(sent.id),
            ["9400111899223197428490"],
        )
        assert shipbob.violations == []
    finally:
        server.stop()
        for engine in world.engines:
            engine.close()
        woo.stop()
        shipbob.stop()
        store.engine.dispose()


# -- a kill -9 between sending and recording --------------------------------------------------

FAST = """pull_orders_every = "1s"
push_every = "1s"
refresh_listings_every = "1h"
reconcile_every = "1h"
pull_stock_every = "1s"
fulfil_every = "1s"
pull_shipments_every = "1s"
"""


@SQLITE_ONLY
def test_a_kill_9_between_sending_and_recording_still_gives_one_shipbob_order(
    config_file: Path,
) -> None:
    with config_file.open("a") as handle:
        handle.write(
            '\n[daemon]\nhttp_listen = "127.0.0.1:0"\npush_debounce = "0s"\njitter = "0s"\n'
        )
    store, woo, shipbob = open_world(config_file, extra=FAST)
    world = World(store, woo, shipbob)
    daemons: list[subprocess.Popen[bytes]] = []

    def daemon(name: str) -> subprocess.Popen[bytes]:
        log = (config_file.parent / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "sellable", "--config", str(config_file), "run"],
            env={k: v for k, v in os.environ.items() if not k.startswith("SELLABLE_")},
            cwd=config_file.parent,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        daemons.append(process)
        return process

    try:
        world.run("woo", "listings")
        world.run("sb", "stock")
        world.run("woo", "push")
        order_id = woo.place_order([("KIT", 1)])
        reference = f"woo:{order_id}"
        world.run("woo", "orders")  # the order is in our book, allocated at sb-chicago
        world.engine.close()
        world.engines.clear()

        created: list[int] = []
        running: list[subprocess.Popen[bytes]] = []

        def crash(order: ShipBobOrder) -> None:
            # ShipBob created the order; the daemon dies before it reads the answer
            created.append(order.id)
            os.kill(running[0].pid, signal.SIGKILL)

        shipbob.after_order_created = crash  # set before the daemon can send anything
        first = daemon("first")
        running.append(first)
        try:
            first.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(
                "the daemon never sent the order:\n"
                + (config_file.parent / "first.log").read_text()
            )
        assert first.returncode == -signal.SIGKILL, (config_file.parent / "first.log").read_text()
        (remote,) = created
        shipbob.after_order_created = None
        # recorded as pending before it was sent; ShipBob's answer never came back
        assert world.fulfilments() == [(reference, "pending", None)]

        # the restart: the recovery looks the reference up before ever sending it again
        second = daemon("second")
        wait_for(
            "the fulfilment recorded as sent",
            lambda: (
                second.poll() is None and world.fulfilments() == [(reference, "sent", str(remote))]
            ),
        )
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
        # Found by the lookup (the fulfil job's recovery) or by the shipments poll that the
        # stock job runs first (ShipBob lists the order as ours): never posted again.
        log = (config_file.parent / "second.log").read_text()
        fulfils = [x for x in log.splitlines() if "job=fulfil ok" in x]
        assert all(" sent=0 " in x and " existed=0 " in x for x in fulfils), fulfils
        posted = [r for r in shipbob.request_log if r[:2] == ("POST", "/2026-01/order")]
        assert posted == [("POST", "/2026-01/order", 201)]
        assert [o.id for o in world.shipbob_orders(reference)] == [remote]
        assert len(shipbob.orders) == 1
        assert shipbob.violations == []
    finally:
        for process in daemons:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        for engine in world.engines:
            engine.close()
        woo.stop()
        shipbob.stop()
        store.engine.dispose()


@SQLITE_ONLY
def test_a_stock_pull_between_the_shipment_and_its_poll_does_not_take_the_units_twice(
    world: World, ledger_check: Callable[[Engine], None]
) -> None:
    order_id = world.woo.place_order([("KIT", 2)])
    world.sync()
    (sent,) = world.shipbob_orders(f"woo:{order_id}")
    world.shipbob.ship(sent.shipments[0].id)
    # the stock pull comes first (ShipBob's on hand already fell by the shipment): it books
    # the shipment before it writes the counts, so the count agrees with our ledger
    (stock,) = world.run("sb", "stock")
    assert (stock.counts["shipments_applied"], stock.counts["lines_shipped"]) == (1, 1)
    assert (stock.counts["movements"], stock.counts["counts_deferred"]) == (0, 0)
    world.sync()
    ledger_check(world.store.engine)
    assert world.stock("MUG") == (8, 0, 0)
    assert world.stock("BEANS") == (26, 0, 0)
    assert world.woo.quantities() == {"KIT": 8, "MUG": 8, "BEANS": 26}
    assert world.shipbob.violations == []


# -- bundles from components -----------------------------------------------------------------


@SQLITE_ONLY
def test_a_bundles_sellable_at_a_shipbob_centre_is_what_its_components_there_can_make(
    world: World,
) -> None:
    # Cicero: min(MUG 10, BEANS 30 / 2); Moreno Valley: min(MUG 4, BEANS 20 / 2)
    assert world.sellable("KIT") == {"main": 0, "fba-us": 0, "sb-chicago": 10, "sb-moreno": 4}
    assert world.woo.quantities()["KIT"] == 10  # the shop sells from Cicero

    # an order that reached ShipBob some other way commits 3 mugs at Cicero: locked
    world.shipbob.place_order([("MUG", 3)])
    world.sync()
    assert world.stock("MUG") == (10, 3, 0)
    assert world.sellable("KIT")["sb-chicago"] == 7
    assert world.woo.quantities() == {"KIT": 7, "MUG": 7, "BEANS": 30}

    # our own order: ShipBob commits its units too, which are our allocation, not locked
    order_id = world.woo.place_order([("KIT", 2)])
    world.sync()
    assert len(world.shipbob_orders(f"woo:{order_id}")) == 1
    assert world.stock("MUG") == (10, 3, 2)
    assert world.stock("BEANS") == (30, 0, 4)
    # Cicero: min(10 - 3 - 2, (30 - 4) / 2); Moreno Valley untouched
    assert world.sellable("KIT") == {"main": 0, "fba-us": 0, "sb-chicago": 5, "sb-moreno": 4}
    assert world.woo.quantities() == {"KIT": 5, "MUG": 5, "BEANS": 26}
    assert world.shipbob.violations == []


# -- cancellation ----------------------------------------------------------------------------


@SQLITE_ONLY
def test_a_cancellation_on_the_shop_cancels_the_shipbob_order_unless_it_was_picked(
    world: World,
) -> None:
    first = world.woo.place_order([("KIT", 1)])
    second = world.woo.place_order([("MUG", 2)])
    world.sync()
    (one,) = world.shipbob_orders(f"woo:{first}")
    (two,) = world.shipbob_orders(f"woo:{second}")
    assert world.stock("MUG") == (10, 0, 3)

    world.woo.set_order_status(first, "cancelled")
    world.sync()
    assert one.status == "Cancelled"
    assert world.order_json(first)["fulfilments"][0]["status"] == "cancelled"
    assert world.stock("MUG") == (10, 0, 2)
    assert world.cli("orders", "--json", "--held") == []

    # the centre picked the second: ShipBob refuses to cancel it, and we say so
    world.shipbob.pick(two.shipments[0].id)
    world.woo.set_order_status(second, "cancelled")
    world.sync()
    assert two.status == "Processing"
    (fulfilment,) = world.order_json(second)["fulfilments"]
    assert (fulfilment["status"], fulfilment["remote_id"]) == ("cancel_refused", str(two.id))
    assert "already picked" in fulfilment["reason"]
    held = [(o["channel"], str(o["order_id"])) for o in world.cli("orders", "--json", "--held")]
    assert held == [("woo", second)]
    flagged = world.status("sb")["fulfilments"]
    assert (flagged["flagged"], flagged["cancelled"], flagged["sent"]) == (1, 1, 0)
    assert [(r["reference"], r["status"]) for r in flagged["flagged_requests"]] == [
        (f"woo:{second}", "cancel_refused")
    ]
    assert world.shipbob.violations == []


# -- bad health ------------------------------------------------------------------------------


@SQLITE_ONLY
@pytest.mark.parametrize("fault", ["401", "unreachable"])
def test_a_sick_shipbob_fails_its_channel_and_the_shop_keeps_syncing(
    world: World, fault: str
) -> None:
    if fault == "401":
        world.shipbob.token = "sbpat_revoked"  # ours is refused from now on
    else:
        world.shipbob.go_offline()  # the port is closed
    world.woo.place_order([("MUG", 4)])
    results = [world.engine.run_job("sb", "stock"), world.engine.run_job("woo", "orders")]
    results += [world.engine.run_job("sb", job) for job in ("fulfil", "shipments")]
    results.append(world.engine.run_job("woo", "push"))
    refused = fault == "401"  # the stock pull probes the credentials; the rest wait for it
    assert [(r.job, r.ok, r.skipped is not None) for r in results] == [
        ("stock", False, False),
        ("orders", True, False),
        # unreachable: the order is sent without an answer (unknown: pending, looked up by
        # reference next run; the run fails once it stays pending for 3 runs)
        ("fulfil", True, refused),
        ("shipments", refused, refused),
        ("push", True, False),
    ]
    if refused:  # ShipBob pulls no orders: its stock pull is the probe
        assert "; its stock pull tries the credentials again," in str(results[2].skipped)
    else:
        assert (results[2].counts["sent"], results[2].counts["unknown"]) == (0, 1)
    # the shop still sells what the last good count said, less its own order
    assert world.woo.quantities() == {"KIT": 6, "MUG": 6, "BEANS": 30}
    sb, woo = world.status("sb"), world.status("woo")
    # both are "failing" (issue 17); the flag says which
    assert (sb["health"], sb["healthy"]) == ("failing", False)
    assert sb["authentication_refused"] is refused
    assert sorted(sb["failing_jobs"]) == (["stock"] if refused else ["shipments", "stock"])
    assert (woo["health"], woo["healthy"]) == ("healthy", True)
    assert world.shipbob.violations == []
