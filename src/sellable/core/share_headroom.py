"""The latency headroom's arithmetic (``headroom = "latency"``): expected sales in whole
thousandths of a unit, push latencies in whole seconds, and the Poisson bound of what the
other claims may take before a new offer shows; one value at a time for the incremental
path and whole arrays for the full allocation, in the same operations.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

#: Thousandths of a unit: demands are held as whole numbers of them, so that sums of
#: demands are exact and the full and incremental paths agree to the unit.
DEMAND_SCALE = 1000


def demand_units(demand: float) -> int:
    """A listing's expected units, in thousandths (rounded; never negative)."""
    if not math.isfinite(demand) or demand <= 0:
        return 0
    return round(demand * DEMAND_SCALE)


def latency_seconds(latency: float) -> int:
    """A push latency in whole seconds (rounded up; never negative)."""
    if not math.isfinite(latency) or latency <= 0:
        return 0
    return math.ceil(latency)


def others_expected(total: Any, own: Any, total_rate: Any, latency: Any) -> Any:
    """The units (thousandths) a claim's offer is exposed to besides its own sale: the
    other claims' demand until their sales are pulled (``total`` less the claim's ``own``),
    plus what every claim, itself included, sells while its new offer takes ``latency``
    seconds to show (a quantity pushed at ``t`` overwrites what the channel sold since;
    ``total_rate`` per hour). Whole numbers, or arrays of them, alike."""
    return total - own + latency * total_rate // 3600


def demand_bound(millis: int, sigmas: float) -> int:
    """The units that claims expecting ``millis`` thousandths of a unit in total may take
    within their horizon: ``ceil(m + sigmas * sqrt(m))`` for ``m`` units (a Poisson upper
    bound), 0 when nothing is expected."""
    if millis <= 0:
        return 0
    m = millis / float(DEMAND_SCALE)
    return math.ceil(m + sigmas * math.sqrt(m))


def headroom_room(supply: int, others: int, everyone: int, sigmas: float) -> int:
    """What a claim may be offered out of ``supply``: all of it when the bound of what
    every claim (``everyone``, itself included) is expected to take within its horizon fits
    in it; else what the bound of the ``others`` leaves (may be negative: then the strict
    share stands)."""
    if supply >= demand_bound(everyone, sigmas):
        return supply
    return supply - demand_bound(others, sigmas)


def _rooms(
    supply: npt.NDArray[Any], others: npt.NDArray[Any], everyone: npt.NDArray[Any], sigmas: float
) -> npt.NDArray[Any]:
    """:func:`headroom_room` of each entry."""
    return np.where(supply >= _bounds(everyone, sigmas), supply, supply - _bounds(others, sigmas))


def _bounds(millis: npt.NDArray[Any], sigmas: float) -> npt.NDArray[Any]:
    """:func:`demand_bound` of each entry, in the same float operations."""
    m = np.asarray(millis, dtype=np.float64) / float(DEMAND_SCALE)
    positive = m > 0
    root = np.sqrt(np.where(positive, m, 0.0))
    out = np.where(positive, np.ceil(m + sigmas * root), 0.0)
    if len(out) and float(out.max()) >= 2.0**62:
        return np.array([demand_bound(int(x), sigmas) for x in millis], dtype=object)
    return out.astype(np.int64)


__all__ = [
    "DEMAND_SCALE",
    "demand_bound",
    "demand_units",
    "headroom_room",
    "latency_seconds",
    "others_expected",
]
