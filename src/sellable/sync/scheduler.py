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
from apscheduler.schedulers.base import SchedulerNotRunningError
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from sellable.config import Settings
from sellable.sdk import Capability
from sellable.sync.engine import SyncEngine
from sellable.sync.jobs import AFTER_ORDERS, JOB_TABLE

log = logging.getLogger("sellable.scheduler")

#: How long after the start the first housekeeping runs (after the first pass of jobs).
HOUSEKEEPING_FIRST = timedelta(minutes=5)


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
            if channel.code not in self.engine.channels:
                continue  # a manual (CSV-only) channel has no jobs
            for spec in JOB_TABLE:
                interval: timedelta = getattr(channel, spec.interval_key)
                self._scheduler.add_job(
                    self.run,
                    IntervalTrigger(
                        seconds=int(interval.total_seconds()), jitter=jitter, timezone=UTC
                    ),
                    args=(channel.code, spec.name),
                    id=f"{channel.code}:{spec.name}",
                    name=f"{channel.code} {spec.name}",
                    next_run_time=now + timedelta(seconds=spec.first_delay),
                )
        self._scheduler.add_job(
            self.housekeeping,
            IntervalTrigger(hours=24, jitter=jitter, timezone=UTC),
            id="housekeeping",
            name="housekeeping",
            next_run_time=now + HOUSEKEEPING_FIRST,
        )
        self._scheduler.start()
        log.info("scheduler started: %d channel(s)", len(self.settings.channels))

    def housekeeping(self) -> None:
        """Once a day: delete the run history older than ``daemon.keep_job_runs`` (it
        grows by thousands of runs a day per channel; ``status`` reads it)."""
        try:
            before = self.engine.now() - self.settings.daemon.keep_job_runs
            deleted = self.engine.state.prune_runs(before)
        except Exception:
            log.exception("housekeeping failed; it runs again in a day")
            return
        if deleted:
            log.info("housekeeping: %d job run(s) started before %s deleted", deleted, before)

    def run(self, code: str, job: str) -> None:
        """Run one job; what escapes the engine (the store unreachable when a run is
        recorded) is logged at ERROR with its traceback, and the schedule goes on."""
        try:
            self.engine.run_job(code, job)
        except Exception:
            log.exception(
                "channel=%s job=%s: run failed outside the job",
                code,
                job,
                extra={"channel": code, "job": job},
            )
        if job == "orders":
            # New allocations in a fulfilment channel's warehouses are sent soon.
            for other, channel in self.engine.channels.items():
                if Capability.FULFIL_ORDERS in channel.connector.capabilities:
                    self.run_soon(other, AFTER_ORDERS)

    def next_runs(self) -> dict[tuple[str, str], datetime]:
        """When each (channel, job) runs next (the dashboard's channels page)."""
        found: dict[tuple[str, str], datetime] = {}
        for job in self._scheduler.get_jobs():
            code, _, name = str(job.id).partition(":")
            when = getattr(job, "next_run_time", None)
            if name and when is not None:
                found[(code, name)] = when
        return found

    def push_soon(self, changed: set[tuple[str, str]]) -> None:
        """Push the channels selling from the changed warehouses after the debounce; a push
        already waiting absorbs later changes (so a stream of orders cannot starve it)."""
        warehouses = {warehouse for _sku, warehouse in changed}
        run_at = datetime.now(UTC) + self.settings.daemon.push_debounce
        for channel in self.settings.channels:
            if channel.code not in self.engine.channels:
                continue  # a manual channel: nothing to push to
            if not warehouses.intersection(channel.warehouses):
                continue
            job_id = f"{channel.code}:push-soon"
            if self._scheduler.get_job(job_id) is not None:
                continue
            try:
                self._scheduler.add_job(
                    self.run,
                    DateTrigger(run_date=run_at, timezone=UTC),
                    args=(channel.code, "push"),
                    id=job_id,
                    name=f"{channel.code} push soon",
                )
            except SchedulerNotRunningError:  # shut down at exit: the push is not needed
                log.debug("push for %s not scheduled: the scheduler has stopped", channel.code)
            except Exception:
                log.exception(
                    "channel=%s: push after a change could not be scheduled",
                    channel.code,
                    extra={"channel": channel.code, "job": "push"},
                )

    def pull_soon(self, code: str) -> None:
        """Pull the channel's orders after ``daemon.webhook_debounce`` (a webhook came).

        A pull already waiting absorbs the poke: it starts after the poke, so it reads what
        the poke announced. A pull already running does not: it may have read the channel
        before the change, so another is scheduled; two instances of this job may exist,
        and the engine runs them one after the other (the channel's lock). A poke is
        therefore never lost."""
        self.run_soon(code, "orders")

    def run_soon(self, code: str, job: str) -> None:
        """Run the channel's ``job`` after ``daemon.webhook_debounce``, as
        :meth:`pull_soon` does for the order pull (a ``fulfilments`` webhook runs the
        shipments poll; an order pull runs the fulfilment channels' sends)."""
        if code not in self.engine.channels:
            return
        job_id = f"{code}:pull-soon" if job == "orders" else f"{code}:{job}-soon"
        if self._scheduler.get_job(job_id) is not None:
            return  # waiting, not started: it will read this change too
        run_at = datetime.now(UTC) + self.settings.daemon.webhook_debounce
        try:
            self._scheduler.add_job(
                self.run,
                DateTrigger(run_date=run_at, timezone=UTC),
                args=(code, job),
                id=job_id,
                name=f"{code} {job} soon",
                max_instances=2,
            )
        except SchedulerNotRunningError:
            log.debug("%s for %s not scheduled: the scheduler has stopped", job, code)
        except Exception:
            log.exception(
                "channel=%s: %s could not be scheduled soon",
                code,
                job,
                extra={"channel": code, "job": job},
            )

    def shutdown(self, wait: bool = True) -> None:
        for channel in self.settings.channels:
            for name in ("push-soon", "pull-soon", "fulfil-soon", "shipments-soon"):
                with contextlib.suppress(JobLookupError):
                    self._scheduler.remove_job(f"{channel.code}:{name}")
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
