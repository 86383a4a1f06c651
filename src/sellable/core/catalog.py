"""The catalog as the core sees it: SKUs, their kinds and their bills of materials.

SKUs are addressed by position (0..n-1) internally so that the engine's hot loops
work on lists, not dictionaries; the public API takes and returns SKU codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sellable.errors import CatalogError


class SkuKind(StrEnum):
    """What a SKU is. Everything but ``simple`` is a composite with a BOM."""

    SIMPLE = "simple"
    KIT = "kit"
    ASSEMBLY = "assembly"
    PACKAGE = "package"
    BUNDLE = "bundle"

    @property
    def is_composite(self) -> bool:
        return self is not SkuKind.SIMPLE


@dataclass(frozen=True, slots=True)
class ComponentOption:
    """One SKU that can fill a slot, and how many of it one unit of the parent needs."""

    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Slot:
    """A place in a BOM. Several options make the slot interchangeable (Omnium's packages)."""

    name: str
    options: tuple[ComponentOption, ...]


@dataclass(frozen=True, slots=True)
class BomLine:
    """One row of a bill of materials: ``quantity`` of ``component`` per unit of ``parent``.

    Rows of one parent with the same ``slot`` are options of that slot; ``slot=None``
    makes the row a slot of its own.
    """

    parent: str
    component: str
    quantity: int
    slot: str | None = None


# Internal form of a BOM: per slot, a tuple of (component position, quantity).
PackedSlot = tuple[tuple[int, int], ...]


class Catalog:
    """An immutable, validated catalog: SKU codes, kinds, BOMs in topological order.

    Usage: ``Catalog.build([("MUG", SkuKind.SIMPLE), ("SET", SkuKind.KIT)],
    [BomLine("SET", "MUG", 1)])``.
    """

    __slots__ = (
        "_slot_names",
        "codes",
        "composite_order",
        "derived",
        "index",
        "kinds",
        "parents",
        "rank",
        "slots",
    )

    def __init__(
        self,
        codes: list[str],
        kinds: list[SkuKind],
        slots: list[tuple[PackedSlot, ...] | None],
        slot_names: list[tuple[str, ...] | None],
    ) -> None:
        self.codes = codes
        self.kinds = kinds
        self.index: dict[str, int] = {code: pos for pos, code in enumerate(codes)}
        if len(self.index) != len(codes):
            seen: set[str] = set()
            dup = next(c for c in codes if c in seen or seen.add(c))  # type: ignore[func-returns-value]
            raise CatalogError(f"SKU {dup!r} appears twice in the catalog")
        self.slots = slots
        self._slot_names = slot_names
        found: dict[int, dict[int, None]] = {}
        for parent, packed in enumerate(slots):
            if packed:
                for slot in packed:
                    for child, _qty in slot:
                        found.setdefault(child, {})[parent] = None
        none: tuple[int, ...] = ()
        self.parents: list[tuple[int, ...]] = [none] * len(codes)
        for child, of in found.items():
            self.parents[child] = tuple(of)
        self.composite_order, self.rank = _topological_order(codes, slots)
        #: What other parts of the core derive from this (immutable) catalog, built once by
        #: whoever needs it and kept here for the catalog's life (the shared split's BOM
        #: graph: a new split over new listings need not rebuild it).
        self.derived: dict[str, Any] = {}

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def build(cls, skus: Iterable[tuple[str, SkuKind | str]], bom: Iterable[BomLine]) -> Catalog:
        """Validate and pack a catalog given by codes. Raises :class:`CatalogError`."""
        codes: list[str] = []
        kinds: list[SkuKind] = []
        for code, kind in skus:
            codes.append(code)
            try:
                kinds.append(SkuKind(kind))
            except ValueError:
                known = ", ".join(k.value for k in SkuKind)
                message = f"SKU {code!r}: unknown kind {kind!r} (known: {known})"
                raise CatalogError(message) from None
        positions = {code: pos for pos, code in enumerate(codes)}
        rows: list[tuple[int, str, int, int]] = []
        seen: set[tuple[str, str, str]] = set()
        for line in bom:
            for role, code in (("parent", line.parent), ("component", line.component)):
                if code not in positions:
                    raise CatalogError(f"BOM {role} SKU {code!r} is not in the catalog")
            if line.quantity <= 0:
                raise CatalogError(
                    f"BOM of {line.parent!r}: quantity of {line.component!r} must be a "
                    f"positive integer, got {line.quantity}"
                )
            slot = line.slot if line.slot is not None else f"#{line.component}"
            if (line.parent, slot, line.component) in seen:
                where = f"slot {line.slot!r}" if line.slot is not None else "its own slot"
                raise CatalogError(
                    f"BOM of {line.parent!r}: component {line.component!r} is listed twice "
                    f"in {where}; give it once with the total quantity"
                )
            seen.add((line.parent, slot, line.component))
            rows.append((positions[line.parent], slot, positions[line.component], line.quantity))
        return cls.from_rows(codes, kinds, rows)

    @classmethod
    def from_rows(
        cls,
        codes: list[str],
        kinds: Sequence[SkuKind | str],
        bom_rows: Iterable[tuple[int, str, int, int]],
    ) -> Catalog:
        """Fast constructor from positions: ``(parent, slot name, component, quantity)``.

        Rows keep their order; slots keep the order of their first row.
        """
        by_value = {kind.value: kind for kind in SkuKind}
        kind_list = [k if isinstance(k, SkuKind) else by_value.get(k) or SkuKind(k) for k in kinds]
        simple = SkuKind.SIMPLE
        grouped: dict[int, dict[str, list[tuple[int, int]]]] = {}
        for parent, slot, child, qty in bom_rows:
            if kind_list[parent] is simple:
                raise CatalogError(
                    f"{codes[parent]!r} is a simple SKU and cannot have components "
                    f"(component {codes[child]!r}); make it a kit, assembly, package or bundle"
                )
            grouped.setdefault(parent, {}).setdefault(slot, []).append((child, qty))
        slots: list[tuple[PackedSlot, ...] | None] = [None] * len(codes)
        names: list[tuple[str, ...] | None] = [None] * len(codes)
        for pos, kind in enumerate(kind_list):
            if kind is not simple:
                slots[pos] = ()
                names[pos] = ()
        for parent, by_slot in grouped.items():
            slots[parent] = tuple(tuple(options) for options in by_slot.values())
            names[parent] = tuple(by_slot)
        return cls(codes, kind_list, slots, names)

    # -- reading ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.codes)

    def __contains__(self, sku: object) -> bool:
        return sku in self.index

    def kind_of(self, sku: str) -> SkuKind:
        return self.kinds[self.position(sku)]

    def position(self, sku: str) -> int:
        try:
            return self.index[sku]
        except KeyError:
            raise CatalogError(f"unknown SKU {sku!r}") from None

    def bom(self, sku: str) -> tuple[Slot, ...]:
        """The BOM of ``sku`` as named slots (empty for a simple SKU)."""
        pos = self.position(sku)
        packed = self.slots[pos]
        names = self._slot_names[pos]
        if packed is None or names is None:
            return ()
        return tuple(
            Slot(
                name=_public_slot_name(name),
                options=tuple(ComponentOption(self.codes[c], q) for c, q in slot),
            )
            for name, slot in zip(names, packed, strict=True)
        )

    def slot_name(self, pos: int, slot_index: int) -> str:
        """The public name of a slot (its component's SKU for an unnamed slot)."""
        names = self._slot_names[pos]
        assert names is not None
        return _public_slot_name(names[slot_index])

    def slot_label(self, pos: int, slot_index: int) -> str:
        """How a bottleneck slot is named: its SKU when it has one option, else its name."""
        packed = self.slots[pos]
        names = self._slot_names[pos]
        assert packed is not None and names is not None
        slot = packed[slot_index]
        if len(slot) == 1:
            return self.codes[slot[0][0]]
        return _public_slot_name(names[slot_index])

    def dependents(self, sku: str) -> set[str]:
        """Every composite that contains ``sku``, directly or through nesting."""
        todo = [self.position(sku)]
        seen: set[int] = set()
        while todo:
            for parent in self.parents[todo.pop()]:
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return {self.codes[p] for p in seen}


def _public_slot_name(name: str) -> str:
    return name[1:] if name.startswith("#") else name


def _topological_order(
    codes: list[str], slots: list[tuple[PackedSlot, ...] | None]
) -> tuple[list[int], list[int]]:
    """Composites ordered so that every component comes before its parents.

    Also returns each SKU's rank (0 for simple SKUs, 1 + the highest rank of its
    components for composites). Raises :class:`CatalogError` naming a cycle.
    """
    children: dict[int, set[int]] = {}
    for pos, packed in enumerate(slots):
        if packed is not None:
            children[pos] = {child for slot in packed for child, _ in slot}
    rank = [0] * len(codes)
    order: list[int] = []
    # Iterative depth-first post-order; a node seen on the current path closes a cycle.
    state = dict.fromkeys(children, 0)  # 0 new, 1 on path, 2 done
    for root in children:
        if state[root]:
            continue
        path: list[int] = [root]
        iters = [iter(children[root])]
        state[root] = 1
        while path:
            node = path[-1]
            for child in iters[-1]:
                child_state = state.get(child)
                if child_state is None:  # simple SKU
                    continue
                if child_state == 1:
                    cycle = [*path[path.index(child) :], child]
                    raise CatalogError("BOM cycle: " + " -> ".join(codes[p] for p in cycle))
                if child_state == 0:
                    state[child] = 1
                    path.append(child)
                    iters.append(iter(children[child]))
                    break
            else:
                path.pop()
                iters.pop()
                state[node] = 2
                rank[node] = 1 + max((rank[c] for c in children[node]), default=0)
                order.append(node)
    return order, rank
