"""The listing job: read every listing of the channel and refresh the listing map.

The duplicate-SKU policy lives here, and only here: connectors report listings as the
channel has them; two listings of one SKU selling from the same warehouses are both matched
and both offered the sellable quantity (refusing one would be a guess at which the merchant
meant), and each refresh reports them, with a warning, for the merchant to merge them on
the channel. ``sellable status`` reports them with the same :func:`repeated_listings`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sellable.errors import ChannelError
from sellable.sdk import Listing, WebhookSubscriptions
from sellable.store.sql import iso_utc
from sellable.sync.jobs.base import Channel, JobResult, next_token
from sellable.sync.webhooks import subscription_summary

if TYPE_CHECKING:
    from sellable.sync.engine import SyncEngine

log = logging.getLogger("sellable.sync")

SHOWN = 20  # items named in one log line


def refresh_listings(engine: SyncEngine, channel: Channel, result: JobResult) -> None:
    code = channel.code
    check_webhooks(engine, channel, result)
    seen: dict[str, Listing] = {}
    cursor: str | None = None
    tokens: set[str] = set()
    for _page in range(engine.max_pages):
        page = channel.connector.list_listings(cursor)
        for listing in page.listings:
            seen[listing.listing_id] = listing
        cursor = next_token(page.next_cursor, tokens, code)
        if cursor is None or engine.stopping.is_set():
            break
    if engine.stopping.is_set():
        raise ChannelError("listing refresh abandoned at shutdown", channel=code)
    live = engine.live
    now = engine.now()
    rows: list[dict[str, Any]] = []
    for listing in seen.values():
        known = listing.sku is not None and live.knows(listing.sku)
        rows.append(
            {
                "channel": code,
                "listing_id": listing.listing_id,
                "parent_id": listing.parent_id,
                "channel_sku": listing.sku,
                "sku_id": live.sku_id(listing.sku) if known and listing.sku else None,
                "warehouses": ",".join(listing.warehouses) if listing.warehouses else None,
                "extra": json.dumps(listing.extra, sort_keys=True) if listing.extra else None,
                "present": True,
                "first_seen_at": now,
                "last_seen_at": now,
                "channel_quantity": listing.quantity,
                "push_failures": 0,
            }
        )
    duplicates = sorted(
        f"{live.code(sku_id)}: {other} (as {ids[0]})"
        for (sku_id, _warehouses), ids in repeated_listings(
            (r["sku_id"], r["warehouses"], r["listing_id"]) for r in rows
        ).items()
        for other in ids[1:]
    )
    added, removed = engine.state.store_listings(code, rows, kept=channel.connector.kept_extra)
    unmatched = sorted(
        {str(r["channel_sku"] or r["listing_id"]) for r in rows if r["sku_id"] is None}
    )
    matched = {r["sku_id"] for r in rows if r["sku_id"] is not None}
    stored = live.catalog
    missing = sorted(
        sku
        for sku, sku_id in zip(stored.catalog.codes, stored.ids, strict=True)
        if sku_id not in matched
    )
    result.counts["missing"] = len(missing)
    result.reports["missing_listings"] = missing
    if missing and missing != engine.missing_reported.get(code):
        log.info(
            "channel=%s: %d SKU(s) of ours are not listed there: %s",
            code,
            len(missing),
            ", ".join(missing[:SHOWN]),
            extra={"channel": code, "job": result.job, "counts": {"missing": len(missing)}},
        )
    engine.missing_reported[code] = missing
    result.counts.update(
        listings=len(seen), new=len(added), removed=len(removed), unmatched=len(unmatched)
    )
    result.reports["unmatched_listings"] = unmatched
    result.reports["duplicate_listings"] = duplicates
    result.counts["duplicates"] = len(duplicates)
    if duplicates:
        log.warning(
            "channel=%s: %d listing(s) repeat a SKU already listed from the same "
            "warehouses, so the same units are offered twice; merge them on the "
            "channel: %s",
            code,
            len(duplicates),
            "; ".join(duplicates[:SHOWN]),
            extra={"channel": code, "job": result.job, "counts": {"duplicates": len(duplicates)}},
        )
    if unmatched:
        log.warning(
            "channel=%s: %d listing(s) on the channel match no SKU of ours: %s",
            code,
            len(unmatched),
            ", ".join(unmatched[:SHOWN]),
            extra={"channel": code, "job": result.job, "counts": {"unmatched": len(unmatched)}},
        )


def check_webhooks(engine: SyncEngine, channel: Channel, result: JobResult) -> None:
    """Make the channel's webhook subscriptions what the configuration wants (create,
    repair, remove) and record their health for ``status``. A failure here is reported,
    never fatal to the job: the interval pull goes on without webhooks. The listing refresh
    calls it; for a channel without one, the engine does (``_check_webhooks_due``)."""
    connector, code = channel.connector, channel.code
    if not connector.webhooks:
        return
    if not connector.webhook_url():
        # Webhooks turned off: remove the subscriptions we made while they were on (only
        # then, so that a channel that never had them costs no request).
        stored = engine.state.webhook_state(code).get("subscriptions") or {}
        if not stored.get("active"):
            return
    found: WebhookSubscriptions | None = None
    error: str | None = None
    try:
        found = connector.sync_webhooks()
    except ChannelError as err:
        error = str(err)
        log.warning(
            "channel=%s: webhook subscriptions could not be checked (%s); orders still "
            "arrive by the interval pull",
            code,
            err,
            extra={"channel": code, "job": result.job},
        )
    summary = subscription_summary(found, error, iso_utc(engine.now()))
    engine.state.update_webhook_state(code, {"subscriptions": summary})
    result.reports["webhook_subscriptions"] = summary
    if found is not None:
        result.counts["webhooks_active"] = int(summary["active"])
        if found.created or found.repaired or found.removed:
            log.info(
                "channel=%s: webhook subscriptions created=%d repaired=%d removed=%d",
                code,
                found.created,
                found.repaired,
                found.removed,
                extra={"channel": code, "job": result.job},
            )
        if not found.healthy:
            log.warning(
                "channel=%s: webhook subscriptions unhealthy: %s",
                code,
                summary["problem"],
                extra={"channel": code, "job": result.job},
            )


def repeated_listings(
    rows: Iterable[tuple[int | None, str | None, str]],
) -> dict[tuple[int, str | None], list[str]]:
    """Of (sku id, warehouses, listing id) rows, the matched (sku id, warehouses) listed more
    than once, each with its listing ids sorted: the same units offered twice."""
    groups: dict[tuple[int, str | None], list[str]] = {}
    for sku_id, warehouses, listing_id in rows:
        if sku_id is not None:
            groups.setdefault((sku_id, warehouses), []).append(listing_id)
    return {key: sorted(ids) for key, ids in groups.items() if len(ids) > 1}


__all__ = ["check_webhooks", "refresh_listings", "repeated_listings"]
