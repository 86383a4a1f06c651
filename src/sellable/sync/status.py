"""``sellable status``: per channel, what the daemon did last and what is waiting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from sellable.sdk import Capability
from sellable.store import schema
from sellable.store.schema import FLAGGED_FULFILMENTS
from sellable.store.sql import iso_utc
from sellable.sync.engine import PROBE_WORDS, SyncEngine
from sellable.sync.jobs import JOB_TABLE, repeated_listings, succeeds_for
from sellable.sync.jobs.fulfil import no_address_by_channel
from sellable.sync.jobs.push import in_step
from sellable.sync.locks import run_is_live
from sellable.sync.state import interrupted as interrupted_error
from sellable.sync.state import split_extra
from sellable.sync.webhooks import webhook_status, webhooks_line

MAX_LISTED = 200
#: How far back ``throttled_24h`` counts HTTP 429 answers.
THROTTLE_WINDOW = timedelta(hours=24)


def channel_status(engine: SyncEngine) -> list[dict[str, Any]]:
    """Last successful pull and push, cursor, pending pushes, HTTP 429s (the last day's,
    and per job its last run's), health (with the last error while a job fails), listing
    reports."""
    runs, listings, cursors = schema.job_runs.c, schema.listings.c, schema.channel_cursors.c
    catalog = engine.book.live.catalog.catalog
    report = []
    # The orders a fulfilment channel cannot be sent for want of a shipping address.
    unsent = no_address_by_channel(engine)
    live = run_is_live(engine.db)
    now = engine.now()
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
            running, interrupted = open_runs(connection, code, live)
            failing = failing_jobs(connection, code)
            for job, part in interrupted.items():
                before = failing.get(job)
                if before is not None:
                    part["since"] = before["since"]
                    part["failures_in_a_row"] += before["failures_in_a_row"]
                failing[job] = part
            stale = stale_jobs(connection, code, engine.sync_due(code), now)
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
                    listings.extra,
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
            desired = engine.desired_offers(code)
            pending = sum(
                1
                for r in rows
                if r.sku_id is not None
                and (offer := desired.get(r.listing_id)) is not None
                and not in_step(
                    {"last_pushed": r.last_pushed, "last_backorders": split_extra(r.extra)[1]},
                    offer,
                )
            )
            failing_listings = [
                {"listing_id": r.listing_id, "error": r.last_error} for r in rows if r.last_error
            ]
            refused = engine.state.auth_refused_mark(code)
            refused_orders = [
                {
                    "order_id": order_id,
                    "field": row["field"],
                    "reason": row["reason"],
                    "updated_at": iso_utc(row["updated_at"]),
                    "since": iso_utc(row["first_refused_at"]),
                    "last_read": iso_utc(row["last_refused_at"]),
                }
                for order_id, row in engine.state.refused_orders(code).items()
            ]
            channel = engine.channels[code]
            fulfils = Capability.FULFIL_ORDERS in channel.connector.capabilities
            by_job = throttled_by_job(
                connection,
                code,
                engine.now() - THROTTLE_WINDOW,
                # A fulfilment channel's jobs only where they can run.
                [
                    spec.name
                    for spec in JOB_TABLE
                    if fulfils or spec.capability is not Capability.FULFIL_ORDERS
                ],
            )
            report.append(
                {
                    "channel": code,
                    "connector": channel.settings.connector,
                    "warehouses": channel.settings.warehouses,
                    "last_successful_pull": iso_utc(pull.finished_at) if pull else None,
                    "last_successful_push": iso_utc(push.finished_at) if push else None,
                    "cursor": cursor,
                    "pending_pushes": pending,
                    "throttled_24h": sum(j["last_24h"] or 0 for j in by_job.values()),
                    "throttled_by_job": by_job,
                    **health_of(failing, refused, stale),
                    "running_jobs": running,
                    "listings": len(rows),
                    "unmatched_listings": {"count": len(unmatched), "skus": unmatched[:MAX_LISTED]},
                    "missing_listings": {"count": len(missing), "skus": missing[:MAX_LISTED]},
                    "duplicate_listings": {
                        "count": len(duplicates),
                        "listings": duplicates[:MAX_LISTED],
                    },
                    "failing_listings": failing_listings[:MAX_LISTED],
                    "refused_orders": {
                        "count": len(refused_orders),
                        "orders": refused_orders[:MAX_LISTED],
                    },
                    "webhooks": webhook_status(engine, code),
                    "fulfilments": (
                        fulfilment_status(connection, code) | no_address(unsent.get(code, []))
                        if fulfils
                        else None
                    ),
                }
            )
    return report


def no_address(orders: list[str]) -> dict[str, Any]:
    """``no_address`` (how many) and ``no_address_orders`` (the first of them)."""
    return {"no_address": len(orders), "no_address_orders": orders[:MAX_LISTED]}


def fulfilment_status(connection: Connection, code: str) -> dict[str, Any]:
    """A fulfilment channel's requests: counts of pending, sent (at the provider, not
    shipped yet), shipped, cancelled and flagged ones, the oldest pending one, and the
    flagged ones with the provider's reason (what the operator must look at)."""
    f, o = schema.fulfilments.c, schema.orders.c
    counts = {
        status: n
        for status, n in connection.execute(
            select(f.status, func.count()).where(f.channel == code).group_by(f.status)
        )
    }
    oldest = connection.execute(
        select(func.min(f.created_at)).where((f.channel == code) & (f.status == "pending"))
    ).scalar()
    flagged = [
        {
            "reference": reference,
            "order": f"{order_channel}:{external_id}",
            "status": status,
            "reason": reason,
        }
        for reference, order_channel, external_id, status, reason in connection.execute(
            select(f.reference, o.channel, o.external_id, f.status, f.reason)
            .join(schema.orders, o.id == f.order_id)
            .where((f.channel == code) & f.status.in_(FLAGGED_FULFILMENTS))
            .order_by(f.id)
            .limit(MAX_LISTED)
        )
    ]
    return {
        "pending": counts.get("pending", 0) + counts.get("cancel_requested", 0),
        "sent": counts.get("sent", 0) + counts.get("partially_shipped", 0),
        "shipped": counts.get("shipped", 0),
        "cancelled": counts.get("cancelled", 0),
        "flagged": sum(counts.get(s, 0) for s in FLAGGED_FULFILMENTS),
        "oldest_pending": iso_utc(oldest),
        "flagged_requests": flagged,
    }


