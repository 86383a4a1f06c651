"""How one SKU's units are divided among its claims (the listings drawing on it and the
composites made from it): :func:`split_units`, which the incremental path calls one SKU at a
time, and the same split of many groups at once in arrays for the full allocation
(:func:`_split_groups`), in the same float operations in the same order, so the same units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

_I64 = np.int64

#: Units from which :func:`split_units` divides exactly rather than in floats.
_EXACT_ABOVE = 1 << 40
#: Claims from which :func:`split_units` divides in arrays (a component that hundreds of
#: composites draw on: sorting them in Python would cost milliseconds an order).
_ARRAYS_FROM = 64


def split_units(total: int, weights: Sequence[float], floors: Sequence[int]) -> list[int]:
    """Divide ``total`` units: each claim's floor first, in descending weight order (ties in
    claim order) while units last, then the rest in proportion to the weights (equally when
    all weights are 0), rounding by largest remainder (ties: higher weight, then claim
    order). The result always sums to ``total`` (when there is at least one claim)."""
    if len(weights) >= _ARRAYS_FROM:
        large = _split_large(total, weights, floors)
        if large is not None:
            return large
    return _split_in_python(total, weights, floors)


def _split_in_python(total: int, weights: Sequence[float], floors: Sequence[int]) -> list[int]:
    """:func:`split_units`, a claim at a time."""
    count = len(weights)
    if count == 1:
        return [total]
    grants = [0] * count
    remaining = total
    if any(floors):
        for i in sorted(range(count), key=lambda k: -weights[k]):
            take = floors[i] if floors[i] < remaining else remaining
            if take > 0:
                grants[i] = take
                remaining -= take
            if remaining <= 0:
                return grants
    if remaining <= 0:
        return grants
    # left to right, as the arrays add (sum() of floats compensates from Python 3.12 on)
    weight_sum = 0.0
    for weight in weights:
        weight_sum += weight
    if weight_sum <= 0:
        weights = [1.0] * count
        weight_sum = float(count)
    ideal: Sequence[float | Fraction] = [remaining * w / weight_sum for w in weights]
    wholes = [int(x) for x in ideal]
    if sum(wholes) > remaining or remaining >= _EXACT_ABOVE:
        # Floats lost the units (huge quantities, or a rounding at an integer): exactly.
        exact = [Fraction(w) for w in weights]
        total_weight = sum(exact, Fraction(0))
        ideal = [remaining * w / total_weight for w in exact]
        wholes = [math.floor(x) for x in ideal]
    for i in range(count):
        grants[i] += wholes[i]
    rest = remaining - sum(wholes)
    if rest > 0:
        order = sorted(range(count), key=lambda k: (-(ideal[k] - wholes[k]), -weights[k], k))
        for i in order[:rest]:
            grants[i] += 1
    return grants


def _split_large(total: int, weights: Sequence[float], floors: Sequence[int]) -> list[int] | None:
    """:func:`split_units` in arrays, in the same float operations in the same order (so
    the same units); ``None`` where it needs the exact path (huge quantities, or floats
    that lost a unit) or a floor is negative, which :func:`split_units` then does itself."""
    count = len(weights)
    if not 0 <= total < _EXACT_ABOVE:
        return None
    try:
        f = np.fromiter(floors, _I64, count)
    except OverflowError:
        return None
    if count and (f.min() < 0 or f.max() >= _EXACT_ABOVE):
        return None
    w = np.fromiter(weights, np.float64, count)
    grants = np.zeros(count, dtype=_I64)
    remaining = total
    if f.any():
        # each floor in descending weight order (ties: claim order) while units last
        order = np.argsort(-w, kind="stable")
        ordered = f[order]
        left = np.maximum(total - (np.cumsum(ordered) - ordered), 0)
        grants[order] = np.minimum(ordered, left)
        remaining = total - int(grants.sum())
        if remaining <= 0:
            return grants.tolist()
    weight_sum = float(np.cumsum(w)[-1])  # left to right, as split_units adds
    if weight_sum <= 0:
        w = np.ones(count, dtype=np.float64)
        weight_sum = float(count)
    ideal = (float(remaining) * w) / weight_sum
    wholes = ideal.astype(_I64)
    rest = remaining - int(wholes.sum())
    if rest < 0:
        return None
    if rest > 0:
        # one unit each by largest remainder (ties: higher weight, then claim order)
        order = np.lexsort((-w, -(ideal - wholes)))
        wholes[order[:rest]] += 1
    grants += wholes
    return grants.tolist()


def _split_rows(
    total: npt.NDArray[Any], w: npt.NDArray[Any], f: npt.NDArray[Any]
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """:func:`split_units` for ``G`` rows of ``k`` claims at once, in the same float
    operations in the same order (so the same units). Returns the grants and which rows it
    could do; a row whose floors are negative, or that needs the exact path, is left to
    :func:`split_units`."""
    rows, count = w.shape
    if count == 1:
        return total.reshape(rows, 1).copy(), np.ones(rows, dtype=bool)
    if not f.any():
        ok: npt.NDArray[Any] = np.ones(rows, dtype=bool)
        grants = np.zeros((rows, count), dtype=total.dtype)
        remaining = np.maximum(total, 0)
    else:
        if f.min() >= 0:  # (floors are never negative but in tests: no per-row check)
            ok = np.ones(rows, dtype=bool)
        else:
            ok = np.asarray((f >= 0).all(axis=1), dtype=bool)
        floors = f.sum(axis=1)
        # Where the floors all fit (the usual case) each claim takes its whole floor,
        # whatever their order: only the rows short of units need the weight order.
        grants = f.astype(total.dtype)
        short = np.flatnonzero(total < floors)
        if len(short):
            grants[short] = _floors_in_order(total[short], w[short], f[short])
        remaining = np.maximum(total - floors, 0)
    active = remaining > 0
    if not active.any():
        return grants, ok
    weight_sum = w[:, 0].copy()
    for j in range(1, count):  # left to right, as sum() adds
        weight_sum += w[:, j]
    zero = weight_sum <= 0
    if zero.any():
        w = np.where(zero[:, None], 1.0, w)
        weight_sum = np.where(zero, float(count), weight_sum)
    exact = (remaining < _EXACT_ABOVE).astype(bool)
    safe = np.where(exact, remaining, 0).astype(np.float64)
    ideal = (safe[:, None] * w) / weight_sum[:, None]
    wholes = ideal.astype(_I64)
    rest = remaining - wholes.sum(axis=1)
    ok &= ~active | ((rest >= 0).astype(bool) & exact)
    frac = ideal - wholes
    # the units left over go one each by largest remainder (ties: higher weight, then claim
    # order)
    if count == 2 and bool((rest <= 1).all()):
        one = rest == 1
        zero_first = (frac[:, 0] > frac[:, 1]) | ((frac[:, 0] == frac[:, 1]) & (w[:, 0] >= w[:, 1]))
        bonus = np.stack([one & zero_first, one & ~zero_first], axis=1)
    else:
        # ranked only where units are left over (most rows divide exactly or not at all)
        bonus = np.zeros((rows, count), dtype=bool)
        some = np.flatnonzero(active & (rest > 0))
        if len(some):
            bonus[some] = _ranks(frac[some], w[some]) < rest[some][:, None]
    wholes += bonus
    if not active.all():
        wholes[~active] = 0
    grants += wholes
    return grants, ok


def _floors_in_order(
    total: npt.NDArray[Any], w: npt.NDArray[Any], f: npt.NDArray[Any]
) -> npt.NDArray[Any]:
    """The floors each row's claims take in descending weight order (ties: claim order)
    while units last: each takes min(floor, what is left)."""
    rows, count = w.shape
    grants = np.zeros((rows, count), dtype=total.dtype)
    if count == 2:
        first = w[:, 0] >= w[:, 1]
        f_first = np.where(first, f[:, 0], f[:, 1])
        f_second = np.where(first, f[:, 1], f[:, 0])
        take_first = np.minimum(f_first, np.maximum(total, 0))
        take_second = np.minimum(f_second, np.maximum(total - f_first, 0))
        grants[:, 0] = np.where(first, take_first, take_second)
        grants[:, 1] = np.where(first, take_second, take_first)
        return grants
    order = np.argsort(-w, axis=1, kind="stable")
    fs = np.take_along_axis(f, order, axis=1)
    left = np.maximum(total[:, None] - (np.cumsum(fs, axis=1) - fs), 0)
    np.put_along_axis(grants, order, np.minimum(fs, left), axis=1)
    return grants


def _ranks(frac: npt.NDArray[Any], w: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Each claim's place in its row's order of larger remainder, then higher weight, then
    claim order (0 first): how many claims of the row come before it. Compared a column
    against all at once (rows hold a few claims: cheaper than sorting each row)."""
    rows, count = frac.shape
    place = np.zeros((rows, count), dtype=_I64)
    for j in range(count):
        fj, wj = frac[:, j : j + 1], w[:, j : j + 1]
        tied = fj == frac
        before = (fj > frac) | (tied & (wj > w))
        # tied on both: the earlier claim comes first
        before[:, j + 1 :] |= tied[:, j + 1 :] & (wj == w[:, j + 1 :])
        place += before
    return place


