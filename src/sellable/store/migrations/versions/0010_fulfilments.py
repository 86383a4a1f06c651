"""Third-party fulfilment (issue 17): orders keep their shipping address, and the
``fulfilments`` table records each request sent to a fulfilment channel (a 3PL).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 01:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Fixed here, not imported: a migration keeps the schema of its day.
_STATUSES = (
    "pending",
    "sent",
    "shipped",
    "partially_shipped",
    "cancelled",
    "cancel_requested",
    "cancel_refused",
    "exception",
    "on_hold",
    "refused",
)


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("shipping_address", sa.Text(), nullable=True))
    op.create_table(
        "fulfilments",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column(
            "order_id",
            _id(),
            sa.ForeignKey("orders.id", ondelete="CASCADE", name="fk_fulfilments_order_id_orders"),
            nullable=False,
        ),
        sa.Column(
            "warehouse_id",
            _id(),
            sa.ForeignKey("warehouses.id", name="fk_fulfilments_warehouse_id_warehouses"),
            nullable=False,
        ),
        sa.Column("reference", sa.String(255), nullable=False),
        sa.Column("remote_id", sa.String(255), nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=True),
        sa.Column("tracking", sa.Text(), nullable=True),
        sa.Column("lines", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("remote_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fulfilments")),
        sa.UniqueConstraint("channel", "reference", name="uq_fulfilments_channel_reference"),
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{x}'" for x in _STATUSES) + ")",
            name="ck_fulfilments_status",
        ),
    )
    op.create_index("ix_fulfilments_order", "fulfilments", ["order_id"])
    op.create_index("ix_fulfilments_channel_status", "fulfilments", ["channel", "status"])
    op.create_index("ix_fulfilments_channel_updated", "fulfilments", ["channel", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_fulfilments_channel_updated", table_name="fulfilments")
    op.drop_index("ix_fulfilments_channel_status", table_name="fulfilments")
    op.drop_index("ix_fulfilments_order", table_name="fulfilments")
    op.drop_table("fulfilments")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("shipping_address")
