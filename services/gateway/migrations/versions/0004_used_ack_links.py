"""The one-click acknowledge links already used, by delivery: a link works once

Revision ID: 0004
Revises: 0003
Created: 2026-11-30 14:47:51.998440
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "used_ack_links",
        sa.Column("delivery_id", sa.String(length=36), nullable=False),
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id"),
    )


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward; restore a backup instead")
