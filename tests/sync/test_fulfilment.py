"""Orders sent out to a fulfilment channel (a 3PL) and its shipments coming back, through
the real engine, order book and store (SQLite and PostgreSQL), against a fulfilment
provider kept in memory (tests/sync/fake_fulfilment.py: a double of the external 3PL).

Stock in the 3PL warehouse ``sb`` (which uses component inventory): A 10, B 20; a ``KIT`` is
A + 2 B. The order ``shop:1001`` takes KIT × 2 and A × 1: A 3 and B 4 allocated in ``sb``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sellable.config import load_settings
from sellable.imports import import_components, import_products, import_stock
from sellable.orders import OrderIn, OrderLineIn, OrderStatus, list_orders
from sellable.sdk import FulfilmentLine, Shipment, ShipmentStatus, ShippingAddress, StockCount
from sellable.store import schema, sql
from sellable.store.db import create_db_engine, sync_warehouses, upgrade_schema
from sellable.sync.engine import SyncEngine
from sellable.sync.jobs.stock import SHIPPED_COUNT_LAG
from sellable.sync.status import channel_status, render_status
from sellable.sync.webhooks import WebhookHub
from tests.conftest import assert_ledger_balanced
from tests.orders.test_order_book import invoke
from tests.sync import fake_fulfilment
from tests.sync.fake_fulfilment import Provider

ADDRESS = ShippingAddress(
    name="Ada Lovelace",
    address1="12 Analytical Row",
    city="London",
    country="GB",
    zip_code="N1 9GU",
)
CONFIG = """
[database]
url = "{url}"

[[warehouses]]
code = "main"
kind = "own"

[[warehouses]]
code = "sb"
kind = "3pl"
use_component_inventory = true

[[warehouses]]
code = "sb2"
kind = "3pl"
use_component_inventory = true

[[channels]]
code = "shop"
connector = "manual"
warehouses = ["sb", "sb2"]

[[channels]]
code = "sb"
connector = "fakefulfil"
warehouses = ["sb", "sb2"]
"""


class World:
    """The engine, the provider, and the order book's numbers."""

    def __init__(self, folder: Path, url: str) -> None:
        config = folder / "sellable.toml"
        config.write_text(CONFIG.format(url=url))
        self.config = config
        settings = load_settings(config)
        self.db = create_db_engine(settings)
        upgrade_schema(self.db)
        sync_warehouses(self.db, settings.warehouses)
        for name, text in (
            ("products.csv", "sku,name,kind\nA,A,simple\nB,B,simple\nKIT,Kit,kit\n"),
            ("components.csv", "parent_sku,component_sku,quantity\nKIT,A,1\nKIT,B,2\n"),
            ("stock.csv", "sku,warehouse,on_hand\nA,sb,10\nB,sb,20\nA,sb2,5\nB,sb2,5\n"),
        ):
            (folder / name).write_text(text)
        import_products(self.db, folder / "products.csv")
        import_components(self.db, folder / "components.csv")
        import_stock(self.db, settings, folder / "stock.csv")
        self.provider = Provider()
        fake_fulfilment.PROVIDERS["sb"] = self.provider
        self.engine = SyncEngine(self.db, settings)

    def place(
        self,
        order_id: str = "1001",
        lines: tuple[OrderLineIn, ...] = (OrderLineIn("l1", "KIT", 2), OrderLineIn("l2", "A", 1)),
        status: OrderStatus = OrderStatus.OPEN,
        address: ShippingAddress | None = ADDRESS,
        route: tuple[str, ...] = ("sb",),
    ) -> None:
        live = self.engine.live
        with live.lock:
            live.refresh()
            self.engine.book.apply(
                [
                    OrderIn(
                        "shop",
                        order_id,
                        route[0],
                        status,
                        lines,
                        route=route,
                        shipping_address=address,
                    )
                ]
            )

    def run(self, job: str) -> Any:
        return self.engine.run_job("sb", job)

    def stock(self, sku: str, warehouse: str = "sb") -> tuple[int, int, int]:
        """(on hand, locked, allocated)."""
        s, k, w = schema.stock.c, schema.skus.c, schema.warehouses.c
        with self.db.connect() as connection:
            row = connection.execute(
                select(s.on_hand, s.locked, s.allocated)
                .join(schema.skus, k.id == s.sku_id)
                .join(schema.warehouses, w.id == s.warehouse_id)
                .where((k.sku == sku) & (w.code == warehouse))
            ).one()
        return (row[0], row[1], row[2])

    def fulfilments(self) -> list[tuple[str, str, str | None, str | None]]:
        """(reference, status, remote id, reason) of every request, in order."""
        f = schema.fulfilments.c
        with self.db.connect() as connection:
            return [
                (r.reference, r.status, r.remote_id, r.reason)
                for r in connection.execute(
                    select(f.reference, f.status, f.remote_id, f.reason).order_by(f.id)
                )
            ]

    def orders(self, *, held: bool = False) -> list[dict[str, Any]]:
        with self.db.connect() as connection:
            return list_orders(connection, held_only=held)

    def close(self) -> None:
        self.engine.close()
        assert_ledger_balanced(self.db)
        self.db.dispose()


