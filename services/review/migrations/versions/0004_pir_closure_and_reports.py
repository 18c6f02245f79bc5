"""The post-incident review, closure and reports: review keeps its own copies of each
incident's report and response state, its evidence's custody and its deadlines (from the events
it consumes), and each incident's PIR with its signatures. Incidents reported before this
revision have no record: their PIR, closure gates and metrics start from the events that come
after it.

Revision ID: 0004
Revises: 0003
Created: 2026-12-08 10:00:00
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
        "deadline_records",
        sa.Column("deadline_id", sa.String(length=36), nullable=False),
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("flag", sa.String(length=20), server_default="", nullable=False),
        sa.Column("source", sa.String(length=1000), server_default="", nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("late", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("reference", sa.String(length=200), server_default="", nullable=False),
        sa.Column("not_applicable_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("deadline_id"),
    )
    op.create_index("ix_deadline_records_incident", "deadline_records", ["incident_id"])

    op.create_table(
        "evidence_records",
        sa.Column("evidence_id", sa.String(length=36), nullable=False),
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), server_default="", nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("collected_by", sa.String(length=200), server_default="", nullable=False),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("holder_id", sa.String(length=64), server_default="", nullable=False),
        sa.Column("holder_name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("pending_transfer_id", sa.String(length=36), nullable=True),
        sa.Column("pending_receiver_id", sa.String(length=64), nullable=True),
        sa.Column("pending_receiver_name", sa.String(length=200), nullable=True),
        sa.Column("custody_position", sa.Integer(), server_default="-1", nullable=False),
        sa.Column("disposed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("evidence_id"),
    )
    op.create_index("ix_evidence_records_incident", "evidence_records", ["incident_id"])

    op.create_table(
        "incident_records",
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("reference", sa.String(length=32), server_default="", nullable=False),
        sa.Column("title", sa.String(length=200), server_default="", nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("affected_assets", sa.JSON(), nullable=True),
        sa.Column("type", sa.String(length=40), server_default="", nullable=False),
        sa.Column("impact", sa.String(length=20), server_default="", nullable=False),
        sa.Column("urgency", sa.String(length=20), server_default="", nullable=False),
        sa.Column("priority", sa.String(length=4), server_default="", nullable=False),
        sa.Column("highest_priority", sa.String(length=4), server_default="", nullable=False),
        sa.Column("status", sa.String(length=20), server_default="reported", nullable=False),
        sa.Column("state_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("roles", sa.JSON(), nullable=True),
        sa.Column("responders", sa.JSON(), nullable=True),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("triaged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("contained_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledge_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("contain_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolve_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closure_code", sa.String(length=20), nullable=True),
        sa.Column("closure_summary", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("incident_id"),
    )
    op.create_index("ix_incident_records_client", "incident_records", ["client_id", "reported_at"])
    op.create_index("ix_incident_records_reported", "incident_records", ["reported_at"])

    op.create_table(
        "pir_signatures",
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("person_name", sa.String(length=200), nullable=False),
        sa.Column("capacity", sa.String(length=10), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "version", "person_id"),
    )
    op.create_table(
        "pirs",
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("impact", sa.Text(), nullable=False),
        sa.Column("what_went_well", sa.Text(), nullable=False),
        sa.Column("what_went_wrong", sa.Text(), nullable=False),
        sa.Column("lessons_learned", sa.Text(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("drafted_by_id", sa.String(length=64), nullable=False),
        sa.Column("drafted_by_kind", sa.String(length=20), nullable=False),
        sa.Column("drafted_by_name", sa.String(length=200), nullable=False),
        sa.Column("drafted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.String(length=64), nullable=False),
        sa.Column("updated_by_kind", sa.String(length=20), nullable=False),
        sa.Column("updated_by_name", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("incident_id"),
    )


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward; restore a backup instead")
