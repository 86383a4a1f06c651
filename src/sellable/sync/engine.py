"""The sync engine: runs the jobs of every channel, independent of how they are scheduled.

The engine is the coordinator. What each job does is in :mod:`sellable.sync.jobs` (one
module per job, named in one table); what is kept in the store is :mod:`sellable.sync.state`;
health per (channel, job) is :mod:`sellable.sync.health`. Each run is logged in one line
(channel, job, counts, duration), recorded in ``job_runs``, counted in the metrics, and
never raises: a failing channel fails its own jobs only. State lives in the store (cursors,
listing map, last confirmed pushes); the engine keeps only health and the in-memory stock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from sellable.config import ChannelSettings, Settings
from sellable.core.rules import BACKORDERS_OFF, Offer
from sellable.core.share import SharedAllocation
from sellable.errors import AuthenticationError, ConfigError, SellableError
from sellable.orders import OrderBook
from sellable.sdk import Capability, ChannelHttp, ConnectorContext
from sellable.store.sql import utcnow
from sellable.sync.bulk import collection_paused
from sellable.sync.health import Health
from sellable.sync.jobs import JOB_TABLE, MAX_PAGES, PROBE_JOB, Channel, JobResult, job_spec
from sellable.sync.jobs.listings import check_webhooks
from sellable.sync.locks import JobLocks
from sellable.sync.metrics import Metrics
from sellable.sync.plugins import load_connector, validate_channel_settings
from sellable.sync.shares import SharedOffers, listing_warehouses
from sellable.sync.state import SyncState

log = logging.getLogger("sellable.sync")

#: A listing's offer, with the SKU and warehouses (as stored) it was worked out for.
_CachedOffer = tuple[str, str | None, Offer]


def _same_key(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Whether two :meth:`SyncEngine._offers_key` name the same state: the same core object
    (not merely an equal one), the rest equal."""
    return a[0] is b[0] and a[1:] == b[1:]


#: Jobs of one pass of :meth:`SyncEngine.run_once`, in order: listing maps, then the
#: fulfilment channels' shipments (booked before their counts are read, so that a count
#: never leaves out units whose Sale is still to come), then all stock pulls, then all
#: order pulls, then the fulfilment channels' sends, then reconcile (which pushes).
PASS_ORDER = ("listings", "shipments", "stock", "orders", "fulfil", "reconcile")


#: How a message names the probe job (:meth:`SyncEngine._probe_job`).
PROBE_WORDS = {"orders": "order pull", "stock": "stock pull", "listings": "listing refresh"}


