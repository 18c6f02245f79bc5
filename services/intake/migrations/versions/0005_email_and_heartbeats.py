"""Email integrations' allowed senders, heartbeat integrations' timing and state, and the
attachments of reports by email (issue 14 §5)

Revision ID: 0005
Revises: 0004
Created: 2026-12-12 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("integrations") as batch:
        batch.add_column(
            sa.Column("allowed_senders", sa.JSON(), nullable=False, server_default="[]")
        )
        batch.add_column(sa.Column("interval_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("grace_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("last_ping_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("down_since", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_integrations_overdue", "integrations", ["overdue_at"], unique=False)
    op.create_table(
        "report_attachments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("integration_id", sa.String(length=36), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=127), nullable=False),
        sa.Column(
            "size_bytes", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id", "sha256", name="uq_report_attachments_content"),
    )


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward; restore a backup instead")
