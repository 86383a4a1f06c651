"""The costing commands: receipts and rates, transfers, layers, cost of goods sold,
valuation (with its proof) and a lot's trace. Registered on the ``sellable`` group."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

import click

from sellable.cli.app import (
    _progress,
    app,
    cli,
    command,
    config_option,
    echo_json,
    import_group,
    json_option,
    known_channel,
)
from sellable.cli.tables import format_table
from sellable.costing import reports
from sellable.costing.layers import lot_name
from sellable.costing.money import cents_text, unit_text
from sellable.costing.moves import transfer as transfer_units
from sellable.imports.costing import import_rates, import_receipts
from sellable.orders import OrderBook

_DATE = click.DateTime(formats=["%Y-%m-%d"])


@import_group.command("receipts")
@click.argument("file", type=click.Path(dir_okay=False))
@config_option
@json_option
@click.pass_context
@command
def import_receipts_command(ctx: click.Context, file: str, as_json: bool) -> None:
    """Receive stock: sku,warehouse,quantity,unit_cost and optionally currency, lot,
    expires_on, received_at, reference.

    Each row writes a Receipt movement and opens a cost layer (unit cost converted to the
    base currency at the rate valid on received_at). All or nothing. Afterwards, held
    order lines are tried again against the new stock."""
    application = app(ctx)
    book = OrderBook(application.engine(), application.settings)
    progress, done = _progress("importing receipts", file)
    try:
        summary, outcome = import_receipts(book, application.settings, file, progress)
    finally:
        done()
    retried = outcome.retried
    if as_json:
        data = summary.to_dict()
        data["sellable_changed"] = len(outcome.changed)
        data["held_lines_allocated"] = retried.lines_allocated if retried else 0
        data["lines_still_held"] = retried.lines_held if retried else 0
        echo_json(ctx, data, indent=None)
        return
    click.echo(
        f"{summary.file}: {summary.rows} receipt(s) written ({summary.movements} movement(s)); "
        f"{len(outcome.changed)} sellable value(s) changed"
    )
    if retried and (retried.lines_allocated or retried.lines_held):
        click.echo(
            f"held lines retried: {retried.lines_allocated} now allocated, "
            f"{retried.lines_held} still held"
        )


@import_group.command("rates")
@click.argument("file", type=click.Path(dir_okay=False))
@config_option
@json_option
@click.pass_context
@command
def import_rates_command(ctx: click.Context, file: str, as_json: bool) -> None:
    """Exchange rates: currency,rate,valid_from (rate: base-currency units one unit buys)."""
    application = app(ctx)
    summary = import_rates(application.engine(), application.settings, file)
    if as_json:
        echo_json(ctx, summary.to_dict(), indent=None)
        return
    click.echo(summary.describe("rate"))


@cli.command()
@click.argument("sku")
@click.argument("quantity", type=int)
@click.option("--from", "source", metavar="CODE", required=True, help="Warehouse to take from.")
@click.option("--to", "destination", metavar="CODE", required=True, help="Warehouse to put in.")
@click.option("--lot", metavar="LOT", help="Only units of this lot.")
@config_option
@json_option
@click.pass_context
@command
def transfer(
    ctx: click.Context,
    sku: str,
    quantity: int,
    source: str,
    destination: str,
    lot: str | None,
    as_json: bool,
) -> None:
    """Move QUANTITY of SKU between warehouses with its cost layers (cost, lot and expiry
    kept); all or nothing, never more than is available. How pre-packed bundles go to FBA."""
    application = app(ctx)
    settings = application.settings
    settings.warehouse(source)
    settings.warehouse(destination)
    if lot is not None:
        lot = lot_name(lot, "--lot")
    book = OrderBook(application.engine(), settings)
    outcome = transfer_units(
        book, sku, quantity, source, destination, lot, settings.costing.today()
    )
    detail = outcome.detail
    data = {
        **detail,
        "value": cents_text(detail["value"]),
        "layers": [
            {
                **x,
                "expires_on": None if x["expires_on"] is None else x["expires_on"].isoformat(),
                "unit_cost": unit_text(x["unit_cost"]),
                "value": cents_text(x["value"]),
            }
            for x in detail["layers"]
        ],
        "sellable_changed": len(outcome.changed),
    }
    if as_json:
        echo_json(ctx, data)
        return
    lots = ", ".join(f"{x['quantity']} of lot {x['lot'] or '(none)'}" for x in data["layers"])
    click.echo(
        f"{data['id']}: moved {quantity} × {sku} from {source} to {destination} "
        f"({lots}); value {data['value']}"
    )


@cli.command()
@click.argument("sku")
@click.option("--warehouse", "-w", metavar="CODE", help="Only this warehouse.")
@config_option
@json_option
@click.pass_context
@command
def layers(ctx: click.Context, sku: str, warehouse: str | None, as_json: bool) -> None:
    """The open cost layers of SKU, in the order units leave them (earliest expiry first,
    then oldest)."""
    application = app(ctx)
    if warehouse is not None:
        application.settings.warehouse(warehouse)
    with application.engine().connect() as connection:
        rows = reports.open_layers(connection, sku, warehouse)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"(no open layers of {sku})")
        return
    table = [
        (
            r["warehouse"],
            str(r["quantity"]),
            r["unit_cost"] or "uncosted",
            f"{r['original_unit_cost']} {r['currency']} @ {r['rate']}" if r["currency"] else "",
            r["lot"] or "",
            (r["expires_on"] or "") + (" EXPIRED" if r["expired"] else ""),
            (r["received_at"] or "")[:19].replace("T", " "),
            r["source"] + (" (estimated)" if r["estimated"] else ""),
            r["reference"] or "",
        )
        for r in rows
    ]
    header = (
        "WAREHOUSE",
        "QTY",
        "UNIT COST",
        "ORIGINAL",
        "LOT",
        "EXPIRES",
        "RECEIVED (UTC)",
        "SOURCE",
        "REFERENCE",
    )
    click.echo(format_table(header, "<>><<<<<<", table))


@cli.command()
@click.option("--channel", metavar="CODE", help="Only this channel's orders.")
@click.option("--order", "order_id", metavar="ID", help="Only this order.")
@click.option("--since", type=_DATE, metavar="YYYY-MM-DD", help="Shipped on or after.")
@click.option("--until", type=_DATE, metavar="YYYY-MM-DD", help="Shipped on or before.")
@config_option
@json_option
@click.pass_context
@command
def cogs(
    ctx: click.Context,
    channel: str | None,
    order_id: str | None,
    since: datetime | None,
    until: datetime | None,
    as_json: bool,
) -> None:
    """Cost of goods sold: one entry per shipped line, with its revenue, cost and margin
    (base currency); a kit's cost and revenue per component."""
    application = app(ctx)
    if channel is not None:
        known_channel(application.settings, channel)
    with application.engine().connect() as connection:
        lines = reports.cogs(
            connection,
            channel=channel,
            order=order_id,
            since=None if since is None else since.date(),
            until=None if until is None else until.date(),
        )
    totals = reports.cogs_totals(lines)
    if as_json:
        click.echo(json.dumps(lines, indent=2))
        return
    currency = application.settings.costing.currency
    table: list[tuple[str, ...]] = []
    for line in lines:
        flags = ("estimated " if line["estimated"] else "") + (
            "uncosted" if line["uncosted"] else ""
        )
        table.append(
            (
                line["channel"],
                line["order_id"],
                line["line_id"],
                line["sku"],
                str(line["quantity"]),
                line["revenue"] or "?",
                line["cost"],
                line["margin"] or "?",
                flags.strip(),
            )
        )
        for part in line.get("components", []):
            table.append(
                (
                    "",
                    "",
                    "",
                    f"  {part['sku']}",
                    str(part["quantity"]),
                    part["revenue"] or "",
                    part["cost"],
                    "",
                    "",
                )
            )
    header = ("CHANNEL", "ORDER", "LINE", "SKU", "QTY", "REVENUE", "COST", "MARGIN", "")
    if table:
        click.echo(format_table(header, "<<<<>>>><", table))
    click.echo(
        f"total ({currency}): {totals['lines']} line(s), revenue {totals['revenue']}, "
        f"cost {totals['cost']}, margin {totals['margin']}"
        + (
            f"; {totals['lines_without_revenue']} line(s) without revenue"
            if totals["lines_without_revenue"]
            else ""
        )
    )


