"""Cost layers inside one ledger transaction: open them, take units out, write it all.

Every unit that arrives in a warehouse opens a layer (receipt, count, build, transfer).
Units leave earliest expiry first (FEFO), then oldest first (FIFO); a count that lowers on
hand takes expired units first. Per (SKU, warehouse) the open layers add up to on hand:
units sold past stock open a *deficit* (a layer with negative remaining) costed at the
last known unit cost and flagged estimated, which the next arrival settles, the difference
going to the sold line as a cost adjustment.

A layer's ``value`` is the exact cost of its remaining units; taking ``k`` of ``r`` units
takes ``value * k / r`` (the last units take what is left), so value is never created or
lost by rounding. Every change is a flow row, and ``valuation --check`` proves the layers
are the sum of their flows.

The caller holds the stock rows of every (SKU, warehouse) it touches locked, which is what
serialises writers of the same layers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, case, func, literal, select

from sellable.costing.money import ZERO, exact, share
from sellable.errors import InputError
from sellable.store import schema
from sellable.store.schema import micros
from sellable.store.sql import (
    chunked,
    copy_rows,
    db_time,
    driver_executemany,
    fetch_tuples,
    int_array,
    one_of,
    reserve_ids,
)

#: Flow kinds that bring units into a layer, and those that take them out.
ARRIVALS = frozenset({"receipt", "count", "opening", "build_in", "transfer_in"})
DEPARTURES = frozenset({"sale", "build_out", "transfer_out", "writeoff"})

_FAR = date.max


@dataclass(slots=True, eq=False)
class Layer:
    id: int | None
    sku_id: int
    warehouse_id: int
    quantity: int
    remaining: int
    value: Decimal
    unit_cost: Decimal | None
    received_at: datetime
    source: str
    reference: str | None = None
    lot: str | None = None
    expires_on: date | None = None
    currency: str | None = None
    original_unit_cost: Decimal | None = None
    rate: Decimal | None = None
    expired: bool = False
    estimated: bool = False
    line_id: int | None = None

    def order_key(self) -> tuple[int, date, datetime, int]:
        """FEFO, then FIFO: layers with an expiry date first, earliest first; then the
        others, oldest first. New layers (no id yet) after the stored ones."""
        return (
            0 if self.expires_on is not None else 1,
            self.expires_on or _FAR,
            self.received_at,
            self.id if self.id is not None else 1 << 62,
        )


_CL = schema.cost_layers.c
#: The columns :func:`_layer` reads, in its order.
_COLUMNS = (
    _CL.id,
    _CL.sku_id,
    _CL.warehouse_id,
    _CL.quantity,
    _CL.remaining,
    _CL.value,
    _CL.unit_cost,
    _CL.received_at,
    _CL.source,
    _CL.reference,
    _CL.lot,
    _CL.expires_on,
    _CL.currency,
    _CL.original_unit_cost,
    _CL.rate,
    _CL.expired,
    _CL.estimated,
    _CL.line_id,
)


def _layer(row: tuple[Any, ...], text_times: bool) -> Layer:
    """A layer from a driver row of :data:`_COLUMNS` (money in millionths; on SQLite the
    times are text, in UTC)."""
    (
        layer_id,
        sku_id,
        warehouse,
        quantity,
        remaining,
        value,
        unit_cost,
        received_at,
        source,
        reference,
        lot,
        expires_on,
        currency,
        original_unit_cost,
        rate,
        expired,
        estimated,
        line_id,
    ) = row[:18]
    if text_times:
        received_at = datetime.fromisoformat(received_at).replace(tzinfo=UTC)
        if expires_on is not None:
            expires_on = date.fromisoformat(expires_on)
    elif received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=UTC)
    return Layer(
        layer_id,
        sku_id,
        warehouse,
        quantity,
        remaining,
        Decimal(value).scaleb(-6),
        None if unit_cost is None else Decimal(unit_cost).scaleb(-6),
        received_at,
        source,
        reference,
        lot,
        expires_on,
        currency,
        None if original_unit_cost is None else Decimal(original_unit_cost).scaleb(-6),
        None if rate is None else Decimal(str(rate)),
        bool(expired),
        bool(estimated),
        line_id,
    )


@dataclass(slots=True)
class Taken:
    """Units taken out of one layer, and their value."""

    layer: Layer
    quantity: int
    value: Decimal

    @property
    def expired(self) -> bool:
        return self.layer.expired


@dataclass(slots=True)
class Flow:
    layer: Layer
    kind: str
    quantity: int
    value: Decimal
    line_id: int | None = None
    assembly_order_id: int | None = None
    reference: str | None = None


@dataclass(slots=True)
class Settlement:
    """An arrival that covered units sold past stock: the difference between what they
    cost and what was estimated goes to the sold line."""

    line_id: int
    sku_id: int
    warehouse_id: int
    quantity: int
    difference: Decimal
    uncosted: int = 0  # units that had no cost at all and now have one


@dataclass
class CostBook:
    """The layers of the (SKU, warehouse) pairs one transaction touches."""

    connection: Connection
    now: datetime
    today: date
    open_layers: dict[tuple[int, int], list[Layer]] = field(default_factory=dict)
    new_layers: list[Layer] = field(default_factory=list)
    flows: list[Flow] = field(default_factory=list)
    settlements: list[Settlement] = field(default_factory=list)
    _last_cost: dict[int, Decimal | None] = field(default_factory=dict)
    _touched: dict[int, Layer] = field(default_factory=dict)  # stored layers changed
    _partial: dict[tuple[int, int], int] = field(default_factory=dict)  # pair: units read
    # SKUs of pairs whose usable layers were short of the demand given to load: the ones
    # likely to be sold past stock (and so to need their last known unit cost).
    _short: set[int] = field(default_factory=set)

    # -- reading -------------------------------------------------------------------------

    def load(
        self,
        pairs: Iterable[tuple[int, int]],
        demand: Mapping[tuple[int, int], int] | None = None,
    ) -> None:
        """Read the open layers (remaining units, or a deficit) of ``pairs`` not yet read.

        With ``demand`` (units the caller is about to take, per pair), only what those takes
        can reach is read: the layers in FEFO/FIFO order until the unexpired ones among them
        cover the demand (a pair they cannot cover is read whole, deficits and expired
        layers included). Such a pair is *partial*; anything beyond a take of at most what
        was read (an arrival, a lot, a count, a larger take) reads the rest first. A
        shipped line seldom reaches past its first layer, while a SKU may have many open
        (and the deficits of units sold past stock stay open until stock arrives)."""
        known = self.open_layers
        wanted = sorted({(s, w) for s, w in pairs if (s, w) not in known})
        if not wanted:
            return
        for pair in wanted:
            self.open_layers[pair] = []
        bounded = {p: demand[p] for p in wanted if demand and p in demand}
        self._read(
            [p for p in wanted if p not in bounded],
        )
        if bounded:
            whole = self._read(list(bounded), bounded)
            self._partial.update({p: n for p, n in bounded.items() if p not in whole})
            self._short.update(s for s, _ in whole)
        for pair in wanted:
            self.open_layers[pair].sort(key=Layer.order_key)

    def _read(
        self, pairs: list[tuple[int, int]], need: Mapping[tuple[int, int], int] | None = None
    ) -> set[tuple[int, int]]:
        """Read the open layers of ``pairs`` (with ``need``: the prefix that covers it, see
        :meth:`load`). Returns the pairs read whole: with ``need``, those whose usable layers
        add up to less than it (no layer was left out, as a layer is left out only when the
        usable units before it already cover the need)."""
        if not pairs:
            return set()
        cl = schema.cost_layers.c
        by_warehouse: dict[int, list[int]] = {}
        for s, w in pairs:
            by_warehouse.setdefault(w, []).append(s)
        # The driver's rows, converted here: several times cheaper than SQLAlchemy's result
        # processing for the thousands of layers an order batch reads.
        text_times = self.connection.dialect.name == "sqlite"  # SQLite: times are text
        found = self.open_layers
        touched = self._touched
        usable_read: dict[tuple[int, int], int] = {}
        for warehouse_id, skus in by_warehouse.items():
            for chunk in chunked(skus, 2000):
                where = (
                    (cl.warehouse_id == warehouse_id)
                    & one_of(self.connection, cl.sku_id, chunk)
                    & (cl.remaining != 0)
                )
                if need is None:
                    query = select(*_COLUMNS, literal(0)).where(where)
                    rows = fetch_tuples(self.connection, query)
                else:
                    # Units of the usable layers before each one, in consumption order.
                    usable = case(
                        ((cl.remaining > 0) & cl.expired.is_(False), cl.remaining), else_=0
                    )
                    before = (
                        func.sum(usable).over(
                            partition_by=cl.sku_id,
                            order_by=(
                                cl.expires_on.is_(None),
                                cl.expires_on,
                                cl.received_at,
                                cl.id,
                            ),
                            rows=(None, 0),
                        )
                        - usable
                    )
                    inner = select(*_COLUMNS, before.label("before")).where(where).subquery()
                    most = max(need[(s, warehouse_id)] for s in chunk)
                    # The prefix only: a pair whose usable units fall short of its need has
                    # every row before it (deficits and expired layers too), and a take
                    # within the prefix needs no other (the rest is read on demand).
                    query = select(*inner.c).where(inner.c.before < most)
                    rows = (
                        row
                        for row in fetch_tuples(self.connection, query)
                        if row[-1] < need[(row[1], warehouse_id)]
                    )
                for row in rows:
                    layer_id = row[0]
                    if need is not None and row[4] > 0 and not row[15]:
                        # As stored (what the prefix query counted), not as changed here.
                        key = (row[1], row[2])
                        usable_read[key] = usable_read.get(key, 0) + row[4]
                    if layer_id in touched:
                        # Changed in this transaction (and maybe emptied): ours is current.
                        layer = touched[layer_id]
                        if layer.remaining != 0:
                            found[(layer.sku_id, layer.warehouse_id)].append(layer)
                        continue
                    found[(row[1], row[2])].append(_layer(row, text_times))
        if need is None:
            return set(pairs)
        return {p for p in pairs if usable_read.get(p, 0) < need[p]}

    def _complete(self, pair: tuple[int, int]) -> None:
        """Read the rest of a partial pair's open layers."""
        if self._partial.pop(pair, None) is None:
            return
        have = {x.id for x in self.open_layers[pair] if x.id is not None}
        current = self.open_layers[pair]
        self.open_layers[pair] = []
        self._read([pair])
        stored = [x for x in self.open_layers[pair] if x.id not in have]
        self.open_layers[pair] = sorted(current + stored, key=Layer.order_key)

    def layers(self, sku_id: int, warehouse_id: int) -> list[Layer]:
        """Every open layer of (SKU, warehouse), in consumption order."""
        pair = (sku_id, warehouse_id)
        if pair not in self.open_layers:
            self.load([pair])
        elif pair in self._partial:
            self._complete(pair)
        return self.open_layers[pair]

    def last_unit_cost(self, sku_id: int) -> Decimal | None:
        """The SKU's last known unit cost in any warehouse: the newest costed layer (this
        transaction's first), None when it never had one."""
        for layer in reversed(self.new_layers):
            if layer.sku_id == sku_id and layer.unit_cost is not None and not layer.estimated:
                return layer.unit_cost
        if sku_id not in self._last_cost:
            # Asked for one SKU sold past stock, read it for every SKU whose demand the
            # layers read did not cover (the others are unlikely to need it): one query,
            # not a round trip per SKU, and not one walk per SKU the transaction touches.
            wanted = sorted((self._short | {sku_id}) - set(self._last_cost))
            cl, sk = schema.cost_layers.c, schema.skus.c
            # Per SKU, its newest costed layer: a walk down the (sku_id, received_at) index.
            newest = (
                select(cl.unit_cost)
                .where((cl.sku_id == sk.id) & cl.unit_cost.is_not(None) & cl.estimated.is_(False))
                .order_by(cl.received_at.desc(), cl.id.desc())
                .limit(1)
                .scalar_subquery()
            )
            for chunk in chunked(wanted, 2000):
                query = select(sk.id, newest).where(one_of(self.connection, sk.id, chunk))
                for found_sku, unit in fetch_tuples(self.connection, query):
                    if unit is not None:
                        self._last_cost[found_sku] = Decimal(unit).scaleb(-6)
            for wanted_sku in wanted:
                self._last_cost.setdefault(wanted_sku, None)
        return self._last_cost[sku_id]

    # -- taking units out ------------------------------------------------------------------

    def take(
        self,
        sku_id: int,
        warehouse_id: int,
        quantity: int,
        kind: str,
        *,
        line_id: int | None = None,
        assembly_order_id: int | None = None,
        reference: str | None = None,
        lot: str | None = None,
        expired_first: bool = False,
        expired_last: bool = False,
        past_stock: bool = True,
    ) -> list[Taken]:
        """Take ``quantity`` units out of the layers of (SKU, warehouse), FEFO then FIFO.

        Expired units are taken only by a count or write-off (``expired_first``), before any
        other, or by a shipment that the unexpired units cannot cover (``expired_last``: the
        units allocated before their lot expired left the warehouse). With ``lot``, only
        that lot's units. What no layer covers is sold past stock
        (``past_stock``): a deficit at the last known unit cost, flagged estimated; without
        it an :class:`InputError`."""
        pair = (sku_id, warehouse_id)
        if pair not in self.open_layers:
            self.load([pair])
        if pair in self._partial and (
            lot is not None
            or expired_first
            or quantity
            > sum(x.remaining for x in self.open_layers[pair] if x.remaining > 0 and not x.expired)
        ):
            self._complete(pair)
        layers = self.open_layers[pair]
        usable = [
            x
            for x in layers
            if x.remaining > 0
            and (lot is None or x.lot == lot)
            and (expired_first or not x.expired)
        ]
        if expired_first:
            usable.sort(key=lambda x: (not x.expired, x.order_key()))
        elif expired_last:
            # Latest expiry first: the lot most likely still good when the units were
            # allocated (allocation takes only unexpired units).
            late = [x for x in layers if x.remaining > 0 and x.expired and lot in (None, x.lot)]
            late.sort(key=lambda x: (x.expires_on or _FAR, x.received_at), reverse=True)
            usable += late
        taken: list[Taken] = []
        rest = quantity
        for layer in usable:
            if rest <= 0:
                break
            units = min(rest, layer.remaining)
            value = share(layer.value, units, layer.remaining)
            layer.remaining -= units
            layer.value -= value
            self._touch(layer)
            rest -= units
            taken.append(Taken(layer, units, value))
            self.flows.append(
                Flow(layer, kind, -units, -value, line_id, assembly_order_id, reference)
            )
        if rest > 0:
            if not past_stock:
                raise InputError(f"only {quantity - rest} unit(s) in layers, {quantity} wanted")
            estimate = self.last_unit_cost(sku_id)
            deficit = Layer(
                None,
                sku_id,
                warehouse_id,
                -rest,
                0,
                ZERO,
                estimate,
                self.now,
                "deficit",
                reference,
                estimated=True,
                line_id=line_id,
            )
            value = exact((estimate or ZERO) * rest)
            deficit.remaining, deficit.value = -rest, -value
            self.new_layers.append(deficit)
            layers.append(deficit)
            taken.append(Taken(deficit, rest, value))
            self.flows.append(
                Flow(deficit, kind, -rest, -value, line_id, assembly_order_id, reference)
            )
            self._tidy(sku_id, warehouse_id)
        elif any(t.layer.remaining == 0 for t in taken):
            # Nothing added, only emptied layers to drop: the rest stays in its order (taking
            # units changes no layer's place), so no sort.
            self.open_layers[pair] = [x for x in layers if x.remaining != 0]
        return taken

    # -- units arriving --------------------------------------------------------------------

    def open(
        self,
        sku_id: int,
        warehouse_id: int,
        quantity: int,
        value: Decimal | None,
        kind: str,
        *,
        source: str,
        reference: str | None = None,
        lot: str | None = None,
        expires_on: date | None = None,
        received_at: datetime | None = None,
        currency: str | None = None,
        original_unit_cost: Decimal | None = None,
        rate: Decimal | None = None,
        unit_cost: Decimal | None = None,
        assembly_order_id: int | None = None,
    ) -> Layer:
        """Open a layer of ``quantity`` units worth ``value`` in all (None: uncosted). The
        units first settle what was sold past stock in this warehouse, oldest first."""
        if unit_cost is None and value is not None:
            unit_cost = exact(value / quantity)
        layer = Layer(
            None,
            sku_id,
            warehouse_id,
            quantity,
            quantity,
            exact(value) if value is not None else ZERO,
            unit_cost,
            received_at or self.now,
            source,
            reference,
            lot,
            expires_on,
            currency,
            original_unit_cost,
            rate,
            expired=expires_on is not None and expires_on < self.today,
        )
        layers = self.layers(sku_id, warehouse_id)
        self.new_layers.append(layer)
        layers.append(layer)
        self.flows.append(
            Flow(layer, kind, quantity, layer.value, None, assembly_order_id, reference)
        )
        for deficit in [x for x in layers if x.remaining < 0]:
            if layer.remaining <= 0 or layer.expired:
                break
            units = min(layer.remaining, -deficit.remaining)
            actual = share(layer.value, units, layer.remaining)
            estimated = share(-deficit.value, units, -deficit.remaining)
            layer.remaining -= units
            layer.value -= actual
            deficit.remaining += units
            deficit.value += estimated
            self._touch(deficit)
            self.flows.append(Flow(deficit, "settle", units, estimated, deficit.line_id))
            if deficit.line_id is None:
                # Units a build took past stock: the difference follows what it built.
                self._settle_build(layer, deficit, units, actual, estimated)
                continue
            self.flows.append(Flow(layer, "settle", -units, -actual, deficit.line_id))
            if deficit.line_id is not None:
                self.settlements.append(
                    Settlement(
                        deficit.line_id,
                        sku_id,
                        warehouse_id,
                        units,
                        actual - estimated,
                        uncosted=units
                        if deficit.unit_cost is None and layer.unit_cost is not None
                        else 0,
                    )
                )
        self._tidy(sku_id, warehouse_id)
        return layer

    def _settle_build(
        self, arrival: Layer, deficit: Layer, units: int, actual: Decimal, estimated: Decimal
    ) -> None:
        """Settle ``units`` of a deficit a build opened (components it took past stock):
        what they cost more (or less) than estimated goes where the build's output is, in
        proportion to its units: to the output layer for the units still in it, and to the
        lines that sold its units as a cost adjustment. The share of units that went on
        elsewhere (transferred, built into something else, written off) stays a plain
        adjustment of the valuation."""
        difference = actual - estimated
        outputs, sold, built = self._build_output(deficit)
        parts: list[tuple[int, int, int, Decimal]] = []  # line, SKU, warehouse, share
        if built and difference:
            for (line_id, out_sku, out_warehouse), n in sorted(sold.items()):
                parts.append((line_id, out_sku, out_warehouse, exact(difference * n / built)))
            for out in outputs:
                if out.remaining > 0:
                    part = exact(difference * out.remaining / built)
                    out.value += part
                    self._touch(out)
                    self.flows.append(Flow(out, "settle", 0, part))
        to_lines = sum((p[3] for p in parts), ZERO)
        self.flows.append(Flow(arrival, "settle", -units, -(actual - to_lines)))
        for line_id, out_sku, out_warehouse, part in parts:
            self.flows.append(Flow(arrival, "settle", 0, -part, line_id))
            self.settlements.append(Settlement(line_id, out_sku, out_warehouse, 0, part))

    def _build_output(
        self, deficit: Layer
    ) -> tuple[list[Layer], dict[tuple[int, int, int], int], int]:
        """The layers the build that took ``deficit``'s units opened, the units of them each
        line sold (by line, SKU, warehouse), and how many units it built."""
        lf = schema.layer_flows.c
        order = next(
            (
                f.assembly_order_id
                for f in self.flows
                if f.layer is deficit and f.kind == "build_out"
            ),
            None,
        )
        if order is None and deficit.id is not None:
            order = self.connection.execute(
                select(lf.assembly_order_id)
                .where((lf.layer_id == deficit.id) & (lf.kind == "build_out"))
                .limit(1)
            ).scalar()
        if order is None:
            return [], {}, 0
        outputs: list[Layer] = [
            f.layer for f in self.flows if f.kind == "build_in" and f.assembly_order_id == order
        ]
        built = sum(
            f.quantity for f in self.flows if f.kind == "build_in" and f.assembly_order_id == order
        )
        stored: list[int] = []
        for layer_id, sku_id, warehouse_id, quantity in self.connection.execute(
            select(lf.layer_id, lf.sku_id, lf.warehouse_id, lf.quantity).where(
                (lf.assembly_order_id == order) & (lf.kind == "build_in")
            )
        ):
            built += quantity
            stored.append(layer_id)
            found = [x for x in self.layers(sku_id, warehouse_id) if x.id == layer_id]
            outputs.extend(found)  # an emptied layer is not open: nothing to add to it
        sold: dict[tuple[int, int, int], int] = {}
        for f in self.flows:
            if f.kind == "sale" and f.line_id is not None and any(f.layer is o for o in outputs):
                key = (f.line_id, f.layer.sku_id, f.layer.warehouse_id)
                sold[key] = sold.get(key, 0) - f.quantity
        if stored:
            for line_id, sku_id, warehouse_id, quantity in self.connection.execute(
                select(lf.line_id, lf.sku_id, lf.warehouse_id, func.sum(lf.quantity))
                .where(lf.layer_id.in_(stored) & (lf.kind == "sale") & lf.line_id.is_not(None))
                .group_by(lf.line_id, lf.sku_id, lf.warehouse_id)
            ):
                key = (line_id, sku_id, warehouse_id)
                sold[key] = sold.get(key, 0) - int(quantity)
        return outputs, sold, built

    def _touch(self, layer: Layer) -> None:
        if layer.id is not None:
            self._touched[layer.id] = layer

    def _tidy(self, sku_id: int, warehouse_id: int) -> None:
        """Keep the pair's open layers in consumption order, dropping emptied ones."""
        pair = (sku_id, warehouse_id)
        self.open_layers[pair] = sorted(
            (x for x in self.open_layers[pair] if x.remaining != 0), key=Layer.order_key
        )

    # -- writing ---------------------------------------------------------------------------

    def flush(self) -> None:
        """Write new layers (ids read back), changed layers, flows and settlements."""
        connection = self.connection
        if self.new_layers:
            _insert_layers(connection, self.new_layers)
        _update_layers(connection, [(x.remaining, x.value, x.id) for x in self._touched.values()])
        at = db_time(connection, self.now)
        copy_rows(
            connection,
            "layer_flows",
            (
                "layer_id",
                "sku_id",
                "warehouse_id",
                "kind",
                "quantity",
                "value",
                "line_id",
                "assembly_order_id",
                "reference",
                "at",
            ),
            [
                (
                    f.layer.id,
                    f.layer.sku_id,
                    f.layer.warehouse_id,
                    f.kind,
                    f.quantity,
                    micros(f.value),
                    f.line_id,
                    f.assembly_order_id,
                    f.reference,
                    at,
                )
                for f in self.flows
            ],
        )
        if self.settlements:
            lc = schema.line_costs
            for s in self.settlements:
                connection.execute(
                    lc.update()
                    .where(
                        (lc.c.line_id == s.line_id)
                        & (lc.c.sku_id == s.sku_id)
                        & (lc.c.warehouse_id == s.warehouse_id)
                    )
                    .values(
                        adjustment=lc.c.adjustment + s.difference,
                        estimated=lc.c.estimated - s.quantity,
                        uncosted=lc.c.uncosted - s.uncosted,
                    )
                )
        self.new_layers, self.flows, self.settlements = [], [], []
        self._touched = {}


