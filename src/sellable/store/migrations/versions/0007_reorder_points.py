"""reorder points: a SKU's reorder_point and reorder_quantity (products CSV, the dashboard's
reorder view)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("skus") as batch:
        batch.add_column(sa.Column("reorder_point", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("reorder_quantity", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("skus") as batch:
        batch.drop_column("reorder_quantity")
        batch.drop_column("reorder_point")