class SyncEngine:
    """Runs the jobs of every configured channel.

    Usage::

        engine = SyncEngine(db, settings)
        engine.run_once()                 # every job of every channel once, in order
        engine.run_job("shop", "push")    # one job
    """

    max_pages = MAX_PAGES

    def __init__(
        self,
        db: Engine,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        http_options: dict[str, Any] | None = None,
        on_sellable_changed: Callable[[set[tuple[str, str]]], None] | None = None,
        now: Callable[[], datetime] = utcnow,
        health: Health | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.now = now
        self.on_sellable_changed = on_sellable_changed
        #: Set at shutdown: jobs stop between pages and batches, HTTP retries stop at once.
        self.stopping = threading.Event()
        self.book = OrderBook(db, settings)
        self.live = self.book.live
        #: When this engine last loaded the catalog and stock afresh (see :meth:`reload_live`).
        self.live_loaded_at = now()
        self.state = SyncState(db, now)
        self.health = health or Health(settings.daemon.degraded_after, wall=now)
        self.locks = JobLocks(db)
        self.missing_reported: dict[str, list[str]] = {}
        #: When the webhook subscriptions of a channel without a listing refresh were last
        #: checked by this process (see :meth:`_check_webhooks_due`).
        self.webhooks_checked: dict[str, datetime] = {}
        self.channels: dict[str, Channel] = {}
        #: ``[allocation] mode = "shared"``: the split, built at the first use.
        self._shared: SharedOffers | None = None
        #: Per channel: the desired offers of its last push, and what they were worked out
        #: from (see :meth:`listings_and_offers`).
        self._offers: dict[str, tuple[tuple[Any, ...], dict[str, _CachedOffer]]] = {}
        #: Bumped each time the in-memory core is fed changed stock rows (see :meth:`_offers_key`).
        self._stock_moves = 0
        self.live.listeners.append(self._stock_moved)
        options = {"stopping": self.stopping, **(http_options or {})}
        for index, channel in enumerate(settings.channels):
            if channel.is_manual:  # a CSV-only channel: no connector, no jobs
                continue
            self.channels[channel.code] = self._open_channel(index, channel, options)

    def _open_channel(
        self, index: int, settings: ChannelSettings, http_options: dict[str, Any]
    ) -> Channel:
        connector_settings = validate_channel_settings(
            index,
            settings,
            "configuration",
            warehouses=[w.code for w in self.settings.warehouses],
        )
        connector_class = load_connector(settings.connector)
        limit = connector_class.rate_limit
        http = ChannelHttp(
            settings.code,
            rate=limit.rate if limit else None,
            burst=limit.burst if limit else 1,
            **http_options,
        )
        context = ConnectorContext(settings.code, tuple(settings.warehouses), http)
        connector = connector_class(connector_settings, context)
        http.set_base_url(connector.base_url())
        http.authenticate = connector.authenticate
        code = settings.code
        for spec in JOB_TABLE:
            if spec.capability in connector.capabilities:
                self.metrics.watch_success(code, spec.name, self.health.job(code, spec.name))
        # A job whose last run failed is failing from the start, as `status` says, until it
        # runs again (a restarted daemon never looks healthy over a stored failure).
        # The outage goes on too, so that its end is logged like any other.
        for job, (error, at) in self.state.failed_last(code).items():
            if job in {spec.name for spec in JOB_TABLE}:
                job_health = self.health.job(code, job)
                job_health.record_failure(error)
                if at is not None:
                    job_health.failing_since = at
                self.health.note_failure(code, job, error or "failed before the restart")
        channel = Channel(settings, connector, http, settings.rules())
        refused = self.state.auth_refused(settings)
        if refused is not None:
            since, error = refused
            self.health.refuse_auth(code, error, since)
            log.warning(
                "channel=%s: credentials were refused at %s and the configuration is "
                "unchanged: only %s runs, to try them",
                code,
                since.isoformat(),
                self._probe_name(channel),
                extra={"channel": code},
            )
        return channel

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
        return [self.run_job(code, job) for job in PASS_ORDER for code in codes]

    def run_job(self, code: str, job: str) -> JobResult:
        """Run one job of one channel; never raises (the result says what happened)."""
        spec = job_spec(job)
        channel = self.channels[code]
        result = JobResult(code, job)
        if spec.capability not in channel.connector.capabilities:
            result.skipped = spec.cannot()
            return result
        if self.stopping.is_set():
            result.skipped = "shutting down"
            return result
        refusal = self.health.auth_refused(code)
        health = self.health.job(code, job)
        probing = job == self._probe_job(channel)
        if refusal is not None and not probing:
            result.skipped = (
                f"authentication refused since {refusal.since.isoformat()}; "
                f"{self._probe_name(channel)} tries the credentials again, or fix them in the "
                "configuration and restart"
            )
            self.metrics.job_skipped(code, job)
            return result
        # The probe is never backed off: it runs at its interval, so a healed channel is
        # seen within one pull interval (issue 18).
        if not probing and health.is_open:
            result.skipped = f"backing off after {health.failures} failures in a row"
            self.metrics.job_skipped(code, job)
            return result
        held = channel.http.holding()
        if held > channel.http.backoff_max:
            # The channel asked for quiet (Retry-After): the run would send nothing.
            until = self.now() + timedelta(seconds=held)
            result.skipped = (
                f"waiting until {until.isoformat(timespec='seconds')} (Retry-After): the "
                "channel asked for quiet; nothing sent"
            )
            self.metrics.job_skipped(code, job)
            return result
        refused = False
        with channel.lock, self.locks.hold(f"{code}:{job}") as acquired:
            if not acquired:
                result.skipped = "running in another replica"
                return result
            started = time.monotonic()
            run_id = self.state.start_run(code, job)
            # The channel's client is shared by its jobs, which hold channel.lock: the 429s
            # counted from here on are this run's.
            throttled_before = channel.http.throttled
            # A failing channel gets one attempt per request, no retries: a gentle rate.
            channel.http.single_attempt = self.health.state(code) != "healthy"
            try:
                self._check_webhooks_due(channel, result)
                spec.run(self, channel, result)
                learned = channel.connector.take_learned_extra()
                if learned:
                    self.state.store_learned_extra(code, learned)
            except AuthenticationError as err:
                result.ok, result.error, refused = False, str(err), True
            except SellableError as err:
                result.ok, result.error = False, str(err)
            except Exception as err:  # a bug must not stop the other channels; log it fully
                log.exception(
                    "channel %s: %s job crashed", code, job, extra={"channel": code, "job": job}
                )
                result.ok, result.error = False, f"{type(err).__name__}: {err}"
            result.seconds = time.monotonic() - started
            summary: dict[str, Any] = dict(result.counts)
            summary.update(result.reports)
            self.state.finish_run(
                run_id,
                result.ok,
                summary,
                result.error,
                throttled=channel.http.throttled - throttled_before,
            )
        self._account(channel, result, refused)
        return result

    def _check_webhooks_due(self, channel: Channel, result: JobResult) -> None:
        """The webhook subscriptions of a channel that lists no listings (a 3PL such as
        ShipBob): the listing refresh checks them for the others (create, repair, remove,
        and their health in ``status``); here its first job to run after the start checks
        them, then one at most every ``refresh_listings_every``. Not while its credentials
        are refused (the check would only be refused too)."""
        connector, code = channel.connector, channel.code
        if not connector.webhooks or Capability.LIST_LISTINGS in connector.capabilities:
            return
        if self.health.auth_refused(code) is not None:
            return
        now = self.now()
        last = self.webhooks_checked.get(code)
        if last is not None and now - last < channel.settings.refresh_listings_every:
            return
        self.webhooks_checked[code] = now
        check_webhooks(self, channel, result)

    def _account(self, channel: Channel, result: JobResult, refused: bool) -> None:
        """Metrics, the run's log line, and health. A channel's outage is logged once when
        it breaks, at most once a minute while it lasts, and once when it recovers; the
        failed runs in between are DEBUG."""
        code, job = channel.code, result.job
        self.metrics.job_finished(code, job, result.ok, result.seconds, result.counts)
        health = self.health.job(code, job)
        extra = {"channel": code, "job": job, "counts": dict(result.counts)}
        counts = " ".join(f"{k}={v}" for k, v in result.counts.items())
        if result.ok:
            log.info(
                "channel=%s job=%s ok %s duration=%.3fs",
                code,
                job,
                counts,
                result.seconds,
                extra=extra,
            )
            recovered = health.record_success()
            probe = job == self._probe_job(channel)
            accepted = probe and self.health.accept_auth(code)
            if accepted:
                self.state.clear_auth_refused(code)
            if probe and (recovered or accepted):
                self.health.lift_backoff(code)  # the channel answers: every job runs again
            outage = self.health.end_outage(code) if recovered or accepted else None
            if outage is not None:
                log.warning(
                    "channel=%s recovered: job=%s succeeds again after %.0fs and %d failed "
                    "run(s) since %s%s",
                    code,
                    job,
                    self.health.clock() - outage.started,
                    outage.failed_runs,
                    outage.since.isoformat(),
                    "; credentials accepted again, all its jobs run again" if accepted else "",
                    extra=extra,
                )
        else:
            error = str(result.error)
            change = health.record_failure(error)
            newly_refused = refused and self.health.refuse_auth(code, error)
            if newly_refused:
                mark = self.health.auth_refused(code)
                assert mark is not None
                self.state.set_auth_refused(channel.settings, mark.since, mark.error)
            outage, event = self.health.note_failure(code, job, error)
            if event == "break":
                log.error(
                    "channel=%s job=%s failing: %s %s duration=%.3fs%s",
                    code,
                    job,
                    error,
                    counts,
                    result.seconds,
                    (
                        "; credentials refused: its jobs are skipped, except "
                        f"{self._probe_name(channel)} every {self._probe_every(channel)}, "
                        "until the channel accepts them or the configuration changes"
                    )
                    if newly_refused
                    else "",
                    extra=extra,
                )
            elif event == "summary":
                log.warning(
                    "channel=%s still failing after %.0fs: %d failed run(s) of %s; last "
                    "error (job=%s): %s",
                    code,
                    self.health.clock() - outage.started,
                    outage.failed_runs,
                    ", ".join(sorted(outage.jobs)),
                    job,
                    error,
                    extra=extra,
                )
            else:
                log.debug(
                    "channel=%s job=%s failed again (%d in a row): %s",
                    code,
                    job,
                    health.failures,
                    error,
                    extra=extra,
                )
            if change.backing_off:
                log.debug(
                    "channel=%s job=%s: %d failures in a row; backing off for %.0fs",
                    code,
                    job,
                    health.failures,
                    health.cooldown,
                    extra=extra,
                )
        self.metrics.circuit(code, any(h.is_open for h in self.health.jobs(code).values()))

    @staticmethod
    def _probe_job(channel: Channel) -> str:
        """The job that tries refused credentials again: the order pull, or the first job
        of a connector that does not pull orders."""
        capable = [s.name for s in JOB_TABLE if s.capability in channel.connector.capabilities]
        return PROBE_JOB if PROBE_JOB in capable or not capable else capable[0]

    @classmethod
    def _probe_name(cls, channel: Channel) -> str:
        """The probe job as a message names it: "its order pull", "its stock pull"."""
        job = cls._probe_job(channel)
        return f"its {PROBE_WORDS.get(job, job + ' job')}"

    @classmethod
    def _probe_every(cls, channel: Channel) -> timedelta:
        interval: timedelta = getattr(
            channel.settings, job_spec(cls._probe_job(channel)).interval_key
        )
        return interval

    # -- health ---------------------------------------------------------------------------------

    def health_report(self) -> dict[str, Any]:
        """``/healthz``'s body, per channel and job. Top level: ``ok`` when every channel is
        healthy; ``failing`` when the latest run of some job of some channel failed or its
        credentials were refused (what ``sellable status`` calls failing); ``degraded``
        when that has lasted longer than ``daemon.degraded_after``."""
        channels = {code: self.health.describe(code) for code in self.channels}
        if any(self.health.degraded(code) for code in self.channels):
            status = "degraded"
        elif any(report["status"] != "healthy" for report in channels.values()):
            status = "failing"
        else:
            status = "ok"
        return {"status": status, "channels": channels}

    # -- quantities -----------------------------------------------------------------------------

    def reload_live(self, unless_within: timedelta) -> bool:
        """Load the catalog and every stock row afresh (the reconcile's guard against drift
        of the in-memory core), unless this engine loaded them less than ``unless_within``
        ago: at a daemon start it loaded them moments before the reconcile (0.5 s for
        100,000 SKUs, before the first push). Returns whether it reloaded; the caller holds
        the live stock's lock."""
        now = self.now()
        if now - self.live_loaded_at < unless_within:
            return False
        self.live.reload()
        self.live_loaded_at = now
        return True

    def desired_quantities(self, code: str) -> dict[str, int]:
        """What each matched listing of the channel should show now."""
        return {lid: offer.quantity for lid, offer in self.desired_offers(code).items()}

    def desired_offers(self, code: str) -> dict[str, Offer]:
        """What each matched listing of the channel should show now, with the flag."""
        return self.listings_and_offers(self.channels[code])[1]

    def listings_and_offers(
        self, channel: Channel
    ) -> tuple[list[dict[str, Any]], dict[str, Offer]]:
        """The channel's matched listings, and what each should be offered now (built
        with collection paused: 100,000 of each, see :mod:`sellable.sync.bulk`)."""
        with self.live.lock, collection_paused():
            self.live.refresh()
            rows = self.state.matched_listings(channel.code)
            shares = self.shared_allocation()
            if shares is not None:
                desired = {
                    row["listing_id"]: self.quantity_for(channel, row, shares) for row in rows
                }
                return rows, desired
            desired = self._full_offers(channel, rows)
        return rows, desired

    def _stock_moved(self, _pairs: set[Any]) -> None:
        self._stock_moves += 1

    def _offers_key(self, channel: Channel) -> tuple[Any, ...]:
        """What every offer of a channel in ``"full"`` mode is worked out from, besides its
        listing's SKU and warehouses: the in-memory core (a new one at every reload, as at a
        catalog change), the count of times it was fed changed stock rows (a refresh that
        caught another process's writes, an order, a count, expired lots), the channel's
        rules and its default warehouses."""
        return (
            self.live.core,
            self._stock_moves,
            channel.rules,
            tuple(channel.settings.warehouses),
        )

    def _full_offers(self, channel: Channel, rows: list[dict[str, Any]]) -> dict[str, Offer]:
        """Each row's offer in ``"full"`` mode, taken from the channel's previous push when
        nothing it depends on moved since (:meth:`_offers_key`, and the row's own SKU and
        warehouses): a push run while feeds are in flight, and the one that confirms them,
        need not work 100,000 offers out again."""
        key = self._offers_key(channel)
        cached = self._offers.get(channel.code)
        before: dict[str, _CachedOffer] = {}
        if cached is not None and _same_key(cached[0], key):
            before = cached[1]
        kept: dict[str, _CachedOffer] = {}
        desired: dict[str, Offer] = {}
        for row in rows:
            lid, sku, warehouses = row["listing_id"], row["sku"], row["warehouses"]
            entry = before.get(lid)
            if entry is None or entry[0] != sku or entry[1] != warehouses:
                entry = (sku, warehouses, self.quantity_for(channel, row))
            kept[lid] = entry
            desired[lid] = entry[2]
        self._offers[channel.code] = (key, kept)
        return desired

    def shared_allocation(self) -> SharedAllocation | None:
        """With ``[allocation] mode = "shared"``, the split of every channel's listings,
        brought up to date (the caller holds the live stock's lock and has refreshed it);
        None in ``"full"`` mode."""
        if self.settings.allocation.mode != "shared":
            return None
        if self._shared is None:
            state = self.state
            self._shared = SharedOffers(
                self.db,
                self.settings,
                self.live,
                state.matched_listings,
                self.now,
                listings_version=lambda: state.listings_version,
            )
        return self._shared.current()

    def quantity_for(
        self, channel: Channel, row: dict[str, Any], shares: SharedAllocation | None = None
    ) -> Offer:
        """The listing's offer: its sellable over its warehouses (the channel's, unless the
        listing names its own) — or, in ``"shared"`` mode, its share of it — after the
        channel's rules, and whether the channel is asked to keep selling at 0
        (:meth:`ChannelRules.offer`, which ``explain --channel`` and ``status`` use too)."""
        warehouses = listing_warehouses(row, channel.settings.warehouses)
        sku = row["sku"]
        backorderable = channel.rules.backorders != BACKORDERS_OFF and self.live.backorderable(
            sku, warehouses
        )
        key = (channel.code, row["listing_id"])
        if shares is not None and key in shares:
            total = shares.share(key)
        else:
            total = self.live.sellable_in(sku, warehouses)
        return channel.rules.offer(total, backorderable)

    def notify(self, changed: set[tuple[str, str]]) -> None:
        """Tell the daemon which (SKU, warehouse) pairs changed sellable (it pushes soon)."""
        if changed and self.on_sellable_changed is not None:
            self.on_sellable_changed(changed)


__all__ = ["PASS_ORDER", "Channel", "JobResult", "SyncEngine"]
