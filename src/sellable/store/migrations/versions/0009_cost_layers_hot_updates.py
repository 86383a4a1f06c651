"""costing writes cheaper per shipped line:

- ``ix_cost_layers_sku_warehouse`` on (warehouse_id, sku_id), without ``remaining``: every
  take changes ``remaining``, and a changed indexed column makes PostgreSQL write a new
  entry in every index of the table. On PostgreSQL the table also keeps 20% of each new
  page free (fillfactor 80), so that a take is a heap-only (HOT) update. Only new pages get
  the free space; existing ones get it when the table is rewritten (``VACUUM FULL
  cost_layers``, not run here: it locks the table).
- ``layer_flows`` and ``line_costs`` no longer check ``sku_id`` and ``warehouse_id``
  against ``skus`` and ``warehouses`` row by row: both are the (SKU, warehouse) of a cost
  layer (a flow's own layer, ``layer_id`` still checked; a line cost's consumed layers),
  whose own keys are checked. Each check was a lookup and a row lock per row written.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 23:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_UNCHECKED = (
    ("layer_flows", "sku_id", "skus"),
    ("layer_flows", "warehouse_id", "warehouses"),
    ("line_costs", "sku_id", "skus"),
    ("line_costs", "warehouse_id", "warehouses"),
)


def upgrade() -> None:
    op.drop_index("ix_cost_layers_sku_warehouse", table_name="cost_layers")
    op.create_index("ix_cost_layers_sku_warehouse", "cost_layers", ["warehouse_id", "sku_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE cost_layers SET (fillfactor = 80)")
    for table in ("layer_flows", "line_costs"):
        with op.batch_alter_table(table) as batch:
            for name, column, target in _UNCHECKED:
                if name == table:
                    batch.drop_constraint(f"fk_{table}_{column}_{target}", type_="foreignkey")


def downgrade() -> None:
    for table in ("layer_flows", "line_costs"):
        with op.batch_alter_table(table) as batch:
            for name, column, target in _UNCHECKED:
                if name == table:
                    batch.create_foreign_key(
                        f"fk_{table}_{column}_{target}", target, [column], ["id"]
                    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE cost_layers RESET (fillfactor)")
    op.drop_index("ix_cost_layers_sku_warehouse", table_name="cost_layers")
    op.create_index(
        "ix_cost_layers_sku_warehouse", "cost_layers", ["warehouse_id", "sku_id", "remaining"]
    )
