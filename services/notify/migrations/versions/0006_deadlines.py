"""Incident flags and the regulatory and contractual deadlines they start

Revision ID: 0006
Revises: 0005
Created: 2026-11-30 16:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "incident_flags",
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("flag", sa.String(length=20), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("aware_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("flagged_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "flag"),
    )
    op.create_table(
        "client_deadline_rules",
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id"),
    )
    op.create_table(
        "deadlines",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("flag", sa.String(length=20), nullable=True),
        sa.Column("source", sa.String(length=1000), nullable=False),
        sa.Column("met_by", sa.String(length=20), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reminders", sa.JSON(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("met_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("met_reference", sa.String(length=200), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("cancelled_because", sa.String(length=20), nullable=True),
        sa.Column("trace_context", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.create_index("ix_deadlines_due", ["status", "next_at"], unique=False)
        batch_op.create_index("ix_deadlines_incident", ["incident_id", "due_at"], unique=False)
        batch_op.create_index("ix_deadlines_rule", ["incident_id", "kind", "rule"], unique=True)


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward; restore a backup instead")
