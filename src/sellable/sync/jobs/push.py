"""The push job: send each matched listing the quantity it should show, when it differs
from what the channel last confirmed. Reconcile (:mod:`.reconcile`) pushes the same way."""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from sellable.core.rules import Offer
from sellable.sdk import Listing, PushItem, PushStatus
from sellable.sync.jobs.base import Channel, JobResult

if TYPE_CHECKING:
    from sellable.sync.engine import SyncEngine

log = logging.getLogger("sellable.sync")


def push(engine: SyncEngine, channel: Channel, result: JobResult) -> None:
    rows, desired = engine.listings_and_offers(channel)
    push_pending(engine, channel, result, rows, desired)


def in_step(row: dict[str, Any], offer: Offer) -> bool:
    """Whether the channel last confirmed this offer: its quantity and its keep-selling flag
    (a listing pushed 0 without the flag that now wants 0 with it is pushed again)."""
    return bool(row["last_pushed"] == offer.quantity and row["last_backorders"] == offer.backorders)


def push_pending(
    engine: SyncEngine,
    channel: Channel,
    result: JobResult,
    rows: list[dict[str, Any]],
    desired: dict[str, Offer],
) -> None:
    """Push the ``rows`` whose last confirmed offer is not the ``desired`` one."""
    settings = channel.settings
    code = settings.code
    pending = [row for row in rows if not in_step(row, desired[row["listing_id"]])]
    engine.metrics.queue_depth(code, len(pending))
    result.counts.update(listings=len(rows), pending=len(pending))
    if settings.dry_run:
        for row in pending:
            offer = desired[row["listing_id"]]
            log.info(
                "channel=%s dry run: would push %s (sku %s) = %d%s (last confirmed %s)",
                code,
                row["listing_id"],
                row["sku"],
                offer.quantity,
                " and keep selling at 0" if offer.backorders else "",
                row["last_pushed"],
                extra={"channel": code, "job": result.job},
            )
        result.counts["would_push"] = len(pending)
        return
    ok = failed = retry = 0
    batch_size = max(1, channel.connector.max_push_batch)
    for start in range(0, len(pending), batch_size):
        if engine.stopping.is_set():
            result.counts["abandoned"] = len(pending) - start
            break
        batch = pending[start : start + batch_size]
        items = [push_item(row, desired[row["listing_id"]]) for row in batch]
        started = time.monotonic()
        results = {r.listing_id: r for r in channel.connector.push_quantities(items)}
        engine.metrics.push_latency(code, time.monotonic() - started)
        confirmed, refused = [], []
        for item in items:
            outcome = results.get(item.listing.listing_id)
            if outcome is None or outcome.status is PushStatus.RETRY:
                retry += 1
            elif outcome.status is PushStatus.OK:
                done: dict[str, Any] = {"lid": item.listing.listing_id, "q": item.quantity}
                if item.backorders_changed:
                    done["b"] = item.backorders
                confirmed.append(done)
                ok += 1
            else:
                refused.append(
                    {"lid": item.listing.listing_id, "e": (outcome.message or "refused")[:1000]}
                )
                failed += 1
        engine.state.record_push(code, confirmed, refused)
        engine.metrics.pushed(
            code, len(confirmed), len(refused), len(items) - len(confirmed) - len(refused)
        )
    result.counts.update(pushed=ok, failed=failed, retry=retry)
    engine.metrics.queue_depth(code, len(pending) - ok)
    if failed:
        log.warning(
            "channel=%s: %d listing(s) refused by the channel; retried next cycle",
            code,
            failed,
            extra={"channel": code, "job": result.job, "counts": {"failed": failed}},
        )


def push_item(row: dict[str, Any], offer: Offer) -> PushItem:
    """What the connector is asked for one listing row."""
    return PushItem(
        listing_of(row),
        offer.quantity,
        row["last_pushed"] if row["last_pushed"] is not None else row["channel_quantity"],
        backorders=offer.backorders,
        previous_backorders=row["last_backorders"],
    )


def listing_of(row: dict[str, Any]) -> Listing:
    """The SDK's listing from a row of the listing map."""
    return Listing(
        listing_id=row["listing_id"],
        sku=row["channel_sku"],
        parent_id=row["parent_id"],
        warehouses=tuple(row["warehouses"].split(",")) if row["warehouses"] else None,
        quantity=row["channel_quantity"],
        extra=json.loads(row["extra"]) if row["extra"] else {},
    )


__all__ = ["in_step", "listing_of", "push", "push_item", "push_pending"]
