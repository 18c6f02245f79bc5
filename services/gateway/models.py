"""The gateway's storage: client organisations (tenants), people, their hashed API keys, the
acknowledge links already used, the audit log of administrative acts, the outbox of the events
about people, and the inbox and dead letters of the attachments it moves to evidence."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
)

from firebreak.consumer import define_inbox_table
from firebreak.dead_letters import define_dead_letter_table
from firebreak.outbox import define_outbox_table

metadata = MetaData()

# Who created a client, person or key: the creator's `Principal.id` (a person's id, or the id
# of a key of no person, "bootstrap" for the bootstrap key). NULL: made before this was kept,
# or by the gateway itself (the bootstrap key).
CREATED_BY_LENGTH = 64

clients = Table(
    "clients",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(CREATED_BY_LENGTH)),
)

people = Table(
    "people",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False),
    # The email lower-cased: uniqueness is case-insensitive the same way on SQLite and
    # PostgreSQL, by a plain unique index.
    Column("email_key", String(320), nullable=False, unique=True),
    # responder | manager | admin (the firm's staff, client "operator") or client (a contact).
    Column("role", String(20), nullable=False),
    Column("client_id", String(36), ForeignKey("clients.id"), nullable=False, index=True),
    Column("phone", String(20)),
    Column("timezone", String(64)),
    # The ethical wall: the ids of the clients a staff member may work on. NULL (not a JSON
    # null) means every client; client contacts always have NULL here.
    Column("clients", JSON(none_as_null=True)),
    Column("active", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(CREATED_BY_LENGTH)),
    # Listing pages through people in creation order.
    Index("people_created", "created_at", "id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("client_id", String(36), ForeignKey("clients.id"), nullable=False),
    Column("role", String(20), nullable=False),
    # A personal key's person; NULL for a client system's key and the operator's admin keys.
    Column("person_id", String(36), ForeignKey("people.id"), index=True),
    # The key's first 12 characters ("fbk_" and 8 more), for people to recognise a key in a
    # list; too short to help guess it. NULL for keys issued before prefixes were kept.
    Column("prefix", String(12)),
    # SHA-256 of the whole key: keys are 256-bit random, so a fast hash is enough and lets the
    # lookup go by index.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Written at most once a minute per key (see keys.touch), not on every request.
    Column("last_used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    # NULL: the key does not expire. From this time on it is refused like a revoked one.
    Column("expires_at", DateTime(timezone=True)),
    Column("created_by", String(CREATED_BY_LENGTH)),
    Index("api_keys_created", "created_at", "id"),
)

# The one-click acknowledge links already used (firebreak/ack_links.py), by the delivery of
# the page that carried each: a link works once.
used_ack_links = Table(
    "used_ack_links",
    metadata,
    Column("delivery_id", String(36), primary_key=True),
    Column("incident_id", String(36), nullable=False),
    Column("person_id", String(36), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=False),
)

# The audit log (audit.py): every administrative act, appended only, each entry hash-chained
# to the one before it. Nothing in the code updates or deletes an entry.
audit_entries = Table(
    "audit_entries",
    metadata,
    # The entry's place in the chain, from 0; its id is for people to refer to it by.
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("id", String(36), nullable=False, unique=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor_id", String(CREATED_BY_LENGTH), nullable=False),
    Column("actor_kind", String(20), nullable=False),
    Column("actor_name", String(200), nullable=False),
    Column("actor_key_id", String(CREATED_BY_LENGTH), nullable=False),
    Column("action", String(50), nullable=False),
    Column("target_kind", String(30), nullable=False),
    Column("target_id", String(CREATED_BY_LENGTH), nullable=False),
    # Canonical JSON, stored exactly as hashed.
    Column("summary", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False),
    Index("audit_entries_actor", "actor_id", "position"),
    Index("audit_entries_target", "target_kind", "position"),
)

# The chain's length and last hash, in one row: appending locks it, so entries from replicas
# writing at once still form one chain, and a removed last entry shows against it.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", String(10), primary_key=True),
    Column("length", BigInteger, nullable=False),
    Column("head", String(64), nullable=False),
)

# Console sign-in (services/gateway/console/): a person's password, as an argon2 hash, kept
# apart from `people` so that no listing of people ever reads it.
passwords = Table(
    "passwords",
    metadata,
    Column("person_id", String(36), ForeignKey("people.id"), primary_key=True),
    Column("hash", String(200), nullable=False),
    Column("set_at", DateTime(timezone=True), nullable=False),
)

# A signed-in console session, by the SHA-256 of its token (the cookie). It ends when signed
# out, after `FIREBREAK_CONSOLE_IDLE_MINUTES` without a request, or at `expires_at`.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("person_id", String(36), ForeignKey("people.id"), nullable=False, index=True),
    # The token every form of the session carries (CSRF), compared in constant time.
    Column("form_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
)

# One-time links an admin hands a person to set their password, by the SHA-256 of the token.
sign_in_links = Table(
    "sign_in_links",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("person_id", String(36), ForeignKey("people.id"), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    Column("created_by", String(CREATED_BY_LENGTH), nullable=False),
)

# person.registered and person.changed, published by the gateway's relay.
outbox = define_outbox_table(metadata)
# attachment.received, which the gateway consumes (mail_evidence.py).
inbox = define_inbox_table(metadata)
dead_letters = define_dead_letter_table(metadata)