@pytest.fixture
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield from fake_fulfilment.register(tmp_path_factory.mktemp("fakefulfil"))


@pytest.fixture
def world(registered: None, tmp_path: Path, database_url: str) -> Iterator[World]:
    opened = World(tmp_path, database_url)
    yield opened
    opened.close()
    fake_fulfilment.PROVIDERS.clear()


@pytest.fixture
def sqlite_world(registered: None, tmp_path: Path) -> Iterator[World]:
    opened = World(tmp_path, f"sqlite:///{tmp_path / 'sellable.db'}")
    yield opened
    opened.close()
    fake_fulfilment.PROVIDERS.clear()


# -- sending, exactly once -------------------------------------------------------------------


def test_an_allocated_order_is_sent_once_with_its_lines_and_their_components(
    world: World,
) -> None:
    world.place()

    first = world.run("fulfil")
    again = world.run("fulfil")

    assert first.ok and first.counts["sent"] == 1
    assert again.ok and again.counts["sent"] == 0
    assert world.provider.received == ["shop:1001"]
    request = world.provider.held("shop:1001").request
    assert (request.warehouse, request.order_channel, request.order_id) == ("sb", "shop", "1001")
    assert request.recipient == ADDRESS
    assert request.lines == (
        FulfilmentLine("l1", "KIT", 2, (("A", 2), ("B", 4))),
        FulfilmentLine("l2", "A", 1, (("A", 1),)),
    )
    assert world.fulfilments() == [("shop:1001", "sent", "501", None)]
    assert world.orders()[0]["fulfilments"] == [
        {
            "channel": "sb",
            "remote_id": "501",
            "reference": "shop:1001",
            "status": "sent",
            "tracking": [],
            "reason": None,
        }
    ]


def test_a_crash_between_sending_and_recording_is_resolved_by_the_lookup_never_a_resend(
    world: World,
) -> None:
    world.place()
    world.provider.crash_after_send = True

    crashed = world.run("fulfil")

    assert not crashed.ok and "Crash" in str(crashed.error)
    assert world.fulfilments() == [("shop:1001", "pending", None, None)]
    world.provider.crash_after_send = False
    recovered = world.run("fulfil")
    assert recovered.ok
    assert recovered.counts["found"] == 1 and recovered.counts["resent"] == 0
    assert world.provider.received == ["shop:1001"]
    assert world.fulfilments() == [("shop:1001", "sent", "501", None)]


def test_no_answer_stays_pending_and_is_found_by_reference_next_run(sqlite_world: World) -> None:
    world = sqlite_world
    world.place()
    world.provider.lose_answer = True

    lost = world.run("fulfil")
    world.provider.lose_answer = False
    found = world.run("fulfil")

    assert lost.ok and lost.counts["unknown"] == 1
    assert found.counts["found"] == 1 and found.counts["sent"] == 0
    assert world.provider.received == ["shop:1001"]
    assert world.fulfilments() == [("shop:1001", "sent", "501", None)]


