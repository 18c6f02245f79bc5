"""Each delivery keeps the one-click acknowledge link its page carries

Revision ID: 0003
Revises: 0002
Created: 2026-11-30 14:47:42.986767
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ack_url", sa.String(length=2000), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward; restore a backup instead")
