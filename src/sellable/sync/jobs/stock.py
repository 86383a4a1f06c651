"""The stock job: a warehouse connector's counts arrive (the "stock count arrived" use case).

Each count is booked in the warehouse it names (``StockCount.warehouse``: Amazon's FBA
warehouse, which need not be among the channel's own), else in the channel's first
warehouse. A count naming a warehouse that is not configured is reported and skipped, so
that one bad mapping never stops the others. A 3PL's ``committed`` units beyond our own
allocations there are locked.

A fulfilment channel (``fulfil_orders``) ships from the warehouses it counts, so its counts
and its shipments must agree with our ledger: a count read after a shipment already leaves
its units out, and booking the shipment's Sale on top would take them twice. Its stock job
therefore applies the provider's shipments first (:func:`apply_shipments`, the shipments
job's poll), then reads the counts, then polls the shipments again: a shipment booked by
that second poll completed while the counts were being read, so a count of what it took
may have been read before it or after it. Those counts (the SKUs the newly booked lines
took, in that warehouse) are not written this time; the Sale is, and the next pull counts
them. Our ledger is then right either way, and a count that cannot be placed is never
guessed at.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sellable.orders.counts import CountIn, receive_stock_counts
from sellable.orders.fulfilment import Fulfilments, UpdateOutcome
from sellable.sdk import Capability
from sellable.store.sql import utcnow
from sellable.sync.jobs.base import Channel, JobResult
from sellable.sync.jobs.shipments import apply_shipments

if TYPE_CHECKING:
    from sellable.sync.engine import SyncEngine

log = logging.getLogger("sellable.sync")

#: How long after a shipment we booked a fulfilment channel's count of what it took may only
#: lower on hand: the provider's inventory levels lag its orders (ShipBob: about a minute).
SHIPPED_COUNT_LAG = timedelta(minutes=5)


def pull_stock(engine: SyncEngine, channel: Channel, result: JobResult) -> None:
    code = channel.code
    first = channel.settings.warehouses[0]
    ships = Capability.FULFIL_ORDERS in channel.connector.capabilities
    before = UpdateOutcome()
    if ships:
        before = apply_shipments(engine, channel, result.job)
        engine.notify(before.changed)
    known = engine.live.warehouse_ids
    counts: list[CountIn] = []
    unknown_warehouses: dict[str, int] = {}
    for count in channel.connector.pull_stock():
        warehouse = count.warehouse or first
        if warehouse not in known:
            unknown_warehouses[warehouse] = unknown_warehouses.get(warehouse, 0) + 1
            continue
        counts.append(
            CountIn(
                count.sku,
                warehouse,
                count.on_hand,
                reserved=count.reserved,
                committed=count.committed,
            )
        )
    if unknown_warehouses:
        described = ", ".join(
            f"{warehouse!r} ({n} count{'s' if n != 1 else ''})"
            for warehouse, n in sorted(unknown_warehouses.items())
        )
        log.warning(
            "channel=%s: stock counts for unknown warehouse(s) skipped: %s (known: %s)",
            code,
            described,
            ", ".join(known),
            extra={"channel": code, "job": result.job},
        )
    during = UpdateOutcome()
    deferred: list[str] = []
    if ships:
        during = apply_shipments(engine, channel, result.job)
        engine.notify(during.changed)
        deferred = sorted(
            {f"{c.sku}@{c.warehouse}" for c in counts if (c.sku, c.warehouse) in during.settled}
        )
        counts = [c for c in counts if (c.sku, c.warehouse) not in during.settled]
        if deferred:
            log.info(
                "channel=%s: %d count(s) not written: a shipment of theirs completed while "
                "the counts were read (its Sale is booked; the next pull counts them): %s",
                code,
                len(deferred),
                ", ".join(deferred[:20]),
                extra={"channel": code, "job": result.job},
            )
    recent: set[tuple[str, str]] = set()
    if ships:
        # ShipBob's inventory levels lag its orders (about a minute): a count read soon
        # after a shipment we booked may not show it yet, and writing it would put the
        # shipped units back on hand (an oversell). Such a count may lower on hand, never
        # raise it, until SHIPPED_COUNT_LAG has passed.
        since = utcnow() - SHIPPED_COUNT_LAG  # the clock fulfilments are stamped by
        recent = Fulfilments(engine.book).shipped_since(code, since)
    outcome = receive_stock_counts(engine.book, counts, f"stock pull {code}", no_raise=recent)
    if outcome.not_raised:
        log.info(
            "channel=%s: %d count(s) above our on hand not written: their SKU shipped in "
            "the last %s and the provider's count may not show it yet: %s",
            code,
            len(outcome.not_raised),
            SHIPPED_COUNT_LAG,
            ", ".join(outcome.not_raised[:20]),
            extra={"channel": code, "job": result.job},
        )
    retried = outcome.retried
    unknown = set(outcome.unknown_skus)
    result.counts.update(
        skus=sum(1 for c in counts if c.sku not in unknown),
        changed=outcome.created + outcome.updated,
        movements=outcome.movements,
        unknown=len(outcome.unknown_skus),
        held_lines_allocated=retried.lines_allocated,
    )
    if ships:
        result.counts.update(
            shipments_applied=before.applied + during.applied,
            lines_shipped=before.lines_shipped + during.lines_shipped,
            counts_deferred=len(deferred),
            counts_not_raised=len(outcome.not_raised),
        )
        result.reports["counts_deferred"] = deferred
        result.reports["counts_not_raised"] = outcome.not_raised
    if unknown_warehouses:
        result.counts["unknown_warehouse_counts"] = sum(unknown_warehouses.values())
    result.reports["unknown_skus"] = outcome.unknown_skus
    result.reports["unknown_warehouses"] = sorted(unknown_warehouses)
    engine.notify(outcome.changed | retried.changed_pairs)


__all__ = ["SHIPPED_COUNT_LAG", "pull_stock"]
