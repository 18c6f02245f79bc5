"""Triage's storage: the decision and the response of each incident, its tasks, outbox, inbox."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from firebreak.consumer import define_inbox_table
from firebreak.database import sequence_column
from firebreak.dead_letters import define_dead_letter_table
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

# The response to each incident: the one row every command reads, checks and bumps.
responses = Table(
    "responses",
    metadata,
    Column("incident_id", String(36), primary_key=True),
    Column("client_id", String(36), nullable=False),
    Column("version", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("status", String(20), nullable=False),
    Column("priority", String(2), nullable=False),
    Column("highest_priority", String(2), nullable=False),
    Column("type", String(40), nullable=False),
    Column("impact", String(20), nullable=False),
    Column("urgency", String(20), nullable=False),
    # {"incident_commander": {"id": …, "name": …}, …}; responders: [{"id": …, "name": …}]
    Column("roles", JSON, nullable=False),
    Column("responders", JSON, nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=False),
    Column("triaged_at", DateTime(timezone=True), nullable=False),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("contained_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    Column("merged_into", String(36)),
)

tasks = Table(
    "tasks",
    metadata,
    sequence_column(),  # keeps a playbook's order
    Column("id", String(36), nullable=False, unique=True),
    Column("incident_id", String(36), nullable=False),
    Column("client_id", String(36), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("required", Boolean, nullable=False),
    Column("phase", String(20), nullable=False),
    Column("owner_role", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("assignee_id", String(36)),
    Column("assignee_name", String(200)),
    Column("note", Text, nullable=False),
    Column("source", String(60), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_tasks_incident", "incident_id", "seq"),
)

outbox = define_outbox_table(metadata)
inbox = define_inbox_table(metadata)
dead_letters = define_dead_letter_table(metadata)