#: The columns :func:`_insert_layers` writes, after the id.
_INSERTED = tuple(c.name for c in _COLUMNS[1:])


def _insert_layers(connection: Connection, layers: list[Layer]) -> None:
    """Write new layers and give them their ids, in order (a later layer a larger id: the
    FIFO tie-break). PostgreSQL: ids drawn from the sequence, then one COPY (nothing read
    back); elsewhere one INSERT ... RETURNING."""
    if connection.dialect.name == "postgresql":
        [ids] = reserve_ids(connection, [("cost_layers", len(layers))])
        ids.sort()
        copy_rows(
            connection,
            "cost_layers",
            ("id", *_INSERTED),
            [
                (
                    new_id,
                    x.sku_id,
                    x.warehouse_id,
                    x.quantity,
                    x.remaining,
                    micros(x.value),
                    None if x.unit_cost is None else micros(x.unit_cost),
                    x.received_at,
                    x.source,
                    x.reference,
                    x.lot,
                    x.expires_on,
                    x.currency,
                    None if x.original_unit_cost is None else micros(x.original_unit_cost),
                    x.rate,
                    x.expired,
                    x.estimated,
                    x.line_id,
                )
                for new_id, x in zip(ids, layers, strict=True)
            ],
        )
        for layer, new_id in zip(layers, ids, strict=True):
            layer.id = new_id
        return
    cl = schema.cost_layers
    rows = [
        {
            "sku_id": x.sku_id,
            "warehouse_id": x.warehouse_id,
            "quantity": x.quantity,
            "remaining": x.remaining,
            "value": x.value,
            "unit_cost": x.unit_cost,
            "currency": x.currency,
            "original_unit_cost": x.original_unit_cost,
            "rate": x.rate,
            "lot": x.lot,
            "expires_on": x.expires_on,
            "received_at": x.received_at,
            "source": x.source,
            "reference": x.reference,
            "expired": x.expired,
            "estimated": x.estimated,
            "line_id": x.line_id,
        }
        for x in layers
    ]
    returned = connection.execute(
        cl.insert().returning(cl.c.id, sort_by_parameter_order=True), rows
    ).scalars()
    for layer, new_id in zip(layers, returned, strict=True):
        layer.id = new_id


