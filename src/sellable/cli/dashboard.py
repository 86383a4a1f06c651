"""``sellable dashboard``: the dashboard's pages and API without the daemon's channel jobs
(for a merchant who only imports CSVs)."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import click

from sellable.errors import ConfigError
from sellable.logs import apply_log_settings

from .app import app, cli, command, config_option

DEFAULT_LISTEN = "127.0.0.1:9178"


@cli.command()
@click.option(
    "--listen",
    metavar="HOST:PORT",
    default=DEFAULT_LISTEN,
    show_default=True,
    help="Where to serve (port 0 picks a free one). Anything but loopback needs "
    "[daemon] dashboard_token.",
)
@config_option
@click.pass_context
@command
def dashboard(ctx: click.Context, listen: str) -> None:
    """Serve the web dashboard (stock, SKUs, channels, orders, reorder, money) and its JSON
    API until SIGTERM or Ctrl-C; no channel job runs (use 'sellable run' for the daemon)."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(
            f"write HOST:PORT, e.g. 127.0.0.1:9178 or [::1]:0, got {listen!r}",
            param_hint="--listen",
        )
    # The web stack (FastAPI, Starlette, Jinja) is imported here, not at the top: it is a
    # third of the CLI's import time, and every other command would pay it at start.
    from sellable.web import Dashboard, WebServer, create_app
    from sellable.web.security import check_listen

    application = app(ctx)
    settings = application.settings
    check_listen(listen, settings, "--listen")
    apply_log_settings(settings)
    board = Dashboard(application.engine(), settings)
    try:
        server = WebServer(listen, create_app(board))
    except OSError as err:
        board.close()
        raise ConfigError(f"cannot serve the dashboard on {listen}: {err.strerror or err}") from err
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    board.current()  # the stock positions in memory before the first request
    server.start()
    application.announce()
    click.echo(f"dashboard on {server.url} (Ctrl-C stops it)")
    sys.stdout.flush()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        server.stop()
        board.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("dashboard stopped")
