"""Issue 17: the ShipBob connector against its emulator at ShipBob's published limit, 150
requests a minute for the whole account, all endpoints together, in a sliding window
(https://developer.shipbob.com/rate-limiting; over it a 429 with ``x-retry-after``).

Two things, one after the other, on one connector built as the daemon builds it
(``ChannelHttp`` with the connector's declared ``rate_limit``: rate 2.45/s, burst 2):

* ``stock``: ``pull_stock()`` of ``--items`` inventory items (default 10,000), each stocked
  at the emulator's 3 fulfilment centres, mapped to 3 warehouses: ``GET
  /inventory-level/locations``, 250 items a page, so 40 requests and 30,000 counts. Every
  count is checked against what was seeded.
* ``orders``: ``fulfil_orders()`` of ``--orders`` fulfilment requests (default 1,000; each
  with a recipient and 1-3 lines, pinned to one of the 3 warehouses in turn): ``GET
  /channel`` once (no ``channel_id`` set, as in a default configuration), then one ``POST
  /order`` each, so 1,001 requests. Every order must exist in the emulator exactly once,
  at its centre, under the remote id the connector reported.

The share of the limit used = requests / (150 x elapsed minutes), elapsed measured on the
emulator's clock from its first to its last answered request of the phase; the target is
at least 95% with 0 throttled (429) answers.

The minimum time the limit allows, with the arithmetic (N requests, first to last):

* ShipBob counts any 60 s: request k may come no earlier than 60 s after request k - 150.
  A client that bursts 150 at once and then 150 every minute needs floor((N - 1) / 150) x
  60 s: 360 s for 1,001 requests, 0 s for 40 (which all fit in one window). By the measure
  above such a client scores over 100% (1,001 / (150 x 6) = 111%): the measure does not
  count the minute that the last burst still holds.
* The sustained maximum is 150 / 60 = 2.5 requests/s: (N - 1) / 2.5 s = 400 s for 1,001
  requests (share 100%), 15.6 s for 40.
* The connector's token bucket (2.45/s, burst 2) lets at most 2 + 60 x 2.45 = 149 requests
  into any 60 s, so it never meets a 429: (N - 2) / 2.45 s = 407.8 s for 1,001 requests
  from a full bucket, 408.2 s from an empty one (share 98.1%); 15.5 s for the 40 of the
  stock pull from a full one. The orders start right after the pull (an empty bucket).
  The whole run, 1,041 requests, takes at least 424 s: about 7 minutes.

The emulator runs in this process (a thread) on the real clock by default; ``--orders 100``
gives a quick run (about 1 minute). The unit test drives the same function on a
ManualClock that the HTTP client's waits advance (no sleeping).

Usage::

    .venv/bin/python benchmarks/bench_shipbob.py [--items 10000] [--orders 1000]
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sellable.config import ChannelSettings, DatabaseSettings, Settings, WarehouseSettings
from sellable.emulators.base import Clock, ManualClock
from sellable.emulators.shipbob import RATE_LIMIT, RATE_WINDOW, ShipBobEmulator, Validator
from sellable.sdk import (
    ChannelHttp,
    Connector,
    ConnectorContext,
    FulfilmentLine,
    FulfilmentRequest,
    ShippingAddress,
    StockCount,
    SubmitOutcome,
)
from sellable.sync.plugins import load_connector, validate_channel_settings

TARGET_SHARE = 0.95
CHANNEL = "shipbob"
#: The order channel the fulfilment requests come from (their references' prefix).
ORDER_CHANNEL = "shop"


def log(message: str) -> None:
    print(message, flush=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


@dataclass
class Phase:
    """One phase's requests as the emulator answered them (its clock's readings)."""

    requests: int
    throttled: int
    first: float
    last: float
    seconds: float  # wall (or manual clock) time of the whole call, setup excluded

    @property
    def span(self) -> float:
        return self.last - self.first

    @property
    def share(self) -> float:
        """requests / (limit x elapsed minutes, first to last request)."""
        if self.requests < 2 or self.span <= 0:
            return math.nan
        return self.requests / (RATE_LIMIT * self.span / RATE_WINDOW)


@dataclass
class Result:
    items: int
    orders: int
    stock: Phase
    fulfil: Phase
    #: Stock counts returned, and those that differ from the seeded figures (or are missing).
    counts: int = 0
    count_errors: list[str] = field(default_factory=list)
    #: Results by outcome, and the orders the emulator holds that break "exactly once".
    outcomes: dict[str, int] = field(default_factory=dict)
    order_errors: list[str] = field(default_factory=list)
    #: 429s the client saw (the emulator's count is in the phases).
    client_throttled: int = 0
    emulator_orders: int = 0
    #: Requests the emulator's validator refused (only when one is given: the tests').
    violations: list[tuple[str, str, list[str]]] = field(default_factory=list)

    @property
    def throttled(self) -> int:
        return self.stock.throttled + self.fulfil.throttled

    @property
    def total(self) -> Phase:
        return Phase(
            self.stock.requests + self.fulfil.requests,
            self.throttled,
            self.stock.first,
            self.fulfil.last,
            self.stock.seconds + self.fulfil.seconds,
        )


def settings_for(shipbob: ShipBobEmulator) -> Settings:
    """A configuration with one 3PL warehouse per fulfilment centre and a ShipBob channel
    mapping them (no ``channel_id``: the connector looks it up, as by default)."""
    channel = shipbob.connector_settings()
    codes = list(channel["locations"])
    return Settings(
        database=DatabaseSettings(),
        warehouses=[WarehouseSettings(code=code, kind="3pl") for code in codes],
        channels=[
            ChannelSettings(code=CHANNEL, connector="shipbob", warehouses=codes, settings=channel)
        ],
    )


def open_connector(settings: Settings, code: str, **http_options: Any) -> Connector:
    """The channel's connector as ``SyncEngine._open_channel`` builds it: the settings
    validated with the warehouses as context, a ``ChannelHttp`` at the connector's declared
    rate limit, the base URL and authentication set."""
    index, channel = next((i, c) for i, c in enumerate(settings.channels) if c.code == code)
    connector_settings = validate_channel_settings(
        index, channel, "configuration", warehouses=[w.code for w in settings.warehouses]
    )
    connector_class = load_connector(channel.connector)
    limit = connector_class.rate_limit
    http = ChannelHttp(
        code,
        rate=limit.rate if limit else None,
        burst=limit.burst if limit else 1,
        stopping=threading.Event(),
        **http_options,
    )
    connector = connector_class(
        connector_settings, ConnectorContext(code, tuple(channel.warehouses), http)
    )
    http.set_base_url(connector.base_url())
    http.authenticate = connector.authenticate
    return connector


def seeded_on_hand(index: int, location: int) -> int:
    return 50 + (index * 7 + location) % 451


def seed(shipbob: ShipBobEmulator, items: int) -> list[str]:
    """``items`` inventory items, each stocked at every fulfilment centre. Returns SKUs."""
    skus = [f"SB-{i:06d}" for i in range(items)]
    for index, sku in enumerate(skus):
        for location in shipbob.locations:
            shipbob.set_inventory(sku, location, on_hand=seeded_on_hand(index, location))
    return skus


def fulfilment_requests(
    skus: Sequence[str], warehouses: Sequence[str], n: int
) -> list[FulfilmentRequest]:
    """``n`` requests of 1-3 lines (1 or 2 units each) over the seeded SKUs, pinned to the
    warehouses in turn, each with a full recipient."""
    placed = datetime(2026, 12, 1, tzinfo=UTC)
    requests = []
    for i in range(n):
        lines = tuple(
            FulfilmentLine(
                line_id=f"{i}-{j}",
                sku=(sku := skus[(i * 3 + j * 977) % len(skus)]),
                quantity=1 + (i + j) % 2,
                components=((sku, 1 + (i + j) % 2),),
            )
            for j in range(1 + i % 3)
        )
        requests.append(
            FulfilmentRequest(
                reference=f"{ORDER_CHANNEL}:{100_000 + i}",
                order_channel=ORDER_CHANNEL,
                order_id=str(100_000 + i),
                warehouse=warehouses[i % len(warehouses)],
                recipient=ShippingAddress(
                    name=f"Customer {i}",
                    address1=f"{1 + i % 900} Main Street",
                    city="Springfield",
                    country="US",
                    state="IL",
                    zip_code=f"{62701 + i % 50:05d}",
                    email=f"customer{i}@example.com",
                ),
                lines=lines,
                created_at=placed + timedelta(seconds=i),
            )
        )
    return requests


def _phase(shipbob: ShipBobEmulator, before: tuple[int, int], seconds: float) -> Phase:
    accepted, throttled = before
    with shipbob.lock:
        times = list(shipbob.accepted_times)[accepted:]
        requests = shipbob.accepted_count - accepted
        refused = shipbob.throttled_count - throttled
    return Phase(
        requests, refused, times[0] if times else 0.0, times[-1] if times else 0.0, seconds
    )


def _mark(shipbob: ShipBobEmulator) -> tuple[int, int]:
    with shipbob.lock:
        return shipbob.accepted_count, shipbob.throttled_count


def check_counts(
    shipbob: ShipBobEmulator, settings: Settings, skus: Sequence[str], counts: Sequence[StockCount]
) -> list[str]:
    """What differs from the seeded stock: one entry per wrong, missing or extra count."""
    locations: dict[str, int] = settings.channels[0].settings["locations"]
    expected = {
        (sku, code): seeded_on_hand(index, location)
        for index, sku in enumerate(skus)
        for code, location in locations.items()
    }
    errors = []
    seen = set()
    for count in counts:
        key = (count.sku, str(count.warehouse))
        seen.add(key)
        want = expected.get(key)
        if want is None:
            errors.append(f"unexpected count {key}")
        elif count.on_hand != want or count.committed != 0:
            errors.append(
                f"{key}: on hand {count.on_hand} / committed {count.committed}, seeded {want} / 0"
            )
    errors += [f"missing count {key}" for key in expected.keys() - seen]
    return errors


def check_orders(
    shipbob: ShipBobEmulator,
    settings: Settings,
    requests: Sequence[FulfilmentRequest],
    remote_ids: dict[str, str | None],
) -> list[str]:
    """Exactly once: every request is one order of the emulator (its reference once, at its
    centre, with its units, under the reported remote id), and there is no other order."""
    locations: dict[str, int] = settings.channels[0].settings["locations"]
    errors = []
    with shipbob.lock:
        by_reference: dict[str, list[Any]] = {}
        for order in shipbob.orders.values():
            by_reference.setdefault(order.reference_id, []).append(order)
        for request in requests:
            held = by_reference.pop(request.reference, [])
            if len(held) != 1:
                errors.append(f"{request.reference}: {len(held)} orders in ShipBob")
                continue
            order = held[0]
            if str(order.id) != remote_ids.get(request.reference):
                errors.append(
                    f"{request.reference}: ShipBob order {order.id}, reported "
                    f"{remote_ids.get(request.reference)}"
                )
            if [s.location_id for s in order.shipments] != [locations[request.warehouse]]:
                errors.append(f"{request.reference}: not one shipment at {request.warehouse}")
            units = {p["reference_id"]: p["quantity"] for p in order.products}
            wanted = {line.sku: line.quantity for line in request.lines}
            if units != wanted:
                errors.append(f"{request.reference}: lines {units}, sent {wanted}")
        errors += [f"{ref}: {len(held)} orders nobody sent" for ref, held in by_reference.items()]
    return errors


def measure(
    items: int,
    orders: int,
    *,
    clock: Clock | None = None,
    validator: Validator | None = None,
    say: Callable[[str], None] = log,
) -> Result:
    """Seed the emulator, pull the stock, submit the orders; the figures and the checks.

    ``clock``: the emulator's (default the real one). A :class:`ManualClock` also paces
    the HTTP client (its waits advance it), so that a test runs in no real time."""
    shipbob = ShipBobEmulator(clock=clock, request_validator=validator)
    # The base handler sends headers and body in two writes; with Nagle's algorithm each
    # answer would wait ~40 ms for the client's delayed ACK on Linux loopback.
    shipbob._httpd.RequestHandlerClass.disable_nagle_algorithm = True  # type: ignore[attr-defined]
    shipbob.start()
    http_options: dict[str, Any] = {}
    if isinstance(clock, ManualClock):
        http_options = {"clock": clock.monotonic, "sleep": clock.advance}
    timer = clock.monotonic if clock is not None else time.perf_counter
    connector = None
    try:
        settings = settings_for(shipbob)
        skus = seed(shipbob, items)
        connector = open_connector(settings, CHANNEL, **http_options)
        say(
            f"ShipBob emulator limit: {shipbob.rate_limit} requests per {shipbob.rate_window:g} s "
            f"(sliding window); connector: {type(connector).rate_limit}; {items:,} items at "
            f"{len(shipbob.locations)} centres, {orders:,} orders"
        )

        before = _mark(shipbob)
        start = timer()
        counts = connector.pull_stock()
        stock = _phase(shipbob, before, timer() - start)
        limit = type(connector).rate_limit
        pace = limit.rate if limit else RATE_LIMIT / RATE_WINDOW
        say(
            f"stock pulled: {len(counts):,} counts in {stock.requests} requests in "
            f"{stock.seconds:.1f} s; submitting {orders:,} orders (about "
            f"{orders / pace / 60:.1f} min at the connector's pace)"
        )

        warehouses = [w.code for w in settings.warehouses]
        batch = fulfilment_requests(skus, warehouses, orders)
        before = _mark(shipbob)
        start = timer()
        results = connector.fulfil_orders(batch)
        fulfil = _phase(shipbob, before, timer() - start)

        outcomes: dict[str, int] = {}
        for submitted in results:
            outcomes[str(submitted.outcome)] = outcomes.get(str(submitted.outcome), 0) + 1
        remote_ids = {
            r.reference: r.remote_id for r in results if r.outcome is SubmitOutcome.CREATED
        }
        return Result(
            items=items,
            orders=orders,
            stock=stock,
            fulfil=fulfil,
            counts=len(counts),
            count_errors=check_counts(shipbob, settings, skus, counts),
            outcomes=outcomes,
            order_errors=check_orders(shipbob, settings, batch, remote_ids),
            client_throttled=connector.http.throttled,
            emulator_orders=len(shipbob.orders),
            violations=list(shipbob.violations),
        )
    finally:
        if connector is not None:
            connector.close()
            connector.http.close()
        shipbob.stop()


def report(result: Result, say: Callable[[str], None] = log) -> None:
    """Each figure with its target and PASS/MISS (or info)."""
    stock, fulfil, total = result.stock, result.fulfil, result.total
    pages = -(-result.items // 250)
    say(
        f"stock pull: {result.items:,} items x 3 centres -> {result.counts:,} counts "
        f"({len(result.count_errors)} wrong) in {stock.requests} requests "
        f"(expected {pages}) in {stock.seconds:.1f} s; share of the limit "
        f"{stock.share:.1%} (first to last request {stock.span:.1f} s); "
        f"429s {stock.throttled} [info]"
    )
    for problem in result.count_errors[:5]:
        say(f"  stock: {problem}")
    created = result.outcomes.get(str(SubmitOutcome.CREATED), 0)
    say(
        f"orders: {result.orders:,} submitted in {fulfil.requests} requests "
        f"(expected {result.orders + 1}: GET /channel + one POST /order each) in "
        f"{fulfil.seconds:.1f} s; outcomes {result.outcomes}"
    )
    say(
        f"orders: share of the limit {fulfil.requests} / (150 x {fulfil.span / 60:.2f} min) = "
        f"{fulfil.share:.1%} [{verdict(fulfil.share >= TARGET_SHARE)} target >= "
        f"{TARGET_SHARE:.0%}]"
    )
    say(
        f"throttled (429) answers: {result.throttled} from the emulator, "
        f"{result.client_throttled} seen by the client "
        f"[{verdict(result.throttled == 0 and result.client_throttled == 0)} target 0]"
    )
    once = not result.order_errors and created == result.orders
    say(
        f"orders created exactly once: {created:,} of {result.orders:,} created, "
        f"{result.emulator_orders:,} orders in ShipBob, {len(result.order_errors)} problems "
        f"[{verdict(once)} target {result.orders:,} / {result.orders:,} / 0]"
    )
    for problem in result.order_errors[:5]:
        say(f"  orders: {problem}")
    say(
        f"whole run: {total.requests} requests, first to last {total.span:.1f} s: share of the "
        f"limit {total.share:.1%} [info]"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000, help="inventory items (10,000)")
    parser.add_argument("--orders", type=int, default=1_000, help="orders submitted (1,000)")
    args = parser.parse_args(argv)
    if args.items < 1 or args.orders < 1:
        parser.error("--items and --orders: at least 1")
    report(measure(args.items, args.orders))
    return 0


if __name__ == "__main__":
    sys.exit(main())
