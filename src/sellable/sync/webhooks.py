"""The webhook listener: ``POST /webhooks/{channel}`` on ``[daemon] webhook_listen``.

A webhook is a poke, not the truth. A delivery is checked before any work (the channel's
signature over the raw body, by the connector), answered at once, and only schedules an
order pull of that channel soon (debounced); the pull stays the source of truth. Lost,
duplicated or out-of-order deliveries therefore change nothing: the pull reads what is on
the channel, and the interval pull catches what never came.

Answers: 200 for a delivery taken (a duplicate, a ping and an unknown topic too), 401 for
a bad or missing signature (counted, nothing else done), 404 for a channel that is not
configured or takes no webhooks, 413 for a body over ``[daemon] webhook_max_body``.

The figures per channel (received, rejected, duplicates, last received) are kept in memory
and written to the store at most once a second (:meth:`WebhookHub.flush`); the listing job
writes the subscriptions' health beside them; ``sellable status`` reads both.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sellable.sdk import WebhookEvent, WebhookKind, WebhookRejected, WebhookSubscriptions
from sellable.store.sql import iso_utc

if TYPE_CHECKING:
    from sellable.sync.engine import SyncEngine

log = logging.getLogger("sellable.webhooks")

#: Delivery keys remembered per channel for de-duplication (oldest forgotten first). A
#: forgotten key only costs one more pull if its delivery comes again.
REMEMBERED = 10_000
#: Seconds between two log lines about rejected deliveries of one channel.
REJECT_LOG_EVERY = 60.0
COUNTERS = ("received", "rejected", "duplicates", "ignored", "pings")


class ChannelWebhooks:
    """One channel's figures; guarded by the hub's lock."""

    def __init__(self, stored: Mapping[str, Any]) -> None:
        self.counts = {name: int(stored.get(name) or 0) for name in COUNTERS}
        self.last_received: str | None = stored.get("last_received")
        self.last_rejected: str | None = stored.get("last_rejected")
        self.uninstalled: str | None = stored.get("uninstalled")
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.dirty = False

    def state(self) -> dict[str, Any]:
        return {
            **self.counts,
            "last_received": self.last_received,
            "last_rejected": self.last_rejected,
            "uninstalled": self.uninstalled,
        }


class WebhookHub:
    """Takes deliveries for the engine's channels and pokes their order pulls.

    Usage::

        hub = WebhookHub(engine, pull_soon=scheduler.pull_soon)
        server = WebServer(settings.daemon.webhook_listen, hub.app())
        ...
        hub.flush()   # now and then: the figures into the store
    """

    def __init__(
        self,
        engine: SyncEngine,
        pull_soon: Callable[[str], None],
        *,
        run_soon: Callable[[str, str], None] | None = None,
        max_body: int | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.engine = engine
        self.pull_soon = pull_soon
        #: Runs a channel's job soon: a ``fulfilments`` delivery pokes its shipments poll.
        self.run_soon = run_soon
        self.max_body = max_body or engine.settings.daemon.webhook_max_body
        self.now = now or engine.now
        self._lock = threading.Lock()
        self._last_warning: dict[str, float] = {}
        self._silenced: dict[str, int] = {}
        self.channels: dict[str, ChannelWebhooks] = {
            code: ChannelWebhooks(engine.state.webhook_state(code))
            for code, channel in engine.channels.items()
            if channel.connector.webhooks and channel.connector.webhook_url()
        }

    # -- deliveries -----------------------------------------------------------------------------

    def receive(
        self, code: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        """Check and take one delivery; returns (HTTP status, JSON body)."""
        figures = self.channels.get(code)
        if figures is None:
            return 404, {"error": f"no channel {code!r} takes webhooks here"}
        if len(body) > self.max_body:
            return 413, {"error": f"body over {self.max_body} bytes"}
        connector = self.engine.channels[code].connector
        lowered = {name.lower(): value for name, value in headers.items()}
        now = iso_utc(self.now())
        try:
            event = connector.verify_webhook(lowered, body)
        except WebhookRejected as err:
            self.engine.metrics.webhook(code, "rejected")
            with self._lock:
                figures.counts["rejected"] += 1
                figures.last_rejected = now
                figures.dirty = True
                quiet = self._last_warning.get(code, -REJECT_LOG_EVERY)
                loud = time.monotonic() - quiet >= REJECT_LOG_EVERY
                if loud:
                    self._last_warning[code] = time.monotonic()
                    silenced, self._silenced[code] = self._silenced.get(code, 0), 0
                else:
                    self._silenced[code] = self._silenced.get(code, 0) + 1
            if loud:  # a forger must not flood the log: one line a minute, with the count
                log.warning(
                    "channel=%s webhook rejected: %s%s",
                    code,
                    err,
                    f" ({silenced} more rejected since the last such line)" if silenced else "",
                    extra={"channel": code, "job": "webhook"},
                )
            return 401, {"error": "signature does not verify"}
        with self._lock:
            outcome = self._outcome(figures, event)
            self.engine.metrics.webhook(code, outcome)
            if event.kind is WebhookKind.PING:
                figures.counts["pings"] += 1
                figures.dirty = True
                return 200, {"ok": True, "ping": True}
            if event.kind is WebhookKind.IGNORED:
                figures.counts["ignored"] += 1
                figures.dirty = True
                return 200, {"ok": True, "ignored": event.topic}
            key = event.dedupe_key
            if key is not None and key in figures.seen:
                figures.counts["duplicates"] += 1
                figures.dirty = True
                return 200, {"ok": True, "duplicate": True}
            if key is not None:
                figures.seen[key] = None
                while len(figures.seen) > REMEMBERED:
                    figures.seen.popitem(last=False)
            figures.counts["received"] += 1
            figures.last_received = now
            if event.kind is WebhookKind.UNINSTALLED:
                figures.uninstalled = now
            figures.dirty = True
        if event.kind is WebhookKind.UNINSTALLED:
            log.error(
                "channel=%s: the shop says our app was uninstalled; its jobs will fail until "
                "it is installed again and the new access token is in the configuration",
                code,
                extra={"channel": code, "job": "webhook"},
            )
        if event.kind is WebhookKind.FULFILMENTS:
            log.debug(
                "channel=%s webhook %s (%s): shipments poll soon",
                code,
                event.topic,
                event.delivery_id,
                extra={"channel": code, "job": "webhook"},
            )
            # Imported here: the jobs import this module (listing refreshes sync webhooks).
            from sellable.sync.jobs import SHIPMENTS_JOB

            if self.run_soon is not None:
                self.run_soon(code, SHIPMENTS_JOB)
            return 200, {"ok": True}
        log.debug(
            "channel=%s webhook %s (%s): order pull soon",
            code,
            event.topic,
            event.delivery_id,
            extra={"channel": code, "job": "webhook"},
        )
        # The order pull after an uninstall finds the credentials refused, and says so.
        self.pull_soon(code)
        return 200, {"ok": True}

    @staticmethod
    def _outcome(figures: ChannelWebhooks, event: WebhookEvent) -> str:
        if event.kind is WebhookKind.PING:
            return "ping"
        if event.kind is WebhookKind.IGNORED:
            return "ignored"
        if event.dedupe_key is not None and event.dedupe_key in figures.seen:
            return "duplicate"
        return "received"

    # -- the store ------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write the changed figures into the store (``sellable status`` reads them)."""
        with self._lock:
            changed = {code: f.state() for code, f in self.channels.items() if f.dirty}
            for code in changed:
                self.channels[code].dirty = False
        for code, state in changed.items():
            try:
                self.engine.state.update_webhook_state(code, state)
            except Exception:  # the store is away: keep the figures for the next flush
                log.warning("channel=%s: webhook figures not stored yet", code, exc_info=True)
                with self._lock:
                    self.channels[code].dirty = True

    # -- HTTP -----------------------------------------------------------------------------------

    def app(self) -> Starlette:
        """The listener's ASGI application: ``POST /webhooks/{channel}`` and nothing else."""

        async def deliver(request: Request) -> JSONResponse:
            code = request.path_params["channel"]
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body:
                return JSONResponse({"error": f"body over {self.max_body} bytes"}, 413)
            body = bytearray()
            async for chunk in request.stream():
                body.extend(chunk)
                if len(body) > self.max_body:
                    return JSONResponse({"error": f"body over {self.max_body} bytes"}, 413)
            status, answer = await run_in_threadpool(
                self.receive, code, dict(request.headers), bytes(body)
            )
            return JSONResponse(answer, status)

        return Starlette(routes=[Route("/webhooks/{channel}", deliver, methods=["POST"])])


