"""People, personal keys, key prefixes, last use and revocation

Revision ID: 0002
Revises: 0001
Created: 2026-11-30 13:38:04.477190
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
        "people",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("clients", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email_key"),
    )
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_people_client_id"), ["client_id"], unique=False)
        batch_op.create_index("people_created", ["created_at", "id"], unique=False)

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("person_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("prefix", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("api_keys_created", ["created_at", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_api_keys_person_id"), ["person_id"], unique=False)
        batch_op.create_foreign_key("fk_api_keys_person_id", "people", ["person_id"], ["id"])


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward; restore a backup instead")
