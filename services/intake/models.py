"""Intake's storage: the incident registry, per-client reference counters, the integrations
of clients' monitoring and their alerts, the attachments of reports by email, outbox and
inbox."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
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

# A client's monitoring that sends alerts (issue 14): what it creates is that client's. Its key
# is kept as a hash, as the gateway keeps API keys.
integrations = Table(
    "integrations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("client_id", String(36), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("name", String(200), nullable=False),
    Column("service", String(200), nullable=False),
    Column("incident_type", String(40), nullable=False),
    Column("severity_mapping", JSON, nullable=False),  # severity -> {impact, urgency}
    Column("resolve_with_alerts", Boolean, nullable=False),
    Column("flapping_window_seconds", Integer, nullable=False),
    Column("rate_per_second", Float, nullable=False),
    Column("burst", Integer, nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_prefix", String(8), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("key_rotated_at", DateTime(timezone=True)),
    Column("disabled_at", DateTime(timezone=True)),
    # An email integration's: the addresses and "@domains" whose mail it takes.
    Column("allowed_senders", JSON, nullable=False, server_default="[]"),
    # A heartbeat integration's: the interval and grace; its last ping; when it is missed
    # (NULL: before its first ping, and while it is down, so the watch opens its incident once);
    # and since when it has been down.
    Column("interval_seconds", Float),
    Column("grace_seconds", Float),
    Column("last_ping_at", DateTime(timezone=True)),
    Column("overdue_at", DateTime(timezone=True)),
    Column("down_since", DateTime(timezone=True)),
    Index("ix_integrations_client_created", "client_id", "created_at"),
    Index("ix_integrations_overdue", "overdue_at"),
)

# An alert: one dedup key of one integration, on one incident. `open_key` is the dedup key
# while this is the alert later triggers of the key join (or reopen), NULL once a newer alert
# of the key has its own incident: unique, so concurrent triggers make one alert and one
# incident.
alerts = Table(
    "alerts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("integration_id", String(36), nullable=False),
    Column("client_id", String(36), nullable=False),
    Column("incident_id", String(36), nullable=False),
    Column("dedup_key", String(255), nullable=False),
    Column("open_key", String(255)),
    Column("status", String(20), nullable=False),
    Column("count", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("summary", String(1024), nullable=False),
    Column("severity", String(20), nullable=False),
    Column("source", String(255), nullable=False),
    Column("details", Text, nullable=False),  # the latest event as sent, capped
    UniqueConstraint("integration_id", "open_key", name="uq_alerts_open_key"),
    Index("ix_alerts_incident", "incident_id"),
)

# A file attached to a report that came by email, kept with the incident the mail opened or
# counted on; the same file sent again on one incident is kept once. Its attachment.received
# has the gateway collect it as an evidence item (docs/architecture.md, "Reports by email"),
# whose evidence.collected gives `evidence_id`.
report_attachments = Table(
    "report_attachments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("incident_id", String(36), nullable=False),
    Column("client_id", String(36), nullable=False),
    Column("integration_id", String(36), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(127), nullable=False),
    Column("size_bytes", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("sender", String(320), nullable=False),
    Column("message_id", String(255), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("evidence_id", String(36)),  # NULL until evidence collected it
    UniqueConstraint("incident_id", "sha256", name="uq_report_attachments_content"),
)

outbox = define_outbox_table(metadata)
inbox = define_inbox_table(metadata)
dead_letters = define_dead_letter_table(metadata)
