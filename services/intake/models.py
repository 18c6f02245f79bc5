"""Intake's storage: the incident registry, per-client reference counters, outbox and inbox."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from firebreak.consumer import define_inbox_table
from firebreak.database import sequence_column
from firebreak.dead_letters import define_dead_letter_table
from firebreak.outbox import define_outbox_table

metadata = MetaData()

incidents = Table(
    "incidents",
    metadata,
    sequence_column(),  # orders the registry and makes keyset pagination cheap
    Column("id", String(36), nullable=False, unique=True),
    Column("client_id", String(36), nullable=False),
    Column("reference", String(32), nullable=False),
    Column("idempotency_key", String(255)),
    Column("request_fingerprint", String(64)),
    Column("status", String(20), nullable=False),
    Column("priority", String(2)),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("type", String(40), nullable=False),
    Column("impact", String(20), nullable=False),
    Column("urgency", String(20), nullable=False),
    Column("reporter_name", String(200), nullable=False),
    Column("reporter_email", String(320), nullable=False),
    Column("affected_assets", JSON, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("detected_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("triaged_at", DateTime(timezone=True)),
    Column("notified_at", DateTime(timezone=True)),
    Column("trace_id", String(32), nullable=False),
    # The report's span: later commands on the incident join its trace as its children.
    Column("span_id", String(16)),
    # The response as of the newest lifecycle event seen: its version and the serialised
    # firebreak.events.v1.ResponseState (status and priority above are copies, for filters).
    Column(
        "version",
        BigInteger().with_variant(Integer, "sqlite"),
        nullable=False,
        default=0,
        server_default="0",
    ),
    Column("response", LargeBinary),
    UniqueConstraint("client_id", "idempotency_key"),
    UniqueConstraint("client_id", "reference"),
    Index("ix_incidents_client_seq", "client_id", "seq"),
)

# References are numbered per client and year, so one client cannot infer another's volume.
reference_counters = Table(
    "reference_counters",
    metadata,
    Column("client_id", String(36), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("last_value", Integer, nullable=False),
)

outbox = define_outbox_table(metadata)
inbox = define_inbox_table(metadata)
dead_letters = define_dead_letter_table(metadata)
