"""Small inline SVG charts drawn on the server (no script, no chart library)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

#: Colours of the series, in order (presentation attributes: the CSP forbids inline styles).
COLOURS = ("#1f5fbf", "#c2410c", "#15803d", "#7e22ce")
#: Dash patterns of the series, in order: where series coincide, each stays visible.
DASHES = ("", "8 4", "3 3", "1 3")
WIDTHS = (4, 3, 2, 2)


def line_chart(
    series: Sequence[tuple[str, Sequence[int]]],
    *,
    title: str,
    width: int = 600,
    height: int = 160,
    labels: tuple[str, str] = ("", ""),
) -> Markup:
    """Step lines of each series' values over the same points, scaled to fit; a legend
    names them and ``title`` labels the chart for screen readers."""
    pad = 24
    points = max((len(values) for _name, values in series), default=0)
    top = max((max(values) for _name, values in series if values), default=0)
    bottom = min((min(values) for _name, values in series if values), default=0)
    bottom = min(bottom, 0)
    span = max(top - bottom, 1)
    inner_w, inner_h = width - 2 * pad, height - 2 * pad

    def x(i: int) -> float:
        return pad + (inner_w * i / max(points - 1, 1))

    def y(v: int) -> float:
        return pad + inner_h - inner_h * (v - bottom) / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{pad}" y1="{y(0):.1f}" x2="{width - pad}" y2="{y(0):.1f}" '
        'stroke="#999" stroke-width="1"/>',
        f'<text x="2" y="{pad - 8}" font-size="10" fill="#555">{top}</text>',
        f'<text x="2" y="{y(0) - 2:.1f}" font-size="10" fill="#555">0</text>',
    ]
    if labels[0]:
        parts.append(
            f'<text x="{pad}" y="{height - 4}" font-size="10" fill="#555">'
            f"{escape(labels[0])}</text>"
        )
    if labels[1]:
        parts.append(
            f'<text x="{width - pad}" y="{height - 4}" font-size="10" fill="#555" '
            f'text-anchor="end">{escape(labels[1])}</text>'
        )
    for index, (name, values) in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        if values:
            coords: list[str] = []
            for i, value in enumerate(values):
                if i:
                    coords.append(f"{x(i):.1f},{y(values[i - 1]):.1f}")
                coords.append(f"{x(i):.1f},{y(value):.1f}")
            if len(values) == 1:
                coords.append(
                    f"{x(points - 1) if points > 1 else width - pad:.1f},{y(values[0]):.1f}"
                )
            dash = DASHES[index % len(DASHES)]
            parts.append(
                f'<polyline fill="none" stroke="{colour}" '
                f'stroke-width="{WIDTHS[index % len(WIDTHS)]}"'
                + (f' stroke-dasharray="{dash}"' if dash else "")
                + f' points="{" ".join(coords)}"><title>{escape(name)}</title></polyline>'
            )
        parts.append(
            f'<text x="{pad + 8 + index * 110}" y="14" font-size="11" fill="{colour}">'
            f"{escape(name)}: {values[-1] if values else 0}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def sparkline(values: Sequence[int], *, title: str, width: int = 80, height: int = 18) -> Markup:
    """A tiny line of ``values`` for a table cell."""
    top = max(values, default=0)
    bottom = min(min(values, default=0), 0)
    span = max(top - bottom, 1)
    n = max(len(values) - 1, 1)
    coords = " ".join(
        f"{1 + (width - 2) * i / n:.1f},{1 + (height - 2) * (1 - (v - bottom) / span):.1f}"
        for i, v in enumerate(values)
    )
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
        f'<polyline fill="none" stroke="{COLOURS[0]}" stroke-width="1.5" points="{coords}"/>'
        "</svg>"
    )
