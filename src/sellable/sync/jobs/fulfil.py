"""The fulfil job: send the orders allocated in a fulfilment channel's warehouses, exactly
once, and forward the cancellations of their sales channels.

One run, for one fulfilment channel (a connector with ``fulfil_orders``):

1. recovery: the requests still pending (written by an earlier run, no answer recorded: a
   timeout, or a crash between sending and recording) are looked up by reference with
   :meth:`Connector.find_fulfilments`; those the provider holds are recorded as sent, the
   others are sent again;
2. the new requests (:meth:`Fulfilments.due`) are written as pending, *then* sent with the
   ones to send again, in one :meth:`Connector.fulfil_orders` call;
3. the requests whose order was cancelled on its sales channel are cancelled at the
   provider; a refusal (already picked) flags the request for the operator.

The channel's warehouses of ``kind = "3pl"`` are the ones it serves. A request pending for
longer than :data:`PENDING_CYCLES` runs, or sent :data:`MAX_ATTEMPTS` times without an
answer, fails the run (the channel is not "ok" while orders are stuck).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from sellable.config import ChannelSettings, Settings
from sellable.errors import ChannelError, ConfigError
from sellable.orders.book import OrderBook
from sellable.orders.fulfilment import Fulfilments, as_utc
from sellable.sdk import Capability, FulfilmentRequest, SubmitOutcome, SubmitResult
from sellable.sync.jobs.base import Channel, JobResult
from sellable.sync.plugins import load_connector

if TYPE_CHECKING:
    from sellable.sync.engine import SyncEngine

log = logging.getLogger("sellable.sync")

#: A request pending longer than this many fulfil intervals makes the run fail.
PENDING_CYCLES = 3
#: A request sent this many times without an answer makes the run fail.
MAX_ATTEMPTS = 3


def served_warehouses(engine: SyncEngine, channel: Channel) -> list[str]:
    """The channel's warehouses of kind "3pl": those whose allocated lines it ships."""
    return _served(engine.settings, channel.settings)


def _served(settings: Settings, channel: ChannelSettings) -> list[str]:
    kinds = {w.code: w.kind for w in settings.warehouses}
    return [code for code in channel.warehouses if kinds.get(code) == "3pl"]


def fulfilment_warehouses(settings: Settings) -> dict[str, list[str]]:
    """Each fulfilment channel of the configuration (its connector can fulfil orders) ->
    the warehouses it serves, for the commands that show what it cannot send. A channel
    whose connector does not load is left out (the daemon names it at its start)."""
    found: dict[str, list[str]] = {}
    for channel in settings.channels:
        if channel.is_manual:
            continue
        try:
            connector = load_connector(channel.connector)
        except ConfigError:
            continue
        if Capability.FULFIL_ORDERS in connector.capabilities:
            found[channel.code] = _served(settings, channel)
    return found


def without_address(book: OrderBook, served: dict[str, list[str]]) -> dict[int, list[str]]:
    """The open orders allocated in the warehouses of the fulfilment channels ``served``
    (:func:`fulfilment_warehouses`) that cannot be sent for want of a shipping address:
    order id -> the channels (``orders``)."""
    if not served:
        return {}
    with book.live.lock:
        book.live.refresh()
        return Fulfilments(book).without_address(served)


def no_address_by_channel(engine: SyncEngine) -> dict[str, list[str]]:
    """Each fulfilment channel -> the orders (``"<channel>:<order id>"``) allocated in its
    warehouses that it cannot be sent for want of a shipping address (``status``)."""
    found: dict[str, list[str]] = {}
    with engine.live.lock:
        engine.live.refresh()
        fulfilments = Fulfilments(engine.book)
        for code, channel in engine.channels.items():
            if Capability.FULFIL_ORDERS in channel.connector.capabilities:
                found[code] = fulfilments.due(code, served_warehouses(engine, channel)).no_address
    return found


