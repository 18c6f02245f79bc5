"""Announce the people who were registered before the gateway published events about people,
so notify (and any later copy) knows everyone, not only those created or changed since

Revision ID: 0005
Revises: 0004
Created: 2026-11-30 16:40:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from firebreak.api.events.v1 import events_pb2
from firebreak.events import PERSON_REGISTERED, new_event, subject_for

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

# The tables as this revision knows them, not as the models may describe them later.
people = sa.table(
    "people",
    sa.column("id", sa.String),
    sa.column("name", sa.String),
    sa.column("email", sa.String),
    sa.column("phone", sa.String),
    sa.column("timezone", sa.String),
    sa.column("role", sa.String),
    sa.column("client_id", sa.String),
    sa.column("clients", sa.JSON),
    sa.column("active", sa.Boolean),
)
outbox = sa.table(
    "outbox",
    sa.column("event_id", sa.String),
    sa.column("subject", sa.String),
    sa.column("payload", sa.LargeBinary),
    sa.column("headers", sa.Text),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    # Everyone, once, as they are now: a copy that already knows someone gets the same
    # details again, which changes nothing.
    connection = op.get_bind()
    now = datetime.now(UTC)
    for person in connection.execute(sa.select(people)).mappings():
        details = events_pb2.PersonDetails(
            id=person["id"],
            name=person["name"],
            email=person["email"],
            phone=person["phone"] or "",
            timezone=person["timezone"] or "",
            role=person["role"],
            client_id=person["client_id"],
            walled=person["clients"] is not None,
            clients=list(person["clients"] or []),
            active=person["active"],
        )
        event = new_event(
            PERSON_REGISTERED,
            incident_id="",
            client_id=person["client_id"],
            producer="gateway",
            payload=events_pb2.PersonRegistered(person=details),
            occurred_at=now,
        )
        connection.execute(
            outbox.insert().values(
                event_id=event.id,
                subject=subject_for(PERSON_REGISTERED),
                payload=event.SerializeToString(),
                headers="{}",
                created_at=now,
            )
        )


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward; restore a backup instead")
