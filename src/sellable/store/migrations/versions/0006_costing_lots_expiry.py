"""costing and traceability: cost layers and their flows, line costs, rates, transfers,
lots and expiry, labour and packaging, line revenue

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Money columns are BIGINTs of millionths of a currency unit (schema.Money): exact on
# SQLite too, and summed exactly by SQL.


def _fk(
    table: str, column: str, target: str, ondelete: str | None = None
) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def upgrade() -> None:
    with op.batch_alter_table("skus") as batch:
        batch.add_column(sa.Column("labour_cost", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("packaging_cost", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("stock") as batch:
        batch.add_column(
            sa.Column("expired", sa.BigInteger(), nullable=False, server_default=sa.text("0"))
        )
    with op.batch_alter_table("movements") as batch:
        batch.add_column(
            sa.Column(
                "expired_change", sa.BigInteger(), nullable=False, server_default=sa.text("0")
            )
        )
        batch.add_column(sa.Column("lot", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("value", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("order_lines") as batch:
        batch.add_column(sa.Column("revenue", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("currency", sa.String(length=3), nullable=True))
    with op.batch_alter_table("assembly_orders") as batch:
        batch.add_column(sa.Column("lot", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("expires_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("components_cost", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("labour_cost", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("packaging_cost", sa.BigInteger(), nullable=True))
    op.create_table(
        "cost_layers",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("sku_id", Id, nullable=False),
        sa.Column("warehouse_id", Id, nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("unit_cost", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("original_unit_cost", sa.BigInteger(), nullable=True),
        sa.Column("rate", sa.Numeric(20, 10), nullable=True),
        sa.Column("lot", sa.String(length=255), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("expired", sa.Boolean(), nullable=False),
        sa.Column("estimated", sa.Boolean(), nullable=False),
        sa.Column("line_id", Id, nullable=True),
        _fk("cost_layers", "sku_id", "skus"),
        _fk("cost_layers", "warehouse_id", "warehouses"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_layers")),
    )
    op.create_index(
        "ix_cost_layers_sku_warehouse", "cost_layers", ["warehouse_id", "sku_id", "remaining"]
    )
    op.create_index("ix_cost_layers_lot", "cost_layers", ["lot"])
    op.create_index("ix_cost_layers_sku_received", "cost_layers", ["sku_id", "received_at"])
    op.create_index("ix_cost_layers_expiry", "cost_layers", ["expired", "expires_on"])
    op.create_table(
        "layer_flows",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("layer_id", Id, nullable=False),
        sa.Column("sku_id", Id, nullable=False),
        sa.Column("warehouse_id", Id, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("line_id", Id, nullable=True),
        sa.Column("assembly_order_id", Id, nullable=True),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        _fk("layer_flows", "layer_id", "cost_layers"),
        _fk("layer_flows", "sku_id", "skus"),
        _fk("layer_flows", "warehouse_id", "warehouses"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_layer_flows")),
    )
    op.create_index("ix_layer_flows_layer", "layer_flows", ["layer_id"])
    op.create_index("ix_layer_flows_line", "layer_flows", ["line_id"])
    op.create_index("ix_layer_flows_assembly_order", "layer_flows", ["assembly_order_id"])
    op.create_table(
        "line_costs",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("line_id", Id, nullable=False),
        sa.Column("sku_id", Id, nullable=False),
        sa.Column("warehouse_id", Id, nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.Column("adjustment", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("estimated", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("uncosted", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("revenue", sa.BigInteger(), nullable=True),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=False),
        _fk("line_costs", "line_id", "order_lines", ondelete="CASCADE"),
        _fk("line_costs", "sku_id", "skus"),
        _fk("line_costs", "warehouse_id", "warehouses"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_line_costs")),
    )
    op.create_index("ix_line_costs_line", "line_costs", ["line_id"])
    op.create_table(
        "exchange_rates",
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("rate", sa.Numeric(20, 10), nullable=False),
        sa.PrimaryKeyConstraint("currency", "valid_from", name=op.f("pk_exchange_rates")),
    )
    op.create_table(
        "transfers",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("sku_id", Id, nullable=False),
        sa.Column("from_warehouse_id", Id, nullable=False),
        sa.Column("to_warehouse_id", Id, nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("lot", sa.String(length=255), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        _fk("transfers", "sku_id", "skus"),
        _fk("transfers", "from_warehouse_id", "warehouses"),
        _fk("transfers", "to_warehouse_id", "warehouses"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
    )
    # Stock already on hand opens one uncosted layer per row (a negative row: a deficit), so
    # that the layers add up to on hand from the first day.
    op.execute(
        "INSERT INTO cost_layers (sku_id, warehouse_id, quantity, remaining, value, "
        "received_at, source, reference, expired, estimated) "
        "SELECT sku_id, warehouse_id, on_hand, on_hand, 0, CURRENT_TIMESTAMP, "
        "CASE WHEN on_hand > 0 THEN 'opening' ELSE 'deficit' END, 'opening balance', "
        "false, on_hand < 0 FROM stock WHERE on_hand <> 0"
    )
    op.execute(
        "INSERT INTO layer_flows (layer_id, sku_id, warehouse_id, kind, quantity, value, "
        "reference, at) SELECT id, sku_id, warehouse_id, 'opening', quantity, 0, reference, "
        "received_at FROM cost_layers"
    )


def downgrade() -> None:
    for table in ("transfers", "exchange_rates", "line_costs", "layer_flows", "cost_layers"):
        op.drop_table(table)
    with op.batch_alter_table("assembly_orders") as batch:
        for column in ("packaging_cost", "labour_cost", "components_cost", "expires_on", "lot"):
            batch.drop_column(column)
    with op.batch_alter_table("order_lines") as batch:
        batch.drop_column("currency")
        batch.drop_column("revenue")
    with op.batch_alter_table("movements") as batch:
        for column in ("value", "lot", "expired_change"):
            batch.drop_column(column)
    with op.batch_alter_table("stock") as batch:
        batch.drop_column("expired")
    with op.batch_alter_table("skus") as batch:
        batch.drop_column("packaging_cost")
        batch.drop_column("labour_cost")
