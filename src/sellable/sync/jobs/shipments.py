"""The shipments job: poll a fulfilment channel's orders updated since the cursor and apply
them (:meth:`Fulfilments.apply_updates`): a completed shipment books the Sale, a cancelled
one releases the allocation, an exception or a hold flags the request.

The window and the cursor are the order pull's (:mod:`sellable.sync.cursor`), stored under
the job name ``shipments``: the poll starts ``order_overlap`` before the stored cursor, and
the cursor moves only after the last page, never past the run's start. Applying an update
twice, or an older one after a newer one, changes nothing; provider orders whose
reference is not one of ours are counted and ignored. A ``fulfilments`` webhook from the
channel runs this job soon. The stock job of a fulfilment channel applies the shipments
too (:func:`apply_shipments`), before and after it reads the counts (see
:mod:`sellable.sync.jobs.stock`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sellable.errors import ChannelError
from sellable.orders.fulfilment import Fulfilments, UpdateOutcome
from sellable.sync.cursor import Bookmark, OrderWindow
from sellable.sync.jobs.base import Channel, JobResult, next_token

if TYPE_CHECKING:
    from sellable.sync.engine import SyncEngine

log = logging.getLogger("sellable.sync")

#: The ``channel_cursors`` job name of the shipments poll.
SHIPMENTS_CURSOR = "shipments"


def pull_shipments(engine: SyncEngine, channel: Channel, result: JobResult) -> None:
    total = apply_shipments(engine, channel, result.job)
    result.counts.update(total.counts())
    result.reports["mismatches"] = total.mismatches
    engine.notify(total.changed)


def apply_shipments(engine: SyncEngine, channel: Channel, job: str) -> UpdateOutcome:
    """Poll the channel's orders updated since the cursor and apply them (the shipments
    job, and the stock job of a fulfilment channel before and after it reads the counts).
    The caller holds the channel's lock and tells the daemon what changed."""
    settings = channel.settings
    code = settings.code
    window = OrderWindow.open(
        engine.state.cursor(code, SHIPMENTS_CURSOR),
        engine.now(),
        settings.initial_lookback,
        settings.order_overlap,
    )
    bookmark = Bookmark(window)
    fulfilments = Fulfilments(engine.book)
    total = UpdateOutcome()
    token: str | None = None
    tokens: set[str] = set()
    complete = False
    for _page in range(engine.max_pages):
        page = channel.connector.pull_fulfilments(window.since, token)
        for item in page.updates:
            bookmark.see(item.updated_at)
        outcome = fulfilments.apply_updates(code, page.updates, provider=code)
        _merge(total, outcome)
        token = next_token(page.next_cursor, tokens, code)
        if token is None:
            complete = True
            break
        if engine.stopping.is_set():
            raise ChannelError("shipments poll abandoned at shutdown (cursor kept)", channel=code)
    moved = bookmark.advance(complete=complete)
    if moved is not None:
        engine.state.set_cursor(code, SHIPMENTS_CURSOR, moved)
    if total.mismatches:
        log.warning(
            "channel=%s: %d shipment(s) do not match the lines sent: %s",
            code,
            len(total.mismatches),
            "; ".join(total.mismatches[:10]),
            extra={"channel": code, "job": job},
        )
    return total


def _merge(total: UpdateOutcome, outcome: UpdateOutcome) -> None:
    for name in (
        "applied",
        "unchanged",
        "not_ours",
        "stale",
        "lines_shipped",
        "lines_released",
        "flagged",
    ):
        setattr(total, name, getattr(total, name) + getattr(outcome, name))
    total.mismatches.extend(outcome.mismatches)
    total.changed |= outcome.changed
    total.settled |= outcome.settled


__all__ = ["SHIPMENTS_CURSOR", "apply_shipments", "pull_shipments"]
