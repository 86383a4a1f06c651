"""Commands. Each opens what it needs, does one thing, and maps errors to exit codes."""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import logging
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from sellable import __version__
from sellable.config import CONFIG_ENV_VAR, Settings, find_config_file, load_settings
from sellable.core import explain as explain_tree
from sellable.core import render
from sellable.core.explain import explain_report, render_demand, unit_demand
from sellable.costing.layers import lot_name
from sellable.costing.moves import expire_lots_if_writable
from sellable.errors import ConfigError, InputError, SellableError
from sellable.imports import import_components, import_products, import_stock
from sellable.imports.csvfile import Progress
from sellable.imports.stock import import_stock_counts
from sellable.logs import apply_log_settings, start_logging
from sellable.memory import keep_freed_memory
from sellable.orders import OrderBook, ledger, list_orders, read_orders_csv
from sellable.orders.fulfilment import NO_ADDRESS, Fulfilments
from sellable.orders.queries import describe_allocations, describe_fulfilments
from sellable.orders.release import add_release
from sellable.store.db import (
    check_schema,
    create_db_engine,
    database_errors,
    redacted_url,
    require_database,
    sync_warehouses,
    upgrade_schema,
    usable_path,
)
from sellable.store.live import LiveStock
from sellable.store.loader import load_engine
from sellable.store.schema import FLAGGED_FULFILMENTS
from sellable.sync.engine import SyncEngine
from sellable.sync.jobs.fulfil import (
    fulfilment_warehouses,
    without_address,
)
from sellable.sync.locks import ONE_PASS, SingleInstance
from sellable.sync.plugins import check_channels, installed_connectors, load_connector
from sellable.sync.service import run_daemon
from sellable.sync.status import channel_status, render_status
from sellable.sync.why import explain_channel, render_channel
from sellable.sync.why import to_json as why_json

from .tables import format_table, stock_table

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("sellable")


NO_CONFIG_FILE = "none found (defaults and environment)"


class AppContext:
    """What commands share: the configuration file named on the command line, loaded once."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None
        self._engines: list[Engine] = []
        #: whether the configuration file used was named already (stderr or JSON meta)
        self.announced = False

    @property
    def config_used(self) -> str:
        """The configuration file the settings came from, for people."""
        source = self.settings.source
        return str(source) if source is not None else NO_CONFIG_FILE

    def announce(self) -> None:
        """Name the configuration file used, once, on stderr."""
        if not self.announced and self._settings is not None:
            click.echo(f"configuration: {self.config_used}", err=True)
        self.announced = True

    def meta(self) -> dict[str, str | None]:
        """The ``meta`` of a JSON object printed by a command (it names the file instead)."""
        self.announced = True
        source = self.settings.source
        return {"config": None if source is None else str(source)}

    @property
    def config_label(self) -> str:
        path = find_config_file(self.config_path)
        return str(path) if path is not None else "(defaults and environment)"

    @property
    def settings(self) -> Settings:
        """The whole configuration, checked as 'check-config' checks it (each channel's
        connector settings too): a command never starts on a configuration it rejects."""
        if self._settings is None:
            settings = load_settings(self.config_path)
            check_channels(settings, self.config_label)
            self._settings = settings
        return self._settings

    def close(self) -> None:
        """Return every database connection (called when the command ends)."""
        for engine in self._engines:
            engine.dispose()
        self._engines.clear()

    def engine(self, *, migrate: bool = False) -> Engine:
        settings = self.settings
        if migrate:
            usable_path(settings)
        else:  # only 'sellable init' creates a database
            require_database(settings)
        engine = create_db_engine(settings)
        self._engines.append(engine)
        with database_errors(settings):
            if migrate:
                upgrade_schema(engine)
            else:
                check_schema(engine)
            sync_warehouses(engine, settings.warehouses)
        return engine

    def database_errors(self) -> contextlib.AbstractContextManager[None]:
        """While a command runs: a database that turns out unusable (read only, say) is
        exit 4 naming it."""
        if self._settings is None:
            return contextlib.nullcontext()
        return database_errors(self._settings)


def _set_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """``--config`` is accepted before or after the command name; the later one wins."""
    if value is not None:
        ctx.find_root().ensure_object(dict)["config"] = value
    return value


config_option = click.option(
    "--config",
    "-c",
    metavar="FILE",
    expose_value=False,
    callback=_set_config,
    is_eager=True,
    help="Configuration file (default ./sellable.toml, else $SELLABLE_CONFIG).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def command(func: Callable[P, R]) -> Callable[P, R]:
    """Turn :class:`SellableError` into a message on stderr and its exit code; after a
    command that used the configuration succeeds, name the file on stderr (unless its JSON
    output named it in ``meta``)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = click.get_current_context(silent=True)
        try:
            try:
                result = func(*args, **kwargs)
            except DBAPIError:
                state = ctx.find_root().obj if ctx is not None else None
                if not (isinstance(state, dict) and "app" in state):
                    raise
                with state["app"].database_errors():
                    raise
        except SellableError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(err.exit_code)
        state = ctx.find_root().obj if ctx is not None else None
        if isinstance(state, dict) and "app" in state:
            state["app"].announce()
        return result

    return wrapper


