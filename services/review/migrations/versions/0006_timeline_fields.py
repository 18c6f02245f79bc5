"""Timeline entries keep what people wrote as named values beside the platform's line (issue 13
§4): `fields` for staff, `client_fields` for the client, each a JSON list of {name, value}.

Entries written before this revision keep their summaries as they were, with what people wrote
spliced into them, and have no values (both lists empty): nothing is re-narrated, as the record
stays as it was written.

Revision ID: 0006
Revises: 0005
Created: 2026-12-10 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("timeline_entries") as batch_op:
        batch_op.add_column(sa.Column("fields", sa.JSON(), server_default="[]", nullable=False))
        batch_op.add_column(
            sa.Column("client_fields", sa.JSON(), server_default="[]", nullable=False)
        )


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward; restore a backup instead")
