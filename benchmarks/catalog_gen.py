"""A deterministic synthetic catalog for the benchmarks: SKUs, BOMs, stock, a stock-count CSV.

Shape (for ``n`` SKUs, seed ``s``; the same ``(n, s)`` always gives the same data):

* 90% simple SKUs, 10% composites (kits, assemblies, packages, bundles);
* every composite has 2-8 distinct components; packages and bundles with at least three
  components put two or three of them into one slot of interchangeable options;
* 10% of the composites are nested two levels: they contain one (30%: two) other
  composites, which themselves contain only simple SKUs;
* quantities per unit are mostly 1, sometimes 2, 3, 4, 6 or 12;
* three warehouses: ``main`` and ``east`` (own, use component inventory) and ``fba-us``
  (FBA, does not);
* stock for every simple SKU in every warehouse (some zero, some locked, some allocated,
  a few oversold), and prepackaged stock for 20% of the composites in each own warehouse
  and 40% of them in the FBA warehouse.

Positions ``0..n-1`` are SKU positions in the core's catalog; in the databases the SKU id
is ``position + 1`` (the loader orders SKUs by id, so positions agree).

Rows are produced by generators rather than stored, so that a process measuring its
memory holds only what the product holds.
"""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from sellable.config import DatabaseSettings, Settings, WarehouseSettings
from sellable.core import Catalog, StockEngine, WarehouseRules

# Bump when the generated data changes, so cached databases are rebuilt.
GEN_VERSION = 1


@dataclass(frozen=True)
class WarehouseSpec:
    code: str
    kind: str
    use_component_inventory: bool
    composite_stock_share: float  # share of composites with prepackaged stock here


WAREHOUSES: tuple[WarehouseSpec, ...] = (
    WarehouseSpec("main", "own", True, 0.20),
    WarehouseSpec("east", "own", True, 0.20),
    WarehouseSpec("fba-us", "fba", False, 0.40),
)

# Composite kinds by weight, and the SKU code prefix of every kind.
_COMPOSITE_KINDS = ["kit"] * 50 + ["assembly"] * 25 + ["package"] * 15 + ["bundle"] * 10
_PREFIX = {"simple": "ITEM", "kit": "KIT", "assembly": "ASM", "package": "PKG", "bundle": "BDL"}
_QUANTITIES = [1] * 60 + [2] * 20 + [3] * 8 + [4] * 5 + [6] * 4 + [12] * 3
OPTION_SLOT = "choice"