def echo_json(ctx: click.Context, data: Any, *, indent: int | None = 2) -> None:
    """Print ``data`` as JSON; an object gets ``"meta": {"config": FILE}`` (a list, whose
    shape scripts rely on, stays a list and the file is named on stderr)."""
    if isinstance(data, dict):
        data = {**data, "meta": app(ctx).meta()}
    click.echo(json.dumps(data, indent=indent))


def _expire_lots(engine: Engine, settings: Settings) -> None:
    """What a running daemon does at each date change: units of lots past their date stop
    being sellable. A read-only database is read as it is, with a warning."""
    if expire_lots_if_writable(engine, settings.costing.today()) is None:
        click.echo(
            "warning: lots past their expiry date could not be marked expired (the database "
            "is read-only); the figures below may still count them as sellable",
            err=True,
        )


def known_channel(settings: Settings, code: str) -> None:
    """An unknown channel given on the command line is bad input (exit 3, as an unknown SKU)."""
    if code not in settings.channel_codes():
        raise InputError(f"unknown channel {code!r} (known: {settings.known_channels()})")


def app(ctx: click.Context) -> AppContext:
    """The shared context, created on first use with the ``--config`` given anywhere."""
    state = ctx.find_root().ensure_object(dict)
    if "app" not in state:
        state["app"] = AppContext(state.get("config"))
        ctx.find_root().call_on_close(state["app"].close)
    application: AppContext = state["app"]
    return application


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@config_option
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail to stderr.")
@click.version_option(__version__, prog_name="sellable")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Sellable keeps every sales channel showing the quantity you can really sell."""
    ctx.ensure_object(dict)
    start_logging(verbose)


@cli.command()
@config_option
@click.pass_context
@command
def init(ctx: click.Context) -> None:
    """Create or upgrade the database schema and register the configured warehouses."""
    application = app(ctx)
    application.engine(migrate=True)
    click.echo(
        f"database ready: {redacted_url(application.settings)} "
        f"(warehouses: {application.settings.warehouse_codes()})"
    )


@cli.command("check-config")
@config_option
@click.pass_context
@command
def check_config(ctx: click.Context) -> None:
    """Validate the configuration file and print what it sets."""
    application = app(ctx)
    settings = application.settings  # checked whole, connector settings too
    if settings.source is None:
        click.echo(
            "no configuration file found (no --config, no ./sellable.toml, "
            f"no ${CONFIG_ENV_VAR}): using the defaults and environment: "
            f"database {redacted_url(settings)}"
        )
    else:
        click.echo(f"configuration OK: database {redacted_url(settings)}")
    for w in settings.warehouses:
        click.echo(
            f"  warehouse {w.code}: kind {w.kind}, use_component_inventory "
            f"{str(w.uses_components).lower()}, assembly_on_demand "
            f"{str(w.assembly_on_demand).lower()}"
        )
    for channel in settings.channels:
        connector = (
            "manual (orders by CSV only)" if channel.is_manual else f"connector {channel.connector}"
        )
        click.echo(
            f"  channel {channel.code}: {connector}, warehouses "
            f"{', '.join(channel.warehouses)}{' (dry run)' if channel.dry_run else ''}"
        )


@cli.group("import")
@config_option
def import_group() -> None:
    """Import CSV files: products, components (BOMs), stock counts, orders.

    Also receipts (stock arriving at a cost) and exchange rates."""


def _progress(label: str, path: str) -> tuple[Progress | None, Callable[[], None]]:
    """A progress bar on stderr for big files when stderr is a terminal."""
    try:
        size = Path(path).stat().st_size if Path(path).is_file() else 0
    except OSError:  # a path too long, say: the import names it
        size = 0
    if size < 5_000_000 or not sys.stderr.isatty():
        return None, lambda: None
    bar = click.progressbar(length=size, label=label, file=sys.stderr)
    bar.__enter__()
    last = [0]

    def update(done: int) -> None:
        bar.update(done - last[0])
        last[0] = done

    return update, lambda: bar.__exit__(None, None, None)


def _run_import(
    ctx: click.Context,
    path: str,
    noun: str,
    as_json: bool,
    run: Callable[[AppContext, Engine, Progress | None], Any],
) -> None:
    application = app(ctx)
    engine = application.engine()
    progress, done = _progress(f"importing {noun}", path)
    try:
        summary = run(application, engine, progress)
    finally:
        done()
    if as_json:
        echo_json(ctx, summary.to_dict(), indent=None)
    else:
        click.echo(summary.describe(noun))


@import_group.command("products")
@click.argument("file", type=click.Path(dir_okay=False))
@config_option
@json_option
@click.pass_context
@command
def import_products_command(ctx: click.Context, file: str, as_json: bool) -> None:
    """Create or update SKUs: sku,name,kind[,allow_backorder][,price]."""
    _run_import(
        ctx,
        file,
        "product",
        as_json,
        lambda _a, engine, progress: import_products(engine, file, progress),
    )


@import_group.command("components")
@click.argument("file", type=click.Path(dir_okay=False))
@config_option
@json_option
@click.pass_context
@command
def import_components_command(ctx: click.Context, file: str, as_json: bool) -> None:
    """Replace BOMs: parent_sku,component_sku,quantity[,slot][,price_offset]."""
    _run_import(
        ctx,
        file,
        "component",
        as_json,
        lambda _a, engine, progress: import_components(engine, file, progress),
    )


@import_group.command("stock")
@click.argument("file", type=click.Path(dir_okay=False))
@config_option
@json_option
@click.pass_context
@command
def import_stock_command(ctx: click.Context, file: str, as_json: bool) -> None:
    """Apply a stock count: sku,warehouse,on_hand[,locked].

    Afterwards, held order lines are tried again against the new stock.
    """
    application = app(ctx)
    engine = application.engine()
    book = OrderBook(engine, application.settings)
    progress, done = _progress("importing stock", file)
    try:
        summary, outcome = import_stock_counts(book, file, progress)
    finally:
        done()
    changed, retried = outcome.changed, outcome.retried
    if as_json:
        data = summary.to_dict()
        data["sellable_changed"] = len(changed)
        data["held_lines_allocated"] = retried.lines_allocated
        data["lines_still_held"] = retried.lines_held
        echo_json(ctx, data, indent=None)
        return
    click.echo(summary.describe("stock") + f"; {len(changed)} sellable value(s) changed")
    if retried.lines_allocated or retried.lines_held:
        click.echo(
            f"held lines retried: {retried.lines_allocated} now allocated, "
            f"{retried.lines_held} still held"
        )


@import_group.command("orders")
@click.argument("file", type=click.Path(dir_okay=False))
@config_option
@json_option
@click.pass_context
@command
def import_orders_command(ctx: click.Context, file: str, as_json: bool) -> None:
    """Import orders: channel,order_id,sku,quantity,warehouse[,line_id][,status][,created_at]
    [,options].

    An empty warehouse routes the order's lines among the warehouses of its channel, in
    their listed order. options: slot=SKU;slot=SKU, the options the customer chose.
    Re-importing an order updates it (a new status moves it on); it is never duplicated.
    """
    application = app(ctx)
    engine = application.engine()
    book = OrderBook(engine, application.settings)
    progress, done = _progress("reading orders", file)
    try:
        orders = read_orders_csv(file, application.settings, book.live.catalog, engine, progress)
    finally:
        done()
    result = book.apply(orders)
    if as_json:
        echo_json(ctx, result.to_dict())
        return
    click.echo(
        f"{file}: {len(orders)} order(s): {result.orders_created} created, "
        f"{result.orders_updated} updated, {result.orders_unchanged} unchanged; lines: "
        f"{result.lines_allocated} allocated, {result.lines_held} held, "
        f"{result.lines_shipped} shipped, {result.lines_cancelled} cancelled; "
        f"{result.assembly_orders} assembly order(s); {result.movements} movement(s); "
        f"{len(result.changed_pairs)} sellable value(s) changed"
    )
    for order, line, reason in result.held:
        click.echo(f"  held: {order} line {line}: {reason}")


@cli.command()
@click.option("--held", is_flag=True, help="Only held lines, with their reason.")
@config_option
@json_option
@click.pass_context
@command
def orders(ctx: click.Context, held: bool, as_json: bool) -> None:
    """Orders and their lines with status; held lines with their reason and what would
    release them."""
    application = app(ctx)
    database = application.engine()
    settings = application.settings
    live: LiveStock | None = None
    no_address: dict[int, list[str]] = {}
    served = fulfilment_warehouses(settings)
    if served:  # orders a fulfilment channel cannot be sent (no address): shown as held
        live = LiveStock(database, settings)
        no_address = without_address(OrderBook(database, settings, live=live), served)
    with database.connect() as connection:
        found = list_orders(connection, held_only=held, no_address=no_address)
    if held and found:
        live = live or LiveStock(database, settings)
        with live.lock:
            add_release(live, found)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    # The fulfilment column only once some order was sent to a fulfilment channel.
    sent = any(o["fulfilments"] for o in found)
    rows = [
        (
            f"{o['channel']}:{o['order_id']}",
            o["warehouse"],
            o["status"],
            line["line_id"],
            line["sku"] + "".join(f" {slot}={sku}" for slot, sku in line["options"].items()),
            str(line["quantity"]),
            line["status"],
            describe_allocations(line["allocations"]),
            line["hold_reason"] or flagged_reason(o["fulfilments"]),
            *((describe_fulfilments(o["fulfilments"]),) if sent else ()),
            *((line.get("release", {}).get("text", ""),) if held else ()),
        )
        for o in found
        for line in o["lines"]
    ]
    header = (
        "ORDER",
        "WAREHOUSE",
        "STATUS",
        "LINE",
        "SKU",
        "QTY",
        "LINE STATUS",
        "ALLOCATED IN",
        "REASON",
        *(("FULFILMENT",) if sent else ()),
        *(("WOULD RELEASE",) if held else ()),
    )
    aligns = "<<<<<><<<" + ("<" if sent else "") + ("<" if held else "")
    click.echo(format_table(header, aligns, rows) if rows else "(no orders)")


def flagged_reason(fulfilments: list[dict[str, Any]]) -> str:
    """The reason of an order's flagged fulfilments ("" when none is flagged)."""
    return "; ".join(
        str(sent["reason"])
        if sent["status"] == NO_ADDRESS
        else f"{sent['channel']} {sent['status'].replace('_', ' ')}: {sent['reason'] or '-'}"
        for sent in fulfilments
        if sent["status"] in FLAGGED_FULFILMENTS or sent["status"] == NO_ADDRESS
    )


