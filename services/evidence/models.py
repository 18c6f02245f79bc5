"""Evidence's storage: items with their digests, and its outbox."""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from firebreak.outbox import define_outbox_table

metadata = MetaData()

evidence_items = Table(
    "evidence_items",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("incident_id", String(36), nullable=False),
    Column("client_id", String(36), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("collected_by", String(200), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("collected_at", DateTime(timezone=True), nullable=False),
    Index("ix_evidence_incident", "incident_id"),
)

outbox = define_outbox_table(metadata)
