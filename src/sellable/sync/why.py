"""``sellable explain SKU --channel CODE``: why a channel is offered the number it is.

For each listing of the SKU on the channel: what each warehouse it sells from contributes
(with the BOM tree and its bottleneck), the channel rules applied one by one, the quantity
the daemon wants the channel to show, the last value the channel confirmed and the last
value read back from it. Works from the database alone: no connector is loaded and no
channel is called.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from sellable.config import ChannelSettings, Settings
from sellable.core.explain import explain, render
from sellable.core.rules import BACKORDERS_CONTINUE, BACKORDERS_OFF
from sellable.core.share import ListingKey, SharedAllocation
from sellable.errors import ConfigError, InputError
from sellable.store import schema
from sellable.store.live import LiveStock
from sellable.store.sql import iso_utc, utcnow
from sellable.sync.plugins import load_connector
from sellable.sync.shares import SharedOffers
from sellable.sync.state import SyncState, split_extra


def explain_channel(
    connection: Connection,
    settings: Settings,
    live: LiveStock,
    code: str,
    sku: str,
    shares: SharedAllocation | None = None,
) -> dict[str, Any]:
    """The explanation of ``sku`` on channel ``code`` (see the module doc) as plain data.
    The offer is the push job's: :meth:`ChannelRules.offer` of the live stock's sellable
    (in ``"shared"`` mode: the listing's share of it, ``shares`` or one computed here) and
    backorderability over the listing's warehouses."""
    channel = settings.channel(code)
    core = live.core
    if sku not in core.catalog:
        raise InputError(f"unknown SKU {sku!r}")
    if shares is None and settings.allocation.mode == "shared":
        with live.lock:
            live.refresh()
            state = SyncState(connection.engine, utcnow)
            offers = SharedOffers(connection.engine, settings, live, state.matched_listings, utcnow)
            try:
                shares = offers.current()
            finally:
                offers.close()
    rules = channel.rules()
    flag = backorders_flag(channel)
    listings, skus = schema.listings.c, schema.skus.c
    rows = connection.execute(
        select(
            listings.listing_id,
            listings.channel_sku,
            listings.warehouses,
            listings.present,
            listings.last_pushed,
            listings.last_pushed_at,
            listings.channel_quantity,
            listings.push_failures,
            listings.last_error,
            listings.extra,
        )
        .join(schema.skus, skus.id == listings.sku_id)
        .where((listings.channel == code) & (skus.sku == sku))
        .order_by(listings.id)
    ).all()
    entries: list[dict[str, Any]] = []
    known = {w.code for w in settings.warehouses}
    candidates: list[Any] = list(rows) or [None]
    for row in candidates:
        codes = (
            row.warehouses.split(",")
            if row is not None and row.warehouses
            else list(channel.warehouses)
        )
        contributions: list[dict[str, Any]] = [
            {"warehouse": w, "sellable": core.sellable(sku, w), "tree": explain(core, sku, w)}
            for w in codes
            if w in known
        ]
        total = live.sellable_in(sku, codes)
        backorderable = rules.backorders != BACKORDERS_OFF and live.backorderable(sku, codes)
        key = (code, row.listing_id) if row is not None else None
        share: dict[str, Any] | None = None
        if shares is not None and key is not None and key in shares:
            share = share_report(shares, key)
            offer = rules.offer(share["total"], backorderable)
            steps = rules.steps(share["total"], backorderable, flag)
            steps[0] = ("its share (shared allocation)", share["total"])
            steps.insert(0, ("sellable over the channel's warehouses", total))
        else:
            offer = rules.offer(total, backorderable)
            steps = rules.steps(total, backorderable, flag)
        entry: dict[str, Any] = {
            "listing_id": None if row is None else row.listing_id,
            "listed": row is not None and bool(row.present),
            "warehouses": contributions,
            "total_sellable": total,
            "share": share,
            "rules": [{"rule": name, "quantity": q} for name, q in steps],
            "quantity": offer.quantity,
            "backorders": offer.backorders,
        }
        if row is not None:
            last_backorders = split_extra(row.extra)[1]
            entry.update(
                last_pushed=row.last_pushed,
                last_pushed_at=iso_utc(row.last_pushed_at) if row.last_pushed_at else None,
                last_backorders=last_backorders,
                channel_quantity=row.channel_quantity,
                push_failures=row.push_failures,
                last_error=row.last_error,
                in_step=row.last_pushed == offer.quantity and last_backorders == offer.backorders,
            )
        entries.append(entry)
    return {"sku": sku, "channel": code, "connector": channel.connector, "listings": entries}


def share_report(shares: SharedAllocation, key: ListingKey) -> dict[str, Any]:
    """The listing's share per warehouse: the SKU's units there, every claim on them (this
    listing's, the other listings', the composites drawing on it) with weight and units."""
    warehouses = []
    for detail in shares.detail(key):
        warehouses.append(
            {
                "warehouse": detail.warehouse,
                "supply": detail.supply,
                "claims": [
                    {
                        "listing": None if c.listing is None else f"{c.listing[0]}:{c.listing[1]}",
                        "this": c.listing == key,
                        "composite": c.parent,
                        "weight": c.weight,
                        "floor": c.floor,
                        "units": c.units,
                    }
                    for c in detail.competitors
                ],
                "granted": detail.granted,
                "leftover": detail.leftover,
                "full_sellable": detail.full_sellable,
                "below_floor": detail.below_floor,
                "share": detail.share,
            }
        )
        if shares.policy.headroom:
            warehouses[-1]["headroom"] = {
                "strict": detail.strict,
                "supply": detail.headroom_supply,
                "others_expected": detail.others_demand,
                "others_bound": detail.others_bound,
                "everyone_expected": detail.everyone_demand,
                "everyone_bound": detail.everyone_bound,
            }
    return {
        "total": shares.share(key),
        "rebalance_below": shares.policy.rebalance_below,
        "headroom_sigmas": shares.policy.headroom_sigmas if shares.policy.headroom else None,
        "warehouses": warehouses,
    }


def render_share(share: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for part in share["warehouses"]:
        claims = part["claims"]
        lines.append(
            f"    shared among {len(claims)} claims in {part['warehouse']} "
            f"({part['supply']} units):"
        )
        for claim in claims:
            if claim["listing"] is not None:
                who = f"listing {claim['listing']}" + (" (this one)" if claim["this"] else "")
            else:
                who = f"through {claim['composite']}"
            floor = f", floor {claim['floor']}" if claim["floor"] else ""
            lines.append(
                f"      {who:<52} weight {claim['weight']:g}{floor}: {claim['units']} units"
            )
        if part["leftover"]:
            lines.append(f"      + {part['leftover']} left over by the composites")
        if part["below_floor"]:
            lines.append(
                f"      at or under rebalance_below {share['rebalance_below']}: offered all "
                f"{part['full_sellable']} (whichever listing sells first takes them)"
            )
        headroom = part.get("headroom")
        if headroom is not None:
            lines.extend(render_headroom(headroom, share["headroom_sigmas"], part["share"]))
        lines.append(f"      => its share in {part['warehouse']}: {part['share']}")
    return lines


def render_headroom(headroom: dict[str, Any], sigmas: float, share: int) -> list[str]:
    """The latency headroom's lines of ``explain``: the strict share, and what the other
    listings (and all of them) are expected to sell before this one's offer is corrected."""
    supply = headroom["supply"]
    lines = [
        f"      strict share {headroom['strict']}; latency headroom ({sigmas:g} sigmas), "
        f"{supply} units with the components' headroom:",
        f"        all claims expect {headroom['everyone_expected']:g} units before this "
        f"offer is corrected (bound {headroom['everyone_bound']})",
        f"        the other claims expect {headroom['others_expected']:g} "
        f"(bound {headroom['others_bound']})",
    ]
    if headroom["everyone_bound"] <= supply:
        lines.append(f"        the bound of all claims fits in {supply}: offered all {supply}")
    elif supply - headroom["others_bound"] > headroom["strict"]:
        lines.append(
            f"        offered what the others' bound leaves: {supply} - "
            f"{headroom['others_bound']} = {supply - headroom['others_bound']}"
        )
    else:
        lines.append(f"        too short for more than the strict share: {share}")
    return lines


def backorders_flag(channel: ChannelSettings) -> str:
    """How the channel's keep-selling flag reads, for the ``"continue"`` step ("" when the
    rule is not ``"continue"`` or the connector cannot be loaded)."""
    if channel.backorders != BACKORDERS_CONTINUE or channel.is_manual:
        return ""
    try:
        return load_connector(channel.connector).backorders_flag
    except ConfigError:
        return ""


def to_json(report: dict[str, Any]) -> dict[str, Any]:
    """The report with each BOM tree as a dict (for ``--json``)."""
    out = dict(report)
    out["listings"] = [
        {
            **entry,
            "warehouses": [{**c, "tree": c["tree"].to_dict()} for c in entry["warehouses"]],
        }
        for entry in report["listings"]
    ]
    return out


def render_channel(report: dict[str, Any]) -> str:
    """Human text of :func:`explain_channel`."""
    lines = [f"{report['sku']} on channel {report['channel']} ({report['connector']})"]
    for entry in report["listings"]:
        if entry["listing_id"] is None:
            lines.append("  not listed on this channel; if it were, it would be offered:")
        else:
            state = "" if entry["listed"] else " (no longer on the channel)"
            lines.append(f"  listing {entry['listing_id']}{state}")
        for contribution in entry["warehouses"]:
            tree = render(contribution["tree"], contribution["warehouse"])
            lines.extend("    " + line for line in tree.splitlines())
        if entry["share"] is not None:
            lines.extend(render_share(entry["share"]))
        for step in entry["rules"]:
            lines.append(f"    {step['rule']:<44} {step['quantity']:>8}")
        lines.append(f"    {'=> offered to the channel':<44} {entry['quantity']:>8}")
        if entry["backorders"]:
            lines.append("    => and the channel keeps selling at 0")
        if entry["listing_id"] is not None:
            pushed = entry["last_pushed"]
            kept = " (keep selling at 0)" if entry["last_backorders"] else ""
            lines.append(
                "    last confirmed by the channel: "
                + ("never" if pushed is None else f"{pushed}{kept} at {entry['last_pushed_at']}")
                + (
                    ""
                    if entry["channel_quantity"] is None
                    else f"; last read back: {entry['channel_quantity']}"
                )
            )
            if not entry["in_step"]:
                lines.append("    waiting to be pushed")
            if entry["last_error"]:
                lines.append(
                    f"    last push refused ({entry['push_failures']}×): {entry['last_error']}"
                )
    return "\n".join(lines)