@cli.command()
@click.argument("order_keys", metavar="[CHANNEL:ORDER_ID]...", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every order whose request was refused.")
@config_option
@json_option
@click.pass_context
@command
def resend(ctx: click.Context, order_keys: tuple[str, ...], every: bool, as_json: bool) -> None:
    """Send again to its fulfilment channel an order the provider refused, once the cause
    (an address, a SKU unknown to the provider) is fixed.

    The refused request is withdrawn; the channel's next send (its fulfil job: `sellable
    run`, or `sellable sync --once`) makes a new one with the order's address as it is then.
    Orders are named as `sellable orders --held` lists them; all or nothing (exit 3 when
    one has nothing refused)."""
    if every == bool(order_keys):
        raise click.UsageError("name the orders (CHANNEL:ORDER_ID ...) or give --all, not both")
    application = app(ctx)
    book = OrderBook(application.engine(), application.settings)
    withdrawn = Fulfilments(book).resend_refused(None if every else list(order_keys))
    if as_json:
        click.echo(json.dumps(withdrawn, indent=2))
        return
    if not withdrawn:
        click.echo("no refused request to send again")
    for row in withdrawn:
        click.echo(
            f"{row['order']}: request {row['reference']} to {row['channel']} withdrawn (it was "
            f"refused: {row['reason'] or '-'}); {row['channel']}'s next send makes a new one"
        )


@cli.command("ledger")
@click.argument("sku")
@click.option("--warehouse", "-w", metavar="CODE", help="Only this warehouse.")
@config_option
@json_option
@click.pass_context
@command
def ledger_command(ctx: click.Context, sku: str, warehouse: str | None, as_json: bool) -> None:
    """The movement history of SKU with running balances (like a History tab)."""
    application = app(ctx)
    if warehouse is not None:
        application.settings.warehouse(warehouse)
    with application.engine().connect() as connection:
        rows = ledger(connection, sku, warehouse)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = [
        (
            r["at"][:19].replace("T", " "),
            r["warehouse"],
            r["type"],
            f"{r['quantity']:+d}",
            str(r["balance"]),
            str(r["available"]),
            r["lot"] or "",
            r["value"] or "",
            r["reference"] or "",
        )
        for r in rows
    ]
    header = (
        "TIME (UTC)",
        "WAREHOUSE",
        "TYPE",
        "QTY",
        "ON HAND",
        "AVAILABLE",
        "LOT",
        "VALUE",
        "REFERENCE",
    )
    click.echo(format_table(header, "<<<>>><><", table) if table else f"(no movements of {sku})")


@cli.command()
@click.argument("sku")
@click.argument("quantity", type=int)
@click.option("--warehouse", "-w", metavar="CODE", required=True, help="Where to build.")
@click.option("--lot", metavar="LOT", help="The built units' lot (default: the assembly order).")
@click.option(
    "--expires-on",
    metavar="YYYY-MM-DD",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="An expiry earlier than the components' earliest.",
)
@config_option
@json_option
@click.pass_context
@command
def build(
    ctx: click.Context,
    sku: str,
    quantity: int,
    warehouse: str,
    lot: str | None,
    expires_on: datetime | None,
    as_json: bool,
) -> None:
    """Build QUANTITY of SKU from its components (an assembly order; all or nothing).

    The components' cost layers are consumed (earliest expiry first, then oldest first) and
    one layer opens on SKU: their cost plus its labour and packaging cost."""
    application = app(ctx)
    application.settings.warehouse(warehouse)
    if lot is not None:
        lot = lot_name(lot, "--lot")
    book = OrderBook(application.engine(), application.settings)
    made, _changed = book.build(
        sku,
        quantity,
        warehouse,
        lot=lot,
        expires_on=None if expires_on is None else expires_on.date(),
    )
    if as_json:
        click.echo(json.dumps(made, indent=2))
        return
    for order in made:
        used = ", ".join(f"{c['quantity']} × {c['sku']}" for c in order["components"])
        cost = order["cost"]
        expiry = f", expires {order['expires_on']}" if order["expires_on"] else ""
        click.echo(
            f"{order['id']}: built {order['quantity']} × {order['sku']} in "
            f"{order['warehouse']} at {order['at']} as lot {order['lot']}{expiry}, costing "
            f"{cost['total']} (components {cost['components']} + labour {cost['labour']} + "
            f"packaging {cost['packaging']}; {cost['unit_cost']} per unit) from {used}"
        )


@cli.command()
@click.argument("skus", nargs=-1)
@click.option("--warehouse", "-w", metavar="CODE", help="Only this warehouse.")
@config_option
@json_option
@click.pass_context
@command
def stock(ctx: click.Context, skus: tuple[str, ...], warehouse: str | None, as_json: bool) -> None:
    """Show prepackaged, component and sellable stock per SKU and warehouse."""
    application = app(ctx)
    settings = application.settings
    if warehouse is not None:
        settings.warehouse(warehouse)  # unknown code -> ConfigError naming the known ones
    # What a running daemon does at each date change: lots past their date stop selling.
    _expire_lots(application.engine(), settings)
    with application.engine().connect() as connection:
        engine = load_engine(connection, settings)
    for sku in skus:
        engine.catalog.position(sku)  # unknown SKU -> CatalogError naming it
    positions = engine.positions(skus or None, [warehouse] if warehouse else None)
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in positions], indent=2))
    else:
        click.echo(stock_table(positions))


