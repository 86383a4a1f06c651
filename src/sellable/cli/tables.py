"""Plain-text tables for people reading a terminal."""

from __future__ import annotations

from collections.abc import Sequence

from sellable.core import StockPosition

HEADER = (
    ("SKU", "<"),
    ("WAREHOUSE", "<"),
    ("KIND", "<"),
    ("ON HAND", ">"),
    ("LOCKED", ">"),
    ("ALLOC", ">"),
    ("AVAIL", ">"),
    ("COMP ON HAND", ">"),
    ("COMP AVAIL", ">"),
    ("SELLABLE", ">"),
    ("BOTTLENECK", "<"),
)


def stock_table(positions: Sequence[StockPosition]) -> str:
    """Prepackaged | component | sellable | bottleneck, one line per (SKU, warehouse)."""
    rows = []
    for p in positions:
        c = p.component
        rows.append(
            (
                p.sku,
                p.warehouse,
                p.kind.value,
                str(p.prepackaged.on_hand),
                str(p.prepackaged.locked),
                str(p.prepackaged.allocated),
                str(p.prepackaged.available),
                "-" if c is None else str(c.on_hand),
                "-" if c is None else str(c.available),
                str(p.sellable),
                "-" if c is None or c.bottleneck is None else c.bottleneck,
            )
        )
    return format_table([h for h, _ in HEADER], [a for _, a in HEADER], rows)


def format_table(header: Sequence[str], align: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    lines = [
        "  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, align, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    if not rows:
        lines.append("(no stock)")
    return "\n".join(lines)