def _split_groups(
    totals: npt.NDArray[Any],
    parts: Sequence[tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]],
) -> list[npt.NDArray[Any]]:
    """:func:`split_units` of every group at once. Group ``g``'s claims are, part by part,
    the next ``counts[g]`` claims of each part's flat ``(weights, floors, counts)`` (a SKU's
    listings, then the composites drawing on it): it divides ``totals[g]`` among them.
    Returns each part's flat grants."""
    outs = [np.zeros(len(weights), dtype=totals.dtype) for weights, _, _ in parts]
    if len(totals) == 0:
        return outs
    offsets = [np.cumsum(counts) - counts for _, _, counts in parts]
    # the groups by their claims in each part, each such shape in one pass (no claim is
    # moved to build the rows: each part's cells are read where they lie)
    shape = np.zeros(len(totals), dtype=_I64)
    widths: list[int] = []
    for _, _, counts in parts:
        width = int(counts.max()) + 1
        shape = shape * width + counts
        widths.append(width)
    if len(parts) == 1 and bool((shape == 1).all()):  # one claim a group: it takes the total
        outs[0][:] = totals
        return outs
    for code in np.flatnonzero(np.bincount(shape)).tolist():
        sizes = _sizes(code, widths)
        if sum(sizes) == 0:
            continue
        rows = np.flatnonzero(shape == code)
        if sizes.count(1) == 1 and sum(sizes) == 1:  # one claim: it takes the total
            k = sizes.index(1)
            outs[k][offsets[k][rows]] = totals[rows]
            continue
        cells = [offsets[k][rows][:, None] + np.arange(size) for k, size in enumerate(sizes)]
        if len(parts) == 1:
            w, f = parts[0][0][cells[0]], parts[0][1][cells[0]]
        else:
            w = np.concatenate([part[0][c] for part, c in zip(parts, cells, strict=True)], axis=1)
            f = np.concatenate([part[1][c] for part, c in zip(parts, cells, strict=True)], axis=1)
        grants, ok = _split_rows(totals[rows], w, f)
        bad = np.flatnonzero(~ok).tolist()
        for r in bad:
            grants[r] = split_units(int(totals[rows[r]]), w[r].tolist(), f[r].tolist())
        at = 0
        for out, c, size in zip(outs, cells, sizes, strict=True):
            out[c] = grants[:, at : at + size]
            at += size
    return outs


def _sizes(code: int, widths: Sequence[int]) -> list[int]:
    """The claims in each part of the groups of shape ``code`` (see :func:`_split_groups`)."""
    sizes: list[int] = []
    for width in reversed(widths):
        code, size = divmod(code, width)
        sizes.append(size)
    sizes.reverse()
    return sizes


__all__ = ["split_units"]