@cli.command()
@click.argument("sku")
@click.option("--warehouse", "-w", metavar="CODE", help="Warehouse code.")
@click.option(
    "--channel",
    metavar="CODE",
    help="Explain the quantity offered to this channel instead: each warehouse's share, "
    "the channel rules step by step, and what the channel last confirmed.",
)
@config_option
@json_option
@click.pass_context
@command
def explain(
    ctx: click.Context, sku: str, warehouse: str | None, channel: str | None, as_json: bool
) -> None:
    """Walk the BOM tree of SKU and show why its sellable number is what it is, in one
    warehouse (--warehouse) or as offered to one channel (--channel)."""
    if (warehouse is None) == (channel is None):
        raise click.UsageError("give exactly one of --warehouse CODE or --channel CODE")
    application = app(ctx)
    if channel is not None:
        known_channel(application.settings, channel)
    if warehouse is not None:
        application.settings.warehouse(warehouse)
    database = application.engine()
    if channel is not None:
        live = LiveStock(database, application.settings)  # what the push job reads
        with database.connect() as connection:
            report = explain_channel(connection, application.settings, live, channel, sku)
        if as_json:
            echo_json(ctx, why_json(report))
        else:
            click.echo(render_channel(report))
        return
    _expire_lots(database, application.settings)
    with database.connect() as connection:
        engine = load_engine(connection, application.settings)
    assert warehouse is not None
    if as_json:
        echo_json(ctx, explain_report(engine, sku, warehouse))
        return
    tree = explain_tree(engine, sku, warehouse)
    demand = unit_demand(engine.catalog, sku)
    component = engine.position(sku, warehouse).component
    binds = None if component is None else component.bottleneck
    click.echo("\n".join([render(tree, warehouse), *render_demand(demand, binds)]))


