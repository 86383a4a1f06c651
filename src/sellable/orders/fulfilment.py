"""Orders sent out to a fulfilment channel (a 3PL), and its shipments coming back.

The order book's side of :mod:`sellable.sdk._fulfilment`. The ``fulfilments`` table holds
one row per request (an order's lines allocated in one of the provider's warehouses):

- :meth:`Fulfilments.due` finds the allocated lines no request covers yet, grouped per
  (order, warehouse), each line with what its allocation took there per SKU;
- :meth:`Fulfilments.write_pending` records them (status ``pending``) *before* they are
  sent, so a crash between sending and recording leaves a row that recovery looks up;
- :meth:`Fulfilments.record_results` records the provider's answers;
- :meth:`Fulfilments.apply_update` applies a provider's order as it is now: a completed
  shipment books the Sale of the lines it carries (the order book's Sale path, so costing
  runs), a cancelled one releases them, an exception or a hold flags the request with the
  provider's reason. Applying the same update twice, or an older one after a newer one,
  changes nothing: shipped and cancelled are final.

Usage::

    fulfilments = Fulfilments(book)
    requests = fulfilments.due("sb", ["sb-chicago"])
    fulfilments.write_pending("sb", requests)
    fulfilments.record_results("sb", connector.fulfil_orders(requests))
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, update

from sellable.errors import InputError
from sellable.orders.book import OrderBook
from sellable.orders.model import LineStatus, OrderKey, OrderStatus
from sellable.orders.persistence import address_of
from sellable.sdk._fulfilment import (
    CancelOutcome,
    CancelResult,
    FulfilmentLine,
    FulfilmentRequest,
    FulfilmentUpdate,
    ShipmentStatus,
    SubmitOutcome,
    SubmitResult,
)
from sellable.store import ledger, schema
from sellable.store.db import writing
from sellable.store.schema import FLAGGED_FULFILMENTS
from sellable.store.sql import chunked, one_of, utcnow

#: Statuses a fulfilment never leaves.
FINAL = frozenset({"shipped", "cancelled"})
#: Statuses of a request the provider holds, which a cancellation on the sales channel
#: cancels at the provider.
CANCELLABLE = frozenset({"sent", "exception", "on_hold", "cancel_requested"})


@dataclass(frozen=True, slots=True)
class SentLine:
    """One line of a request as stored (``fulfilments.lines``)."""

    line_id: str
    sku: str
    quantity: int
    components: tuple[tuple[str, int], ...]
    shipped: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "line_id": self.line_id,
            "sku": self.sku,
            "quantity": self.quantity,
            "components": [list(pair) for pair in self.components],
            "shipped": self.shipped,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SentLine:
        return cls(
            str(data["line_id"]),
            str(data["sku"]),
            int(data["quantity"]),
            tuple((str(sku), int(n)) for sku, n in data.get("components", ())),
            bool(data.get("shipped", False)),
        )

    def request_line(self) -> FulfilmentLine:
        return FulfilmentLine(self.line_id, self.sku, self.quantity, self.components)


def lines_text(lines: Iterable[SentLine]) -> str:
    return json.dumps([line.to_json() for line in lines], sort_keys=True)


def lines_of(text: str) -> list[SentLine]:
    return [SentLine.from_json(item) for item in json.loads(text)]


@dataclass(slots=True)
class Due:
    """What :meth:`Fulfilments.due` found: the requests to send, and the orders that
    cannot be sent (no shipping address), as ``"<channel>:<order id>"``."""

    requests: list[FulfilmentRequest] = field(default_factory=list)
    no_address: list[str] = field(default_factory=list)
    #: The stored ids of the orders in ``no_address``, in the same order.
    no_address_ids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class UpdateOutcome:
    """What applying provider updates did."""

    applied: int = 0
    unchanged: int = 0
    not_ours: int = 0
    stale: int = 0
    lines_shipped: int = 0
    lines_released: int = 0
    flagged: int = 0
    mismatches: list[str] = field(default_factory=list)
    changed: set[tuple[str, str]] = field(default_factory=set)
    #: The (SKU, warehouse) pairs whose stock a booked Sale or a release moved (what the
    #: lines took there): a stock count read while they shipped is ambiguous for them.
    settled: set[tuple[str, str]] = field(default_factory=set)

    def counts(self) -> dict[str, int]:
        return {
            "applied": self.applied,
            "unchanged": self.unchanged,
            "not_ours": self.not_ours,
            "stale": self.stale,
            "lines_shipped": self.lines_shipped,
            "lines_released": self.lines_released,
            "flagged": self.flagged,
            "mismatches": len(self.mismatches),
        }


def _match(lines: list[SentLine], pool: Counter[str]) -> list[str]:
    """The unshipped lines the units in ``pool`` cover whole (a line is covered by its
    allocated components, or by its own SKU when the provider kept a bundle whole), in
    order; what they cover is taken out of ``pool``."""
    covered = []
    for line in lines:
        if line.shipped:
            continue
        for want in (Counter(dict(line.components)), Counter({line.sku: line.quantity})):
            if want and all(pool[sku] >= n for sku, n in want.items()):
                pool.subtract(want)
                covered.append(line.line_id)
                break
    return covered


def _taken(line: SentLine, pool: Counter[str]) -> None:
    """Take a line shipped earlier out of ``pool`` (what it took then)."""
    components = Counter(dict(line.components))
    if components and all(pool[sku] >= n for sku, n in components.items()):
        pool.subtract(components)
    else:
        pool.subtract(Counter({line.sku: line.quantity}))


class Fulfilments:
    """The ``fulfilments`` rows of the fulfilment channels, and their effect on orders."""

    def __init__(self, book: OrderBook) -> None:
        self.book = book
        self.engine = book.engine
        self.live = book.live

    # -- sending --------------------------------------------------------------------------------

    def due(self, channel: str, warehouses: Sequence[str]) -> Due:
        """The requests to send for the lines allocated in ``warehouses`` (the channel's
        3PL warehouses) that no request covers yet (a cancelled request covers nothing):
        one per (order, warehouse), open orders only, oldest order first.

        A reference is ``"<order channel>:<order id>"``; when the order has more than one
        request at this channel (two of its warehouses, or lines added later), each gets
        ``":<n>"``, numbered in the order they are made (stored, so stable)."""
        live = self.live
        ids = [live.warehouse_ids[w] for w in warehouses if w in live.warehouse_ids]
        found = Due()
        if not ids:
            return found
        o, ol, la = schema.orders.c, schema.order_lines.c, schema.line_allocations.c
        f = schema.fulfilments.c
        position = {wid: index for index, wid in enumerate(ids)}
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(
                    o.id,
                    o.channel,
                    o.external_id,
                    o.shipping_address,
                    o.created_at,
                    ol.line_key,
                    ol.sku,
                    ol.quantity,
                    ol.allocated_in,
                    la.warehouse_id,
                    la.sku_id,
                    la.quantity,
                )
                .join(schema.order_lines, ol.id == la.line_id)
                .join(schema.orders, o.id == ol.order_id)
                .where(one_of(connection, la.warehouse_id, ids))
                .where(ol.status == LineStatus.ALLOCATED.value)
                .where(o.status == OrderStatus.OPEN.value)
                .order_by(o.created_at.is_(None), o.created_at, o.id, ol.id, la.sku_id)
            ).all()
            order_ids = sorted({row[0] for row in rows})
            covered: set[tuple[int, int, str]] = set()
            made: Counter[int] = Counter()
            for chunk in chunked(order_ids, 2000):
                for oid, wid, channel_code, status, text in connection.execute(
                    select(f.order_id, f.warehouse_id, f.channel, f.status, f.lines).where(
                        one_of(connection, f.order_id, chunk)
                    )
                ):
                    if channel_code == channel:
                        made[oid] += 1
                    if status == "cancelled":
                        # Allocated again after a cancellation (the provider cancelled, the
                        # order is still open on its channel): a new request.
                        continue
                    covered.update((oid, wid, line.line_id) for line in lines_of(text))
        groups: dict[tuple[int, int], dict[str, Any]] = {}
        for (
            oid,
            order_channel,
            external_id,
            address,
            created_at,
            key,
            sku,
            quantity,
            allocated_in,
            wid,
            sku_id,
            units,
        ) in rows:
            if (oid, wid, key) in covered:
                continue
            group = groups.setdefault(
                (oid, wid),
                {
                    "order": (order_channel, external_id, address, created_at),
                    "lines": {},
                },
            )
            line = group["lines"].setdefault(
                key,
                {
                    "sku": sku,
                    "quantity": _units_in(allocated_in, live.warehouse_codes[wid], quantity),
                    "components": Counter(),
                },
            )
            line["components"][live.code(sku_id)] += units
        by_order: dict[int, list[int]] = {}
        for oid, wid in groups:
            by_order.setdefault(oid, []).append(wid)
        for oid, wids in by_order.items():
            wids.sort(key=lambda w: position[w])
            numbered = made[oid] > 0 or len(wids) > 1
            for index, wid in enumerate(wids):
                group = groups[(oid, wid)]
                order_channel, external_id, address, created_at = group["order"]
                base = f"{order_channel}:{external_id}"
                recipient = address_of(address)
                if recipient is None:
                    if base not in found.no_address:
                        found.no_address.append(base)
                        found.no_address_ids.append(oid)
                    continue
                reference = f"{base}:{made[oid] + index + 1}" if numbered else base
                found.requests.append(
                    FulfilmentRequest(
                        reference=reference,
                        order_channel=order_channel,
                        order_id=external_id,
                        warehouse=live.warehouse_codes[wid],
                        recipient=recipient,
                        lines=tuple(
                            FulfilmentLine(
                                key,
                                line["sku"],
                                line["quantity"],
                                tuple(sorted(line["components"].items())),
                            )
                            for key, line in group["lines"].items()
                        ),
                        created_at=created_at,
                    )
                )
        return found

    def without_address(self, served: Mapping[str, Sequence[str]]) -> dict[int, list[str]]:
        """Of the fulfilment channels ``served`` (code -> its 3PL warehouses), the open
        orders with lines allocated there that cannot be sent for want of a shipping
        address: order id -> the channels. Nothing is recorded: once a re-pull brings the
        address, the fulfil job sends them as any other."""
        found: dict[int, list[str]] = {}
        for channel, warehouses in served.items():
            for oid in self.due(channel, warehouses).no_address_ids:
                found.setdefault(oid, []).append(channel)
        return found

    def write_pending(self, channel: str, requests: Sequence[FulfilmentRequest]) -> None:
        """Record ``requests`` as pending, before they are sent (one transaction)."""
        if not requests:
            return
        now = utcnow()
        live = self.live
        o = schema.orders.c

        def run() -> None:
            with writing(self.engine) as connection:
                rows = []
                for request in requests:
                    order_id = connection.execute(
                        select(o.id).where(
                            (o.channel == request.order_channel)
                            & (o.external_id == request.order_id)
                        )
                    ).scalar_one()
                    rows.append(
                        {
                            "channel": channel,
                            "order_id": order_id,
                            "warehouse_id": live.warehouse_ids[request.warehouse],
                            "reference": request.reference,
                            "status": "pending",
                            "lines": lines_text(
                                SentLine(x.line_id, x.sku, x.quantity, x.components)
                                for x in request.lines
                            ),
                            "attempts": 1,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
                connection.execute(schema.fulfilments.insert(), rows)

        ledger.retrying(run)

    def shipped_since(self, channel: str, since: datetime) -> set[tuple[str, str]]:
        """The (SKU, warehouse code) pairs whose units the channel's shipments booked as sold
        since ``since`` (a shipped line's components, else its SKU)."""
        f = schema.fulfilments.c
        pairs: set[tuple[str, str]] = set()
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(f.warehouse_id, f.lines).where(
                    (f.channel == channel)
                    & (f.updated_at >= since)
                    & f.status.in_(("shipped", "partially_shipped"))
                )
            )
            for warehouse_id, text in rows:
                warehouse = self.live.warehouse_codes.get(warehouse_id)
                if warehouse is None:
                    continue
                for line in lines_of(text):
                    if line.shipped:
                        skus = [sku for sku, _ in line.components] or [line.sku]
                        pairs.update((sku, warehouse) for sku in skus)
        return pairs

    def pending(self, channel: str) -> list[dict[str, Any]]:
        """The channel's pending requests (sent, no answer recorded), oldest first."""
        f = schema.fulfilments.c
        with self.engine.connect() as connection:
            return [
                dict(row._mapping)
                for row in connection.execute(
                    select(f.id, f.reference, f.order_id, f.attempts, f.created_at, f.warehouse_id)
                    .where((f.channel == channel) & (f.status == "pending"))
                    .order_by(f.id)
                )
            ]

    def requests_for(self, channel: str, references: Sequence[str]) -> list[FulfilmentRequest]:
        """The stored pending requests ``references``, rebuilt to be sent again (their
        orders still open; the lines as first recorded)."""
        f, o = schema.fulfilments.c, schema.orders.c
        found = []
        with self.engine.connect() as connection:
            for chunk in chunked(list(references), 2000):
                for (
                    reference,
                    warehouse_id,
                    text,
                    order_channel,
                    external_id,
                    address,
                    at,
                ) in connection.execute(
                    select(
                        f.reference,
                        f.warehouse_id,
                        f.lines,
                        o.channel,
                        o.external_id,
                        o.shipping_address,
                        o.created_at,
                    )
                    .join(schema.orders, o.id == f.order_id)
                    .where((f.channel == channel) & one_of(connection, f.reference, chunk))
                    .where(o.status == OrderStatus.OPEN.value)
                    .order_by(f.id)
                ):
                    recipient = address_of(address)
                    if recipient is None:
                        continue
                    found.append(
                        FulfilmentRequest(
                            reference=reference,
                            order_channel=order_channel,
                            order_id=external_id,
                            warehouse=self.live.warehouse_codes[warehouse_id],
                            recipient=recipient,
                            lines=tuple(line.request_line() for line in lines_of(text)),
                            created_at=at,
                        )
                    )
        return found

    def record_results(self, channel: str, results: Iterable[SubmitResult]) -> dict[str, int]:
        """Record the provider's answers: created or existed -> sent (with its order id);
        refused -> flagged with the message; no answer -> stays pending (looked up before
        it is sent again). Returns counts per outcome."""
        counts: Counter[str] = Counter()
        now = utcnow()
        f = schema.fulfilments
        with writing(self.engine) as connection:
            for result in results:
                counts[result.outcome.value] += 1
                where = (f.c.channel == channel) & (f.c.reference == result.reference)
                where &= f.c.status == "pending"
                if result.outcome in (SubmitOutcome.CREATED, SubmitOutcome.EXISTED):
                    values: dict[str, Any] = {
                        "status": "sent",
                        "remote_id": result.remote_id,
                        "sent_at": now,
                        "reason": None,
                    }
                elif result.outcome is SubmitOutcome.REFUSED:
                    values = {"status": "refused", "reason": _clip(result.message or "refused")}
                else:
                    values = {"reason": _clip(result.message) if result.message else None}
                connection.execute(update(f).where(where).values(updated_at=now, **values))
        return dict(counts)

    def mark_found(self, channel: str, found: dict[str, FulfilmentUpdate]) -> None:
        """Pending requests the provider turned out to hold (looked up by reference):
        sent, never sent again."""
        if not found:
            return
        now = utcnow()
        f = schema.fulfilments
        with writing(self.engine) as connection:
            for reference, held in found.items():
                connection.execute(
                    update(f)
                    .where(
                        (f.c.channel == channel)
                        & (f.c.reference == reference)
                        & (f.c.status == "pending")
                    )
                    .values(status="sent", remote_id=held.remote_id, sent_at=now, updated_at=now)
                )

    def count_attempt(self, channel: str, references: Sequence[str]) -> None:
        """Pending requests sent once more (after a lookup found nothing)."""
        f = schema.fulfilments
        with writing(self.engine) as connection:
            for chunk in chunked(list(references), 2000):
                connection.execute(
                    update(f)
                    .where((f.c.channel == channel) & one_of(connection, f.c.reference, chunk))
                    .values(attempts=f.c.attempts + 1, updated_at=utcnow())
                )

    def abandon(self, channel: str, references: Sequence[str], reason: str) -> None:
        """Pending requests never to be sent (their order was cancelled, or is gone before
        the provider got it): cancelled."""
        f = schema.fulfilments
        with writing(self.engine) as connection:
            for chunk in chunked(list(references), 2000):
                connection.execute(
                    update(f)
                    .where(
                        (f.c.channel == channel)
                        & one_of(connection, f.c.reference, chunk)
                        & (f.c.status == "pending")
                    )
                    .values(status="cancelled", reason=reason, updated_at=utcnow())
                )

    def resend_refused(self, orders: Sequence[str] | None) -> list[dict[str, Any]]:
        """The requests the provider refused (an address or a SKU it did not accept), of the
        ``orders`` named ``"<channel>:<order id>"`` (None: of every order), withdrawn so
        that the next send makes a new request for their lines, with the order's address
        as it is then (``sellable resend``, once the cause is fixed). A withdrawn request is
        ``cancelled`` (it never reached the provider), its reason saying so, and the new
        one gets the next numbered reference (``<channel>:<order id>:<n>``), which the
        provider has never seen. Nothing else moves: the lines stay allocated.

        Returns what was withdrawn: ``[{"order", "channel", "reference", "reason"}]``
        (``reason``: the provider's refusal). A named order that is unknown or has no
        refused request is an :class:`InputError` and nothing is written."""
        f, o = schema.fulfilments.c, schema.orders.c
        wanted = None if orders is None else list(dict.fromkeys(orders))
        with writing(self.engine) as connection:
            query = (
                select(f.id, o.channel, o.external_id, f.channel, f.reference, f.reason)
                .join(schema.orders, o.id == f.order_id)
                .where(f.status == "refused")
                .order_by(f.id)
            )
            found: list[dict[str, Any]] = []
            ids: list[int] = []
            for fid, order_channel, external_id, channel, reference, reason in connection.execute(
                query
            ):
                key = f"{order_channel}:{external_id}"
                if wanted is not None and key not in wanted:
                    continue
                ids.append(fid)
                found.append(
                    {"order": key, "channel": channel, "reference": reference, "reason": reason}
                )
            if wanted is not None:
                listed = {row["order"] for row in found}
                missing = [key for key in wanted if key not in listed]
                if missing:
                    raise InputError(
                        "nothing refused to send again for "
                        + ", ".join(missing)
                        + " (an order is named <channel>:<order id>, as `sellable orders "
                        "--held` lists it; only a request the provider refused is sent again)"
                    )
            now = utcnow()
            for row, fid in zip(found, ids, strict=True):
                connection.execute(
                    update(schema.fulfilments)
                    .where((f.id == fid) & (f.status == "refused"))
                    .values(
                        status="cancelled",
                        reason=_clip(f"refused, sent again on request: {row['reason'] or ''}"),
                        updated_at=now,
                    )
                )
        return found

    # -- cancelling -----------------------------------------------------------------------------

    def to_cancel(self, channel: str) -> list[dict[str, Any]]:
        """Requests the provider holds whose order was cancelled on its sales channel (or
        every line they carry was): ``[{"reference", "remote_id", "order"}]``."""
        f, o = schema.fulfilments.c, schema.orders.c
        ol = schema.order_lines.c
        found = []
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(
                    f.reference,
                    f.remote_id,
                    f.lines,
                    f.order_id,
                    o.channel,
                    o.external_id,
                    o.status,
                )
                .join(schema.orders, o.id == f.order_id)
                .where((f.channel == channel) & f.status.in_(sorted(CANCELLABLE)))
                .where(f.remote_id.is_not(None))
                .order_by(f.id)
            ).all()
            for reference, remote_id, text, oid, order_channel, external_id, status in rows:
                if status != OrderStatus.CANCELLED.value:
                    keys = [line.line_id for line in lines_of(text)]
                    states = {
                        s
                        for (s,) in connection.execute(
                            select(ol.status).where((ol.order_id == oid) & ol.line_key.in_(keys))
                        )
                    }
                    if not states or states != {LineStatus.CANCELLED.value}:
                        continue
                found.append(
                    {
                        "reference": reference,
                        "remote_id": remote_id,
                        "order": f"{order_channel}:{external_id}",
                    }
                )
        return found

    def mark_cancel_requested(self, channel: str, reference: str) -> None:
        self._set(channel, reference, status="cancel_requested")

    def record_cancel(self, channel: str, reference: str, order: str, result: CancelResult) -> str:
        """Record the provider's answer to a cancellation; returns the new status."""
        if result.outcome is CancelOutcome.REFUSED:
            status = "cancel_refused"
            reason = (
                f"cancelled on its sales channel ({order}), but the fulfilment channel "
                f"refused to cancel: {result.message or 'no reason given'}; our allocation "
                "was released, the provider may still ship it"
            )
        else:
            status = "cancelled"
            reason = (
                "cancelled on its sales channel"
                if result.outcome is CancelOutcome.CANCELLED
                else "cancelled on its sales channel (the provider did not have it)"
            )
        self._set(channel, reference, status=status, reason=_clip(reason))
        return status

    def _set(self, channel: str, reference: str, **values: Any) -> None:
        f = schema.fulfilments
        with writing(self.engine) as connection:
            connection.execute(
                update(f)
                .where((f.c.channel == channel) & (f.c.reference == reference))
                .values(updated_at=utcnow(), **values)
            )

    # -- shipments back -------------------------------------------------------------------------

    def apply_updates(
        self, channel: str, updates: Iterable[FulfilmentUpdate], provider: str | None = None
    ) -> UpdateOutcome:
        """Apply the provider's orders as they are now (see the module's docstring)."""
        outcome = UpdateOutcome()
        for item in updates:
            with self.live.lock:
                self.live.refresh()
                ledger.retrying(self._apply_one, channel, item, outcome, provider or channel)
        return outcome

    def _apply_one(
        self, channel: str, item: FulfilmentUpdate, outcome: UpdateOutcome, provider: str
    ) -> None:
        f = schema.fulfilments
        o = schema.orders.c
        with writing(self.engine) as connection:
            query = (
                select(
                    f.c.id,
                    f.c.status,
                    f.c.lines,
                    f.c.warehouse_id,
                    f.c.remote_updated_at,
                    f.c.remote_id,
                    o.channel,
                    o.external_id,
                )
                .join(schema.orders, o.id == f.c.order_id)
                .where((f.c.channel == channel) & (f.c.reference == item.reference))
            )
            if connection.dialect.name == "postgresql":
                query = query.with_for_update(of=f)
            row = connection.execute(query).first()
            if row is None:
                outcome.not_ours += 1
                return
            fid, status, text, warehouse_id, seen_at, remote_id, order_channel, external = row
            at = as_utc(item.updated_at)
            if seen_at is not None and at < as_utc(seen_at):
                outcome.stale += 1
                return
            if status in FINAL:
                outcome.unchanged += 1
                return
            lines = lines_of(text)
            warehouse = self.live.warehouse_codes[warehouse_id]
            order = OrderKey(order_channel, external)
            shipments = item.shipments
            completed = [s for s in shipments if s.status is ShipmentStatus.COMPLETED]
            pool: Counter[str] = Counter()
            for shipment in completed:
                pool.update(dict(_summed(shipment.items)))
            for line in lines:
                if line.shipped:
                    _taken(line, pool)
            newly = _match(lines, pool)
            leftover = {sku: n for sku, n in pool.items() if n > 0}
            # Cancelled: the whole order, or every shipment ended and one was cancelled
            # (what none of them carries will not ship).
            ended = (ShipmentStatus.COMPLETED, ShipmentStatus.CANCELLED)
            cancelled = item.cancelled or (
                bool(shipments)
                and all(s.status in ended for s in shipments)
                and any(s.status is ShipmentStatus.CANCELLED for s in shipments)
            )
            tracking = sorted({t for s in completed for t in s.tracking})
            reason: str | None = None
            ship = list(newly)
            lines = [
                SentLine(x.line_id, x.sku, x.quantity, x.components, x.shipped or x.line_id in ship)
                for x in lines
            ]
            release: list[str] = []
            all_shipped = all(x.shipped for x in lines)
            any_shipped = any(x.shipped for x in lines)
            if all_shipped:
                new_status = "shipped"
            elif cancelled:
                release = [x.line_id for x in lines if not x.shipped]
                new_status = "shipped" if any_shipped else "cancelled"
                reason = f"cancelled by the fulfilment channel {provider}"
            else:
                flag = next(
                    (
                        s
                        for s in shipments
                        if s.status in (ShipmentStatus.EXCEPTION, ShipmentStatus.ON_HOLD)
                    ),
                    None,
                )
                if flag is not None and status not in ("cancel_refused", "cancel_requested"):
                    new_status = flag.status.value
                    reason = flag.reason or f"{flag.status.value.replace('_', ' ')} at {provider}"
                elif any_shipped:
                    new_status = "partially_shipped"
                elif status in ("pending", "exception", "on_hold"):
                    new_status = "sent"
                else:
                    new_status = status
            if leftover:
                described = ", ".join(f"{sku}×{n}" for sku, n in sorted(leftover.items()))
                mismatch = (
                    f"{item.reference}: shipped units not matching the lines sent: {described}"
                )
                outcome.mismatches.append(mismatch)
                if reason is None and new_status != "shipped":
                    reason = mismatch
            if ship or release:
                booked = self.book.settle_lines(
                    connection,
                    order,
                    warehouse,
                    ship=ship,
                    release=release,
                    reason=reason,
                    reference=f"order {order_channel}:{external} ({item.reference} via {provider})",
                )
                outcome.lines_shipped += booked.lines_shipped
                outcome.lines_released += booked.lines_cancelled
                outcome.changed |= booked.changed_pairs
                for line in lines:
                    if line.line_id in ship or line.line_id in release:
                        taken = line.components or ((line.sku, line.quantity),)
                        outcome.settled.update((sku, warehouse) for sku, _n in taken)
            if new_status in FLAGGED_FULFILMENTS and new_status != status:
                outcome.flagged += 1
            values: dict[str, Any] = {
                "status": new_status,
                "lines": lines_text(lines),
                "remote_updated_at": at,
                "remote_id": remote_id or item.remote_id,
                "updated_at": utcnow(),
            }
            if reason is not None or new_status in ("sent", "shipped", "partially_shipped"):
                values["reason"] = reason
            if tracking:
                values["tracking"] = json.dumps(tracking)
            changed = new_status != status or bool(ship or release) or tracking
            connection.execute(update(f).where(f.c.id == fid).values(**values))
            if changed:
                outcome.applied += 1
            else:
                outcome.unchanged += 1


