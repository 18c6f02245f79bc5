"""People's contact methods, tried in order after their email; each delivery knows which
method it is and carries a webhook's signing secret

Revision ID: 0004
Revises: 0003
Created: 2026-11-30 14:48:18.651836
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
        "contact_methods",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("address", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("contact_methods", schema=None) as batch_op:
        batch_op.create_index("ix_contact_methods_person", ["person_id", "position"], unique=True)

    # Deliveries queued before this revision were all to the person's email: method 0.
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("secret", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("method_index", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward; restore a backup instead")
