"""Triage's storage: one decision per incident, plus outbox and inbox."""

from sqlalchemy import Column, DateTime, MetaData, String, Table, Text

from firebreak.consumer import define_inbox_table
from firebreak.outbox import define_outbox_table

metadata = MetaData()

decisions = Table(
    "triage_decisions",
    metadata,
    Column("incident_id", String(36), primary_key=True),
    Column("client_id", String(36), nullable=False),
    Column("priority", String(2), nullable=False),
    Column("impact", String(20), nullable=False),
    Column("urgency", String(20), nullable=False),
    Column("rationale", Text, nullable=False),
    Column("decided_by", String(200), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
)

outbox = define_outbox_table(metadata)
inbox = define_inbox_table(metadata)
