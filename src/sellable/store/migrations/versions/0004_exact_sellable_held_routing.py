"""exact sellable: per-SKU component inventory, held claims, routing, chosen options

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 02:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("skus") as batch:
        # NULL: follow the warehouse's use_component_inventory.
        batch.add_column(sa.Column("use_component_inventory", sa.Boolean(), nullable=True))
    with op.batch_alter_table("stock") as batch:
        # Units claimed by held lines: not offered to anyone else.
        batch.add_column(
            sa.Column("held", sa.BigInteger(), nullable=False, server_default=sa.text("0"))
        )
    with op.batch_alter_table("movements") as batch:
        batch.add_column(
            sa.Column("held_change", sa.BigInteger(), nullable=False, server_default=sa.text("0"))
        )
    with op.batch_alter_table("orders") as batch:
        # The warehouses a line is routed among, in order (comma-separated codes); NULL:
        # only the order's own warehouse (the channel chose it).
        batch.add_column(sa.Column("route", sa.String(length=1000), nullable=True))
    with op.batch_alter_table("order_lines") as batch:
        # The options the customer chose, "slot=SKU;slot=SKU".
        batch.add_column(sa.Column("options", sa.String(length=1000), nullable=True))
        # Line units per warehouse where it is allocated, "main=3;tpl=2".
        batch.add_column(sa.Column("allocated_in", sa.String(length=1000), nullable=True))
    op.create_table(
        "line_holds",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("line_id", Id, nullable=False),
        sa.Column("sku_id", Id, nullable=False),
        sa.Column("warehouse_id", Id, nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["line_id"],
            ["order_lines.id"],
            name=op.f("fk_line_holds_line_id_order_lines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["sku_id"], ["skus.id"], name=op.f("fk_line_holds_sku_id_skus")),
        sa.ForeignKeyConstraint(
            ["warehouse_id"], ["warehouses.id"], name=op.f("fk_line_holds_warehouse_id_warehouses")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_line_holds")),
    )
    op.create_index("ix_line_holds_line", "line_holds", ["line_id"])


def downgrade() -> None:
    op.drop_index("ix_line_holds_line", table_name="line_holds")
    op.drop_table("line_holds")
    with op.batch_alter_table("order_lines") as batch:
        batch.drop_column("allocated_in")
        batch.drop_column("options")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("route")
    with op.batch_alter_table("movements") as batch:
        batch.drop_column("held_change")
    with op.batch_alter_table("stock") as batch:
        batch.drop_column("held")
    with op.batch_alter_table("skus") as batch:
        batch.drop_column("use_component_inventory")
