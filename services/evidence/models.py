"""Evidence's storage: the incidents it may hold evidence for, items with their digests,
outbox and inbox."""

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

from firebreak.consumer import define_inbox_table
from firebreak.outbox import define_outbox_table

metadata = MetaData()

# Which client each reported incident belongs to, learnt from incident.reported, so evidence
# can refuse items for unknown incidents or another client's without asking intake each time.
known_incidents = Table(
    "known_incidents",
    metadata,
    Column("incident_id", String(36), primary_key=True),
    Column("client_id", String(36), nullable=False),
)

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
inbox = define_inbox_table(metadata)
