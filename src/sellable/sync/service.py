"""``sellable run``: the daemon. Health and metrics over HTTP, systemd notifications,
graceful shutdown on SIGTERM/SIGINT within the configured timeout."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING

import sdnotify
from sqlalchemy import Engine

from sellable.config import Settings
from sellable.errors import ConfigError
from sellable.store.sql import utcnow
from sellable.sync.engine import SyncEngine
from sellable.sync.locks import SingleInstance, run_is_live
from sellable.sync.metrics import Metrics
from sellable.sync.scheduler import Scheduler
from sellable.sync.state import SyncState
from sellable.sync.webhooks import WebhookHub

if TYPE_CHECKING:
    from sellable.web import Dashboard
    from sellable.web.server import WebServer

log = logging.getLogger("sellable.daemon")


class HealthServer:
    """``/healthz`` and ``/metrics`` (and, given a dashboard, its pages and API at ``/``),
    served by uvicorn in a thread.

    ``/healthz`` answers JSON per channel and job: ``ok``, ``failing`` (the latest run of a
    job of some channel failed, or its credentials were refused: what ``sellable status``
    calls failing), ``degraded`` (failing for longer than ``daemon.degraded_after``) or
    ``stopping``. It is HTTP 200, except 503 when stopping, and when not ``ok`` in strict
    mode: ``daemon.healthz_strict``, or ``/healthz?strict=1`` for one request
    (``?strict=0`` asks for the lax answer whatever the setting), so that a load balancer
    or a watchdog can act on it."""

    def __init__(
        self,
        listen: str,
        engine: SyncEngine,
        metrics: Metrics,
        *,
        strict: bool = False,
        dashboard: Dashboard | None = None,
    ) -> None:
        from sellable.web import Dashboard, WebServer, create_app

        board = (
            dashboard
            if dashboard is not None
            else Dashboard(engine.db, engine.settings, sync=engine)
        )
        app = create_app(board, health=(engine, metrics, strict), pages=dashboard is not None)
        try:
            self.server = WebServer(listen, app)
        except OSError as err:
            host, _, port = listen.rpartition(":")
            host = host.strip("[]") or "127.0.0.1"
            raise ConfigError(
                f"cannot serve health and metrics on {host}:{port}: "
                f"{err.strerror or err}; another program (or another sellable daemon) may "
                "be using it: set daemon.http_listen to a free address (port 0 picks one)"
            ) from err
        self.address = self.server.address

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()


def open_webhooks(
    engine: SyncEngine, scheduler: Scheduler, settings: Settings
) -> tuple[WebhookHub, WebServer] | None:
    """The webhook listener on ``daemon.webhook_listen`` (bound now, started later), or
    None when it is not set."""
    listen = settings.daemon.webhook_listen
    if not listen:
        return None
    from sellable.web.server import WebServer

    hub = WebhookHub(engine, scheduler.pull_soon, run_soon=scheduler.run_soon)
    try:
        listener = WebServer(listen, hub.app())
    except OSError as err:
        host, _, port = listen.rpartition(":")
        raise ConfigError(
            f"cannot listen for webhooks on {host.strip('[]')}:{port}: {err.strerror or err}; "
            "set daemon.webhook_listen to a free address"
        ) from err
    return hub, listener


def run_daemon(db: Engine, settings: Settings, ready: threading.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code (0 after a clean stop)."""
    single = SingleInstance.for_url(settings.database.url.get_secret_value())
    if single is not None:
        single.acquire()
    # Runs a killed daemon left open are failures, "interrupted", not runs in progress. On
    # SQLite this daemon holds the database and has run nothing yet: no open run is live.
    live = run_is_live(db) if single is None else (lambda _code, _job: False)
    for code, job in SyncState(db, utcnow).close_interrupted(live):
        log.warning(
            "channel=%s job=%s: its last run was interrupted (the daemon stopped during "
            "it); it runs again now",
            code,
            job,
            extra={"channel": code, "job": job},
        )
    metrics = Metrics()
    scheduler: Scheduler | None = None

    def changed(pairs: set[tuple[str, str]]) -> None:
        if scheduler is not None:
            scheduler.push_soon(pairs)

    engine = SyncEngine(db, settings, metrics=metrics, on_sellable_changed=changed)
    scheduler = Scheduler(engine, settings)
    try:
        from sellable.sync.jobs import JOB_TABLE
        from sellable.web import Dashboard
        from sellable.web.security import check_listen

        check_listen(settings.daemon.http_listen, settings, "daemon.http_listen")

        def sync_now(code: str) -> None:
            """The dashboard's "sync now": the channel's jobs, in a thread of their own."""

            def run_all() -> None:
                for spec in JOB_TABLE:
                    if scheduler is not None and not engine.stopping.is_set():
                        scheduler.run(code, spec.name)

            threading.Thread(target=run_all, name=f"sync-now-{code}", daemon=True).start()

        board = Dashboard(
            db, settings, sync=engine, sync_now=sync_now, next_runs=scheduler.next_runs
        )
        health = HealthServer(
            settings.daemon.http_listen,
            engine,
            metrics,
            strict=settings.daemon.healthz_strict,
            dashboard=board,
        )
        try:
            hooks = open_webhooks(engine, scheduler, settings)
        except ConfigError:
            health.stop()
            raise
    except ConfigError:
        engine.close()
        if single is not None:
            single.release()
        raise
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    stop_signals = {signal.SIGTERM, signal.SIGINT}
    previous = {sig: signal.signal(sig, on_signal) for sig in stop_signals}
    notifier = sdnotify.SystemdNotifier()
    health.start()
    scheduler.start()
    log.info(
        "sellable daemon running: %d channel(s), dashboard, health and metrics on http://%s",
        len(settings.channels),
        health.address,
    )
    if hooks is not None:
        hub, listener = hooks
        listener.start()
        log.info(
            "webhooks for %s on http://%s/webhooks/{channel}",
            ", ".join(hub.channels) or "no channel (none has webhook_url)",
            listener.address,
        )
    notifier.notify(f"READY=1\nSTATUS=running {len(settings.channels)} channel(s)")
    if ready is not None:
        ready.set()
    watchdog_usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
    interval = watchdog_usec / 2_000_000 if watchdog_usec else None
    # Wake up at least every second: Python runs signal handlers in the main thread only, and
    # a signal the kernel handed to a worker thread waits until the main thread wakes.
    while not stop.wait(min(interval, 1.0) if interval else 1.0):
        if interval:
            notifier.notify("WATCHDOG=1")
        if hooks is not None:
            hooks[0].flush()
    notifier.notify("STOPPING=1")
    engine.stopping.set()  # jobs stop between pages; HTTP retries stop at once
    timeout = settings.daemon.shutdown_timeout.total_seconds()
    finisher = threading.Thread(target=scheduler.shutdown, kwargs={"wait": True}, daemon=True)
    finisher.start()
    finisher.join(timeout)
    health.stop()
    if hooks is not None:
        hooks[1].stop()
        hooks[0].flush()
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    if finisher.is_alive():
        # In-flight work is abandoned: unconfirmed pushes are sent again at the next start,
        # uncommitted order batches roll back and are pulled again (the cursor did not move).
        log.warning("jobs still running after %.0fs: abandoning them and exiting", timeout)
        logging.shutdown()
        sys.stdout.flush()
        os._exit(0)
    engine.close()
    if single is not None:
        single.release()
    log.info("sellable daemon stopped")
    return 0
