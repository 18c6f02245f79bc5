"""Status updates, their templates' output and each incident's update cadence

Revision ID: 0005
Revises: 0004
Created: 2026-11-30 16:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Every delivery so far was a page, rendered as text only (its HTML was built at send time).
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("purpose", sa.String(length=30), server_default="page", nullable=False)
        )
        batch_op.add_column(sa.Column("html", sa.Text(), nullable=True))

    op.create_table(
        "status_updates",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("audience", sa.String(length=20), nullable=False),
        sa.Column("body", sa.String(length=10000), nullable=False),
        sa.Column("author_id", sa.String(length=36), nullable=False),
        sa.Column("author_kind", sa.String(length=20), nullable=False),
        sa.Column("author_name", sa.String(length=200), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("status_updates", schema=None) as batch_op:
        batch_op.create_index(
            "ix_status_updates_incident", ["incident_id", "posted_at"], unique=False
        )

    # Incidents triaged before this revision have no cadence: reminders start with the next
    # incident (or the next lifecycle event of an open one).
    op.create_table(
        "update_cadences",
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("priority", sa.String(length=2), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column(
            "state_version", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_update_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("trace_context", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("incident_id"),
    )
    with op.batch_alter_table("update_cadences", schema=None) as batch_op:
        batch_op.create_index("ix_update_cadences_due", ["next_due_at"], unique=False)


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward; restore a backup instead")
