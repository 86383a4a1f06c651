"""The tables. Alembic migrations under ``migrations/`` create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BigInteger ids on PostgreSQL, INTEGER PRIMARY KEY (rowid) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")

warehouses = Table(
    "warehouses",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("kind", String(8), nullable=False),
    Column("use_component_inventory", Boolean, nullable=False),
    Column("assembly_on_demand", Boolean, nullable=False),
)

skus = Table(
    "skus",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sku", String(255), nullable=False, unique=True),
    Column("name", String(500), nullable=False, default=""),
    Column("kind", String(16), nullable=False),
    Column("allow_backorder", Boolean, nullable=False, default=False),
    Column("price", Numeric(14, 4), nullable=True),
    CheckConstraint("kind IN ('simple', 'kit', 'assembly', 'package', 'bundle')", name="kind"),
)

bom_lines = Table(
    "bom_lines",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("parent_id", Id, ForeignKey("skus.id", ondelete="CASCADE"), nullable=False),
    # NULL: the row is a slot of its own; rows sharing a slot name are options of one slot.
    Column("slot", String(255), nullable=True),
    Column("component_id", Id, ForeignKey("skus.id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("price_offset", Numeric(14, 4), nullable=True),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    Index("ix_bom_lines_parent", "parent_id"),
    Index("ix_bom_lines_component", "component_id"),
)

stock = Table(
    "stock",
    metadata,
    Column("sku_id", Id, ForeignKey("skus.id"), primary_key=True),
    Column("warehouse_id", Id, ForeignKey("warehouses.id"), primary_key=True),
    Column("on_hand", BigInteger, nullable=False, default=0),
    Column("locked", BigInteger, nullable=False, default=0),
    Column("allocated", BigInteger, nullable=False, default=0),
)

movements = Table(
    "movements",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sku_id", Id, ForeignKey("skus.id"), nullable=False),
    Column("warehouse_id", Id, ForeignKey("warehouses.id"), nullable=False),
    # Receipt, Adjustment, Allocation, Release, Sale, AssemblyBuild
    Column("type", String(32), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    # The stock row equals the sum of these three columns over its movements.
    Column("on_hand_change", BigInteger, nullable=False, default=0),
    Column("locked_change", BigInteger, nullable=False, default=0),
    Column("allocated_change", BigInteger, nullable=False, default=0),
    Column("reference", String(255), nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_movements_sku_warehouse", "sku_id", "warehouse_id", "id"),
)

__all__ = ["bom_lines", "metadata", "movements", "skus", "stock", "warehouses"]
