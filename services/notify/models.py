"""Notify's storage: every notification sent, plus outbox and inbox."""

from sqlalchemy import Column, DateTime, Index, MetaData, String, Table

from firebreak.consumer import define_inbox_table
from firebreak.outbox import define_outbox_table

metadata = MetaData()

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("incident_id", String(36), nullable=False),
    Column("client_id", String(36), nullable=False),
    Column("channel", String(40), nullable=False),
    Column("audience", String(200), nullable=False),
    Column("priority", String(2), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Index("ix_notifications_incident", "incident_id"),
)

outbox = define_outbox_table(metadata)
inbox = define_inbox_table(metadata)
