"""A fulfilment provider in memory, and the connector that talks to it: a test double of an
external 3PL (not of our code), registered through the ``sellable.connectors`` entry point
like any plugin (see :func:`register`).

The provider keeps orders by reference, answers a duplicate reference as EXISTED, and can
be told to misbehave: lose an answer after creating the order (a timeout), crash after
creating it (a kill between sending and recording), not find an order it holds (a lagging
search), refuse an order or a cancellation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sellable.sdk import (
    CancelOutcome,
    CancelResult,
    Capability,
    Connector,
    FulfilmentPage,
    FulfilmentRequest,
    FulfilmentUpdate,
    Shipment,
    ShipmentStatus,
    StockCount,
    SubmitOutcome,
    SubmitResult,
    WebhookEvent,
    WebhookKind,
    WebhookSubscriptions,
)

NAME = "fakefulfil"


class Crash(RuntimeError):
    """The process died between sending and recording (the order reached the provider)."""


@dataclass
class HeldOrder:
    reference: str
    remote_id: str
    request: FulfilmentRequest
    updated_at: datetime
    shipments: list[Shipment] = field(default_factory=list)
    cancelled: bool = False
    picked: bool = False

    def update(self) -> FulfilmentUpdate:
        return FulfilmentUpdate(
            self.reference,
            self.remote_id,
            "Cancelled" if self.cancelled else "Processing",
            self.updated_at,
            tuple(self.shipments),
            self.cancelled,
        )


@dataclass
class Provider:
    orders: dict[str, HeldOrder] = field(default_factory=dict)
    #: Every request that reached the provider, in order (re-sends included).
    received: list[str] = field(default_factory=list)
    lose_answer: bool = False
    crash_after_send: bool = False
    drop_before_arrival: bool = False
    search_misses: bool = False
    refuse: dict[str, str] = field(default_factory=dict)
    counts: list[StockCount] = field(default_factory=list)
    #: How often our subscriptions were checked, and whether we subscribed.
    webhook_checks: int = 0
    subscribed: bool = False
    #: Runs while the counts are read (a shipment completing then; ``counts`` say which
    #: of them were read before it).
    while_counting: Callable[[], None] | None = None
    page_size: int = 100
    clock: datetime = field(default_factory=lambda: datetime(2026, 12, 7, 10, tzinfo=UTC))
    next_id: int = 500

    def tick(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def held(self, reference: str) -> HeldOrder:
        return self.orders[reference]

    def ship(
        self, reference: str, items: Sequence[tuple[str, int]], tracking: str = "TRK1"
    ) -> None:
        order = self.orders[reference]
        order.shipments.append(
            Shipment(
                f"S{len(order.shipments) + 1}",
                ShipmentStatus.COMPLETED,
                tuple(items),
                (tracking,),
            )
        )
        order.picked = True
        order.updated_at = self.tick()

    def set_shipment(self, reference: str, status: ShipmentStatus, reason: str | None) -> None:
        order = self.orders[reference]
        order.shipments = [Shipment("S1", status, (), (), reason=reason)]
        order.updated_at = self.tick()

    def cancel(self, reference: str) -> None:
        order = self.orders[reference]
        order.cancelled = True
        order.updated_at = self.tick()


#: The provider of each channel code (a test sets it up, the connector finds it).
PROVIDERS: dict[str, Provider] = {}


class FakeFulfilment(Connector):
    name = NAME
    capabilities = frozenset({Capability.FULFIL_ORDERS, Capability.PULL_STOCK})
    webhooks = True

    @property
    def provider(self) -> Provider:
        return PROVIDERS[self.context.channel]

    def webhook_url(self) -> str | None:
        return "http://127.0.0.1:9/webhooks/sb"

    def sync_webhooks(self) -> WebhookSubscriptions:
        provider = self.provider
        provider.webhook_checks += 1
        created = int(not provider.subscribed)
        provider.subscribed = True
        url = str(self.webhook_url())
        return WebhookSubscriptions(
            created=created,
            subscriptions=[{"id": "1", "topic": "order.shipped", "url": url, "status": "active"}],
        )

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        return WebhookEvent(WebhookKind.FULFILMENTS, "order.shipped", headers.get("id"))

    def pull_stock(self) -> list[StockCount]:
        provider = self.provider
        if provider.while_counting is not None:
            provider.while_counting()  # between the pages: the counts are as set up
        return list(provider.counts)

    def fulfil_orders(self, requests: Sequence[FulfilmentRequest]) -> list[SubmitResult]:
        provider = self.provider
        results = []
        for request in requests:
            provider.received.append(request.reference)
            if request.reference in provider.refuse:
                results.append(
                    SubmitResult(
                        request.reference,
                        SubmitOutcome.REFUSED,
                        message=provider.refuse[request.reference],
                    )
                )
                continue
            if provider.drop_before_arrival:
                results.append(SubmitResult(request.reference, SubmitOutcome.UNKNOWN))
                continue
            existing = provider.orders.get(request.reference)
            if existing is not None:
                results.append(
                    SubmitResult(request.reference, SubmitOutcome.EXISTED, existing.remote_id)
                )
                continue
            provider.next_id += 1
            held = HeldOrder(request.reference, str(provider.next_id), request, provider.tick())
            provider.orders[request.reference] = held
            if provider.crash_after_send:
                raise Crash("killed after the provider created the order")
            if provider.lose_answer:
                results.append(SubmitResult(request.reference, SubmitOutcome.UNKNOWN))
            else:
                results.append(
                    SubmitResult(request.reference, SubmitOutcome.CREATED, held.remote_id)
                )
        return results

    def find_fulfilments(self, references: Sequence[str]) -> dict[str, FulfilmentUpdate]:
        if self.provider.search_misses:
            return {}
        return {
            ref: self.provider.orders[ref].update()
            for ref in references
            if ref in self.provider.orders
        }

    def pull_fulfilments(self, since: datetime, cursor: str | None) -> FulfilmentPage:
        changed = sorted(
            (o for o in self.provider.orders.values() if o.updated_at >= since),
            key=lambda o: (o.updated_at, o.reference),
        )
        start = int(cursor or 0)
        page = changed[start : start + self.provider.page_size]
        more = start + self.provider.page_size < len(changed)
        return FulfilmentPage(
            [o.update() for o in page], str(start + self.provider.page_size) if more else None
        )

    def cancel_fulfilment(self, remote_id: str) -> CancelResult:
        for order in self.provider.orders.values():
            if order.remote_id == remote_id:
                if order.picked:
                    return CancelResult(remote_id, CancelOutcome.REFUSED, "already picked")
                order.cancelled = True
                order.updated_at = self.provider.tick()
                return CancelResult(remote_id, CancelOutcome.CANCELLED)
        return CancelResult(remote_id, CancelOutcome.NOT_FOUND)


def register(folder: Path) -> Iterator[None]:
    """Put an installed-looking distribution declaring the entry point on ``sys.path``."""
    import sys

    from sellable.sync.plugins import load_connector

    info = folder / "fakefulfil-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakefulfil\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        f"[sellable.connectors]\n{NAME} = tests.sync.fake_fulfilment:FakeFulfilment\n"
    )
    sys.path.insert(0, str(folder))
    load_connector.cache_clear()
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        load_connector.cache_clear()