def subscription_summary(
    found: WebhookSubscriptions | None, error: str | None, checked_at: str | None
) -> dict[str, Any]:
    """The subscriptions' health as stored and shown by ``status``."""
    if found is None:
        return {
            "healthy": False,
            "checked_at": checked_at,
            "active": 0,
            "created": 0,
            "repaired": 0,
            "removed": 0,
            "problem": error or "not checked",
        }
    return {
        "healthy": found.healthy,
        "checked_at": checked_at,
        "active": sum(1 for s in found.subscriptions if s.get("status") == "active"),
        "created": found.created,
        "repaired": found.repaired,
        "removed": found.removed,
        "problem": "; ".join(found.problems) or None,
    }


def webhook_status(engine: SyncEngine, code: str) -> dict[str, Any]:
    """``status``'s ``webhooks`` of one channel: on or off, last received, rejected
    signatures, and the subscriptions' health, as last stored."""
    channel = engine.channels[code]
    on = bool(
        channel.connector.webhooks
        and channel.connector.webhook_url()
        and engine.settings.daemon.webhook_listen
    )
    stored = engine.state.webhook_state(code)
    return {
        "enabled": on,
        "url": channel.connector.webhook_url() if channel.connector.webhooks else None,
        "last_received": stored.get("last_received"),
        "received": int(stored.get("received") or 0),
        "rejected_signatures": int(stored.get("rejected") or 0),
        "last_rejected": stored.get("last_rejected"),
        "duplicates": int(stored.get("duplicates") or 0),
        "ignored": int(stored.get("ignored") or 0),
        "uninstalled": stored.get("uninstalled"),
        "subscriptions": stored.get("subscriptions") or None,
    }


def webhooks_line(hooks: Mapping[str, Any]) -> str:
    """``status``'s line: ``webhooks: on, last received …, 0 rejected, subscriptions ok``."""
    if not hooks["enabled"]:
        return "webhooks: off (orders come by the interval pull)"
    subscriptions = hooks.get("subscriptions") or {}
    if not subscriptions:
        health = "subscriptions not checked yet"
    elif subscriptions.get("healthy"):
        health = f"{subscriptions.get('active', 0)} subscription(s) active"
    else:
        health = f"subscriptions UNHEALTHY: {subscriptions.get('problem') or 'see the log'}"
    return (
        f"webhooks: on, last received {hooks['last_received'] or 'never'}, "
        f"{hooks['received']} received, {hooks['rejected_signatures']} rejected signature(s), "
        f"{health}"
    )


__all__ = ["WebhookHub", "subscription_summary", "webhook_status", "webhooks_line"]
