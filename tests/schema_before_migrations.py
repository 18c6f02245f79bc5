"""The services' tables as the models defined them at commit c145945, the last before migrations:
what `create_all` made in every database that existed then. Frozen here (never edit it) so the
tests can make such a database and check that revision 0001 is exactly this schema."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)


def _seq() -> Column[int]:
    return Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )


def _outbox_and_inbox(metadata: MetaData) -> None:
    Table(
        "outbox",
        metadata,
        _seq(),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("subject", String(200), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), index=True),
    )
    Table(
        "inbox",
        metadata,
        Column("event_id", String(36), primary_key=True),
        Column("event_type", String(100), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, index=True),
    )


def _gateway(metadata: MetaData) -> None:
    Table(
        "clients",
        metadata,
        Column("id", String(36), primary_key=True),
        Column("name", String(200), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "api_keys",
        metadata,
        Column("id", String(36), primary_key=True),
        Column("client_id", String(36), ForeignKey("clients.id"), nullable=False),
        Column("role", String(20), nullable=False),
        Column("key_hash", String(64), nullable=False, unique=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )


def _intake(metadata: MetaData) -> None:
    Table(
        "incidents",
        metadata,
        _seq(),
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
        UniqueConstraint("client_id", "idempotency_key"),
        UniqueConstraint("client_id", "reference"),
        Index("ix_incidents_client_seq", "client_id", "seq"),
    )
    Table(
        "reference_counters",
        metadata,
        Column("client_id", String(36), primary_key=True),
        Column("year", Integer, primary_key=True),
        Column("last_value", Integer, nullable=False),
    )
    _outbox_and_inbox(metadata)


def _triage(metadata: MetaData) -> None:
    Table(
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
    _outbox_and_inbox(metadata)


def _notify(metadata: MetaData) -> None:
    Table(
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
    _outbox_and_inbox(metadata)


def _evidence(metadata: MetaData) -> None:
    Table(
        "known_incidents",
        metadata,
        Column("incident_id", String(36), primary_key=True),
        Column("client_id", String(36), nullable=False),
    )
    Table(
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
    _outbox_and_inbox(metadata)


def _review(metadata: MetaData) -> None:
    Table(
        "timeline_entries",
        metadata,
        _seq(),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("incident_id", String(36), nullable=False),
        Column("client_id", String(36), nullable=False),
        Column("type", String(100), nullable=False),
        Column("producer", String(40), nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("summary", Text, nullable=False),
        Index("ix_timeline_incident", "incident_id", "occurred_at"),
    )
    _outbox_and_inbox(metadata)


_DEFINE: dict[str, Callable[[MetaData], None]] = {
    "gateway": _gateway,
    "intake": _intake,
    "triage": _triage,
    "notify": _notify,
    "evidence": _evidence,
    "review": _review,
}


def schema_before_migrations(service: str) -> MetaData:
    metadata = MetaData()
    _DEFINE[service](metadata)
    return metadata