def _update_layers(connection: Connection, rows: list[tuple[int, Decimal, int | None]]) -> None:
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            "UPDATE cost_layers SET remaining = d.r, value = d.v "
            "FROM unnest(%(r)s::bigint[], %(v)s::bigint[], %(i)s::bigint[]) AS d(r, v, i) "
            "WHERE cost_layers.id = d.i",
            {
                "r": int_array(r[0] for r in rows),
                "v": int_array(micros(r[1]) for r in rows),
                "i": int_array(r[2] for r in rows),
            },
        )
        return
    driver_executemany(
        connection,
        "UPDATE cost_layers SET remaining = ?, value = ? WHERE id = ?",
        [(r, micros(v), i) for r, v, i in rows],
    )


def lots_text(taken: Iterable[Taken]) -> str | None:
    """The lots units came from, as a movement shows them (comma-separated, in order)."""
    lots: list[str] = []
    for t in taken:
        if t.layer.lot and t.layer.lot not in lots:
            lots.append(t.layer.lot)
    text = ",".join(lots)
    return text[:500] if text else None


def total(taken: Iterable[Taken]) -> Decimal:
    return sum((t.value for t in taken), ZERO)


def row_value(value: Any) -> Decimal:
    return ZERO if value is None else Decimal(value)


__all__ = [
    "ARRIVALS",
    "DEPARTURES",
    "CostBook",
    "Flow",
    "Layer",
    "Settlement",
    "Taken",
    "lots_text",
    "total",
]


def lot_name(value: str, where: str = "lot") -> str:
    """A lot as given on the command line or in a CSV: non-empty text of at most 255
    characters without control characters; else an :class:`InputError` naming ``where``."""
    text = value.strip()
    if not text:
        raise InputError(f"{where}: a lot cannot be empty")
    if len(text) > 255:
        raise InputError(f"{where}: lot {text[:40]!r}... is longer than 255 characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise InputError(f"{where}: lot {text!r} contains a control character")
    return text