def fulfil(engine: SyncEngine, channel: Channel, result: JobResult) -> None:
    code = channel.code
    connector = channel.connector
    fulfilments = Fulfilments(engine.book)
    # 1. recovery of the requests whose answer was lost
    pending = fulfilments.pending(code)
    again: list[FulfilmentRequest] = []
    found_count = 0
    if pending:
        references = [row["reference"] for row in pending]
        found = connector.find_fulfilments(references)
        ours = {ref: held for ref, held in found.items() if ref in set(references)}
        fulfilments.mark_found(code, ours)
        found_count = len(ours)
        missing = [ref for ref in references if ref not in ours]
        again = fulfilments.requests_for(code, missing)
        gone = sorted(set(missing) - {r.reference for r in again})
        if gone:
            # Its order was cancelled (or lost its address) before the provider had it.
            fulfilments.abandon(code, gone, "not sent: its order was cancelled first")
        fulfilments.count_attempt(code, [r.reference for r in again])
    # 2. the new requests, written before they are sent
    due = fulfilments.due(code, served_warehouses(engine, channel))
    fulfilments.write_pending(code, due.requests)
    to_send = again + due.requests
    outcomes: dict[str, int] = {}
    refused: list[str] = []
    if to_send:
        answers = _answers(to_send, connector.fulfil_orders(to_send))
        outcomes = fulfilments.record_results(code, answers)
        refused = [
            f"{a.reference}: {a.message or 'refused'}"
            for a in answers
            if a.outcome is SubmitOutcome.REFUSED
        ]
    if due.no_address:
        log.warning(
            "channel=%s: %d order(s) allocated in its warehouses have no shipping address "
            "and are not sent (listed by `sellable orders --held`): %s",
            code,
            len(due.no_address),
            ", ".join(due.no_address[:10]),
            extra={"channel": code, "job": result.job},
        )
    if refused:
        log.warning(
            "channel=%s: %d fulfilment request(s) refused: %s",
            code,
            len(refused),
            "; ".join(refused[:10]),
            extra={"channel": code, "job": result.job},
        )
    # 3. cancellations on the sales channels
    cancelled = cancel_refused = 0
    for row in fulfilments.to_cancel(code):
        fulfilments.mark_cancel_requested(code, row["reference"])
        answer = connector.cancel_fulfilment(row["remote_id"])
        status = fulfilments.record_cancel(code, row["reference"], row["order"], answer)
        if status == "cancel_refused":
            cancel_refused += 1
            log.warning(
                "channel=%s: %s was cancelled on its sales channel, but the fulfilment "
                "channel refused to cancel %s: %s; it may still ship",
                code,
                row["order"],
                row["reference"],
                answer.message or "no reason given",
                extra={"channel": code, "job": result.job},
            )
        else:
            cancelled += 1
    result.counts.update(
        sent=outcomes.get("created", 0),
        existed=outcomes.get("existed", 0),
        found=found_count,
        refused=outcomes.get("refused", 0),
        unknown=outcomes.get("unknown", 0),
        resent=len(again),
        cancelled=cancelled,
        cancel_refused=cancel_refused,
        no_address=len(due.no_address),
    )
    result.reports["refused_requests"] = refused
    result.reports["no_address"] = due.no_address
    _stuck(engine, channel, fulfilments)


def _answers(
    requests: Sequence[FulfilmentRequest], results: Sequence[SubmitResult]
) -> list[SubmitResult]:
    """One answer per request sent: a request the connector did not answer for is unknown
    (looked up next time); an answer for a reference not sent is ignored."""
    sent = {r.reference for r in requests}
    answered = {a.reference: a for a in results if a.reference in sent}
    return [
        answered.get(r.reference, SubmitResult(r.reference, SubmitOutcome.UNKNOWN))
        for r in requests
    ]


def _stuck(engine: SyncEngine, channel: Channel, fulfilments: Fulfilments) -> None:
    """Fail the run while a request stays pending too long or too often (health)."""
    limit: timedelta = channel.settings.fulfil_every * PENDING_CYCLES
    now = engine.now()
    stuck = [
        row
        for row in fulfilments.pending(channel.code)
        if now - as_utc(row["created_at"]) > limit or row["attempts"] >= MAX_ATTEMPTS
    ]
    if stuck:
        oldest = stuck[0]
        raise ChannelError(
            f"{len(stuck)} fulfilment request(s) without an answer from the provider "
            f"(oldest {oldest['reference']}, pending since "
            f"{as_utc(oldest['created_at']).isoformat(timespec='seconds')}, sent "
            f"{oldest['attempts']} time(s)); they are looked up and sent again each run",
            channel=channel.code,
        )


__all__ = [
    "MAX_ATTEMPTS",
    "PENDING_CYCLES",
    "fulfil",
    "fulfilment_warehouses",
    "no_address_by_channel",
    "served_warehouses",
    "without_address",
]
