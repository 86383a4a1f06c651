"""The ShipBob connector against the ShipBob emulator on loopback (real HTTP, one manual
clock), which refuses any request that is not valid against ShipBob's spec: the SDK
contract suite, then one order's whole life (out, shipped, back), a duplicate reference,
a cancellation refused after picking, stock per centre, and the emulator's signed
webhooks verified by the connector."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sellable_shipbob.connector import ShipBobConnector

from sellable.emulators.base import ManualClock
from sellable.emulators.shipbob import ShipBobEmulator
from sellable.sdk import (
    CancelOutcome,
    FulfilmentLine,
    FulfilmentRequest,
    ShipmentStatus,
    ShippingAddress,
    StockCount,
    SubmitOutcome,
    WebhookKind,
)
from sellable.sdk.testing import ContractSetup, build_connector, connector_tests
from tests.connectors.shipbob.spec import check_request

ITEMS = 260  # two pages of inventory levels at 250
SECRET = "whsec_" + base64.b64encode(b"sellable-shipbob-test-24").decode()
ADDRESS = ShippingAddress(
    name="Ada Lovelace", address1="1 Main St", city="Chicago", country="US", state="IL"
)


def settings_of(emulator: ShipBobEmulator, **more: object) -> dict[str, object]:
    return {**emulator.connector_settings(), **more}


Connect = Callable[..., ShipBobConnector]


@pytest.fixture
def connect(clock: ManualClock) -> Iterator[Connect]:
    """Connectors on the emulator, on the test's clock; closed afterwards."""
    made: list[ShipBobConnector] = []

    def connect_(emulator: ShipBobEmulator, **more: object) -> ShipBobConnector:
        connector = build_connector(
            ShipBobConnector,
            settings_of(emulator, **more),
            channel="sb",
            warehouses=tuple(emulator.connector_settings()["locations"]),
            clock=clock.monotonic,
            sleep=clock.advance,
            backoff_base=0.0,
        )
        assert isinstance(connector, ShipBobConnector)
        made.append(connector)
        return connector

    yield connect_
    for connector in made:
        connector.http.close()


class TestShipBobContract(connector_tests(ShipBobConnector)):
    @pytest.fixture
    def contract(self) -> Iterator[ContractSetup]:
        clock = ManualClock(datetime.now(UTC))
        emulator = ShipBobEmulator(clock=clock, request_validator=check_request)
        for n in range(ITEMS):
            emulator.set_inventory(f"SB-{n:03d}", 10, on_hand=n % 7)
        warehouses = tuple(emulator.connector_settings()["locations"])
        chicago = centres(emulator)[10]  # where the SB- items are stocked
        made = iter(range(1, 1_000_000))

        def fulfilment_requests() -> list[FulfilmentRequest]:
            """Two new orders of stocked items at Chicago (references never sent)."""
            return [
                FulfilmentRequest(
                    reference=f"contract:{n}",
                    order_channel="contract",
                    order_id=str(n),
                    warehouse=chicago,
                    recipient=ADDRESS,
                    lines=(
                        FulfilmentLine("1", "SB-001", 1, (("SB-001", 1),), name="SB-001"),
                        FulfilmentLine("2", "SB-003", 2, (("SB-003", 2),), name="SB-003"),
                    ),
                )
                for n in (next(made), next(made))
            ]

        with emulator:
            yield ContractSetup(
                settings=emulator.connector_settings(),
                build=lambda settings: build_connector(
                    ShipBobConnector,
                    settings,
                    warehouses=warehouses,
                    clock=clock.monotonic,
                    sleep=clock.advance,
                    backoff_base=0.0,
                ),
                bad_settings={"kits": "explode", "api_version": "v2"},
                fulfilment_requests=fulfilment_requests,
            )
        assert emulator.violations == []


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def emulator(clock: ManualClock) -> Iterator[ShipBobEmulator]:
    server = ShipBobEmulator(clock=clock, request_validator=check_request)
    with server:
        yield server
    assert server.violations == []


def centres(emulator: ShipBobEmulator) -> dict[int, str]:
    return {loc: code for code, loc in emulator.connector_settings()["locations"].items()}


def test_stock_per_centre_comes_from_every_page(
    emulator: ShipBobEmulator, clock: ManualClock, connect: Connect
) -> None:
    codes = centres(emulator)
    chicago, moreno, bethlehem = (codes[10], codes[21], codes[30])
    emulator.set_inventory("MUG", 10, on_hand=40, awaiting=100, internal_transfer=5)
    emulator.set_inventory("MUG", 21, on_hand=12)
    for n in range(ITEMS):
        emulator.set_inventory(f"FILL-{n:03d}", 30, on_hand=1)
    shipbob = connect(emulator)
    # ShipBob commits 7 MUG at Chicago for an order that reached it some other way.
    emulator.place_order([("MUG", 7)])

    counts = {(c.sku, c.warehouse): c for c in shipbob.pull_stock()}

    assert counts[("MUG", chicago)] == StockCount("MUG", 40, warehouse=chicago, committed=7)
    assert counts[("MUG", moreno)] == StockCount("MUG", 12, warehouse=moreno, committed=0)
    assert counts[("MUG", bethlehem)] == StockCount("MUG", 0, warehouse=bethlehem, committed=0)
    assert counts[(f"FILL-{ITEMS - 1:03d}", bethlehem)].on_hand == 1
    assert len(counts) == (ITEMS + 1) * 3