@cli.command()
@click.option("--warehouse", "-w", metavar="CODE", help="Only this warehouse.")
@click.option("--check", is_flag=True, help="Prove the valuation reconciles (exit 1 if not).")
@config_option
@json_option
@click.pass_context
@command
def valuation(ctx: click.Context, warehouse: str | None, check: bool, as_json: bool) -> None:
    """Inventory value per SKU and warehouse (the open layers; unit cost is their average),
    uncosted and expired units flagged. With --check: receipts + counts + labour and
    packaging - COGS - write-offs + adjustments must equal the valuation, and every layer
    the sum of its flows."""
    application = app(ctx)
    if warehouse is not None:
        application.settings.warehouse(warehouse)
    currency = application.settings.costing.currency
    with application.engine().connect() as connection:
        if check:
            result = reports.reconcile(connection)
        else:
            data = reports.valuation(connection, warehouse)
    if check:
        if as_json:
            click.echo(json.dumps(result.to_dict(), indent=2))
        else:
            d = result.to_dict()
            click.echo(
                f"receipts {d['receipts']} + counts {d['counts']} + labour and packaging "
                f"{d['labour_and_packaging']} - COGS {d['cogs']} - write-offs {d['write_offs']} "
                f"+ adjustments {d['adjustments']} = {d['expected']} {currency}; "
                f"valuation {d['valuation']}"
            )
            for problem in result.problems:
                click.echo(f"  {problem}", err=True)
            click.echo(
                "reconciled" if result.ok else f"NOT reconciled: difference {d['difference']}"
            )
        if not result.ok:
            sys.exit(1)
        return
    if as_json:
        data["currency"] = currency
        click.echo(json.dumps(data, indent=2))
        return
    table = [
        (
            r["sku"],
            r["warehouse"],
            str(r["quantity"]),
            r["unit_cost"] or "",
            r["value"],
            f"{r['uncosted']} uncosted" if r["uncosted"] else "",
            f"{r['expired']} expired" if r["expired"] else "",
        )
        for r in data["rows"]
    ]
    if table:
        click.echo(
            format_table(
                ("SKU", "WAREHOUSE", "QTY", "UNIT COST", "VALUE", "", ""), "<<>>><<", table
            )
        )
    totals = data["totals"]
    click.echo(
        f"total: {totals['quantity']} unit(s) worth {totals['value']} {currency}"
        + (f"; {totals['uncosted']} unit(s) uncosted" if totals["uncosted"] else "")
    )