EXAMPLE_CONFIG = """\
# Written by 'sellable example': the bundled example catalog on an SQLite file.
[database]
url = "sqlite:///sellable-example.db"

[[warehouses]]
code = "main"
kind = "own"
assembly_on_demand = true

[[warehouses]]
code = "fba-us"
kind = "fba"
"""


@cli.command()
@config_option
@click.option(
    "--examples",
    "examples_dir",
    type=click.Path(file_okay=False, exists=True),
    help="Folder with products.csv, components.csv and stock.csv (default: the bundled ones).",
)
@click.pass_context
@command
def example(ctx: click.Context, examples_dir: str | None) -> None:
    """Set up the bundled example catalog (the seeds' coffee gift set, kits, FBA bundle)
    and print its stock table. Without --config it writes ./sellable-example.toml."""
    state = ctx.find_root().ensure_object(dict)
    if state.get("config") is None:
        path = Path("sellable-example.toml")
        if not path.exists():
            path.write_text(EXAMPLE_CONFIG)
        state["config"] = str(path)
    application = app(ctx)
    folder = Path(examples_dir) if examples_dir else Path(__file__).parents[1] / "examples"
    engine = application.engine(migrate=True)
    click.echo(f"database ready: {redacted_url(application.settings)}")
    click.echo(import_products(engine, folder / "products.csv").describe("product"))
    click.echo(import_components(engine, folder / "components.csv").describe("component"))
    click.echo(import_stock(engine, application.settings, folder / "stock.csv").describe("stock"))
    with engine.connect() as connection:
        core = load_engine(connection, application.settings)
    click.echo("")
    click.echo(stock_table(core.positions()))
    click.echo(
        f"\nTry: sellable --config {state['config']} explain GIFT-SET-COFFEE --warehouse main"
    )