class SyntheticCatalog:
    """The layout of a generated catalog: codes and kinds, and generators for the rest."""

    def __init__(self, n_skus: int, seed: int) -> None:
        if n_skus < 100:
            raise ValueError("the generated catalog needs at least 100 SKUs")
        self.n = n_skus
        self.seed = seed
        n_composites = n_skus // 10
        self.n_nested = n_composites // 10
        rng = self._rng("layout")
        chosen = rng.sample(range(n_skus), n_composites)
        # level: 0 simple, 1 composite of simple SKUs, 2 composite containing a composite
        level = bytearray(n_skus)
        for pos in chosen[: self.n_nested]:
            level[pos] = 2
        for pos in chosen[self.n_nested :]:
            level[pos] = 1
        self.level = level
        self.composites = sorted(chosen)
        self.level1 = sorted(chosen[self.n_nested :])
        kind_of = {pos: rng.choice(_COMPOSITE_KINDS) for pos in self.composites}
        self.kinds: list[str] = [kind_of.get(pos, "simple") for pos in range(n_skus)]
        self.codes: list[str] = [f"{_PREFIX[k]}-{pos:07d}" for pos, k in enumerate(self.kinds)]
        self.warehouses = WAREHOUSES

    def _rng(self, stream: str) -> random.Random:
        return random.Random(f"sellable-bench:{GEN_VERSION}:{self.n}:{self.seed}:{stream}")

    @property
    def n_simple(self) -> int:
        return self.n - len(self.composites)

    # -- catalog ---------------------------------------------------------------------------

    def iter_bom(self) -> Iterator[tuple[int, str | None, int, int]]:
        """``(parent position, slot or None, component position, quantity)`` in parent order.

        ``slot=None`` is a slot of its own (as a NULL ``bom_lines.slot``)."""
        rng = self._rng("bom")
        level, n, level1 = self.level, self.n, self.level1
        randrange, randint, choice = rng.randrange, rng.randint, rng.choice
        for parent in self.composites:
            count = randint(2, 8)
            children: list[int] = []
            if level[parent] == 2:
                children.append(choice(level1))
                if rng.random() < 0.3:
                    other = choice(level1)
                    if other not in children:
                        children.append(other)
            while len(children) < count:
                child = randrange(n)
                if level[child] == 0 and child not in children:
                    children.append(child)
            options = 0
            if count >= 3 and self.kinds[parent] in ("package", "bundle"):
                options = randint(2, 3)
            singles = len(children) - options
            for i, child in enumerate(children):
                yield parent, (OPTION_SLOT if i >= singles else None), child, choice(_QUANTITIES)

    def iter_catalog_bom(self) -> Iterator[tuple[int, str, int, int]]:
        """:meth:`iter_bom` in the form ``Catalog.from_rows`` takes (as the loader makes it)."""
        codes = self.codes
        for parent, slot, child, qty in self.iter_bom():
            yield parent, (slot if slot is not None else f"#{codes[child]}"), child, qty

    def build_catalog(self) -> Catalog:
        return Catalog.from_rows(self.codes, self.kinds, self.iter_catalog_bom())

    # -- stock -----------------------------------------------------------------------------

    def iter_stock(self) -> Iterator[tuple[int, int, int, int, int]]:
        """``(position, warehouse position, on_hand, locked, allocated)``, warehouse-major."""
        rng = self._rng("stock")
        bits = rng.getrandbits
        level = self.level
        for w, spec in enumerate(self.warehouses):
            composite_cut = int(spec.composite_stock_share * 1024)
            for pos in range(self.n):
                x = bits(40)
                if level[pos] == 0:
                    on_hand = 0 if (x >> 26) & 31 == 0 else x & 1023  # 1/32 out of stock
                    locked = (x >> 10) & 15 if (x >> 14) & 15 == 0 else 0  # 1/16 some locked
                    allocated = (x >> 18) & 63 if (x >> 24) & 3 == 0 else 0  # 1/4 allocated
                    yield pos, w, on_hand, locked, allocated
                elif (x >> 30) & 1023 < composite_cut:
                    on_hand = 1 + (x & 63)
                    allocated = (x >> 6) & 7 if (x >> 9) & 3 == 0 else 0
                    yield pos, w, on_hand, 0, allocated

    def warehouse_rules(self) -> list[WarehouseRules]:
        # Own warehouses assemble on demand, so that assemblies are made from components there
        # as kits are (the heaviest case for the core, and the one the targets were set for).
        return [
            WarehouseRules(w.code, w.use_component_inventory, w.use_component_inventory)
            for w in self.warehouses
        ]

    def build_engine(self) -> StockEngine:
        """Catalog and engine with the stock loaded, not yet recomputed."""
        engine = StockEngine(self.build_catalog(), self.warehouse_rules())
        engine.load_stock_rows((p, w, oh, lk, al, 0, 0) for p, w, oh, lk, al in self.iter_stock())
        return engine

    def warehouse_settings(self) -> list[WarehouseSettings]:
        return warehouse_settings()

    def settings(self, url: str) -> Settings:
        """A configuration with this catalog's warehouses, pointing at ``url``."""
        return settings_for(url)

    # -- stock count CSV -------------------------------------------------------------------

    def write_stock_csv(self, path: Path, rows: int) -> None:
        """A stock count of ``rows`` distinct (SKU, warehouse) pairs: every SKU in turn, the
        warehouse rotating, so that all warehouses are counted; 1 row in 8 carries ``locked``."""
        n_wh = len(self.warehouses)
        if rows > self.n * n_wh:
            raise ValueError(f"at most {self.n * n_wh} distinct (SKU, warehouse) rows")
        rng = self._rng("count")
        bits = rng.getrandbits
        codes = self.codes
        wh_codes = [w.code for w in self.warehouses]
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(("sku", "warehouse", "on_hand", "locked"))
            for i in range(rows):
                pos = i % self.n
                warehouse = wh_codes[(i // self.n + pos) % n_wh]
                x = bits(24)
                on_hand = x & 1023
                locked = str(min(on_hand, (x >> 10) & 7)) if (x >> 13) & 7 == 0 else ""
                writer.writerow((codes[pos], warehouse, on_hand, locked))
        tmp.replace(path)


def warehouse_settings() -> list[WarehouseSettings]:
    """The generated catalogs' warehouses, as configuration."""
    return [
        WarehouseSettings(
            code=w.code,
            kind=w.kind,
            use_component_inventory=w.use_component_inventory,
            assembly_on_demand=w.use_component_inventory,
        )
        for w in WAREHOUSES
    ]


def settings_for(url: str) -> Settings:
    """A configuration with the generated catalogs' warehouses, pointing at ``url``."""
    return Settings(database=DatabaseSettings(url=SecretStr(url)), warehouses=warehouse_settings())
