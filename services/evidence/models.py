"""Evidence's storage: the incidents it may hold evidence for, the encrypted blobs under their
content address, the items, their custody logs and transfers, the signatures of the chain heads,
outbox and inbox."""

from sqlalchemy import (
    BigInteger,
    Boolean,
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

# Which client each incident belongs to, learnt from its incident.triaged (or from an item
# collected before that arrived, which the gateway confirmed: collection.py), so evidence can
# refuse items for unknown incidents or another client's without asking intake each time; and
# its status from the newest lifecycle event evidence follows (handlers.FOLLOWED: triaged and
# those into or out of an end), for disposal (only once it ended).
known_incidents = Table(
    "known_incidents",
    metadata,
    Column("incident_id", String(36), primary_key=True),
    Column("client_id", String(36), nullable=False),
    Column("status", String(20), nullable=False, server_default="reported"),
    Column("state_version", BigInteger, nullable=False, server_default="0"),
)

# One row per distinct content (its plaintext SHA-256), however many items hold it. The file
# is <evidence_store>/blobs/<sha256[:2]>/<sha256>, encrypted under its own data key, which is
# kept here wrapped by the master key (blob_crypto.py). Disposal of its last item removes the
# file and erases the wrapped key; the row stays, and the same bytes collected again revive it.
blobs = Table(
    "blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("sha512", String(128), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("wrapped_key", LargeBinary),  # NULL once disposed
    Column("master_key_id", String(16)),  # which master key wrapped it
    Column("stored_at", DateTime(timezone=True), nullable=False),
    Column("disposed_at", DateTime(timezone=True)),
)

items = Table(
    "items",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("incident_id", String(36), nullable=False),
    Column("client_id", String(36), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("source", String(1000), nullable=False),
    Column("acquisition", String(20), nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("sha256", String(64), nullable=False),  # fixed at collection; the blob's address
    # NULL only for an item stored before custody existed, until its content is imported.
    Column("sha512", String(128)),
    Column("size_bytes", BigInteger, nullable=False),
    Column("collected_at", DateTime(timezone=True), nullable=False),  # as the collector said
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("collector_id", String(64), nullable=False),
    Column("collector_kind", String(20), nullable=False),
    Column("collector_name", String(200), nullable=False),
    # Who holds it now: the collector, then each transfer's receiver.
    Column("holder_id", String(64), nullable=False),
    Column("holder_kind", String(20), nullable=False),
    Column("holder_name", String(200), nullable=False),
    Column("sealed", Boolean, nullable=False),
    Column("legal_hold", Boolean, nullable=False),
    Column("disposed_at", DateTime(timezone=True)),
    # The custody log's length and last entry hash: deleting the last entry shows here.
    Column("custody_length", Integer, nullable=False),
    Column("custody_head", String(64), nullable=False),
    Column("next_verify_at", DateTime(timezone=True), nullable=False),
    Column("last_verified_at", DateTime(timezone=True)),
    Column("last_verification", String(10)),  # intact | tampered
    # api (submitted through the HTTP API) | email (an attachment of a report by email).
    Column("collection_method", String(20), nullable=False, server_default="api"),
    # What it was collected from (an email's attachment: "report-attachment:<id>"); NULL: not
    # named. Unique per incident: the same source collected again is the item collected then.
    Column("source_reference", String(255)),
    Index("ix_items_incident", "incident_id", "received_at"),
    Index("ix_items_verify", "next_verify_at"),
    Index("uq_items_source_reference", "incident_id", "source_reference", unique=True),
)

# Append-only: rows are inserted, never changed. Each entry's hash covers its canonical
# encoding with the previous entry's hash (custody_chain.py), so any change shows.
custody_entries = Table(
    "custody_entries",
    metadata,
    sequence_column(),
    Column("evidence_id", String(36), nullable=False),
    Column("position", Integer, nullable=False),
    Column("kind", String(30), nullable=False),
    Column("actor_id", String(64), nullable=False),
    Column("actor_kind", String(20), nullable=False),
    Column("actor_name", String(200), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("details", Text, nullable=False),  # canonical JSON, exactly as hashed
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False),
    UniqueConstraint("evidence_id", "position", name="uq_custody_position"),
)

transfers = Table(
    "transfers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("evidence_id", String(36), nullable=False),
    Column("holder_id", String(64), nullable=False),
    Column("holder_kind", String(20), nullable=False),
    Column("holder_name", String(200), nullable=False),
    Column("receiver_id", String(36), nullable=False),
    Column("receiver_name", String(200), nullable=False),
    Column("purpose", String(1000), nullable=False),
    Column("location", String(1000), nullable=False),
    Column("status", String(10), nullable=False),  # pending | received
    Column("released_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True)),
    Column("content_matches", Boolean),
    Index("ix_transfers_item", "evidence_id", "status"),
)

# Ed25519 signatures of a client's chain heads (custody_signatures.py), kept for exports.
custody_signatures = Table(
    "custody_signatures",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("client_id", String(36), nullable=False),
    Column("signed_at", DateTime(timezone=True), nullable=False),
    Column("document", Text, nullable=False),
    Column("signature", String(100), nullable=False),
    Column("public_key", String(100), nullable=False),
    Index("ix_signatures_client", "client_id", "signed_at"),
)

# Content stored in the database before 0002, waiting to be moved into the blob store: only
# the evidence service holds the master key, so it imports these when it starts.
legacy_contents = Table(
    "legacy_contents",
    metadata,
    Column("evidence_id", String(36), primary_key=True),
    Column("content", LargeBinary, nullable=False),
)

outbox = define_outbox_table(metadata)
inbox = define_inbox_table(metadata)
dead_letters = define_dead_letter_table(metadata)
