"""The stock-calculation core: pure functions and data, no I/O."""

from __future__ import annotations

from sellable.core.catalog import BomLine, Catalog, ComponentOption, SkuKind, Slot
from sellable.core.engine import (
    ComponentStock,
    SkuPolicies,
    SkuRules,
    SkuWarehouse,
    StockEngine,
    StockKey,
    StockLevels,
    StockPosition,
    WarehouseRules,
)
from sellable.core.explain import Explanation, explain, render

__all__ = [
    "BomLine",
    "Catalog",
    "ComponentOption",
    "ComponentStock",
    "Explanation",
    "SkuKind",
    "SkuPolicies",
    "SkuRules",
    "SkuWarehouse",
    "Slot",
    "StockEngine",
    "StockKey",
    "StockLevels",
    "StockPosition",
    "WarehouseRules",
    "explain",
    "render",
]
