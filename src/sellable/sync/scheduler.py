"""The schedule: APScheduler 3.x runs every channel's jobs at their intervals.

This is the only module that imports APScheduler. Jobs come from the configuration at
every start (no persistent job store); only cursors, last pushes and run history live
in our tables. One run of a job at a time, missed runs coalesce, intervals get jitter.
A change in sellable stock schedules a push of the affected channels after a short
debounce, instead of waiting for the next interval.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from sellable.config import Settings
from sellable.sync.engine import SyncEngine

log = logging.getLogger("sellable.scheduler")

# (job, config key of its interval, delay of the first run after start, to run in order)
SCHEDULE = (
    ("listings", "refresh_listings_every", 0.0),
    ("stock", "pull_stock_every", 0.5),
    ("orders", "pull_orders_every", 1.0),
    ("reconcile", "reconcile_every", 1.5),
    ("push", "push_every", 2.0),
)


class Scheduler:
    """Usage: ``Scheduler(engine, settings).start()``; ``push_soon(changed)``; ``shutdown()``."""

    def __init__(self, engine: SyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        workers = max(4, 2 * len(settings.channels))
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 600},
            timezone=UTC,
        )

    def start(self) -> None:
        now = datetime.now(UTC)
        jitter = int(self.settings.daemon.jitter.total_seconds()) or None
        for channel in self.settings.channels:
            for job, key, delay in SCHEDULE:
                interval: timedelta = getattr(channel, key)
                self._scheduler.add_job(
                    self.engine.run_job,
                    IntervalTrigger(
                        seconds=int(interval.total_seconds()), jitter=jitter, timezone=UTC
                    ),
                    args=(channel.code, job),
                    id=f"{channel.code}:{job}",
                    name=f"{channel.code} {job}",
                    next_run_time=now + timedelta(seconds=delay),
                )
        self._scheduler.start()
        log.info("scheduler started: %d channel(s)", len(self.settings.channels))

    def push_soon(self, changed: set[tuple[str, str]]) -> None:
        """Push the channels selling from the changed warehouses after the debounce; a push
        already waiting absorbs later changes (so a stream of orders cannot starve it)."""
        warehouses = {warehouse for _sku, warehouse in changed}
        run_at = datetime.now(UTC) + self.settings.daemon.push_debounce
        for channel in self.settings.channels:
            if not warehouses.intersection(channel.warehouses):
                continue
            job_id = f"{channel.code}:push-soon"
            if self._scheduler.get_job(job_id) is not None:
                continue
            try:
                self._scheduler.add_job(
                    self.engine.run_job,
                    DateTrigger(run_date=run_at, timezone=UTC),
                    args=(channel.code, "push"),
                    id=job_id,
                    name=f"{channel.code} push soon",
                )
            except Exception as err:  # e.g. scheduler already shut down at exit
                log.debug("push for %s not scheduled: %s", channel.code, err)

    def shutdown(self, wait: bool = True) -> None:
        for channel in self.settings.channels:
            with contextlib.suppress(JobLookupError):
                self._scheduler.remove_job(f"{channel.code}:push-soon")
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
