"""The sync engine: the jobs run per channel, independent of how they are scheduled.

Jobs: refresh the listing map, pull stock, pull orders, push quantities, reconcile.
Each run is logged in one line (channel, counts, duration), recorded in ``job_runs``,
counted in the metrics, and never raises: a failing channel fails its own jobs only.
State lives in the store (cursors, listing map, last confirmed pushes); the connector
holds none.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, bindparam, select, update

from sellable.config import ChannelSettings, Settings
from sellable.core.rules import ChannelRules
from sellable.errors import ChannelError, ChannelPayloadError, ConfigError, SellableError
from sellable.orders import OrderBook, OrderIn, OrderLineIn
from sellable.orders.counts import CountIn, receive_stock_counts
from sellable.sdk import (
    Capability,
    ChannelOrder,
    Connector,
    ConnectorContext,
    Listing,
    PushItem,
    PushStatus,
)
from sellable.store import schema
from sellable.store.db import writing
from sellable.store.sql import chunked, upsert, utcnow
from sellable.sync.http import ChannelHttp, CircuitBreaker
from sellable.sync.locks import JobLocks
from sellable.sync.metrics import Metrics
from sellable.sync.plugins import load_connector, validate_channel_settings

log = logging.getLogger("sellable.sync")

JOBS = ("listings", "stock", "orders", "push", "reconcile")
MAX_PAGES = 100_000


@dataclass(slots=True)
class JobResult:
    channel: str
    job: str
    ok: bool = True
    skipped: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    reports: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def describe(self) -> str:
        counts = " ".join(f"{k}={v}" for k, v in self.counts.items())
        if self.skipped:
            return f"{self.job}: skipped ({self.skipped})"
        state = "ok" if self.ok else f"FAILED: {self.error}"
        return f"{self.job}: {state} {counts} ({self.seconds:.2f}s)".replace("  ", " ")


@dataclass(slots=True)
class _Channel:
    settings: ChannelSettings
    connector: Connector
    http: ChannelHttp
    rules: ChannelRules
    breaker: CircuitBreaker
    lock: threading.Lock = field(default_factory=threading.Lock)


class PaginationLoop(ChannelPayloadError):
    """The channel sent the same page token twice."""


class SyncEngine:
    """Runs the jobs of every configured channel.

    Usage::

        engine = SyncEngine(db, settings)
        engine.run_once()                 # every job of every channel once, in order
        engine.push("shop")               # one job
    """

    def __init__(
        self,
        db: Engine,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        http_options: dict[str, Any] | None = None,
        on_sellable_changed: Callable[[set[tuple[str, str]]], None] | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.now = now
        self.on_sellable_changed = on_sellable_changed
        self.stopping = threading.Event()
        self.book = OrderBook(db, settings)
        self._book_lock = self.book.live.lock
        self.locks = JobLocks(db)
        self._missing_reported: dict[str, list[str]] = {}
        self.channels: dict[str, _Channel] = {}
        for index, channel in enumerate(settings.channels):
            self.channels[channel.code] = self._open_channel(index, channel, http_options or {})

    def _open_channel(
        self, index: int, channel: ChannelSettings, http_options: dict[str, Any]
    ) -> _Channel:
        connector_settings = validate_channel_settings(index, channel, "configuration")
        connector_class = load_connector(channel.connector)
        limit = connector_class.rate_limit
        http = ChannelHttp(
            channel.code,
            rate=limit.rate if limit else None,
            burst=limit.burst if limit else 1,
            **http_options,
        )
        context = ConnectorContext(channel.code, tuple(channel.warehouses), http)
        connector = connector_class(connector_settings, context)
        http.set_base_url(connector.base_url())
        http.authenticate = connector.authenticate
        return _Channel(channel, connector, http, channel.rules(), CircuitBreaker())

    def close(self) -> None:
        for channel in self.channels.values():
            try:
                channel.connector.close()
            finally:
                channel.http.close()
        self.locks.close()

    # -- running jobs ---------------------------------------------------------------------------

    def run_once(self, only: Sequence[str] | None = None) -> list[JobResult]:
        """One pass: listing maps, then all stock pulls, then all order pulls, then
        reconcile and push, so that one pass reflects what it pulled."""
        codes = list(only) if only else list(self.channels)
        for code in codes:
            if code not in self.channels:
                raise ConfigError(
                    f"unknown channel {code!r} (known: {', '.join(self.channels) or 'none'})"
                )
        results: list[JobResult] = []
        for job in ("listings", "stock", "orders"):
            for code in codes:
                results.append(self.run_job(code, job))
        for code in codes:
            results.append(self.run_job(code, "reconcile"))
        return results

    def run_job(self, code: str, job: str) -> JobResult:
        """Run one job of one channel; never raises (the result says what happened)."""
        channel = self.channels[code]
        result = JobResult(code, job)
        needed = {
            "listings": Capability.LIST_LISTINGS,
            "stock": Capability.PULL_STOCK,
            "orders": Capability.PULL_ORDERS,
            "push": Capability.PUSH_QUANTITIES,
            "reconcile": Capability.PUSH_QUANTITIES,
        }[job]
        if needed not in channel.connector.capabilities:
            result.skipped = f"connector cannot {needed.value.replace('_', ' ')}"
            return result
        if self.stopping.is_set():
            result.skipped = "shutting down"
            return result
        if channel.breaker.is_open:
            result.skipped = "circuit open after repeated failures"
            self.metrics.job_skipped(code, job)
            return result
        with channel.lock, self.locks.hold(f"{code}:{job}") as acquired:
            if not acquired:
                result.skipped = "running in another replica"
                return result
            started = time.monotonic()
            run_id = self._start_run(code, job)
            try:
                getattr(self, f"_job_{job}")(channel, result)
            except SellableError as err:
                result.ok, result.error = False, str(err)
            except Exception as err:  # a bug must not stop the other channels; log it fully
                log.exception("channel %s: %s job crashed", code, job)
                result.ok, result.error = False, f"{type(err).__name__}: {err}"
            result.seconds = time.monotonic() - started
            self._finish_run(run_id, result)
        self._account(channel, result)
        return result

    def _account(self, channel: _Channel, result: JobResult) -> None:
        code = channel.settings.code
        self.metrics.job_finished(code, result.job, result.ok, result.seconds, result.counts)
        counts = " ".join(f"{k}={v}" for k, v in result.counts.items())
        if result.ok:
            log.info(
                "channel=%s job=%s ok %s duration=%.3fs", code, result.job, counts, result.seconds
            )
            if channel.breaker.record_success():
                log.warning("channel=%s recovered: jobs succeed again", code)
        else:
            log.error(
                "channel=%s job=%s failed: %s %s duration=%.3fs",
                code,
                result.job,
                result.error,
                counts,
                result.seconds,
            )
            if channel.breaker.record_failure():
                log.error(
                    "channel=%s: %d failures in a row; backing off for %.0fs",
                    code,
                    channel.breaker.failures,
                    channel.breaker.cooldown,
                )
        self.metrics.circuit(code, channel.breaker.is_open)

    # -- jobs -----------------------------------------------------------------------------------

    def _job_listings(self, channel: _Channel, result: JobResult) -> None:
        code = channel.settings.code
        seen: dict[str, Listing] = {}
        cursor: str | None = None
        tokens: set[str] = set()
        for _page in range(MAX_PAGES):
            page = channel.connector.list_listings(cursor)
            for listing in page.listings:
                seen[listing.listing_id] = listing
            cursor = _next_token(page.next_cursor, tokens, code)
            if cursor is None or self.stopping.is_set():
                break
        if self.stopping.is_set():
            raise ChannelError("listing refresh abandoned at shutdown", channel=code)
        stored = self.book.live.catalog
        now = self.now()
        rows: list[dict[str, Any]] = []
        for listing in seen.values():
            sku_id = (
                stored.sku_id(listing.sku)
                if listing.sku is not None and listing.sku in stored.catalog
                else None
            )
            rows.append(
                {
                    "channel": code,
                    "listing_id": listing.listing_id,
                    "parent_id": listing.parent_id,
                    "channel_sku": listing.sku,
                    "sku_id": sku_id,
                    "warehouses": ",".join(listing.warehouses) if listing.warehouses else None,
                    "extra": json.dumps(listing.extra, sort_keys=True) if listing.extra else None,
                    "present": True,
                    "first_seen_at": now,
                    "last_seen_at": now,
                    "channel_quantity": listing.quantity,
                    "push_failures": 0,
                }
            )
        # Two listings of one SKU selling from the same warehouses are each offered the whole
        # sellable quantity, so the channel may sell the same units twice: reported (with a
        # warning at each refresh) for the merchant to merge them on the channel.
        duplicates = sorted(
            f"{stored.code(sku_id)}: {other} (as {ids[0]})"
            for (sku_id, _warehouses), ids in repeated_listings(
                (r["sku_id"], r["warehouses"], r["listing_id"]) for r in rows
            ).items()
            for other in ids[1:]
        )
        table = schema.listings
        with writing(self.db) as connection:
            before = {
                row.listing_id: (row.present, row.last_pushed)
                for row in connection.execute(
                    select(table.c.listing_id, table.c.present, table.c.last_pushed).where(
                        table.c.channel == code
                    )
                )
            }
            # A listing that comes back, or whose quantity on the channel is not what it last
            # confirmed, is pushed again at the next push (a cheap reconcile).
            for row in rows:
                present, last_pushed = before.get(row["listing_id"], (False, None))
                quantity = row["channel_quantity"]
                stale = not present or (quantity is not None and quantity != last_pushed)
                row["last_pushed"] = None if stale else last_pushed
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
                lid for lid, (present, _pushed) in before.items() if present and lid not in seen
            ]
            for chunk in chunked(removed):
                connection.execute(
                    update(table)
                    .where((table.c.channel == code) & table.c.listing_id.in_(chunk))
                    .values(present=False)
                )
        unmatched: list[str] = sorted(
            {str(r["channel_sku"] or r["listing_id"]) for r in rows if r["sku_id"] is None}
        )
        added = [lid for lid in seen if lid not in before or not before[lid][0]]
        matched = {r["sku_id"] for r in rows if r["sku_id"] is not None}
        missing = sorted(
            sku for pos, sku in enumerate(stored.catalog.codes) if stored.ids[pos] not in matched
        )
        result.counts["missing"] = len(missing)
        result.reports["missing_listings"] = missing
        if missing and missing != self._missing_reported.get(code):
            log.info(
                "channel=%s: %d SKU(s) of ours are not listed there: %s",
                code,
                len(missing),
                ", ".join(missing[:20]),
            )
        self._missing_reported[code] = missing
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
                "; ".join(duplicates[:20]),
            )
        if unmatched:
            log.warning(
                "channel=%s: %d listing(s) on the channel match no SKU of ours: %s",
                code,
                len(unmatched),
                ", ".join(unmatched[:20]),
            )

    def _job_stock(self, channel: _Channel, result: JobResult) -> None:
        code = channel.settings.code
        warehouse = channel.settings.warehouses[0]
        counts = [
            CountIn(c.sku, warehouse, c.on_hand, reserved=c.reserved)
            for c in channel.connector.pull_stock()
        ]
        outcome = receive_stock_counts(self.book, counts, f"stock pull {code}")
        result.counts.update(
            skus=len(counts) - sum(1 for c in counts if c.sku in outcome.unknown_skus),
            changed=outcome.created + outcome.updated,
            movements=outcome.movements,
            unknown=len(outcome.unknown_skus),
        )
        result.reports["unknown_skus"] = outcome.unknown_skus
        self._notify(outcome.changed | outcome.retried.changed_pairs)

    def _job_orders(self, channel: _Channel, result: JobResult) -> None:
        settings = channel.settings
        code = settings.code
        run_start = self.now()
        cursor_value = self._cursor(code, "orders")
        if cursor_value is None:
            since = run_start - settings.initial_lookback
        else:
            since = datetime.fromisoformat(cursor_value) - settings.order_overlap
        newest: datetime | None = None
        token: str | None = None
        tokens: set[str] = set()
        held = 0
        changed: set[tuple[str, str]] = set()
        unknown: set[str] = set()
        rejected: list[str] = []
        # An order a pull reads twice (on two pages, or in two passes of a connector) is
        # applied and counted once, unless it changed in between.
        seen: dict[str, OrderIn] = {}
        for _page in range(MAX_PAGES):
            page = channel.connector.pull_orders(since, token)
            orders = []
            for order in page.orders:
                order_in = self._order_in(settings, order)
                if seen.get(order.order_id) != order_in:
                    seen[order.order_id] = order_in
                    orders.append(order_in)
            for order in page.orders:
                updated = order.updated_at
                if updated.tzinfo is None:  # a channel time without a zone is UTC
                    updated = updated.replace(tzinfo=UTC)
                newest = updated if newest is None else max(newest, updated)
                unknown.update(
                    line.sku
                    for line in order.lines
                    if line.sku not in self.book.live.catalog.catalog
                )
            if orders:
                with self._book_lock:
                    self.book.refresh()
                    applied = self.book.apply(orders)
                changed |= applied.changed_pairs
                held += applied.lines_held
                rejected.extend(f"{ref}: {why}" for ref, why in applied.rejected)
            token = _next_token(page.next_cursor, tokens, code)
            if token is None:
                break
            if self.stopping.is_set():
                raise ChannelError("order pull abandoned at shutdown (cursor kept)", channel=code)
        # The cursor advances only when every page was read, and never past this run's
        # start: orders that changed while we paged are read again next time.
        if newest is not None:
            new_cursor = min(newest, run_start)
            if cursor_value is None or new_cursor > datetime.fromisoformat(cursor_value):
                self._set_cursor(code, "orders", new_cursor.isoformat())
        elif cursor_value is None:
            self._set_cursor(code, "orders", since.isoformat())
        pulled = len(seen)
        result.counts.update(orders=pulled, held_lines=held, changed=len(changed))
        result.reports["unknown_skus"] = sorted(unknown)
        result.reports["rejected_orders"] = rejected
        if rejected:
            log.warning(
                "channel=%s: %d order(s) refused: %s", code, len(rejected), "; ".join(rejected[:10])
            )
        self.metrics.orders_pulled(code, pulled)
        self._notify(changed)

    def _order_in(self, settings: ChannelSettings, order: ChannelOrder) -> OrderIn:
        # An unknown warehouse is refused by the order book and reported, not fatal.
        warehouse = order.warehouse or settings.warehouses[0]
        return OrderIn(
            channel=settings.code,
            order_id=order.order_id,
            warehouse=warehouse,
            status=order.status,
            lines=tuple(OrderLineIn(x.line_id, x.sku, x.quantity, x.status) for x in order.lines),
            created_at=order.created_at,
        )

    def _job_push(self, channel: _Channel, result: JobResult) -> None:
        self._push(channel, result, reconcile=False)

    def _job_reconcile(self, channel: _Channel, result: JobResult) -> None:
        with self._book_lock:
            self.book.live.reload()
        self._push(channel, result, reconcile=True)

    def _push(self, channel: _Channel, result: JobResult, *, reconcile: bool) -> None:
        settings = channel.settings
        code = settings.code
        with self._book_lock:
            self.book.refresh()
            rows = self._matched_listings(code)
            desired = {row["listing_id"]: self._quantity_for(channel, row) for row in rows}
        if reconcile:
            drifted = self._read_back(channel, rows, desired)
            result.counts["drifted"] = drifted
        pending = [row for row in rows if row["last_pushed"] != desired[row["listing_id"]]]
        self.metrics.queue_depth(code, len(pending))
        result.counts.update(listings=len(rows), pending=len(pending))
        if settings.dry_run:
            for row in pending:
                log.info(
                    "channel=%s dry run: would push %s (sku %s) = %d (last confirmed %s)",
                    code,
                    row["listing_id"],
                    row["sku"],
                    desired[row["listing_id"]],
                    row["last_pushed"],
                )
            result.counts["would_push"] = len(pending)
            return
        ok = failed = retry = 0
        batch_size = max(1, channel.connector.max_push_batch)
        for start in range(0, len(pending), batch_size):
            if self.stopping.is_set():
                result.counts["abandoned"] = len(pending) - start
                break
            batch = pending[start : start + batch_size]
            items = [
                PushItem(
                    self._listing(row),
                    desired[row["listing_id"]],
                    row["last_pushed"]
                    if row["last_pushed"] is not None
                    else row["channel_quantity"],
                )
                for row in batch
            ]
            started = time.monotonic()
            results = {r.listing_id: r for r in channel.connector.push_quantities(items)}
            self.metrics.push_latency(code, time.monotonic() - started)
            confirmed, refused = [], []
            for item in items:
                outcome = results.get(item.listing.listing_id)
                if outcome is None or outcome.status is PushStatus.RETRY:
                    retry += 1
                elif outcome.status is PushStatus.OK:
                    confirmed.append({"lid": item.listing.listing_id, "q": item.quantity})
                    ok += 1
                else:
                    refused.append(
                        {"lid": item.listing.listing_id, "e": (outcome.message or "refused")[:1000]}
                    )
                    failed += 1
            self._record_push(code, confirmed, refused)
            self.metrics.pushed(
                code, len(confirmed), len(refused), len(items) - len(confirmed) - len(refused)
            )
        result.counts.update(pushed=ok, failed=failed, retry=retry)
        self.metrics.queue_depth(code, len(pending) - ok)
        if failed:
            log.warning(
                "channel=%s: %d listing(s) refused by the channel; retried next cycle", code, failed
            )

    def _read_back(
        self, channel: _Channel, rows: list[dict[str, Any]], desired: dict[str, int]
    ) -> int:
        """Forget the last confirmed value of listings whose channel quantity drifted (or of
        all, when the connector cannot read quantities back), so they are pushed again."""
        code = channel.settings.code
        if Capability.READ_QUANTITIES in channel.connector.capabilities:
            current: dict[str, int] = {}
            for start in range(0, len(rows), 250):
                part = [self._listing(row) for row in rows[start : start + 250]]
                current.update(channel.connector.read_quantities(part))
            drifted = [
                row["listing_id"]
                for row in rows
                if row["listing_id"] in current
                and current[row["listing_id"]] != desired[row["listing_id"]]
            ]
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
            for row in rows:
                if row["listing_id"] in drifted:
                    row["last_pushed"] = None
                    row["channel_quantity"] = current[row["listing_id"]]
            return len(drifted)
        for row in rows:
            row["last_pushed"] = None
        return len(rows)

    # -- helpers --------------------------------------------------------------------------------

    def desired_quantities(self, code: str) -> dict[str, int]:
        """What each matched listing of the channel should show now."""
        channel = self.channels[code]
        with self._book_lock:
            self.book.refresh()
            return {
                row["listing_id"]: self._quantity_for(channel, row)
                for row in self._matched_listings(code)
            }

    def _quantity_for(self, channel: _Channel, row: dict[str, Any]) -> int:
        warehouses = (
            row["warehouses"].split(",") if row["warehouses"] else channel.settings.warehouses
        )
        total = self.book.live.sellable_in(row["sku"], warehouses)
        return channel.rules.quantity(total)

    def _matched_listings(self, code: str) -> list[dict[str, Any]]:
        table, skus = schema.listings.c, schema.skus.c
        with self.db.connect() as connection:
            return [
                dict(row._mapping)
                for row in connection.execute(
                    select(
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
                    .order_by(table.id)
                )
            ]

    @staticmethod
    def _listing(row: dict[str, Any]) -> Listing:
        return Listing(
            listing_id=row["listing_id"],
            sku=row["channel_sku"],
            parent_id=row["parent_id"],
            warehouses=tuple(row["warehouses"].split(",")) if row["warehouses"] else None,
            quantity=row["channel_quantity"],
            extra=json.loads(row["extra"]) if row["extra"] else {},
        )

    def _record_push(
        self, code: str, confirmed: list[dict[str, Any]], refused: list[dict[str, Any]]
    ) -> None:
        table = schema.listings
        now = self.now()
        where = (table.c.channel == code) & (table.c.listing_id == bindparam("lid"))
        with writing(self.db) as connection:
            if confirmed:
                connection.execute(
                    update(table)
                    .where(where)
                    .values(
                        last_pushed=bindparam("q"),
                        channel_quantity=bindparam("q"),
                        last_pushed_at=now,
                        push_failures=0,
                        last_error=None,
                    ),
                    confirmed,
                )
            if refused:
                connection.execute(
                    update(table)
                    .where(where)
                    .values(push_failures=table.c.push_failures + 1, last_error=bindparam("e")),
                    refused,
                )

    def _notify(self, changed: set[tuple[str, str]]) -> None:
        if changed and self.on_sellable_changed is not None:
            self.on_sellable_changed(changed)

    def _cursor(self, code: str, job: str) -> str | None:
        c = schema.channel_cursors.c
        with self.db.connect() as connection:
            value: str | None = connection.execute(
                select(c.value).where((c.channel == code) & (c.job == job))
            ).scalar()
        return value

    def _set_cursor(self, code: str, job: str, value: str) -> None:
        with writing(self.db) as connection:
            upsert(
                connection,
                schema.channel_cursors,
                [{"channel": code, "job": job, "value": value, "updated_at": self.now()}],
                key=("channel", "job"),
                update=("value", "updated_at"),
            )

    def _start_run(self, code: str, job: str) -> int:
        runs = schema.job_runs
        with writing(self.db) as connection:
            run_id: int = connection.execute(
                runs.insert().returning(runs.c.id),
                {"channel": code, "job": job, "started_at": self.now()},
            ).scalar_one()
        return run_id

    def _finish_run(self, run_id: int, result: JobResult) -> None:
        runs = schema.job_runs
        summary = dict(result.counts)
        for key, values in result.reports.items():
            summary[key] = values
        with writing(self.db) as connection:
            connection.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(
                    finished_at=self.now(),
                    ok=result.ok,
                    summary=json.dumps(summary, sort_keys=True),
                    error=result.error,
                )
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


def _next_token(token: str | None, seen: set[str], channel: str) -> str | None:
    """Refuse to loop on a page token the channel already gave (Singer SDK's guard)."""
    if token is None:
        return None
    if token in seen:
        raise PaginationLoop(f"the channel repeated page token {token!r}", channel=channel)
    seen.add(token)
    return token
