"""Evidence moves its content into an encrypted blob store and keeps a hash-chained custody log:
blobs, items (replacing evidence_items), custody entries, transfers, signatures of the chain
heads; known incidents gain their lifecycle status.

Items stored before keep their record; their content waits in legacy_contents, because only the
evidence service holds the master key to encrypt it: it imports it when it starts
(legacy_import.py), fixing its SHA-512 and the first custody entry then.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

NO_ENTRY = "0" * 64  # the head of a custody log with no entry yet


def upgrade() -> None:
    with op.batch_alter_table("known_incidents") as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(20), nullable=False, server_default="reported")
        )
        batch_op.add_column(
            sa.Column("state_version", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("sha512", sa.String(128), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary()),
        sa.Column("master_key_id", sa.String(16)),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disposed_at", sa.DateTime(timezone=True)),
    )
    items = op.create_table(
        "items",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("incident_id", sa.String(36), nullable=False),
        sa.Column("client_id", sa.String(36), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("acquisition", sa.String(20), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("sha512", sa.String(128)),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("collector_id", sa.String(64), nullable=False),
        sa.Column("collector_kind", sa.String(20), nullable=False),
        sa.Column("collector_name", sa.String(200), nullable=False),
        sa.Column("holder_id", sa.String(64), nullable=False),
        sa.Column("holder_kind", sa.String(20), nullable=False),
        sa.Column("holder_name", sa.String(200), nullable=False),
        sa.Column("sealed", sa.Boolean(), nullable=False),
        sa.Column("legal_hold", sa.Boolean(), nullable=False),
        sa.Column("disposed_at", sa.DateTime(timezone=True)),
        sa.Column("custody_length", sa.Integer(), nullable=False),
        sa.Column("custody_head", sa.String(64), nullable=False),
        sa.Column("next_verify_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_verified_at", sa.DateTime(timezone=True)),
        sa.Column("last_verification", sa.String(10)),
    )
    op.create_index("ix_items_incident", "items", ["incident_id", "received_at"])
    op.create_index("ix_items_verify", "items", ["next_verify_at"])
    op.create_table(
        "custody_entries",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("evidence_id", sa.String(36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("actor_kind", sa.String(20), nullable=False),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("evidence_id", "position", name="uq_custody_position"),
    )
    op.create_table(
        "transfers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("evidence_id", sa.String(36), nullable=False),
        sa.Column("holder_id", sa.String(64), nullable=False),
        sa.Column("holder_kind", sa.String(20), nullable=False),
        sa.Column("holder_name", sa.String(200), nullable=False),
        sa.Column("receiver_id", sa.String(36), nullable=False),
        sa.Column("receiver_name", sa.String(200), nullable=False),
        sa.Column("purpose", sa.String(1000), nullable=False),
        sa.Column("location", sa.String(1000), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True)),
        sa.Column("content_matches", sa.Boolean()),
    )
    op.create_index("ix_transfers_item", "transfers", ["evidence_id", "status"])
    op.create_table(
        "custody_signatures",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("client_id", sa.String(36), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(100), nullable=False),
        sa.Column("public_key", sa.String(100), nullable=False),
    )
    op.create_index("ix_signatures_client", "custody_signatures", ["client_id", "signed_at"])
    legacy = op.create_table(
        "legacy_contents",
        sa.Column("evidence_id", sa.String(36), primary_key=True),
        sa.Column("content", sa.LargeBinary(), nullable=False),
    )

    old = sa.table(
        "evidence_items",
        *(
            sa.column(name)
            for name in (
                "id",
                "incident_id",
                "client_id",
                "filename",
                "description",
                "collected_by",
                "sha256",
                "size_bytes",
                "content",
                "collected_at",
            )
        ),
    )
    copied = {
        "id": old.c.id,
        "incident_id": old.c.incident_id,
        "client_id": old.c.client_id,
        "filename": old.c.filename,
        "description": old.c.description,
        "source": sa.literal(""),
        "acquisition": sa.literal("unspecified"),
        "content_type": sa.literal("application/octet-stream"),
        "sha256": old.c.sha256,
        "size_bytes": old.c.size_bytes,
        "collected_at": old.c.collected_at,
        "received_at": old.c.collected_at,
        # Before custody, the collector was a name only.
        "collector_id": sa.literal(""),
        "collector_kind": sa.literal("unknown"),
        "collector_name": old.c.collected_by,
        "holder_id": sa.literal(""),
        "holder_kind": sa.literal("unknown"),
        "holder_name": old.c.collected_by,
        "sealed": sa.literal(False),
        "legal_hold": sa.literal(False),
        "custody_length": sa.literal(0),
        "custody_head": sa.literal(NO_ENTRY),
        "next_verify_at": old.c.collected_at,
    }
    op.execute(
        items.insert().from_select(list(copied), sa.select(*copied.values()).select_from(old))
    )
    op.execute(
        legacy.insert().from_select(["evidence_id", "content"], sa.select(old.c.id, old.c.content))
    )
    op.drop_index("ix_evidence_incident", table_name="evidence_items")
    op.drop_table("evidence_items")


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward; restore a backup instead")