def _render_trace(data: dict[str, Any]) -> list[str]:
    out: list[str] = []

    def back(parts: list[dict[str, Any]], depth: int) -> None:
        for p in parts:
            out.append(
                f"{'  ' * depth}{p['quantity']} × {p['sku']} lot {p['lot'] or '(none)'} "
                f"({', '.join(p['assembly_orders'])})"
            )
            back(p["components"], depth + 1)

    def forward(where: dict[str, Any], depth: int) -> None:
        pad = "  " * depth
        for o in where["orders"]:
            out.append(
                f"{pad}shipped {o['quantity']} in order {o['channel']}:{o['order_id']} "
                f"line {o['line_id']}"
            )
        for t in where["transfers"]:
            out.append(f"{pad}transferred {t['quantity']} from {t['from']} ({t['reference']})")
        for w in where["write_offs"]:
            out.append(f"{pad}wrote off {w['quantity']} in {w['warehouse']} ({w['reference']})")
        for b in where["builds"]:
            out.append(
                f"{pad}{b['quantity']} went into {b['assembly_order']}: {b['built']} × {b['sku']} "
                f"lot {b['lot']}"
            )
            if b["then"]:
                forward(b["then"], depth + 1)

    for entry in data["skus"]:
        out.append(f"{entry['sku']} lot {data['lot']}")
        out.append("  made from:" if entry["backward"] else "  made from: (received, not built)")
        back(entry["backward"], 2)
        out.append("  went to:")
        forward(entry["forward"], 2)
        still = ", ".join(f"{x['quantity']} in {x['warehouse']}" for x in entry["on_hand"])
        out.append(f"  still on hand: {still or 'none'}")
    return out


@cli.command()
@click.argument("lot")
@click.option("--sku", metavar="SKU", help="Only this SKU's units of the lot.")
@config_option
@json_option
@click.pass_context
@command
def trace(ctx: click.Context, lot: str, sku: str | None, as_json: bool) -> None:
    """A lot both ways: which component lots are inside it (recursively), and which lots
    were built from it, which orders shipped its units (directly or inside assemblies),
    which transfers moved it and where its units still are. A recall in one command."""
    application = app(ctx)
    with application.engine().connect() as connection:
        data = reports.trace(connection, lot_name(lot, "LOT"), sku)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo("\n".join(_render_trace(data)))
