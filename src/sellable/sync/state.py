"""What the sync engine keeps in the store: order cursors, job runs, the listing map and
the last confirmed pushes, and a channel's refused credentials.

All the engine's SQL is here; the jobs say what to keep, this module says how.

Usage::

    state = SyncState(db, now=utcnow)
    state.cursor("shop", "orders")          # a datetime or None
    run_id = state.start_run("shop", "push")
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, select, update

from sellable.config import ChannelSettings
from sellable.sdk import RejectedOrder
from sellable.store import schema
from sellable.store.db import writing
from sellable.store.sql import (
    chunked,
    db_time,
    driver_executemany,
    fetch_tuples,
    int_array,
    iso_utc,
    upsert,
)

#: The ``channel_cursors`` job name under which refused credentials are remembered.
AUTH_REFUSED = "auth-refused"
#: The key of a listing's ``extra`` JSON holding the push record's keep-selling flag:
#: ``"on"`` while the channel confirmed our ``backorders`` flag on (absent: off). It is
#: ours, not the connector's: kept across listing refreshes, never handed to a connector.
BACKORDERS_KEY = "sellable:backorders"


def split_extra(text: str | None) -> tuple[str | None, bool]:
    """A stored ``extra`` as (the connector's JSON, our recorded keep-selling flag)."""
    if not text or BACKORDERS_KEY not in text:
        return text, False
    extra = json.loads(text)
    flag = extra.pop(BACKORDERS_KEY, None) == "on"
    return (json.dumps(extra, sort_keys=True) if extra else None), flag


def keep_extra(old: str, new: str | None, kept: frozenset[str]) -> str | None:
    """The fresh ``extra`` JSON with the ``kept`` keys of the stored one it lacks."""
    if new == old:
        return new  # the usual case: the connector knows what it stored (no parsing)
    carried = {k: v for k, v in json.loads(old).items() if k in kept}
    if not carried:
        return new
    fresh = json.loads(new) if new else {}
    return json.dumps({**carried, **fresh}, sort_keys=True)


def join_extra(text: str | None, flag: bool) -> str | None:
    """The connector's ``extra`` JSON with our keep-selling flag recorded in it."""
    if not flag:
        return text
    extra = json.loads(text) if text else {}
    extra[BACKORDERS_KEY] = "on"
    return json.dumps(extra, sort_keys=True)


def config_fingerprint(channel: ChannelSettings) -> str:
    """A digest of the channel's configuration: a refused-credentials mark holds only
    while it is unchanged (the key itself is not stored)."""
    text = json.dumps(channel.model_dump(mode="json"), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


#: The ``channel_cursors`` row (as its ``job``) holding a channel's webhook figures.
WEBHOOK_ROW = "webhooks"


def _rewrite_extras(
    connection: Any,
    code: str,
    listing_ids: Iterable[str],
    rewrite: Callable[[str, str | None], str | None],
) -> None:
    """Replace the stored ``extra`` of the channel's listings ``listing_ids`` (those stored)
    by ``rewrite(listing_id, stored extra)``, in one executemany."""
    table = schema.listings
    changes = []
    for chunk in chunked(sorted(listing_ids)):
        for lid, extra in connection.execute(
            select(table.c.listing_id, table.c.extra).where(
                (table.c.channel == code) & table.c.listing_id.in_(chunk)
            )
        ):
            changes.append({"lid": lid, "x": rewrite(lid, extra)})
    if changes:
        connection.execute(
            update(table)
            .where((table.c.channel == code) & (table.c.listing_id == bindparam("lid")))
            .values(extra=bindparam("x")),
            changes,
        )


#: Confirmed pushes written per statement by :func:`_record_confirmed`.
CONFIRMED_CHUNK = 20_000


def _record_confirmed(
    connection: Connection, code: str, confirmed: Sequence[dict[str, Any]], now: datetime
) -> None:
    """Each confirmed quantity becomes its listing's last pushed and channel quantity, in
    bulk: the driver's executemany with plain tuples on SQLite, one ``UPDATE ... FROM
    unnest(...)`` per chunk on PostgreSQL (a push confirms 100,000 listings at once, where
    SQLAlchemy's per-row parameter handling cost more than the database)."""
    at = db_time(connection, now)
    for chunk in chunked(confirmed, CONFIRMED_CHUNK):
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(
                "UPDATE listings SET last_pushed = d.q, channel_quantity = d.q, "
                "last_pushed_at = %(at)s, push_failures = 0, last_error = NULL "
                "FROM unnest(%(l)s::text[], %(q)s::bigint[]) AS d(l, q) "
                "WHERE listings.channel = %(c)s AND listings.listing_id = d.l",
                {
                    "at": at,
                    "c": code,
                    "l": [c["lid"] for c in chunk],
                    "q": int_array(c["q"] for c in chunk),
                },
            )
        else:
            # By the row's id where the caller knows it: SQLite then goes straight to the
            # row instead of through the (channel, listing_id) index, 0.1-0.2 s less for
            # 100,000. The channel and listing id are still checked; should an id not
            # match (listing rows are never deleted, so it cannot), its listing is
            # written by channel and listing id as the others.
            by_id = [
                (c["q"], c["q"], at, c["id"], code, c["lid"])
                for c in chunk
                if c.get("id") is not None
            ]
            by_lid = [(c["q"], c["q"], at, code, c["lid"]) for c in chunk if c.get("id") is None]
            written = driver_executemany(
                connection,
                "UPDATE listings SET last_pushed = ?, channel_quantity = ?, "
                "last_pushed_at = ?, push_failures = 0, last_error = NULL "
                "WHERE id = ? AND channel = ? AND listing_id = ?",
                by_id,
            )
            if written != len(by_id):
                by_lid.extend((q, q2, t, c, lid) for q, q2, t, _id, c, lid in by_id)
            driver_executemany(
                connection,
                "UPDATE listings SET last_pushed = ?, channel_quantity = ?, "
                "last_pushed_at = ?, push_failures = 0, last_error = NULL "
                "WHERE channel = ? AND listing_id = ?",
                by_lid,
            )


def interrupted(started: datetime | None) -> str:
    """The error of a run that never finished (see :meth:`SyncState.close_interrupted`)."""
    when = f"at {iso_utc(started)} " if started is not None else ""
    return (
        f"interrupted: the run started {when}never finished (its daemon was killed, "
        "crashed or stopped during it); it runs again at the daemon's next turn"
    )


class SyncState:
    """The store's side of the sync engine."""

    def __init__(self, db: Engine, now: Callable[[], datetime]) -> None:
        self.db = db
        self.now = now
        self._webhook_lock = threading.Lock()
        #: Bumped by every listing refresh written through this object (the only place a
        #: listing's SKU, warehouses or presence changes): readers cache on it.
        self.listings_version = 0

    # -- cursors --------------------------------------------------------------------------------

    def cursor(self, code: str, job: str) -> datetime | None:
        value = self._cursor_value(code, job)
        return None if value is None else datetime.fromisoformat(value)

    def set_cursor(self, code: str, job: str, value: datetime) -> None:
        self._set_cursor_value(code, job, value.isoformat())

    def _cursor_value(self, code: str, job: str) -> str | None:
        c = schema.channel_cursors.c
        with self.db.connect() as connection:
            value: str | None = connection.execute(
                select(c.value).where((c.channel == code) & (c.job == job))
            ).scalar()
        return value

    def _set_cursor_value(self, code: str, job: str, value: str) -> None:
        with writing(self.db) as connection:
            upsert(
                connection,
                schema.channel_cursors,
                [{"channel": code, "job": job, "value": value, "updated_at": self.now()}],
                key=("channel", "job"),
                update=("value", "updated_at"),
            )

    # -- webhooks -------------------------------------------------------------------------------

    def webhook_state(self, code: str) -> dict[str, Any]:
        """What the webhook listener and the subscription check last recorded for the
        channel (``{}`` before any): kept as one small JSON row among the cursors."""
        value = self._cursor_value(code, WEBHOOK_ROW)
        if not value:
            return {}
        try:
            state = json.loads(value)
        except ValueError:
            return {}
        return state if isinstance(state, dict) else {}

    def update_webhook_state(self, code: str, changes: dict[str, Any]) -> None:
        """Merge ``changes`` into the channel's webhook figures (the listener writes its
        counters, the listing job the subscriptions' health)."""
        with self._webhook_lock:
            state = {**self.webhook_state(code), **changes}
            self._set_webhook_state(code, state)

    def _set_webhook_state(self, code: str, state: dict[str, Any]) -> None:
        text = json.dumps(state, sort_keys=True, separators=(",", ":"))
        if len(text) > 500:  # the column's size: the problem text is what gives way
            subscriptions = dict(state.get("subscriptions") or {})
            subscriptions["problem"] = str(subscriptions.get("problem") or "")[:80] + "…"
            text = json.dumps(
                {**state, "subscriptions": subscriptions}, sort_keys=True, separators=(",", ":")
            )
        self._set_cursor_value(code, WEBHOOK_ROW, text[:500])

    # -- refused credentials --------------------------------------------------------------------

    def auth_refused(self, channel: ChannelSettings) -> tuple[datetime, str] | None:
        """(since, error) when the channel's credentials were refused under this same
        configuration; a mark left by another configuration is forgotten."""
        value = self._cursor_value(channel.code, AUTH_REFUSED)
        if value is None:
            return None
        mark = json.loads(value)
        if mark.get("config") != config_fingerprint(channel):
            self.clear_auth_refused(channel.code)
            return None
        return datetime.fromisoformat(mark["since"]), str(mark["error"])

    def auth_refused_mark(self, code: str) -> tuple[datetime, str] | None:
        """(since, error) of the stored mark, whatever configuration set it (for status)."""
        value = self._cursor_value(code, AUTH_REFUSED)
        if value is None:
            return None
        mark = json.loads(value)
        return datetime.fromisoformat(mark["since"]), str(mark["error"])

    def set_auth_refused(self, channel: ChannelSettings, since: datetime, error: str) -> None:
        # channel_cursors.value holds 500 characters: the digest, the time and the error's start
        mark = {
            "config": config_fingerprint(channel),
            "since": since.isoformat(),
            "error": error[:300],
        }
        self._set_cursor_value(channel.code, AUTH_REFUSED, json.dumps(mark, sort_keys=True))

    def clear_auth_refused(self, code: str) -> None:
        c = schema.channel_cursors.c
        with writing(self.db) as connection:
            connection.execute(
                delete(schema.channel_cursors).where((c.channel == code) & (c.job == AUTH_REFUSED))
            )

    # -- refused orders -------------------------------------------------------------------------

    def refused_orders(self, code: str) -> dict[str, dict[str, Any]]:
        """The channel's refused orders by id: ``field``, ``reason``, ``updated_at`` (the
        channel's, or None), ``first_refused_at``, ``last_refused_at``."""
        table = schema.refused_orders
        with self.db.connect() as connection:
            rows = connection.execute(
                select(table).where(table.c.channel == code).order_by(table.c.first_refused_at)
            ).all()
        return {row.order_id: dict(row._mapping) for row in rows}

    def record_refused(self, code: str, refused: Sequence[RejectedOrder]) -> None:
        """Store this pull's refusals; a refusal seen before keeps its first time."""
        if not refused:
            return
        now = self.now()
        rows = [
            {
                "channel": code,
                "order_id": r.order_id[:255],
                "field": r.field[:255],
                "reason": r.reason[:500],
                "updated_at": r.updated_at,
                "first_refused_at": now,
                "last_refused_at": now,
            }
            for r in refused
        ]
        with writing(self.db) as connection:
            upsert(
                connection,
                schema.refused_orders,
                rows,
                key=("channel", "order_id"),
                update=("field", "reason", "updated_at", "last_refused_at"),
            )

    def forget_refused(self, code: str, order_ids: Sequence[str]) -> None:
        """Orders read whole at last (imported): no longer refused."""
        table = schema.refused_orders
        with writing(self.db) as connection:
            for chunk in chunked(list(order_ids)):
                connection.execute(
                    delete(table).where((table.c.channel == code) & table.c.order_id.in_(chunk))
                )

    # -- job runs -------------------------------------------------------------------------------

    def start_run(self, code: str, job: str) -> int:
        runs = schema.job_runs
        with writing(self.db) as connection:
            run_id: int = connection.execute(
                runs.insert().returning(runs.c.id),
                {"channel": code, "job": job, "started_at": self.now()},
            ).scalar_one()
        return run_id

    def close_interrupted(self, live: Callable[[str, str], bool]) -> list[tuple[str, str]]:
        """Close the runs that never finished and are not running anywhere (see
        :func:`sellable.sync.locks.run_is_live`) as failed, ``interrupted``: a daemon
        killed, crashed or abandoned them. Done at a daemon's start, before its engine
        reads the last runs, so that it starts failing over them like ``sellable status``
        says, until the job runs again. Returns the (channel, job) pairs closed."""
        runs = schema.job_runs
        closed: list[tuple[str, str]] = []
        with writing(self.db) as connection:
            open_runs = connection.execute(
                select(runs.c.id, runs.c.channel, runs.c.job, runs.c.started_at).where(
                    runs.c.finished_at.is_(None)
                )
            ).all()
            for run_id, code, job, started in open_runs:
                if live(code, job):
                    continue
                connection.execute(
                    update(runs)
                    .where((runs.c.id == run_id) & runs.c.finished_at.is_(None))
                    .values(finished_at=self.now(), ok=False, error=interrupted(started))
                )
                closed.append((code, job))
        return closed

    def prune_runs(self, before: datetime, batch: int = 5000) -> int:
        """Delete the runs started before ``before``, but each (channel, job)'s latest run
        and latest successful one (what health and ``sellable status`` judge by), in
        batches so that neither database holds a long write lock. Returns how many went."""
        runs = schema.job_runs.c
        kept = select(func.max(runs.id)).group_by(runs.channel, runs.job)
        kept_ok = (
            select(func.max(runs.id)).where(runs.ok.is_(True)).group_by(runs.channel, runs.job)
        )
        # Read once: runs recorded meanwhile only make more of the kept ones deletable,
        # and those wait for the next day's prune.
        with self.db.connect() as connection:
            keep = set(connection.execute(kept).scalars()) | set(
                connection.execute(kept_ok).scalars()
            )
        deleted = 0
        while True:
            with writing(self.db) as connection:
                ids = [
                    run_id
                    for run_id in connection.execute(
                        select(runs.id)
                        .where(runs.started_at < before)
                        .order_by(runs.id)
                        .limit(batch + len(keep))
                    ).scalars()
                    if run_id not in keep
                ][:batch]
                if not ids:
                    return deleted
                for chunk in chunked(ids):
                    connection.execute(delete(schema.job_runs).where(runs.id.in_(chunk)))
            deleted += len(ids)

    def failed_last(self, code: str) -> dict[str, tuple[str | None, datetime | None]]:
        """Per job of the channel whose latest finished run failed: (error, finished at) —
        what ``sellable status`` reports, for a daemon that starts again to say the same."""
        runs = schema.job_runs.c
        latest = (
            select(func.max(runs.id))
            .where((runs.channel == code) & runs.finished_at.is_not(None))
            .group_by(runs.job)
        )
        with self.db.connect() as connection:
            rows = connection.execute(
                select(runs.job, runs.ok, runs.error, runs.finished_at).where(runs.id.in_(latest))
            ).all()
        return {job: (error, at) for job, ok, error, at in rows if ok is False}

    def finish_run(
        self,
        run_id: int,
        ok: bool,
        summary: dict[str, Any],
        error: str | None,
        *,
        throttled: int = 0,
    ) -> None:
        """Close a run: its outcome, counts, error and the HTTP 429 answers it met."""
        runs = schema.job_runs
        with writing(self.db) as connection:
            connection.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(
                    finished_at=self.now(),
                    ok=ok,
                    summary=json.dumps(summary, sort_keys=True),
                    error=error,
                    throttled=throttled,
                )
            )

    # -- the listing map ------------------------------------------------------------------------

    def store_listings(
        self, code: str, rows: list[dict[str, Any]], kept: frozenset[str] = frozenset()
    ) -> tuple[list[str], list[str]]:
        """Write a full refresh of the channel's listings; returns (listing ids new or back,
        listing ids gone). A listing that comes back, or whose quantity on the channel is not
        what it last confirmed, is pushed again at the next push (a cheap reconcile). The
        ``kept`` keys of a stored ``extra`` (:attr:`Connector.kept_extra`) outlive a refresh
        whose listing lacks them."""
        table = schema.listings
        seen = {row["listing_id"] for row in rows}
        with writing(self.db) as connection:
            before: dict[str, tuple[bool, int | None, bool]] = {}
            stored: dict[str, str] = {}  # listing id -> its extra, when keys are kept
            for lid, present, pushed, extra in connection.execute(
                select(
                    table.c.listing_id, table.c.present, table.c.last_pushed, table.c.extra
                ).where(table.c.channel == code)
            ):
                before[lid] = (present, pushed, split_extra(extra)[1])
                if kept and extra:
                    stored[lid] = extra
            for row in rows:
                present, last_pushed, flag = before.get(row["listing_id"], (False, None, False))
                quantity = row["channel_quantity"]
                stale = not present or (quantity is not None and quantity != last_pushed)
                row["last_pushed"] = None if stale else last_pushed
                if row["listing_id"] in stored:
                    row["extra"] = keep_extra(stored[row["listing_id"]], row["extra"], kept)
                # the push record's flag outlives the refresh: only a push turns it off
                row["extra"] = join_extra(row["extra"], flag)
            upsert(
                connection,
                table,
                rows,
                key=("channel", "listing_id"),
                update=(
                    "parent_id",
                    "channel_sku",
                    "sku_id",
                    "warehouses",
                    "extra",
                    "present",
                    "last_seen_at",
                    "channel_quantity",
                    "last_pushed",
                ),
            )
            removed = [
                lid
                for lid, (present, _pushed, _flag) in before.items()
                if present and lid not in seen
            ]
            for chunk in chunked(removed):
                connection.execute(
                    update(table)
                    .where((table.c.channel == code) & table.c.listing_id.in_(chunk))
                    .values(present=False)
                )
        self.listings_version += 1
        added = [lid for lid in seen if lid not in before or not before[lid][0]]
        return added, removed

    def store_learned_extra(self, code: str, learned: dict[str, dict[str, str]]) -> None:
        """Merge what the connector learned into the listings' stored ``extra``
        (:meth:`Connector.take_learned_extra`); listings not stored yet are skipped."""

        def merged(lid: str, extra: str | None) -> str:
            return json.dumps(
                {**(json.loads(extra) if extra else {}), **learned[lid]}, sort_keys=True
            )

        with writing(self.db) as connection:
            _rewrite_extras(connection, code, learned, merged)

    def matched_listings(self, code: str) -> list[dict[str, Any]]:
        """The channel's present listings matched to a SKU of ours, in a stable order;
        ``last_backorders`` is the keep-selling flag the channel last confirmed from us."""
        table, skus = schema.listings.c, schema.skus.c
        with self.db.connect() as connection:
            found = fetch_tuples(
                connection,
                select(
                    table.id,
                    table.listing_id,
                    table.parent_id,
                    table.channel_sku,
                    table.warehouses,
                    table.extra,
                    table.last_pushed,
                    table.channel_quantity,
                    skus.sku,
                )
                .join(schema.skus, skus.id == table.sku_id)
                .where((table.channel == code) & table.present)
                .order_by(table.id),
            )
            # Plain tuples into dict displays: a push reads 100,000 of them every run.
            rows: list[dict[str, Any]] = []
            for (
                row_id,
                lid,
                parent,
                channel_sku,
                warehouses,
                stored,
                pushed,
                quantity,
                sku,
            ) in found:
                extra, flag = split_extra(stored)
                rows.append(
                    {
                        "id": row_id,
                        "listing_id": lid,
                        "parent_id": parent,
                        "channel_sku": channel_sku,
                        "warehouses": warehouses,
                        "extra": extra,
                        "last_pushed": pushed,
                        "channel_quantity": quantity,
                        "sku": sku,
                        "last_backorders": flag,
                    }
                )
        return rows

    # -- pushes ---------------------------------------------------------------------------------

    def record_push(
        self, code: str, confirmed: Sequence[dict[str, Any]], refused: Sequence[dict[str, Any]]
    ) -> None:
        """``confirmed``: ``{"lid", "q"}`` the channel took, with ``"b"`` (the keep-selling
        flag now on the channel) where the push changed it, and ``"id"``, the listing row's
        id from :meth:`matched_listings`, where known; ``refused``: ``{"lid", "e"}``."""
        table = schema.listings
        now = self.now()
        where = (table.c.channel == code) & (table.c.listing_id == bindparam("lid"))
        with writing(self.db) as connection:
            if confirmed:
                _record_confirmed(connection, code, confirmed, now)
                flags = {c["lid"]: bool(c["b"]) for c in confirmed if "b" in c}
                if flags:
                    self._record_flags(connection, code, flags)
            if refused:
                connection.execute(
                    update(table)
                    .where(where)
                    .values(push_failures=table.c.push_failures + 1, last_error=bindparam("e")),
                    list(refused),
                )

    @staticmethod
    def _record_flags(connection: Any, code: str, flags: dict[str, bool]) -> None:
        """Write the keep-selling flags into the listings' ``extra`` (rare: only pushes
        that turned a flag on or off get here)."""
        _rewrite_extras(
            connection,
            code,
            flags,
            lambda lid, extra: join_extra(split_extra(extra)[0], flags[lid]),
        )

    def record_read_back(self, code: str, current: dict[str, int], drifted: list[str]) -> None:
        """Store the quantities read from the channel, and forget the last confirmed push of
        the ``drifted`` listings so that they are pushed again."""
        table = schema.listings
        with writing(self.db) as connection:
            if current:
                connection.execute(
                    update(table)
                    .where((table.c.channel == code) & (table.c.listing_id == bindparam("l")))
                    .values(channel_quantity=bindparam("q")),
                    [{"l": lid, "q": q} for lid, q in current.items()],
                )
            for chunk in chunked(drifted):
                connection.execute(
                    update(table)
                    .where((table.c.channel == code) & table.c.listing_id.in_(chunk))
                    .values(last_pushed=None)
                )


__all__ = [
    "AUTH_REFUSED",
    "BACKORDERS_KEY",
    "SyncState",
    "config_fingerprint",
    "join_extra",
    "keep_extra",
    "split_extra",
]
