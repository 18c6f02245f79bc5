"""The evidence item collected from each attachment of a report by email

Revision ID: 0006
Revises: 0005
Created: 2026-12-14 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("report_attachments") as batch:
        batch.add_column(sa.Column("evidence_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward; restore a backup instead")
