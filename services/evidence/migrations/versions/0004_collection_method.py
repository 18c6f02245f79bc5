"""How each item reached Firebreak (api, email) and what it was collected from, unique per
incident, so that collecting the same source again answers the item collected then

Revision ID: 0004
Revises: 0003
Created: 2026-12-14 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch_op:
        batch_op.add_column(
            sa.Column("collection_method", sa.String(20), nullable=False, server_default="api")
        )
        batch_op.add_column(sa.Column("source_reference", sa.String(255), nullable=True))
    op.create_index(
        "uq_items_source_reference", "items", ["incident_id", "source_reference"], unique=True
    )


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward; restore a backup instead")
