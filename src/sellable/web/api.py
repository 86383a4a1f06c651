"""``/api/...``: the dashboard's figures as JSON, the same shapes as the CLI's ``--json``
(paged where large). The pages render the same objects."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from . import reports
from .state import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Dashboard, StockQuery

router = APIRouter(prefix="/api", tags=["api"])


def board_of(request: Request) -> Dashboard:
    board: Dashboard = request.app.state.board
    return board


@router.get("/stock", summary="Stock positions, paged (items: `sellable stock --json`)")
def stock(
    request: Request,
    page: Annotated[int, Query(ge=1, description="1 is the first page")] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    warehouse: Annotated[str | None, Query(description="only this warehouse")] = None,
    kind: Annotated[str | None, Query(description="simple, kit, assembly, ...")] = None,
    q: Annotated[str | None, Query(description="SKU contains this (any case)")] = None,
    sort: Annotated[str, Query(description="a column: sku, sellable, ...")] = "sku",
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
) -> dict[str, Any]:
    """Every SKU × warehouse, filtered, sorted and paged on the server: ``items`` are the
    objects ``sellable stock --json`` prints; ``totals`` sum the filtered rows."""
    query = StockQuery(page, page_size, warehouse or None, kind or None, q or None, sort, order)
    return board_of(request).stock_page(query).to_dict()


@router.get("/skus/{sku}", summary="One SKU: positions, BOM trees, channels, ledger, layers")
def sku(
    request: Request,
    sku: str,
    ledger_page: Annotated[int, Query(ge=1)] = 1,
    ledger_page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = reports.LEDGER_PAGE_SIZE,
) -> dict[str, Any]:
    """``positions``: ``stock SKU --json``; ``explain``: per warehouse, ``explain SKU
    --warehouse W --json``; ``channels``: ``explain SKU --channel C --json`` per channel;
    ``ledger``: ``ledger SKU --json``'s rows, newest first, paged; ``layers``: ``layers SKU
    --json``."""
    return reports.sku_report(board_of(request), sku, ledger_page, ledger_page_size)


@router.get("/channels", summary="Per channel: runs, health, pending pushes, listings")
def channels(request: Request) -> list[dict[str, Any]]:
    """``sellable status --json``."""
    return reports.channels_report(board_of(request))


@router.get("/orders", summary="Orders and their lines (`sellable orders [--held] --json`)")
def orders(
    request: Request,
    held: Annotated[bool, Query(description="only held lines (1)")] = False,
    q: Annotated[str | None, Query(description="channel:order id or SKU contains")] = None,
) -> list[dict[str, Any]]:
    """``sellable orders --json`` (``held=1``: ``sellable orders --held --json``)."""
    return reports.orders_report(board_of(request), held=held, q=q)


@router.get("/reorder", summary="At or below the reorder point; assemblies to build")
def reorder(request: Request) -> dict[str, Any]:
    """``sellable reorder --json``."""
    return reports.reorder(board_of(request))


@router.get("/money", summary="Valuation per warehouse; margin per channel and per kit")
def money(request: Request) -> dict[str, Any]:
    """``valuation --json``'s rows summed per warehouse; ``cogs --json``'s lines totalled per
    channel and per kit."""
    return reports.money(board_of(request))


@router.get("/token", summary="The change token: it changes when a figure may have")
def token(request: Request) -> dict[str, str]:
    return {"token": board_of(request).current()}