#: The status ``orders`` shows for a fulfilment that cannot be made: the order has no
#: shipping address (no row is written, so nothing is consumed).
NO_ADDRESS = "no_address"


def no_address_reason(channel: str) -> str:
    return f"no shipping address: cannot be sent to {channel}"


def fulfilments_by_order(
    connection: Connection,
    order_ids: Sequence[int],
    no_address: Mapping[int, Sequence[str]] | None = None,
) -> dict[int, list[dict[str, Any]]]:
    """The fulfilments of these orders (``orders --json``), in the order they were made;
    then, for an order in ``no_address`` (:meth:`Fulfilments.without_address`), one with
    status ``no_address`` per fulfilment channel it cannot be sent to."""
    f = schema.fulfilments.c
    found: dict[int, list[dict[str, Any]]] = {}
    for chunk in chunked(list(order_ids), 2000):
        for oid, channel, remote_id, reference, status, tracking, reason in connection.execute(
            select(f.order_id, f.channel, f.remote_id, f.reference, f.status, f.tracking, f.reason)
            .where(one_of(connection, f.order_id, chunk))
            .order_by(f.id)
        ):
            found.setdefault(oid, []).append(
                {
                    "channel": channel,
                    "remote_id": remote_id,
                    "reference": reference,
                    "status": status,
                    "tracking": json.loads(tracking) if tracking else [],
                    "reason": reason,
                }
            )
    for oid in order_ids:
        for channel in (no_address or {}).get(oid, ()):
            found.setdefault(oid, []).append(
                {
                    "channel": channel,
                    "remote_id": None,
                    "reference": None,
                    "status": NO_ADDRESS,
                    "tracking": [],
                    "reason": no_address_reason(channel),
                }
            )
    return found


def _summed(items: Iterable[tuple[str, int]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for sku, n in items:
        total[sku] += n
    return total


def _units_in(allocated_in: str | None, warehouse: str, quantity: int) -> int:
    """The line's units allocated in ``warehouse`` (``allocated_in`` "main=3;sb=2")."""
    for part in (allocated_in or "").split(";"):
        code, _, units = part.partition("=")
        if code == warehouse and units.isdigit():
            return int(units)
    return quantity


def as_utc(moment: datetime) -> datetime:
    """A stored or provider time without a zone is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:1000]


__all__ = [
    "CANCELLABLE",
    "FINAL",
    "NO_ADDRESS",
    "Due",
    "Fulfilments",
    "SentLine",
    "UpdateOutcome",
    "fulfilments_by_order",
    "no_address_reason",
]
