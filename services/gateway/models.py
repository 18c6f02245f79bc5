"""The gateway's storage: client organisations (tenants) and their hashed API keys."""

from sqlalchemy import Column, DateTime, ForeignKey, MetaData, String, Table

metadata = MetaData()

clients = Table(
    "clients",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("client_id", String(36), ForeignKey("clients.id"), nullable=False),
    Column("role", String(20), nullable=False),
    # SHA-256 of the whole key: keys are 256-bit random, so a fast hash is enough and lets the
    # lookup go by index.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
