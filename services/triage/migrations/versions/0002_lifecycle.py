"""Each incident's response (lifecycle, roles, responders) and its tasks

Revision ID: 0002
Revises: 0001
Created: 2026-11-30 13:38:05.511535
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.String(length=2), nullable=False),
        sa.Column("highest_priority", sa.String(length=2), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("impact", sa.String(length=20), nullable=False),
        sa.Column("urgency", sa.String(length=20), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("responders", sa.JSON(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("triaged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("contained_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("merged_into", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("incident_id"),
    )
    op.create_table(
        "tasks",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("phase", sa.String(length=20), nullable=False),
        sa.Column("owner_role", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("assignee_id", sa.String(length=36), nullable=True),
        sa.Column("assignee_name", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=60), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_incident", ["incident_id", "seq"], unique=False)
    _open_responses_of_earlier_incidents()


def _open_responses_of_earlier_incidents() -> None:
    """Incidents triaged before this revision get a response, so commands can run on them.
    Triage never kept their type or report time: the type is left empty (readers fall back to
    intake's, which has it), the report time is taken as the triage time, and they get no
    tasks."""
    empty_object, empty_list = (
        ("CAST('{}' AS JSON)", "CAST('[]' AS JSON)")
        if op.get_bind().dialect.name == "postgresql"
        else ("'{}'", "'[]'")  # SQLite keeps JSON as text; its CAST AS JSON would make a number
    )
    op.execute(
        "INSERT INTO responses (incident_id, client_id, version, status, priority, "
        "highest_priority, type, impact, urgency, roles, responders, reported_at, triaged_at) "
        "SELECT incident_id, client_id, 1, 'triaged', priority, priority, '', impact, "
        f"urgency, {empty_object}, {empty_list}, decided_at, decided_at FROM triage_decisions"
    )


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward; restore a backup instead")
