"""CSV imports of the catalog, the BOMs and stock counts."""

from __future__ import annotations

from sellable.imports.components import import_components
from sellable.imports.products import import_products
from sellable.imports.stock import import_stock
from sellable.imports.summary import ImportSummary

__all__ = ["ImportSummary", "import_components", "import_products", "import_stock"]
