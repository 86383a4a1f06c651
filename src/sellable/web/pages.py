"""The dashboard's HTML pages and actions. Each page renders the object its ``/api/...``
twin returns; actions are POST forms carrying the CSRF token."""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from sellable.core import SkuKind
from sellable.errors import InputError
from sellable.orders.queries import describe_fulfilments
from sellable.sync.jobs.fulfil import fulfilment_warehouses
from sellable.sync.status import health_line, humanize

from . import reports
from .security import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, Guard
from .state import (
    DEFAULT_PAGE_SIZE,
    NUMERIC_COLUMNS,
    STOCK_COLUMNS,
    BadRequest,
    Conflict,
    Dashboard,
    Forbidden,
    StockQuery,
)

router = APIRouter(include_in_schema=False)

NAV = (
    ("/", "Stock"),
    ("/channels", "Channels"),
    ("/orders", "Orders"),
    ("/reorder", "Reorder"),
    ("/money", "Money"),
)

#: The stock table's column headings.
HEADINGS = {
    "sku": "SKU",
    "warehouse": "Warehouse",
    "kind": "Kind",
    "on_hand": "Assembled / prepackaged on hand",
    "available": "Available",
    "held": "Held",
    "expired": "Expired",
    "assemblable": "Assemblable",
    "sellable": "Sellable",
    "bottleneck": "Bottleneck",
}


def _board(request: Request) -> Dashboard:
    board: Dashboard = request.app.state.board
    return board


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


def context(request: Request, **values: Any) -> dict[str, Any]:
    """What every template gets: the navigation, the CSRF token, whether actions show, and
    the change token the page was drawn at."""
    board: Dashboard = request.app.state.board
    guard: Guard = request.app.state.guard
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return {
        "nav": NAV,
        "path": request.url.path,
        "here": here,
        "csrf_token": guard.csrf_token,
        "csrf_field": CSRF_FIELD,
        "read_only": board.read_only,
        "logged_in": guard.needs_login,
        "token": values.pop("token", None),
        **values,
    }


def page(request: Request, name: str, status: int = 200, **values: Any) -> Response:
    token = _board(request).current()
    return _templates(request).TemplateResponse(
        request, name, context(request, token=token, **values), status_code=status
    )


def _int(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, got {text!r}") from None


# -- pages ----------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def stock_page(request: Request) -> Response:
    params = request.query_params
    query = StockQuery(
        page=_int(request, "page", 1),
        page_size=_int(request, "page_size", DEFAULT_PAGE_SIZE),
        warehouse=params.get("warehouse") or None,
        kind=params.get("kind") or None,
        q=params.get("q") or None,
        sort=params.get("sort") or "sku",
        order=params.get("order") or "asc",
    )
    result = _board(request).stock_page(query)

    def link(**changes: Any) -> str:
        values = {
            "warehouse": query.warehouse or "",
            "kind": query.kind or "",
            "q": query.q or "",
            "sort": query.sort,
            "order": query.order,
            "page_size": query.page_size,
            "page": query.page,
            **changes,
        }
        return "/?" + urlencode({k: v for k, v in values.items() if v not in ("", None)})

    return page(
        request,
        "stock.html",
        title="Stock",
        result=result,
        query=query,
        columns=STOCK_COLUMNS,
        numeric=NUMERIC_COLUMNS,
        headings=HEADINGS,
        warehouses=_board(request).warehouses,
        kinds=[k.value for k in SkuKind],
        link=link,
        trends=_board(request).trends(result.rows),
    )


@router.get("/skus/{sku}", response_class=HTMLResponse)
def sku_page(request: Request, sku: str) -> Response:
    report = reports.sku_report(_board(request), sku, _int(request, "ledger_page", 1))
    return page(request, "sku.html", title=sku, report=report)


@router.get("/channels", response_class=HTMLResponse)
def channels_page(request: Request) -> Response:
    board = _board(request)
    report = reports.channels_report(board)
    settings = {c.code: c for c in board.settings.channels}
    return page(
        request,
        "channels.html",
        title="Channels",
        report=report,
        jobs=reports.job_runs(board),
        throttled={
            (c["channel"], job): counts
            for c in report
            for job, counts in c["throttled_by_job"].items()
        },
        settings=settings,
        health_line=health_line,
        can_sync=board.sync_now is not None,
    )


@router.get("/orders", response_class=HTMLResponse)
def orders_page(request: Request) -> Response:
    board = _board(request)
    q = request.query_params.get("q") or None
    # Read once for both lists: which orders cannot be sent to a fulfilment channel.
    served = fulfilment_warehouses(board.settings)
    no_address = reports.orders_without_address(board, served)
    held_orders = reports.orders_report(board, held=True, no_address=no_address)
    held = reports.held_lines(board, held_orders)
    found = [
        o
        for o in reports.orders_report(board, held=False, q=q, no_address=no_address)
        if o["status"] == "open"
    ]
    fulfilment = bool(served) or any(o["fulfilments"] for o in found)
    return page(
        request,
        "orders.html",
        title="Orders",
        held=held,
        fulfilment=fulfilment,
        attention=reports.fulfilment_attention(board, held_orders) if fulfilment else [],
        describe_fulfilments=describe_fulfilments,
        open_orders=found[:200],
        shown=len(found),
        q=q,
    )


@router.get("/reorder", response_class=HTMLResponse)
def reorder_page(request: Request) -> Response:
    return page(request, "reorder.html", title="Reorder", report=reports.reorder(_board(request)))


@router.get("/money", response_class=HTMLResponse)
def money_page(request: Request) -> Response:
    return page(request, "money.html", title="Money", report=reports.money(_board(request)))


@router.get("/favicon.ico")
def favicon() -> Response:
    """No icon (a browser asks for one on every page)."""
    return Response(status_code=204)


@router.get("/live")
def live(request: Request) -> Response:
    """Polled every second: 204 while nothing changed; else the new poller, and the
    ``stock-changed`` event that makes the page redraw its figures."""
    token = _board(request).current()
    if request.query_params.get("seen") == token:
        return Response(status_code=204)
    html = _templates(request).get_template("_live.html").render(token=token)
    return HTMLResponse(html, headers={"HX-Trigger": "stock-changed"})


# -- login ----------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return _templates(request).TemplateResponse(
        request, "login.html", context(request, title="Log in", message=None, next="/")
    )