def fulfilments_line(part: dict[str, Any]) -> str:
    """``fulfilments: 2 pending, 5 sent, 10 shipped, 1 flagged (…)``."""
    text = (
        f"fulfilments: {part['pending']} pending, {part['sent']} sent, {part['shipped']} "
        f"shipped, {part['cancelled']} cancelled, {part['flagged']} flagged"
    )
    if part.get("no_address"):
        text += (
            f"; {part['no_address']} order(s) without a shipping address not sent ("
            + ", ".join(part["no_address_orders"][:10])
            + ")"
        )
    if part["oldest_pending"]:
        text += f"; oldest pending since {part['oldest_pending']}"
    if part["flagged_requests"]:
        text += (
            " ("
            + "; ".join(
                f"{r['reference']} {r['status']}: {r['reason']}"
                for r in part["flagged_requests"][:10]
            )
            + ")"
        )
    return text


def throttled_by_job(
    connection: Connection, code: str, since: datetime, jobs: list[str] | None = None
) -> dict[str, dict[str, int | None]]:
    """Per job of the channel: the HTTP 429 answers its latest finished run met
    (``last_run``, None before its first run) and its runs started since ``since`` met
    (``last_24h``)."""
    runs = schema.job_runs.c
    of_channel = runs.channel == code
    recent = dict(
        connection.execute(
            select(runs.job, func.sum(runs.throttled))
            .where(of_channel & (runs.started_at >= since.astimezone(UTC)))
            .group_by(runs.job)
        ).all()
    )
    found: dict[str, dict[str, int | None]] = {}
    for name in jobs if jobs is not None else [spec.name for spec in JOB_TABLE]:
        last = connection.execute(
            select(runs.throttled)
            .where(of_channel & (runs.job == name) & runs.finished_at.is_not(None))
            .order_by(runs.id.desc())
            .limit(1)
        ).scalar()
        found[name] = {"last_run": last, "last_24h": int(recent.get(name) or 0)}
    return found