# -- the daemon ---------------------------------------------------------------------------------


@cli.command()
@json_option
@command
def connectors(as_json: bool) -> None:
    """List the installed connectors and what they can do."""
    found: list[dict[str, Any]] = []
    for name, entry in sorted(installed_connectors().items()):
        try:
            connector = load_connector(name)
        except ConfigError as err:
            found.append({"name": name, "target": entry.value, "error": str(err)})
            continue
        found.append(
            {
                "name": name,
                "target": entry.value,
                "package": entry.dist.name if entry.dist else None,
                "capabilities": sorted(c.value for c in connector.capabilities),
                "max_push_batch": connector.max_push_batch,
                "rate_limit": None
                if connector.rate_limit is None
                else {"rate": connector.rate_limit.rate, "burst": connector.rate_limit.burst},
                "settings": sorted(connector.Settings.model_fields),
            }
        )
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo("no connectors installed")
    for item in found:
        if "error" in item:
            click.echo(f"{item['name']}: BROKEN: {item['error']}")
        else:
            click.echo(f"{item['name']} ({item['target']}): {', '.join(item['capabilities'])}")


@cli.command()
@click.option("--once", is_flag=True, help="One pass of every job, then exit.")
@click.option("--channel", "channels", metavar="CODE", multiple=True, help="Only this channel.")
@config_option
@json_option
@click.pass_context
@command
def sync(ctx: click.Context, once: bool, channels: tuple[str, ...], as_json: bool) -> None:
    """One pass of every job: listing maps, stock pulls, order pulls, reconcile and push.

    Exits 1 when any job failed (a report, such as an unknown listing, is not a failure).
    On SQLite it holds the database as the daemon does, so it refuses to run beside one
    (exit 2); on PostgreSQL both can run, each job in one place at a time.
    """
    if not once:
        raise click.UsageError("use 'sellable sync --once' (or 'sellable run' for the daemon)")
    application = app(ctx)
    apply_log_settings(application.settings)
    for code in channels:
        known_channel(application.settings, code)
    db = application.engine()
    single = SingleInstance.for_url(application.settings.database.url.get_secret_value(), ONE_PASS)
    if single is not None:
        single.acquire()
    try:
        engine = SyncEngine(db, application.settings)
        try:
            results = engine.run_once(list(channels) or None)
        finally:
            engine.close()
    finally:
        if single is not None:
            single.release()
    failed = [r for r in results if not r.ok]
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "channel": r.channel,
                        "job": r.job,
                        "ok": r.ok,
                        "skipped": r.skipped,
                        "counts": r.counts,
                        "error": r.error,
                        "reports": r.reports,
                        "seconds": round(r.seconds, 3),
                    }
                    for r in results
                ],
                indent=2,
            )
        )
    else:
        for code in dict.fromkeys(r.channel for r in results):
            click.echo(f"{code}:")
            for r in results:
                if r.channel != code:
                    continue
                click.echo(f"  {r.describe()}")
                for key, values in r.reports.items():
                    if values:
                        shown = ", ".join(values[:20])
                        more = f" … and {len(values) - 20} more" if len(values) > 20 else ""
                        click.echo(f"    {key.replace('_', ' ')}: {len(values)} ({shown}{more})")
    if failed:
        sys.exit(1)