def test_a_request_that_never_arrived_is_sent_again_and_a_lagging_search_gets_existed(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    world.place()
    world.provider.drop_before_arrival = True
    world.run("fulfil")  # lost on the way: the provider has nothing
    world.provider.drop_before_arrival = False

    resent = world.run("fulfil")

    assert resent.counts["resent"] == 1 and resent.counts["sent"] == 1
    assert len(world.provider.orders) == 1
    # The provider holds it, its search does not show it yet, and the answer was lost:
    # sent again, the provider answers EXISTED, still one order.
    world.place("1002", (OrderLineIn("l1", "A", 1),))
    world.provider.lose_answer = True
    world.run("fulfil")
    world.provider.lose_answer = False
    world.provider.search_misses = True
    existed = world.run("fulfil")
    assert existed.counts["existed"] == 1 and existed.counts["sent"] == 0
    assert sorted(world.provider.orders) == ["shop:1001", "shop:1002"]
    assert world.fulfilments() == [
        ("shop:1001", "sent", "501", None),
        ("shop:1002", "sent", "502", None),
    ]


def test_a_request_pending_for_several_runs_makes_the_channel_fail(sqlite_world: World) -> None:
    world = sqlite_world
    world.place()
    world.provider.drop_before_arrival = True

    runs = [world.run("fulfil") for _ in range(3)]

    assert [r.ok for r in runs] == [True, True, False]
    assert "1 fulfilment request(s) without an answer" in str(runs[-1].error)
    assert "shop:1001" in str(runs[-1].error)
    report = channel_status(world.engine)
    sb = next(c for c in report if c["channel"] == "sb")
    assert sb["health"] == "failing"
    assert sb["fulfilments"]["pending"] == 1


def test_an_order_without_a_shipping_address_is_reported_not_sent(
    sqlite_world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world = sqlite_world
    world.place(address=None)

    with caplog.at_level(logging.WARNING, logger="sellable.sync"):
        result = world.run("fulfil")

    assert result.counts["no_address"] == 1 and result.reports["no_address"] == ["shop:1001"]
    assert world.provider.received == []
    assert "shop:1001" in caplog.text


def test_a_refused_request_is_flagged_with_the_providers_message(sqlite_world: World) -> None:
    world = sqlite_world
    world.place()
    world.provider.refuse["shop:1001"] = "unknown SKU KIT"

    result = world.run("fulfil")

    assert result.counts["refused"] == 1
    assert world.fulfilments() == [("shop:1001", "refused", None, "unknown SKU KIT")]
    held = world.orders(held=True)
    assert [o["order_id"] for o in held] == ["1001"]
    assert held[0]["fulfilments"][0]["status"] == "refused"


def test_a_refused_request_is_sent_again_on_request_with_the_address_as_it_is_then(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    world.place()
    world.place("1002", (OrderLineIn("l1", "B", 1),))
    world.provider.refuse["shop:1001"] = "address not deliverable"
    world.provider.refuse["shop:1002"] = "unknown SKU B"
    world.run("fulfil")
    world.provider.refuse.clear()
    fixed = ShippingAddress(
        name="Ada Lovelace", address1="1 New Street", city="London", country="GB"
    )
    world.place(address=fixed)  # a re-pull brings the corrected address

    unknown = invoke(world.config, "resend", "shop:1001", "shop:9999")
    both = invoke(world.config, "resend", "--all", "shop:1001")
    assert unknown.exit_code == 3 and "shop:9999" in unknown.output
    assert both.exit_code == 2
    assert [status for _, status, _, _ in world.fulfilments()] == ["refused", "refused"]

    resent = invoke(world.config, "resend", "shop:1001", "--json")
    sent = world.run("fulfil")

    assert resent.exit_code == 0, resent.output
    assert json.loads(resent.stdout) == [
        {
            "order": "shop:1001",
            "channel": "sb",
            "reference": "shop:1001",
            "reason": "address not deliverable",
        }
    ]
    assert sent.counts["sent"] == 1
    # (the provider saw both refused requests first)
    assert world.provider.received == ["shop:1001", "shop:1002", "shop:1001:2"]
    assert world.provider.held("shop:1001:2").request.recipient == fixed
    assert world.fulfilments() == [
        ("shop:1001", "cancelled", None, "refused, sent again on request: address not deliverable"),
        ("shop:1002", "refused", None, "unknown SKU B"),
        ("shop:1001:2", "sent", "501", None),
    ]
    assert [o["order_id"] for o in world.orders(held=True)] == ["1002"]
    assert world.stock("A") == (10, 0, 3)  # still allocated once
    # --all takes the rest; then nothing is left to send again.
    rest = invoke(world.config, "resend", "--all")
    assert rest.exit_code == 0 and "shop:1002: request shop:1002 to sb withdrawn" in rest.output
    assert invoke(world.config, "resend", "--all").output.startswith("no refused request")
    world.run("fulfil")
    assert world.provider.received[3:] == ["shop:1002:2"]
    assert world.orders(held=True) == []


def test_an_order_split_across_two_provider_warehouses_gets_numbered_references(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    # 12 A: 10 in sb, 2 more in sb2 (routed across the channel's warehouses in order).
    world.place("2001", (OrderLineIn("l1", "A", 12),), route=("sb", "sb2"))

    world.run("fulfil")

    assert sorted(world.provider.orders) == ["shop:2001:1", "shop:2001:2"]
    assert world.provider.held("shop:2001:1").request.lines == (
        FulfilmentLine("l1", "A", 10, (("A", 10),)),
    )
    assert world.provider.held("shop:2001:2").request.warehouse == "sb2"
    assert world.provider.held("shop:2001:2").request.lines == (
        FulfilmentLine("l1", "A", 2, (("A", 2),)),
    )


# -- cancellations on the sales channel ------------------------------------------------------


def test_a_cancelled_order_is_cancelled_at_the_provider(sqlite_world: World) -> None:
    world = sqlite_world
    world.place()
    world.run("fulfil")

    world.place(status=OrderStatus.CANCELLED)
    result = world.run("fulfil")

    assert result.counts["cancelled"] == 1
    assert world.provider.held("shop:1001").cancelled
    assert world.fulfilments()[0][:2] == ("shop:1001", "cancelled")
    assert world.stock("A") == (10, 0, 0)


def test_a_cancellation_the_provider_refuses_is_flagged_in_held_orders_and_status(
    world: World,
) -> None:
    world.place()
    world.run("fulfil")
    world.provider.held("shop:1001").picked = True

    world.place(status=OrderStatus.CANCELLED)
    result = world.run("fulfil")

    assert result.counts["cancel_refused"] == 1
    [(reference, status, remote_id, reason)] = world.fulfilments()
    assert (reference, status, remote_id) == ("shop:1001", "cancel_refused", "501")
    assert reason == (
        "cancelled on its sales channel (shop:1001), but the fulfilment channel refused to "
        "cancel: already picked; our allocation was released, the provider may still ship it"
    )
    assert world.stock("A") == (10, 0, 0) and world.stock("B") == (20, 0, 0)
    held = world.orders(held=True)
    assert [o["order_id"] for o in held] == ["1001"]
    sb = next(c for c in channel_status(world.engine) if c["channel"] == "sb")
    assert sb["fulfilments"]["flagged"] == 1
    assert sb["fulfilments"]["flagged_requests"] == [
        {
            "reference": "shop:1001",
            "order": "shop:1001",
            "status": "cancel_refused",
            "reason": reason,
        }
    ]
    assert "cancel_refused: cancelled on its sales channel" in render_status(
        channel_status(world.engine)
    )
    # Asked again next run? No: a refused cancellation stays flagged, not retried forever.
    assert world.run("fulfil").counts["cancel_refused"] == 0


# -- shipments back --------------------------------------------------------------------------


def test_a_completed_shipment_books_the_sale_of_the_components(world: World) -> None:
    world.place()
    world.run("fulfil")
    assert world.stock("A") == (10, 0, 3) and world.stock("B") == (20, 0, 4)
    world.provider.ship("shop:1001", [("A", 3), ("B", 4)], tracking="1Z999")

    polled = world.run("shipments")

    assert polled.ok and polled.counts["lines_shipped"] == 2
    assert world.stock("A") == (7, 0, 0) and world.stock("B") == (16, 0, 0)
    [order] = world.orders()
    assert order["status"] == "shipped"
    assert [line["status"] for line in order["lines"]] == ["shipped", "shipped"]
    assert order["fulfilments"] == [
        {
            "channel": "sb",
            "remote_id": "501",
            "reference": "shop:1001",
            "status": "shipped",
            "tracking": ["1Z999"],
            "reason": None,
        }
    ]
    # The same update again (the next poll overlaps), or an old one: nothing more.
    assert world.run("shipments").counts["lines_shipped"] == 0
    world.provider.set_shipment("shop:1001", ShipmentStatus.EXCEPTION, "late")
    assert world.run("shipments").counts["flagged"] == 0
    assert world.fulfilments()[0][1] == "shipped"
    assert world.stock("A") == (7, 0, 0) and world.stock("B") == (16, 0, 0)


def test_a_kit_shipped_whole_and_a_partial_shipment_book_the_lines_they_cover(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    world.place()
    world.run("fulfil")

    world.provider.ship("shop:1001", [("A", 1)])
    first = world.run("shipments")
    world.provider.ship("shop:1001", [("KIT", 2)], tracking="TRK2")  # not exploded
    second = world.run("shipments")

    assert first.counts["lines_shipped"] == 1
    assert second.counts["lines_shipped"] == 1
    assert world.stock("A") == (7, 0, 0) and world.stock("B") == (16, 0, 0)
    [order] = world.orders()
    assert order["fulfilments"][0]["status"] == "shipped"
    assert order["fulfilments"][0]["tracking"] == ["TRK1", "TRK2"]


def test_a_partial_shipment_leaves_the_rest_allocated_and_the_request_partly_shipped(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    world.place()
    world.run("fulfil")
    world.provider.ship("shop:1001", [("A", 2), ("B", 4)])

    world.run("shipments")

    assert world.stock("A") == (8, 0, 1) and world.stock("B") == (16, 0, 0)
    assert world.fulfilments()[0][1] == "partially_shipped"
    [order] = world.orders()
    assert order["status"] == "open"
    assert [line["status"] for line in order["lines"]] == ["shipped", "allocated"]


def test_shipped_units_that_match_no_line_are_reported_not_booked(sqlite_world: World) -> None:
    world = sqlite_world
    world.place()
    world.run("fulfil")
    world.provider.ship("shop:1001", [("A", 1), ("C", 5)])

    polled = world.run("shipments")

    assert polled.ok
    assert polled.reports["mismatches"] == [
        "shop:1001: shipped units not matching the lines sent: C×5"
    ]
    assert world.stock("A") == (9, 0, 2)


def test_a_shipment_the_provider_cancelled_releases_the_allocation(world: World) -> None:
    world.place()
    world.run("fulfil")
    world.provider.cancel("shop:1001")

    polled = world.run("shipments")

    assert polled.counts["lines_released"] == 2
    assert world.stock("A") == (10, 0, 0) and world.stock("B") == (20, 0, 0)
    assert world.fulfilments()[0][:2] == ("shop:1001", "cancelled")
    [order] = world.orders()
    assert [(line["status"], line["hold_reason"]) for line in order["lines"]] == [
        ("cancelled", "cancelled by the fulfilment channel sb"),
        ("cancelled", "cancelled by the fulfilment channel sb"),
    ]


def test_a_cancelled_shipment_beside_a_completed_one_releases_what_did_not_ship(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    world.place()
    world.run("fulfil")
    world.provider.ship("shop:1001", [("A", 1)])
    held = world.provider.held("shop:1001")
    held.shipments.append(Shipment("S2", ShipmentStatus.CANCELLED, (("A", 2), ("B", 4))))
    held.updated_at = world.provider.tick()

    polled = world.run("shipments")

    assert (polled.counts["lines_shipped"], polled.counts["lines_released"]) == (1, 1)
    assert world.stock("A") == (9, 0, 0) and world.stock("B") == (20, 0, 0)
    assert world.fulfilments()[0][:2] == ("shop:1001", "shipped")
    [order] = world.orders()
    assert [line["status"] for line in order["lines"]] == ["cancelled", "shipped"]
    assert order["status"] == "shipped"


def test_an_order_still_open_after_the_provider_cancelled_is_sent_again_under_a_new_reference(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    world.place()
    world.run("fulfil")
    world.provider.cancel("shop:1001")
    world.run("shipments")
    assert world.stock("A") == (10, 0, 0)

    world.place()  # the storefront still says open: allocated again
    sent = world.run("fulfil")

    assert world.stock("A") == (10, 0, 3) and world.stock("B") == (20, 0, 4)
    assert sent.counts["sent"] == 1
    assert [row[:2] for row in world.fulfilments()] == [
        ("shop:1001", "cancelled"),
        ("shop:1001:2", "sent"),
    ]


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        pytest.param(ShipmentStatus.EXCEPTION, "Out of stock at the centre", id="exception"),
        pytest.param(ShipmentStatus.ON_HOLD, "Address needs review", id="on-hold"),
    ],
)
def test_an_exception_or_a_hold_flags_the_order_with_the_providers_reason(
    world: World, status: ShipmentStatus, reason: str
) -> None:
    world.place()
    world.run("fulfil")
    world.provider.set_shipment("shop:1001", status, reason)

    polled = world.run("shipments")

    assert polled.counts["flagged"] == 1
    assert world.fulfilments() == [("shop:1001", status.value, "501", reason)]
    held = world.orders(held=True)
    assert [o["order_id"] for o in held] == ["1001"]
    assert world.stock("A") == (10, 0, 3)  # still allocated: the provider holds it
    # Released by the provider: back to sent.
    world.provider.set_shipment("shop:1001", ShipmentStatus.PROCESSING, None)
    world.run("shipments")
    assert world.fulfilments() == [("shop:1001", "sent", "501", None)]
    assert world.orders(held=True) == []


def test_the_poll_ignores_orders_that_are_not_ours_and_moves_its_cursor(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    world.place()
    world.run("fulfil")
    world.provider.page_size = 1
    world.place("1002", (OrderLineIn("l1", "B", 1),))
    world.run("fulfil")
    world.provider.orders["elsewhere:9"] = fake_fulfilment.HeldOrder(
        "elsewhere:9",
        "900",
        world.provider.held("shop:1001").request,
        world.provider.tick(),
    )

    polled = world.run("shipments")

    assert polled.counts["not_ours"] == 1 and polled.counts["applied"] == 0
    assert polled.counts["unchanged"] == 2
    assert world.engine.state.cursor("sb", "shipments") is not None


def test_a_fulfilments_webhook_pokes_the_shipments_poll(sqlite_world: World) -> None:
    world = sqlite_world
    pulls: list[str] = []
    runs: list[tuple[str, str]] = []
    hub = WebhookHub(world.engine, pulls.append, run_soon=lambda c, j: runs.append((c, j)))

    status, body = hub.receive("sb", {"id": "msg_1"}, b"{}")

    assert (status, body) == (200, {"ok": True})
    assert runs == [("sb", "shipments")] and pulls == []


# -- stock: the provider's committed units --------------------------------------------------


def test_committed_units_beyond_our_allocations_are_locked(world: World) -> None:
    world.place()  # A 3, B 4 allocated in sb
    world.provider.counts = [
        StockCount("A", 10, warehouse="sb", committed=5),  # 2 committed to others
        StockCount("B", 20, warehouse="sb", committed=3),  # less than ours: 0 locked
        StockCount("A", 5, warehouse="sb2", committed=5),  # nothing of ours: all locked
    ]

    result = world.run("stock")

    assert result.ok
    assert world.stock("A") == (10, 2, 3)
    assert world.stock("B") == (20, 0, 4)
    assert world.stock("A", "sb2") == (5, 5, 0)


def test_the_address_is_stored_and_never_logged(
    sqlite_world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world = sqlite_world
    with caplog.at_level(logging.DEBUG):
        world.place()
        world.run("fulfil")
        world.provider.ship("shop:1001", [("A", 3), ("B", 4)])
        world.run("shipments")

    with world.db.connect() as connection:
        stored = connection.execute(select(schema.orders.c.shipping_address)).scalar_one()
    assert json.loads(stored)["address1"] == "12 Analytical Row"
    for secret in ("Ada Lovelace", "Analytical", "N1 9GU"):
        assert secret not in caplog.text
    assert "Analytical" not in repr(world.provider.held("shop:1001").request)


def test_the_cli_shows_fulfilments_and_lists_flagged_ones_as_held(sqlite_world: World) -> None:
    world = sqlite_world
    world.place()
    world.place("1002", (OrderLineIn("l1", "B", 1),))
    world.run("fulfil")
    world.provider.ship("shop:1001", [("A", 3), ("B", 4)], tracking="1Z999")
    world.provider.set_shipment("shop:1002", ShipmentStatus.ON_HOLD, "Address needs review")
    world.run("shipments")

    listed = invoke(world.config, "orders")
    held = invoke(world.config, "orders", "--held")
    status = invoke(world.config, "status")

    assert listed.exit_code == 0, listed.output
    assert "FULFILMENT" in listed.output
    assert "sb shipped 501 (1Z999)" in listed.output
    assert "sb on_hold 502" in listed.output
    assert held.exit_code == 0, held.output
    rows = [line for line in held.output.splitlines() if line.startswith("shop:")]
    assert len(rows) == 1 and rows[0].startswith("shop:1002")
    assert "sb on hold: Address needs review" in rows[0]
    assert status.exit_code == 0, status.output
    assert (
        "fulfilments: 0 pending, 0 sent, 1 shipped, 0 cancelled, 1 flagged "
        "(shop:1002 on_hold: Address needs review)"
    ) in status.output


def test_an_order_pull_schedules_the_fulfilment_channels_send_soon(sqlite_world: World) -> None:
    from sellable.sync.scheduler import Scheduler

    scheduler = Scheduler(sqlite_world.engine, sqlite_world.engine.settings)
    try:
        # Not started: what is added waits in APScheduler's pending list, by id.
        def waiting(job_id: str) -> bool:
            return scheduler._scheduler.get_job(job_id) is not None

        scheduler.run("sb", "stock")
        assert not waiting("sb:fulfil-soon")

        scheduler.run("sb", "orders")
        scheduler.run_soon("sb", "shipments")

        assert waiting("sb:fulfil-soon") and waiting("sb:shipments-soon")
    finally:
        scheduler.shutdown(wait=False)


def test_a_shipment_booked_before_the_count_is_not_taken_twice(sqlite_world: World) -> None:
    world = sqlite_world
    world.place()  # A 3, B 4 allocated in sb
    world.run("fulfil")
    world.provider.ship("shop:1001", [("A", 3), ("B", 4)])
    # the provider's counts already leave the shipped units out
    world.provider.counts = [
        StockCount("A", 7, warehouse="sb"),
        StockCount("B", 16, warehouse="sb"),
    ]

    result = world.run("stock")

    assert result.ok, result.describe()
    assert (result.counts["shipments_applied"], result.counts["lines_shipped"]) == (1, 2)
    assert (result.counts["movements"], result.counts["counts_deferred"]) == (0, 0)
    assert world.stock("A") == (7, 0, 0)
    assert world.stock("B") == (16, 0, 0)
    assert_ledger_balanced(world.db)


def test_a_shipment_completed_while_the_counts_are_read_is_booked_and_its_counts_wait(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    world.place()  # A 3, B 4 allocated in sb
    world.run("fulfil")
    # A was read before the shipment, B after it: which is which cannot be told
    world.provider.counts = [
        StockCount("A", 10, warehouse="sb"),
        StockCount("B", 16, warehouse="sb"),
        StockCount("A", 4, warehouse="sb2"),
    ]
    world.provider.while_counting = lambda: world.provider.ship("shop:1001", [("A", 3), ("B", 4)])

    result = world.run("stock")

    assert result.ok, result.describe()
    assert world.stock("A") == (7, 0, 0)
    assert world.stock("B") == (16, 0, 0)
    assert world.stock("A", "sb2") == (4, 0, 0)  # not shipped: written
    assert result.counts["counts_deferred"] == 2
    assert result.reports["counts_deferred"] == ["A@sb", "B@sb"]
    assert world.fulfilments()[0][:2] == ("shop:1001", "shipped")

    # the next pull writes them
    world.provider.while_counting = None
    world.provider.counts = [
        StockCount("A", 6, warehouse="sb"),
        StockCount("B", 16, warehouse="sb"),
    ]
    result = world.run("stock")
    assert (result.counts["counts_deferred"], result.counts["movements"]) == (0, 1)
    assert world.stock("A") == (6, 0, 0)
    assert world.stock("B") == (16, 0, 0)
    assert_ledger_balanced(world.db)


def test_a_count_lagging_behind_a_shipment_may_lower_on_hand_but_not_raise_it(
    sqlite_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ShipBob's inventory levels lag its orders: a count read after the shipment was booked
    that still shows the shipped units must not put them back on hand (an oversell)."""
    world = sqlite_world
    clock = [datetime(2026, 12, 7, 10, tzinfo=UTC)]
    monkeypatch.setattr(sql, "simulated_clock", lambda: clock[0])
    world.place()  # A 3, B 4 allocated in sb
    world.run("fulfil")
    world.provider.ship("shop:1001", [("A", 3), ("B", 4)])
    world.run("shipments")
    assert (world.stock("A"), world.stock("B")) == ((7, 0, 0), (16, 0, 0))
    # the provider's levels do not show the shipment yet; A also lost 2 to a breakage
    world.provider.counts = [
        StockCount("A", 8, warehouse="sb"),
        StockCount("B", 20, warehouse="sb"),
        StockCount("A", 6, warehouse="sb2"),
    ]

    result = world.run("stock")

    assert result.ok, result.describe()
    assert world.stock("A") == (7, 0, 0)  # 8 would raise it: not written
    assert world.stock("B") == (16, 0, 0)
    assert world.stock("A", "sb2") == (6, 0, 0)  # shipped nothing: written (5 -> 6)
    assert result.reports["counts_not_raised"] == ["A@sb", "B@sb"]
    # a count below ours is written at once
    world.provider.counts = [StockCount("A", 5, warehouse="sb")]
    assert world.run("stock").counts["counts_not_raised"] == 0
    assert world.stock("A") == (5, 0, 0)
    # after the lag, counts are written as they come, up or down
    clock[0] += SHIPPED_COUNT_LAG + timedelta(seconds=1)
    world.provider.counts = [
        StockCount("A", 9, warehouse="sb"),
        StockCount("B", 20, warehouse="sb"),
    ]
    result = world.run("stock")
    assert result.counts["counts_not_raised"] == 0
    assert (world.stock("A"), world.stock("B")) == ((9, 0, 0), (20, 0, 0))
    assert_ledger_balanced(world.db)


# -- webhooks of a channel without a listing refresh ------------------------------------------


def test_a_fulfilment_channel_subscribes_its_webhooks_at_start_and_every_listing_interval(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    start = datetime(2026, 12, 7, 10, tzinfo=UTC)
    clock = [start]
    engine = SyncEngine(world.db, world.engine.settings, now=lambda: clock[0])
    try:
        first = engine.run_job("sb", "shipments")
        engine.run_job("sb", "stock")
        engine.run_job("sb", "fulfil")
        clock[0] = start + timedelta(minutes=59)
        engine.run_job("sb", "shipments")
        assert (world.provider.webhook_checks, world.provider.subscribed) == (1, True)
        subscriptions = {
            "healthy": True,
            "checked_at": "2026-12-07T10:00:00+00:00",
            "active": 1,
            "created": 1,
            "repaired": 0,
            "removed": 0,
            "problem": None,
        }
        assert first.ok and first.reports["webhook_subscriptions"] == subscriptions
        assert first.counts["webhooks_active"] == 1
        (sb,) = [c for c in channel_status(engine) if c["channel"] == "sb"]
        assert sb["webhooks"]["subscriptions"] == subscriptions

        clock[0] = start + timedelta(hours=1)  # refresh_listings_every
        later = engine.run_job("sb", "stock")
        assert world.provider.webhook_checks == 2
        assert later.reports["webhook_subscriptions"]["created"] == 0
    finally:
        engine.close()
    # a restarted daemon checks them at its first run
    world.run("shipments")
    assert world.provider.webhook_checks == 3


# -- an order without a shipping address -----------------------------------------------------


def test_an_order_without_an_address_is_held_in_orders_and_status_until_a_repull_brings_one(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    world.place(address=None)
    world.place("1002", (OrderLineIn("l1", "B", 1),))
    assert world.run("fulfil").counts["no_address"] == 1

    held = invoke(world.config, "orders", "--held", "--json")
    text = invoke(world.config, "orders", "--held")
    status = invoke(world.config, "status", "--json")

    assert held.exit_code == 0, held.output
    (order,) = json.loads(held.stdout)
    assert (order["channel"], order["order_id"], order["status"]) == ("shop", "1001", "open")
    assert [(x["line_id"], x["status"]) for x in order["lines"]] == [
        ("l1", "allocated"),
        ("l2", "allocated"),
    ]
    assert order["fulfilments"] == [
        {
            "channel": "sb",
            "remote_id": None,
            "reference": None,
            "status": "no_address",
            "tracking": [],
            "reason": "no shipping address: cannot be sent to sb",
        }
    ]
    assert text.exit_code == 0, text.output
    rows = [line for line in text.output.splitlines() if line.startswith("shop:")]
    assert len(rows) == 2 and all(row.startswith("shop:1001") for row in rows)
    assert all("no shipping address: cannot be sent to sb" in row for row in rows)
    assert status.exit_code == 0, status.output
    (sb,) = [c for c in json.loads(status.stdout) if c["channel"] == "sb"]
    assert sb["fulfilments"] == {
        "pending": 0,
        "sent": 1,
        "shipped": 0,
        "cancelled": 0,
        "flagged": 0,
        "oldest_pending": None,
        "flagged_requests": [],
        "no_address": 1,
        "no_address_orders": ["shop:1001"],
    }
    assert world.fulfilments() == [("shop:1002", "sent", "501", None)]  # no row for 1001
    # the words of `status`, and the dashboard's status (channel_status) say it too
    words = invoke(world.config, "status")
    assert (
        "  fulfilments: 0 pending, 1 sent, 0 shipped, 0 cancelled, 0 flagged; 1 order(s) "
        "without a shipping address not sent (shop:1001)"
    ) in words.stdout.splitlines()
    (board,) = [c for c in channel_status(world.engine) if c["channel"] == "sb"]
    assert board["fulfilments"]["no_address_orders"] == ["shop:1001"]

    # a re-pull brings the address: sent as any other, under its plain reference
    world.place(address=ADDRESS)
    assert world.run("fulfil").counts["sent"] == 1

    assert world.provider.received == ["shop:1002", "shop:1001"]
    assert world.fulfilments()[1] == ("shop:1001", "sent", "502", None)
    held = invoke(world.config, "orders", "--held", "--json")
    assert json.loads(held.stdout) == []
    status = invoke(world.config, "status", "--json")
    (sb,) = [c for c in json.loads(status.stdout) if c["channel"] == "sb"]
    assert (sb["fulfilments"]["no_address"], sb["fulfilments"]["no_address_orders"]) == (0, [])
