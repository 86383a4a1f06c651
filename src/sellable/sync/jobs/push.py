"""The push job: send each matched listing the quantity it should show, when it differs
from what the channel last confirmed. Reconcile (:mod:`.reconcile`) pushes the same way."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sellable.core.rules import Offer
from sellable.sdk import Connector, Listing, PushesInFlight, PushItem, PushStatus
from sellable.sync.bulk import collection_paused
from sellable.sync.jobs.base import Channel, JobResult

if TYPE_CHECKING:
    from sellable.sync.engine import SyncEngine

log = logging.getLogger("sellable.sync")


def push(engine: SyncEngine, channel: Channel, result: JobResult) -> None:
    with whole_job_paused(channel):
        _push(engine, channel, result)


def _push(engine: SyncEngine, channel: Channel, result: JobResult) -> None:
    rows, desired = engine.listings_and_offers(channel)
    push_pending(engine, channel, result, rows, desired)


def confirms_later(channel: Channel) -> bool:
    """Whether the channel's connector confirms pushes later
    (:meth:`~sellable.sdk.Connector.pushes_in_flight`): its push only submits."""
    return type(channel.connector).pushes_in_flight is not Connector.pushes_in_flight


def whole_job_paused(channel: Channel) -> AbstractContextManager[None]:
    """Collection paused for a whole push job of a channel that confirms later: its job is
    work on 100,000 rows in memory and a few requests (getFeed polls, processing reports,
    feed submissions, each of which is paused anyway), and collection resumed between its
    steps traversed the rows it still held. Measured with benchmarks/run.py --only
    amazon-100k: the 4 feeds were created 0.99-1.15 s into the push instead of
    1.19-1.36 s. Called around a function whose locals hold the rows, so that they are
    freed before collection resumes. (Not the reconcile: its read-back may take thousands
    of requests, and pausing it whole gained nothing measurable.)"""
    return collection_paused() if confirms_later(channel) else nullcontext()


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
    listings: Mapping[str, Listing] | None = None,
) -> None:
    """Push the ``rows`` whose last confirmed offer is not the ``desired`` one.

    ``listings``: SDK listings already built from these rows (the reconcile's read-back),
    reused where the row still reads the same (see :func:`push_item`)."""
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
    # Collection is paused while the items and outcomes of a bulk push are built and
    # recorded, not while the connector sends them (see sellable.sync.bulk) -- unless it
    # confirms later: its push only submits (Amazon: up to 5 feeds of 3 requests), and the
    # collection deferred while 100,000 items were built would otherwise run (0.2 s and
    # more) between the last item and the last feed. Its pushes_in_flight is paused too:
    # a few getFeed polls, then the finished feeds' processing reports parsed into as many
    # outcomes (a request the client retries can make that pause last longer; reference
    # counting still frees everything but cycles meanwhile).
    with collection_paused():
        in_flight = channel.connector.pushes_in_flight()
        ok, failed, retry, to_send = settle_in_flight(
            engine, channel, rows, desired, pending, in_flight
        )
    submits_only = in_flight is not None
    batch_size = max(1, channel.connector.max_push_batch)
    built = listings or {}
    for start in range(0, len(to_send), batch_size):
        if engine.stopping.is_set():
            result.counts["abandoned"] = len(to_send) - start
            break
        batch = to_send[start : start + batch_size]
        with collection_paused():
            items = [
                push_item(row, desired[row["listing_id"]], built.get(row["listing_id"]))
                for row in batch
            ]
        started = time.monotonic()
        with collection_paused() if submits_only else nullcontext():
            pushed = channel.connector.push_quantities(items)
        engine.metrics.push_latency(code, time.monotonic() - started)
        with collection_paused():
            results = {r.listing_id: r for r in pushed}
            confirmed, refused = [], []
            for row, item in zip(batch, items, strict=True):
                outcome = results.get(item.listing.listing_id)
                if outcome is None or outcome.status is PushStatus.RETRY:
                    retry += 1
                elif outcome.status is PushStatus.OK:
                    done: dict[str, Any] = {
                        "lid": item.listing.listing_id,
                        "q": item.quantity,
                        "id": row.get("id"),
                    }
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
    engine.metrics.queue_depth(code, max(0, len(pending) - ok))
    if failed:
        log.warning(
            "channel=%s: %d listing(s) refused by the channel; retried next cycle",
            code,
            failed,
            extra={"channel": code, "job": result.job, "counts": {"failed": failed}},
        )


def settle_in_flight(
    engine: SyncEngine,
    channel: Channel,
    rows: list[dict[str, Any]],
    desired: dict[str, Offer],
    pending: list[dict[str, Any]],
    in_flight: PushesInFlight | None,
) -> tuple[int, int, int, list[dict[str, Any]]]:
    """Record what the connector said settled of its pushes in flight (``in_flight``, from
    :meth:`~sellable.sdk.Connector.pushes_in_flight`): a confirmed quantity
    becomes the listing's last pushed (also when the listing no longer wants it: it is then
    pushed again now), a refusal is counted and sent again next run, as from
    :meth:`push_quantities`. Returns the confirmed, refused and still-waiting counts and the
    rows to hand over: a listing still waiting with the offer it should show is not asked
    for again (re-offering 100,000 listings in flight, to learn that their 4 feeds are
    still queued, cost seconds a run)."""
    if in_flight is None:
        return 0, 0, 0, pending
    code = channel.settings.code
    confirmed: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    shown: dict[str, int] = {}  # listing id -> quantity the channel confirmed just now
    row_ids = {row["listing_id"]: row.get("id") for row in rows} if in_flight.settled else {}
    for outcome, quantity in in_flight.settled:
        lid = outcome.listing_id
        if outcome.status is PushStatus.OK:
            confirmed.append({"lid": lid, "q": quantity, "id": row_ids.get(lid)})
            shown[lid] = quantity
        elif outcome.status is PushStatus.FAILED:
            refused.append({"lid": lid, "e": (outcome.message or "refused")[:1000]})
    if confirmed or refused:
        engine.state.record_push(code, confirmed, refused)
    failed_now = {r["lid"] for r in refused}
    waiting = in_flight.waiting
    retry = 0
    left: list[dict[str, Any]] = []
    for row in rows if shown else pending:
        lid = row["listing_id"]
        offer = desired[lid]
        flag_in_step = row["last_backorders"] == offer.backorders
        if lid in shown:
            if shown[lid] == offer.quantity and flag_in_step:
                continue  # confirmed just now
            row = {**row, "last_pushed": shown[lid]}
        elif in_step(row, offer):
            continue
        if lid in failed_now:
            continue  # a refusal is sent again next run, as any
        if waiting.get(lid) == offer.quantity and flag_in_step:
            retry += 1  # still in flight with the quantity it should show
            continue
        left.append(row)
    engine.metrics.pushed(code, len(confirmed), len(refused), retry)
    return len(confirmed), len(refused), retry, left


def push_item(row: dict[str, Any], offer: Offer, listing: Listing | None = None) -> PushItem:
    """What the connector is asked for one listing row; ``listing``, built from the row
    before, is used when it still holds the row's channel quantity (the read-back may have
    replaced it)."""
    if listing is None or listing.quantity != row["channel_quantity"]:
        listing = listing_of(row)
    return PushItem(
        listing,
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
        warehouses=_warehouses(row["warehouses"]) if row["warehouses"] else None,
        quantity=row["channel_quantity"],
        extra=_extra(row["extra"]) if row["extra"] else {},
    )


# A push of 100,000 listings parsed 100,000 copies of a few texts (Amazon's extra is its
# productType): parsed once each, the listing gets the tuple (immutable) or a copy.
@lru_cache(maxsize=1024)
def _warehouses(text: str) -> tuple[str, ...]:
    return tuple(text.split(","))


@lru_cache(maxsize=1024)
def _flat_extra(text: str) -> tuple[tuple[str, Any], ...] | None:
    """The stored extra's entries, or None when one holds a list or an object (a copy of
    the dict would share it: such an extra is parsed for each listing)."""
    parsed = json.loads(text)
    if not isinstance(parsed, dict) or any(isinstance(v, dict | list) for v in parsed.values()):
        return None
    return tuple(parsed.items())


def _extra(text: str) -> dict[str, Any]:
    entries = _flat_extra(text)
    if entries is None:
        parsed: dict[str, Any] = json.loads(text)
        return parsed
    return dict(entries)


__all__ = ["in_step", "listing_of", "push", "push_item", "push_pending", "settle_in_flight"]