@cli.command()
@config_option
@json_option
@click.pass_context
@command
def status(ctx: click.Context, as_json: bool) -> None:
    """Per channel: last pull and push, cursor, pending pushes, errors, listing reports."""
    application = app(ctx)
    engine = SyncEngine(application.engine(), application.settings)
    try:
        report = channel_status(engine)
    finally:
        engine.close()
    if as_json:
        echo_json(ctx, report)
    else:
        click.echo(render_status(report))


@cli.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False),
    default="sellable-demo",
    show_default=True,
    help="Where the demo writes its configuration and database.",
)
@click.option(
    "--channels",
    default="woocommerce,shopify,amazon,shipbob",
    show_default=True,
    help="Comma-separated channels to emulate (those with an installed connector).",
)
@click.option(
    "--passes",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many sync passes (default: run until Ctrl-C).",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Seconds between the starts of two sync passes.",
)
@click.option(
    "--orders",
    "orders_per_pass",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="Orders the simulated customers place per pass.",
)
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="Seed of the simulated customers (the same seed, the same orders).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue from the database the previous run left (default: start afresh).",
)
@command
def demo(
    folder: str,
    channels: str,
    passes: int | None,
    interval: float,
    orders_per_pass: int,
    seed: int,
    resume: bool,
) -> None:
    """Show the whole product working: channel emulators, the example catalog on an SQLite
    file, simulated customers ordering, and sync passes pushing what is really sellable.

    Exits 0 when every channel shows what Sellable computed at the end, 1 otherwise."""
    import threading

    from sellable.demo import run_demo

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    names = [name.strip() for name in channels.split(",") if name.strip()]
    try:
        lagging = run_demo(
            Path(folder),
            names,
            passes=passes,
            interval=interval,
            orders_per_pass=orders_per_pass,
            seed=seed,
            echo=lambda line: click.echo(line),
            stop=stop,
            resume=resume,
        )
    except KeyboardInterrupt:
        click.echo("stopped")
        return
    if lagging:
        sys.exit(1)