def failing_jobs(connection: Connection, code: str) -> dict[str, dict[str, Any]]:
    """The channel's jobs whose latest runs failed: since when (the first failure after the
    last success), how many runs in a row, and the latest error."""
    runs = schema.job_runs.c
    failing: dict[str, dict[str, Any]] = {}
    for spec in JOB_TABLE:
        of_job = (runs.channel == code) & (runs.job == spec.name) & runs.finished_at.is_not(None)
        last_ok = connection.execute(
            select(func.max(runs.id)).where(of_job & runs.ok.is_(True))
        ).scalar()
        after = of_job & runs.ok.is_(False)
        if last_ok is not None:
            after = after & (runs.id > last_ok)
        first = connection.execute(
            select(runs.finished_at, func.count().over()).where(after).order_by(runs.id).limit(1)
        ).first()
        if first is None:
            continue
        latest = connection.execute(
            select(runs.finished_at, runs.error).where(after).order_by(runs.id.desc()).limit(1)
        ).one()
        failing[spec.name] = {
            "since": iso_utc(first[0]),
            "failures_in_a_row": int(first[1]),
            "at": iso_utc(latest.finished_at),
            "error": latest.error,
        }
    return failing


def open_runs(
    connection: Connection, code: str, live: Callable[[str, str], bool]
) -> tuple[dict[str, str | None], dict[str, dict[str, Any]]]:
    """The channel's jobs whose latest run has not finished: those running now (job:
    since) and those interrupted (not running anywhere, see
    :func:`~sellable.sync.locks.run_is_live`), each as a failure of :func:`failing_jobs`
    (the daemon closes them so when it starts again)."""
    runs = schema.job_runs.c
    latest = select(func.max(runs.id)).where(runs.channel == code).group_by(runs.job)
    running: dict[str, str | None] = {}
    interrupted: dict[str, dict[str, Any]] = {}
    for job, started in connection.execute(
        select(runs.job, runs.started_at).where(runs.id.in_(latest) & runs.finished_at.is_(None))
    ):
        if live(code, job):
            running[job] = iso_utc(started)
        else:
            interrupted[job] = {
                "since": iso_utc(started),
                "failures_in_a_row": 1,
                "at": iso_utc(started),
                "error": interrupted_error(started),
                "interrupted": True,
            }
    return running, interrupted


def stale_jobs(
    connection: Connection, code: str, due: dict[str, timedelta], now: datetime
) -> dict[str, dict[str, Any]]:
    """The jobs of :meth:`SyncEngine.sync_due` that have not succeeded for longer than it
    allows: counted from the last success, else from the job's first run; one that never
    ran is stale at once (the channel has never synced)."""
    runs = schema.job_runs.c
    found: dict[str, dict[str, Any]] = {}
    for job, limit in due.items():
        of_job = (runs.channel == code) & runs.job.in_(succeeds_for(job))
        # By id, newest first (the index on channel, job, id), not max(finished_at): a
        # store that has run for years holds millions of runs.
        last_ok = connection.execute(
            select(runs.finished_at)
            .where(of_job & runs.ok.is_(True))
            .order_by(runs.id.desc())
            .limit(1)
        ).scalar()
        since = last_ok
        if since is None:
            since = connection.execute(
                select(runs.started_at).where(of_job).order_by(runs.id).limit(1)
            ).scalar()
        if since is not None:
            since = since if since.tzinfo else since.replace(tzinfo=UTC)
            if now - since <= limit:
                continue
        found[job] = {
            "last_success": iso_utc(last_ok),
            "never_ran": since is None,
            "due_within_seconds": limit.total_seconds(),
        }
    return found


