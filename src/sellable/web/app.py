"""The dashboard's web application: pages, their JSON API, login, actions, and (in the
daemon) ``/healthz`` and ``/metrics``.

Usage::

    app = create_app(Dashboard(db, settings))
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from sellable import __version__
from sellable.errors import SellableError
from sellable.sync.engine import SyncEngine
from sellable.sync.metrics import Metrics

from . import api
from . import pages as page_routes
from .charts import line_chart, sparkline
from .security import PUBLIC_PATHS, SECURITY_HEADERS, SESSION_COOKIE, Guard
from .state import BadRequest, Conflict, Dashboard, Forbidden, NotFound

log = logging.getLogger("sellable.dashboard")

PACKAGE = files("sellable.web")


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def create_app(
    board: Dashboard,
    *,
    health: tuple[SyncEngine, Metrics, bool] | None = None,
    pages: bool = True,
) -> FastAPI:
    """The dashboard as an ASGI application. ``health`` (the daemon's engine, metrics and
    ``healthz_strict``) adds ``/healthz`` and ``/metrics``; ``pages=False`` leaves only
    those."""
    app = FastAPI(
        title="Sellable dashboard",
        version=__version__,
        description="The figures `sellable` prints, as JSON: the same shapes as the CLI's "
        "`--json`, paged where large.",
        docs_url=None,
        redoc_url=None,
    )
    guard = Guard(board.settings)
    templates = Jinja2Templates(directory=str(PACKAGE / "templates"))
    templates.env.globals.update(line_chart=line_chart, sparkline=sparkline)
    app.state.board = board
    app.state.guard = guard
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=str(PACKAGE / "static")), name="static")

    def render_error(request: Request, status: int, message: str) -> Response:
        if wants_json(request):
            return JSONResponse({"error": message}, status_code=status)
        if request.headers.get("HX-Request") == "true":
            return HTMLResponse(_alert(message), status_code=status)
        return templates.TemplateResponse(
            request,
            "error.html",
            page_routes.context(request, title=f"Error {status}", message=message, status=status),
            status_code=status,
        )

    app.state.render_error = render_error

    @app.middleware("http")
    async def security(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if guard.token is not None and not path.startswith(PUBLIC_PATHS):
            refusal = _check_login(request, guard)
            if refusal is not None:
                response: Response = (
                    JSONResponse({"error": refusal}, status_code=401)
                    if wants_json(request)
                    else templates.TemplateResponse(
                        request,
                        "login.html",
                        page_routes.context(request, title="Log in", message=refusal, next=path),
                        status_code=401,
                    )
                )
                response.headers["WWW-Authenticate"] = 'Bearer realm="sellable"'
                _secure(response)
                return response
        response = await call_next(request)
        _secure(response)
        return response

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, err: BadRequest) -> Response:
        return render_error(request, 400, str(err))

    @app.exception_handler(NotFound)
    async def not_found(request: Request, err: NotFound) -> Response:
        return render_error(request, 404, str(err.args[0]) if err.args else "not found")

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, err: Forbidden) -> Response:
        return render_error(request, 403, str(err))

    @app.exception_handler(Conflict)
    async def conflict(request: Request, err: Conflict) -> Response:
        return render_error(request, 409, str(err))

    @app.exception_handler(SellableError)
    async def sellable_error(request: Request, err: SellableError) -> Response:
        return render_error(request, 422, str(err))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> Response:
        message = f"no page at {request.url.path}" if err.status_code == 404 else str(err.detail)
        response = render_error(request, err.status_code, message)
        for key, value in (err.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> Response:
        log.exception("dashboard: %s %s failed", request.method, request.url.path)
        return render_error(
            request, 500, f"internal error ({type(err).__name__}); the log has the details"
        )

    if health is not None:
        add_health_routes(app, *health)
    if pages:
        app.include_router(api.router)
        app.include_router(page_routes.router)
    return app


def _alert(message: str) -> str:
    from html import escape

    return f'<p role="alert" class="error">{escape(message)}</p>'


def _secure(response: Response) -> None:
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)


def _check_login(request: Request, guard: Guard) -> str | None:
    """None when the request carries the token (bearer) or a login cookie, or needs neither
    (bound to loopback); else why not. A wrong bearer token is refused even on loopback:
    the caller meant to authenticate and should hear that its token is wrong."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not guard.token_ok(given.strip()):
            return "wrong token"
        return None
    if not guard.needs_login or guard.session_ok(request.cookies.get(SESSION_COOKIE)):
        return None
    return "log in with the dashboard token ([daemon] dashboard_token)"


def add_health_routes(app: FastAPI, engine: SyncEngine, metrics: Metrics, strict: bool) -> None:
    """``/healthz`` and ``/metrics`` (see :class:`sellable.sync.service.HealthServer`)."""

    @app.get("/metrics", include_in_schema=False)
    def metrics_route() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/healthz", include_in_schema=False)
    def healthz(request: Request) -> Response:
        asked = request.query_params.getlist("strict")
        if asked and asked[-1] not in ("0", "1"):
            return Response(b"strict must be 0 or 1\n", status_code=400, media_type="text/plain")
        strict_now = asked[-1] == "1" if asked else strict
        payload: dict[str, Any] = engine.health_report()
        if engine.stopping.is_set():
            payload["status"] = "stopping"
            status = 503
        elif payload["status"] != "ok" and strict_now:
            status = 503
        else:
            status = 200
        return Response(
            json.dumps(payload).encode(), status_code=status, media_type="application/json"
        )