@cli.command()
@click.argument("name", metavar="CHANNEL")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Loopback port (0: any free port).",
)
@click.option(
    "--listings",
    "products",
    type=click.Path(dir_okay=False, exists=True),
    help="A products CSV: create a listing for each of its SKUs.",
)
@click.pass_context
@command
def emulate(ctx: click.Context, name: str, port: int, products: str | None) -> None:
    """Run a local emulator of a sales channel or a 3PL (woocommerce, shopify, amazon,
    shipbob: those installed under the sellable.emulators entry point) on loopback until
    Ctrl-C, and print the connector settings that reach it."""
    from sellable.emulators import emulator_class, installed_emulators

    try:
        emulator = emulator_class(name)
    except KeyError:
        installed = ", ".join(sorted(installed_emulators())) or "none installed"
        raise click.BadParameter(
            f"no emulator {name!r}; installed: {installed}", param_hint="CHANNEL"
        ) from None
    server = emulator(port=port)
    if products:
        with open(products, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("sku"):
                    server.add_listing(row["sku"].strip(), 0, row.get("name") or None)
    click.echo(f"{name} emulator listening on {server.url} (Ctrl-C stops it)")
    click.echo(f"[channels.settings] for connector {server.connector!r}:")
    from sellable.demo import toml_value  # the TOML the demo writes: inline tables too

    for key, value in server.connector_settings().items():
        click.echo(f"  {key} = {toml_value(value)}")
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda *_: server.shutdown())
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


@cli.command()
@config_option
@click.pass_context
@command
def run(ctx: click.Context) -> None:
    """Run the daemon until SIGTERM or SIGINT."""
    application = app(ctx)
    apply_log_settings(application.settings)
    keep_freed_memory()  # before the threads start (sellable.memory)
    engine = application.engine()
    application.announce()  # at the start: the daemon runs until stopped
    sys.exit(run_daemon(engine, application.settings))


@cli.command()
@config_option
@json_option
@click.pass_context
@command
def reorder(ctx: click.Context, as_json: bool) -> None:
    """SKUs at or below their reorder point (products CSV: reorder_point, reorder_quantity)
    with days of cover at the last 30 days' pace (sales, kits' components and builds), and
    the assemblies to build."""
    from sellable.orders.reorder import reorder_report

    application = app(ctx)
    database = application.engine()
    live = LiveStock(database, application.settings)
    with live.lock, database.connect() as connection:
        report = reorder_report(connection, live)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    rows = [
        (
            i["sku"],
            i["warehouse"],
            str(i["available"]),
            str(i["reorder_point"]),
            "" if i["reorder_quantity"] is None else str(i["reorder_quantity"]),
            str(i["consumed_30_days"]),
            i["days_of_cover"] or "-",
        )
        for i in report["items"]
    ]
    header = ("SKU", "WAREHOUSE", "AVAILABLE", "REORDER POINT", "REORDER QTY", "USED 30D", "COVER")
    click.echo(
        format_table(header, "<<>>>>>", rows) if rows else "(nothing at or below its reorder point)"
    )
    builds: list[tuple[str, ...]] = [
        (
            b["sku"],
            b["warehouse"],
            str(b["available"]),
            str(b["buildable"]),
            str(b["to_reorder_point"]),
            b["bottleneck"] or "",
        )
        for b in report["to_build"]
    ]
    if builds:
        click.echo("\nassemblies to build:")
        columns = ("SKU", "WAREHOUSE", "AVAILABLE", "BUILDABLE", "TO REORDER POINT", "BOTTLENECK")
        click.echo(format_table(columns, "<<>>><", builds))


# The costing commands register themselves on ``cli`` (kept in their own module).
from sellable.cli import costing as _costing  # noqa: E402, F401
from sellable.cli import dashboard as _dashboard  # noqa: E402, F401