@router.post("/login")
async def login(request: Request) -> Response:
    guard: Guard = request.app.state.guard
    form = await request.form()
    given = str(form.get("token") or "")
    target = str(form.get("next") or "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    if not guard.needs_login:
        return RedirectResponse(target, status_code=303)
    if not guard.token_ok(given):
        return _templates(request).TemplateResponse(
            request,
            "login.html",
            context(request, title="Log in", message="wrong token", next=target),
            status_code=401,
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        guard.session_value(),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


# -- actions --------------------------------------------------------------------------------------


async def _action_form(request: Request) -> dict[str, str]:
    """The posted form, once its CSRF token and the dashboard's mode allow the action."""
    board = _board(request)
    guard: Guard = request.app.state.guard
    form = await request.form()
    given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not guard.csrf_ok(given if isinstance(given, str) else None):
        raise Forbidden("refused: the form carries no valid CSRF token (reload the page)")
    if board.read_only:
        raise Forbidden("refused: the dashboard is read-only ([daemon] dashboard_read_only)")
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _done(request: Request, message: str) -> Response:
    if request.headers.get("HX-Request") == "true":
        return HTMLResponse(
            f'<p role="status" class="done">{escape(message)}</p>',
            headers={"HX-Trigger": "stock-changed"},
        )
    return page(request, "message.html", title="Done", message=message)


@router.post("/actions/build")
async def build_action(request: Request) -> Response:
    form = await _action_form(request)
    sku, warehouse = form.get("sku", ""), form.get("warehouse", "")
    text = form.get("quantity", "").strip()
    try:
        quantity = int(text)
    except ValueError:
        raise BadRequest(f"quantity must be a whole number, got {text!r}") from None
    try:
        made = await _threaded(reports.build, _board(request), sku, warehouse, quantity)
    except InputError as err:
        raise Conflict(str(err)) from err
    last = made[-1]
    return _done(
        request,
        f"{last['id']}: built {last['quantity']} × {last['sku']} in {last['warehouse']} "
        f"(lot {last['lot']}); the ledger has the movements",
    )


@router.post("/actions/resend")
async def resend_action(request: Request) -> Response:
    """ "Send again" on a fulfilment request the provider refused (``sellable resend``)."""
    form = await _action_form(request)
    order = form.get("order", "").strip()
    if not order:
        raise BadRequest("name the order to send again (order=CHANNEL:ORDER_ID)")
    try:
        row = await _threaded(reports.resend, _board(request), order)
    except InputError as err:
        raise Conflict(str(err)) from err
    channel = row["channel"]
    every = _board(request).sync.channels.get(channel)
    when = (
        f"within {humanize(every.settings.fulfil_every.total_seconds())}"
        if every is not None
        else "at its next send"
    )
    return _done(
        request,
        f"{row['order']}: request {row['reference']} to {channel} withdrawn (it was refused: "
        f"{row['reason'] or '-'}); {channel} gets a new one {when}, with the order's address "
        "as it is then",
    )


@router.post("/actions/retry-held")
async def retry_action(request: Request) -> Response:
    await _action_form(request)
    result = await _threaded(_board(request).sync.book.retry_held)
    return _done(
        request,
        f"held lines retried: {result.lines_allocated} now allocated, "
        f"{result.lines_held} still held",
    )


@router.post("/actions/sync/{channel}")
async def sync_action(request: Request, channel: str) -> Response:
    await _action_form(request)
    board = _board(request)
    if channel not in board.sync.channels:
        known = ", ".join(board.sync.channels) or "none with a connector"
        raise BadRequest(f"unknown channel {channel!r} (channels with a connector: {known})")
    if board.sync_now is None:
        raise Forbidden(
            "sync now needs the daemon (sellable run): 'sellable dashboard' runs no channel job"
        )
    board.sync_now(channel)
    return _done(request, f"{channel}: its jobs run now; the figures follow when they finish")


async def _threaded(func: Any, *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(func, *args)
