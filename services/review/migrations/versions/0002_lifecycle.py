"""Timeline entries name their actor and carry the words a client may read

Revision ID: 0002
Revises: 0001
Created: 2026-11-30 13:38:06.050716
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("timeline_entries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("actor_id", sa.String(length=64), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("actor_kind", sa.String(length=20), server_default="system", nullable=False)
        )
        batch_op.add_column(
            sa.Column("actor_name", sa.String(length=200), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("client_summary", sa.Text(), nullable=True))
    # What a client saw before there were audiences: the report and the triage.
    op.execute(
        "UPDATE timeline_entries SET client_summary = summary "
        "WHERE type IN ('incident.reported', 'incident.triaged')"
    )


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward; restore a backup instead")
