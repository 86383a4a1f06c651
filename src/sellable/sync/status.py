"""``sellable status``: per channel, what the daemon did last and what is waiting."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from sellable.store import schema
from sellable.store.sql import iso_utc
from sellable.sync.engine import SyncEngine, repeated_listings

MAX_LISTED = 200


def channel_status(engine: SyncEngine) -> list[dict[str, Any]]:
    """Last successful pull and push, cursor, pending pushes, last error, listing reports."""
    runs, listings, cursors = schema.job_runs.c, schema.listings.c, schema.channel_cursors.c
    catalog = engine.book.live.catalog.catalog
    report = []
    with engine.db.connect() as connection:
        for code in engine.channels:

            def last(jobs: tuple[str, ...], ok: bool | None, code: str = code) -> Any:
                query = (
                    select(runs.job, runs.finished_at, runs.error)
                    .where((runs.channel == code) & runs.job.in_(jobs))
                    .where(runs.finished_at.is_not(None))
                    .order_by(runs.id.desc())
                    .limit(1)
                )
                if ok is not None:
                    query = query.where(runs.ok.is_(ok))
                return connection.execute(query).first()

            pull = last(("orders", "stock"), True)
            push = last(("push", "reconcile"), True)
            failure = last(("listings", "stock", "orders", "push", "reconcile"), False)
            latest = last(("listings", "stock", "orders", "push", "reconcile"), None)
            cursor = connection.execute(
                select(cursors.value).where((cursors.channel == code) & (cursors.job == "orders"))
            ).scalar()
            rows = connection.execute(
                select(
                    listings.listing_id,
                    listings.channel_sku,
                    listings.sku_id,
                    listings.last_pushed,
                    listings.last_error,
                    listings.warehouses,
                ).where((listings.channel == code) & listings.present)
            ).all()
            unmatched = sorted({r.channel_sku or r.listing_id for r in rows if r.sku_id is None})
            stored = engine.book.live.catalog
            # listings of one SKU from the same warehouses offer the same units twice
            duplicates = sorted(
                f"{stored.code(sku_id)}: {', '.join(ids)}"
                for (sku_id, _warehouses), ids in repeated_listings(
                    (r.sku_id, r.warehouses, r.listing_id) for r in rows
                ).items()
            )
            matched_ids = {r.sku_id for r in rows if r.sku_id is not None}
            missing = (
                sorted(
                    code_
                    for pos, code_ in enumerate(catalog.codes)
                    if stored.ids[pos] not in matched_ids
                )
                if rows
                else []
            )
            desired = engine.desired_quantities(code)
            pending = sum(
                1
                for r in rows
                if r.sku_id is not None and r.last_pushed != desired.get(r.listing_id)
            )
            failing = [
                {"listing_id": r.listing_id, "error": r.last_error} for r in rows if r.last_error
            ]
            channel = engine.channels[code]
            report.append(
                {
                    "channel": code,
                    "connector": channel.settings.connector,
                    "warehouses": channel.settings.warehouses,
                    "last_successful_pull": iso_utc(pull.finished_at) if pull else None,
                    "last_successful_push": iso_utc(push.finished_at) if push else None,
                    "cursor": cursor,
                    "pending_pushes": pending,
                    "last_error": (
                        {
                            "job": failure.job,
                            "at": iso_utc(failure.finished_at),
                            "error": failure.error,
                        }
                        if failure
                        else None
                    ),
                    "healthy": latest is None or failure is None or latest != failure,
                    "listings": len(rows),
                    "unmatched_listings": {"count": len(unmatched), "skus": unmatched[:MAX_LISTED]},
                    "missing_listings": {"count": len(missing), "skus": missing[:MAX_LISTED]},
                    "duplicate_listings": {
                        "count": len(duplicates),
                        "listings": duplicates[:MAX_LISTED],
                    },
                    "failing_listings": failing[:MAX_LISTED],
                }
            )
    return report


def render_status(report: list[dict[str, Any]]) -> str:
    if not report:
        return "no channels configured"
    lines = []
    for channel in report:
        lines.append(
            f"{channel['channel']} ({channel['connector']}, warehouses "
            f"{', '.join(channel['warehouses'])})"
        )
        lines.append(
            f"  last pull: {channel['last_successful_pull'] or 'never'}; "
            f"last push: {channel['last_successful_push'] or 'never'}; "
            f"cursor: {channel['cursor'] or '-'}"
        )
        lines.append(
            f"  listings: {channel['listings']}; pending pushes: {channel['pending_pushes']}"
        )
        error = channel["last_error"]
        if error:
            lines.append(f"  last error ({error['job']} at {error['at']}): {error['error']}")
        for key in ("unmatched_listings", "missing_listings"):
            part = channel[key]
            if part["count"]:
                shown = ", ".join(part["skus"][:10])
                more = f" … and {part['count'] - 10} more" if part["count"] > 10 else ""
                lines.append(f"  {key.replace('_', ' ')}: {part['count']} ({shown}{more})")
        duplicate = channel["duplicate_listings"]
        if duplicate["count"]:
            lines.append(
                f"  duplicate listings (same units offered twice): {duplicate['count']} "
                f"({'; '.join(duplicate['listings'][:10])})"
            )
    return "\n".join(lines)


__all__ = ["channel_status", "render_status"]
