"""The registry keeps the response's version and state from triage's events, and the
report's span, which later commands join

Revision ID: 0002
Revises: 0001
Created: 2026-11-30 13:38:04.981651
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "version",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                server_default="0",
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("response", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("span_id", sa.String(length=16), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward; restore a backup instead")