def request_for(reference: str, warehouse: str) -> FulfilmentRequest:
    return FulfilmentRequest(
        reference=reference,
        order_channel="woo",
        order_id=reference.split(":")[1],
        warehouse=warehouse,
        recipient=ADDRESS,
        lines=(FulfilmentLine("1", "GIFT-BOX", 1, (("MUG", 1), ("TEA", 2)), name="Gift box"),),
    )


def test_one_order_out_is_one_shipbob_order_and_its_shipment_comes_back(
    emulator: ShipBobEmulator, clock: ManualClock, connect: Connect
) -> None:
    chicago = centres(emulator)[10]
    emulator.set_inventory("MUG", 10, on_hand=5)
    emulator.set_inventory("TEA", 10, on_hand=9)
    shipbob = connect(emulator)
    since = clock.now() - timedelta(minutes=1)

    [created] = shipbob.fulfil_orders([request_for("woo:1001", chicago)])
    [again] = shipbob.fulfil_orders([request_for("woo:1001", chicago)])  # a lost answer, resent

    assert created.outcome is SubmitOutcome.CREATED
    assert (again.outcome, again.remote_id) == (SubmitOutcome.EXISTED, created.remote_id)
    assert len(emulator.orders) == 1
    assert shipbob.find_fulfilments(["woo:1001", "woo:404"]).keys() == {"woo:1001"}

    order = emulator.orders[int(created.remote_id or 0)]
    [shipment] = order.shipments
    clock.advance(60)
    emulator.ship(shipment.id, tracking_number="9400100000000000000001")

    page = shipbob.pull_fulfilments(since, None)
    [update] = [u for u in page.updates if u.reference == "woo:1001"]
    [back] = update.shipments
    assert (back.status, sorted(back.items), back.tracking) == (
        ShipmentStatus.COMPLETED,
        [("MUG", 1), ("TEA", 2)],
        ("9400100000000000000001",),
    )
    assert page.next_cursor is None


def test_a_cancellation_after_picking_is_refused_and_before_it_is_done(
    emulator: ShipBobEmulator, clock: ManualClock, connect: Connect
) -> None:
    chicago = centres(emulator)[10]
    emulator.set_inventory("MUG", 10, on_hand=5)
    emulator.set_inventory("TEA", 10, on_hand=9)
    shipbob = connect(emulator)
    first, second = shipbob.fulfil_orders(
        [request_for("woo:1", chicago), request_for("woo:2", chicago)]
    )
    picked = emulator.orders[int(first.remote_id or 0)].shipments[0]
    emulator.pick(picked.id)

    refused = shipbob.cancel_fulfilment(first.remote_id or "")
    cancelled = shipbob.cancel_fulfilment(second.remote_id or "")

    assert refused.outcome is CancelOutcome.REFUSED
    assert refused.message
    assert cancelled.outcome is CancelOutcome.CANCELLED
    assert shipbob.cancel_fulfilment("999999").outcome is CancelOutcome.NOT_FOUND


def test_the_emulators_signed_webhooks_verify_and_poke_the_fulfilment_poll(
    emulator: ShipBobEmulator, clock: ManualClock, connect: Connect
) -> None:
    chicago = centres(emulator)[10]
    emulator.set_inventory("MUG", 10, on_hand=5)
    emulator.set_inventory("TEA", 10, on_hand=9)
    shipbob = connect(
        emulator, webhook_url="https://hooks.example.com/webhooks/sb", webhook_secret=SECRET
    )
    found = shipbob.sync_webhooks()
    assert (found.created, shipbob.sync_webhooks().created) == (1, 0)  # kept the second time
    [result] = shipbob.fulfil_orders([request_for("woo:7", chicago)])
    shipment = emulator.orders[int(result.remote_id or 0)].shipments[0]

    emulator.ship(shipment.id)

    [delivery] = list(emulator.webhooks.queue)
    headers = {k.lower(): v for k, v in delivery.headers.items()}
    event = shipbob.verify_webhook(headers, delivery.body)
    assert (event.kind, event.topic, event.dedupe_key) == (
        WebhookKind.FULFILMENTS,
        "order.shipped",
        headers["webhook-id"],
    )
