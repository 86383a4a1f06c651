"""The objects behind the pages other than stock, one per page, each built by the functions
the CLI calls: the API returns them as JSON and the templates render them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from sellable.core import SkuKind
from sellable.core.explain import explain_report
from sellable.costing import reports as costing
from sellable.orders import ledger, list_orders
from sellable.orders.fulfilment import NO_ADDRESS, Fulfilments
from sellable.orders.release import add_release
from sellable.orders.reorder import reorder_report
from sellable.store import schema
from sellable.store.schema import FLAGGED_FULFILMENTS
from sellable.store.sql import iso_utc
from sellable.sync.jobs import JOB_TABLE
from sellable.sync.jobs.fulfil import fulfilment_warehouses, without_address
from sellable.sync.status import channel_status
from sellable.sync.why import explain_channel
from sellable.sync.why import to_json as why_json

from .history import daily_history
from .state import MAX_PAGE_SIZE, BadRequest, Dashboard, NotFound

LEDGER_PAGE_SIZE = 50


def check_page(page: int, page_size: int) -> None:
    if page < 1:
        raise BadRequest(f"page must be 1 or more, got {page}")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise BadRequest(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")


def sku_report(
    board: Dashboard, sku: str, ledger_page: int = 1, ledger_page_size: int = LEDGER_PAGE_SIZE
) -> dict[str, Any]:
    """``/api/skus/{sku}``: its positions (``stock SKU --json``), per warehouse the BOM tree
    (``explain --warehouse --json``), per channel the offer (``explain --channel --json``),
    the ledger newest first and paged (``ledger --json``'s rows), its open cost layers
    (``layers --json``), and ``daily``: on hand, available and sellable at the end of each
    of the last 30 days (:func:`~sellable.web.history.daily_history`; today's point is
    ``stock SKU --json``'s)."""
    check_page(ledger_page, ledger_page_size)
    positions = board.positions_of(sku)  # NotFound naming an unknown SKU
    live = board.live
    with live.lock:
        kind = live.core.catalog.kind_of(sku)
        trees = (
            {w: explain_report(live.core, sku, w) for w in board.warehouses}
            if kind.is_composite
            else {}
        )
    with board.db.connect() as connection:
        channels = []
        for code in board.settings.channel_codes():
            with live.lock:
                channels.append(
                    why_json(explain_channel(connection, board.settings, live, code, sku))
                )
        rows = ledger(connection, sku)
        layers = costing.open_layers(connection, sku)
        with live.lock:
            daily = daily_history(connection, live, sku)
    total = len(rows)
    pages = max(1, math.ceil(total / ledger_page_size))
    newest_first = rows[::-1]
    start = (ledger_page - 1) * ledger_page_size
    return {
        "sku": sku,
        "kind": kind.value,
        "positions": [p.to_dict() for p in positions],
        "explain": trees,
        "channels": channels,
        "ledger": {
            "items": newest_first[start : start + ledger_page_size],
            "page": ledger_page,
            "page_size": ledger_page_size,
            "pages": pages,
            "total": total,
        },
        "layers": layers,
        "history": history(rows, board.warehouses),
        "daily": daily,
    }


def history(rows: list[dict[str, Any]], warehouses: list[str]) -> dict[str, Any]:
    """The ledger's running on hand and available summed over warehouses, one point per
    movement, for the SKU page's chart."""
    last: dict[str, tuple[int, int]] = {w: (0, 0) for w in warehouses}
    on_hand: list[int] = []
    available: list[int] = []
    for row in rows:
        last[row["warehouse"]] = (row["balance"], row["available"])
        on_hand.append(sum(v[0] for v in last.values()))
        available.append(sum(v[1] for v in last.values()))
    return {
        "at": [row["at"] for row in rows],
        "on_hand": on_hand,
        "available": available,
    }


def channels_report(board: Dashboard) -> list[dict[str, Any]]:
    """``/api/channels``: ``sellable status --json``'s channels."""
    board.current()
    return channel_status(board.sync)


def job_runs(board: Dashboard) -> list[dict[str, Any]]:
    """Per channel with a connector and job: the latest run (start, end, outcome, seconds,
    error) from the run history, and the next run when the daemon schedules them."""
    runs = schema.job_runs.c
    upcoming = board.next_runs() if board.next_runs is not None else {}
    found = []
    with board.db.connect() as connection:
        for code in board.sync.channels:
            for spec in JOB_TABLE:
                last = connection.execute(
                    select(runs.started_at, runs.finished_at, runs.ok, runs.error)
                    .where((runs.channel == code) & (runs.job == spec.name))
                    .order_by(runs.id.desc())
                    .limit(1)
                ).first()
                seconds = None
                if last is not None and last.finished_at is not None:
                    seconds = round((last.finished_at - last.started_at).total_seconds(), 3)
                outcome = (
                    "never run"
                    if last is None
                    else "running"
                    if last.finished_at is None
                    else "ok"
                    if last.ok
                    else "failed"
                )
                when = upcoming.get((code, spec.name))
                found.append(
                    {
                        "channel": code,
                        "job": spec.name,
                        "last_run": None if last is None else iso_utc(last.started_at),
                        "outcome": outcome,
                        "seconds": seconds,
                        "error": None if last is None or last.ok else last.error,
                        "next_run": None if when is None else iso_utc(when),
                    }
                )
    return found


def orders_report(
    board: Dashboard,
    *,
    held: bool,
    q: str | None = None,
    no_address: Mapping[int, Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """``/api/orders``: ``sellable orders [--held] --json`` (held lines with ``release``:
    :func:`~sellable.orders.release.add_release`); ``q`` keeps the orders whose
    channel:order id or one of whose line SKUs contains it. As the CLI, an order that a
    fulfilment channel cannot be sent for want of a shipping address carries a fulfilment
    of status ``no_address`` (and is listed with ``held``); ``no_address``:
    :func:`orders_without_address`, when the caller has it already."""
    if no_address is None:
        no_address = orders_without_address(board)
    with board.db.connect() as connection:
        found = list_orders(connection, held_only=held, no_address=no_address)
    if held and found:
        board.current()
        with board.live.lock:
            add_release(board.live, found)
    if q:
        text = q.strip().lower()
        found = [
            o
            for o in found
            if text in f"{o['channel']}:{o['order_id']}".lower()
            or any(text in line["sku"].lower() for line in o["lines"])
        ]
    return found


#: The fulfilment statuses the orders page lists as needing someone: the provider's
#: exception, hold, refusal or refused cancellation, and an order with no address to send.
ATTENTION = (*FLAGGED_FULFILMENTS, NO_ADDRESS)


def fulfilment_attention(
    board: Dashboard, held: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The fulfilments that wait on someone (:data:`ATTENTION`), oldest order first: each
    with its order (``channel:order id``), the order's creation time and warehouse, the
    fulfilment channel, status, the provider's id and reason (``orders --held --json``'s,
    which ``held`` may hold already)."""
    rows = []
    for order in orders_report(board, held=True) if held is None else held:
        for sent in order["fulfilments"]:
            if sent["status"] not in ATTENTION:
                continue
            rows.append(
                {
                    "order": f"{order['channel']}:{order['order_id']}",
                    "created_at": order["created_at"],
                    "warehouse": order["warehouse"],
                    "channel": sent["channel"],
                    "status": sent["status"],
                    "remote_id": sent["remote_id"],
                    "reason": sent["reason"],
                }
            )
    rows.sort(key=lambda row: (row["created_at"] or "", row["order"], row["channel"]))
    return rows


def orders_without_address(
    board: Dashboard, served: dict[str, list[str]] | None = None
) -> dict[int, list[str]]:
    """The open orders the fulfilment channels (``served``: :func:`fulfilment_warehouses`,
    read from the settings when None) cannot be sent for want of a shipping address:
    order id -> the channels (``sellable orders``' own)."""
    if served is None:
        served = fulfilment_warehouses(board.settings)
    return without_address(board.sync.book, served)


def held_lines(board: Dashboard, held: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The held lines, oldest order first, each with what would release it (``release``:
    ``sellable orders --held --json``'s, which ``held`` may hold already)."""
    lines = []
    for order in orders_report(board, held=True) if held is None else held:
        for line in order["lines"]:
            if line["status"] != "held":
                continue  # an order listed for its flagged fulfilment (a 3PL's exception)
            lines.append(
                {
                    "order": f"{order['channel']}:{order['order_id']}",
                    "created_at": order["created_at"],
                    "warehouse": order["warehouse"],
                    **line,
                }
            )
    lines.sort(key=lambda line: (line["created_at"] or "", line["order"], line["line_id"]))
    return lines


def reorder(board: Dashboard) -> dict[str, Any]:
    """``/api/reorder``: ``sellable reorder --json``."""
    board.current()
    live = board.live
    with live.lock, board.db.connect() as connection:
        return reorder_report(connection, live)


def money(board: Dashboard) -> dict[str, Any]:
    """``/api/money``: the valuation per warehouse (``valuation --json``'s rows summed) and
    the margin per channel, per kit (lines whose cost came from components) and per
    composite sold (``by_composite``: kits, assemblies, bundles and packages, however their
    units were taken), all ``cogs --json``'s lines totalled by ``cogs_totals``."""
    board.current()
    with board.db.connect() as connection:
        valuation = costing.valuation(connection)
        lines = costing.cogs(connection)
    with board.live.lock:
        kinds = {
            line["sku"]: board.live.core.catalog.kind_of(line["sku"]).value
            for line in lines
            if board.live.knows(line["sku"])
        }
    return {
        "currency": board.settings.costing.currency,
        "valuation": {
            "by_warehouse": costing.valuation_by_warehouse(valuation),
            "totals": valuation["totals"],
        },
        "margin": {
            **costing.margins(lines),
            "by_composite": margin_by_composite(lines, kinds),
            "totals": costing.cogs_totals(lines),
        },
    }


def margin_by_composite(lines: list[dict[str, Any]], kinds: dict[str, str]) -> list[dict[str, Any]]:
    """``cogs`` lines of composites (a kit's cost from its components, an assembly's from
    its own built units), totalled per SKU with its ``kind``."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        kind = kinds.get(line["sku"])
        if "components" in line or (kind is not None and kind != SkuKind.SIMPLE.value):
            groups.setdefault(line["sku"], []).append(line)
    return [
        {"sku": sku, "kind": kinds.get(sku), **costing.cogs_totals(group)}
        for sku, group in sorted(groups.items())
    ]


def resend(board: Dashboard, order: str) -> dict[str, Any]:
    """``sellable resend CHANNEL:ORDER_ID``: the order's refused fulfilment request
    withdrawn, so that its channel's next send makes a new one (an InputError when the
    order has nothing refused)."""
    (withdrawn,) = Fulfilments(board.sync.book).resend_refused([order])
    return withdrawn


def build(board: Dashboard, sku: str, warehouse: str, quantity: int) -> list[dict[str, Any]]:
    """``sellable build SKU QUANTITY --warehouse W``: :meth:`OrderBook.build`, all or nothing
    (InputError naming the shortage)."""
    if not board.live.knows(sku):
        raise NotFound(f"unknown SKU {sku!r}")
    if warehouse not in board.warehouses:
        raise BadRequest(f"unknown warehouse {warehouse!r} (known: {', '.join(board.warehouses)})")
    if quantity <= 0:
        raise BadRequest(f"quantity must be a positive integer, got {quantity}")
    made, _changed = board.sync.book.build(sku, quantity, warehouse)
    return made


__all__ = [
    "build",
    "channels_report",
    "held_lines",
    "money",
    "orders_report",
    "reorder",
    "sku_report",
]
