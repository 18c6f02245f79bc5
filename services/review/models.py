"""Review's storage: every incident's timeline, plus outbox and inbox."""

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    Text,
)

from firebreak.consumer import define_inbox_table
from firebreak.database import sequence_column
from firebreak.outbox import define_outbox_table

metadata = MetaData()

timeline_entries = Table(
    "timeline_entries",
    metadata,
    sequence_column(),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("incident_id", String(36), nullable=False),
    Column("client_id", String(36), nullable=False),
    Column("type", String(100), nullable=False),
    Column("producer", String(40), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("summary", Text, nullable=False),
    Column("actor_id", String(64), nullable=False, server_default=""),
    Column("actor_kind", String(20), nullable=False, server_default="system"),
    Column("actor_name", String(200), nullable=False, server_default=""),
    # The words a client key sees; NULL: the entry is internal only.
    Column("client_summary", Text),
    Index("ix_timeline_incident", "incident_id", "occurred_at"),
)

# Review emits no events yet; its outbox backs its unit of work and future closure events.
outbox = define_outbox_table(metadata)
inbox = define_inbox_table(metadata)