def health_of(
    failing: dict[str, dict[str, Any]],
    refused: tuple[Any, str] | None,
    stale: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The health fields of one channel's report; ``last_error`` only while it fails (it is
    cleared when the failing jobs recover). A channel that does not fail but whose order
    pull or push is overdue (``stale``, see :func:`stale_jobs`) is not healthy either."""
    stale = stale or {}
    last_error = None
    if failing:
        job, latest = max(failing.items(), key=lambda item: str(item[1]["at"]))
        last_error = {"job": job, "at": latest["at"], "error": latest["error"]}
    if refused is not None:
        since, error = refused
        return {
            # "failing" like any channel that does not sync; the words of `status` and the
            # flag below say why (issue 10: "authentication refused since ...").
            "health": "failing",
            "authentication_refused": True,
            "healthy": False,
            "failing_since": iso_utc(since),
            "last_error": last_error or {"job": None, "at": iso_utc(since), "error": error},
            "failing_jobs": failing,
            "stale_jobs": stale,
        }
    return {
        "health": "failing" if failing else "stale" if stale else "healthy",
        "authentication_refused": False,
        "healthy": not failing and not stale,
        "failing_since": min(str(f["since"]) for f in failing.values()) if failing else None,
        "last_error": last_error,
        "failing_jobs": failing,
        "stale_jobs": stale,
    }


def health_line(channel: dict[str, Any]) -> str:
    """``healthy``, ``failing since … (last error …)`` or ``authentication refused since …``."""
    error = channel["last_error"]
    said = f"{error['job']}: {error['error']}" if error and error["job"] else None
    if channel.get("authentication_refused"):
        return (
            f"authentication refused since {channel['failing_since']} ("
            f"{said or error['error']}); its jobs wait: fix the credentials in the "
            "configuration (one job a pull interval tries them again)"
        )
    if channel["health"] == "failing":
        return f"failing since {channel['failing_since']} (last error {said} at {error['at']})"
    if channel["health"] == "stale":
        return (
            "not syncing: "
            + "; ".join(
                f"its {PROBE_WORDS.get(job, job)} "
                + (
                    "has never run"
                    if part["never_ran"]
                    else f"has not succeeded since {part['last_success']}"
                    if part["last_success"]
                    else "has not succeeded since it first ran"
                )
                + f" (due within {humanize(part['due_within_seconds'])})"
                for job, part in channel["stale_jobs"].items()
            )
            + "; is the daemon running?"
        )
    return "healthy"


def humanize(seconds: float) -> str:
    """``7m``, ``2h 1m``, ``45s``: a due time in words an operator reads at a glance."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h"] if hours else []
    if minutes:
        parts.append(f"{minutes}m")
    if secs or not parts:
        parts.append(f"{secs}s")
    return " ".join(parts)


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
            f"  listings: {channel['listings']}; pending pushes: {channel['pending_pushes']}; "
            f"429s (24 h): {channel['throttled_24h']}"
        )
        lines.append(f"  {health_line(channel)}")
        lines.append(f"  {webhooks_line(channel['webhooks'])}")
        if channel.get("fulfilments") is not None:
            lines.append(f"  {fulfilments_line(channel['fulfilments'])}")
        for key in ("unmatched_listings", "missing_listings"):
            part = channel[key]
            if part["count"]:
                shown = ", ".join(part["skus"][:10])
                more = f" … and {part['count'] - 10} more" if part["count"] > 10 else ""
                lines.append(f"  {key.replace('_', ' ')}: {part['count']} ({shown}{more})")
        refused = channel["refused_orders"]
        if refused["count"]:
            shown = "; ".join(
                f"order {r['order_id']} {r['field']}: {r['reason']} (since {r['since']})"
                for r in refused["orders"][:10]
            )
            more = f" … and {refused['count'] - 10} more" if refused["count"] > 10 else ""
            lines.append(
                f"  refused orders (cannot be read; fix them on the channel): "
                f"{refused['count']} ({shown}{more})"
            )
        duplicate = channel["duplicate_listings"]
        if duplicate["count"]:
            lines.append(
                f"  duplicate listings (same units offered twice): {duplicate['count']} "
                f"({'; '.join(duplicate['listings'][:10])})"
            )
    return "\n".join(lines)


__all__ = ["channel_status", "render_status"]
