"""The post-incident review (PIR): drafted from what review knows (pir_facts.py), its narrative
written by people, signed by the attendees and a manager.

Every change makes a new version, and a signature is of one version: what was signed is exactly
what was shown. So editing a signed review, or drafting its facts again, leaves it unsigned
until it is signed again (the earlier signatures stay on record, with the version they signed).
It counts as signed off once a manager (or admin) has signed its current version; the
attendees' signatures (the incident's commander, role holders and responders) record that they
agree it is a fair account, and are not required. A closed incident's review is final:
reopening the incident makes it editable again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.protobuf import json_format
from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.api.review.v1 import review_pb2
from firebreak.errors import Conflict, InvalidArgument, NotFound, StaleVersion
from firebreak.events import PIR_DRAFTED, PIR_EDITED, PIR_SIGNED, to_timestamp
from firebreak.outbox import Outbox
from services.review import pir_facts, records
from services.review.models import pir_signatures, pirs
from services.review.notes import checked_text
from services.review.service import emit_about

DRAFT, SIGNED_OFF = "draft", "signed_off"
MANAGER, ATTENDEE = "manager", "attendee"
CAPACITIES = (MANAGER, ATTENDEE)
NARRATIVE = ("summary", "impact", "what_went_well", "what_went_wrong", "lessons_learned")
# What must be written before anyone signs: the lessons are the point of the review.
TO_SIGN = ("what_went_well", "what_went_wrong", "lessons_learned")
MAX_TEXT = 20_000
# The facts kept with the narrative: the PostIncidentReview fields pir_facts.py fills.
FACT_FIELDS = (
    "incident",
    "milestones",
    "durations",
    "roles",
    "key_events",
    "analysis",
    "actions",
    "evidence",
    "deadlines",
    "notifications",
)


class StaleReview(StaleVersion):
    def __init__(self, *, expected: int, current: int) -> None:
        super().__init__(expected=expected, current=current)
        self.args = (f"the post-incident review is at version {current}, not {expected}",)


@dataclass(frozen=True)
class Narrative:
    """The parts people write; None: unchanged."""

    summary: str | None = None
    impact: str | None = None
    what_went_well: str | None = None
    what_went_wrong: str | None = None
    lessons_learned: str | None = None


def drafted_summary(facts: review_pb2.PostIncidentReview) -> str:
    """The summary a draft starts with: the analysis's, else the report's description."""
    return facts.analysis.summary or facts.incident.description


def drafted_impact(facts: review_pb2.PostIncidentReview) -> str:
    incident = facts.incident
    assets = ", ".join(incident.affected_assets) or "none named"
    highest = (
        f" (at its highest {incident.highest_priority})"
        if incident.highest_priority and incident.highest_priority != incident.priority
        else ""
    )
    return (
        f"Reported as {incident.impact} impact and {incident.urgency} urgency; priority "
        f"{incident.priority}{highest}. Affected assets: {assets}."
    )


def _facts_json(facts: review_pb2.PostIncidentReview) -> dict[str, Any]:
    kept = review_pb2.PostIncidentReview()
    for field in FACT_FIELDS:
        value = getattr(facts, field)
        if field in ("incident", "analysis"):
            getattr(kept, field).CopyFrom(value)
        else:
            getattr(kept, field).extend(value)
    return json_format.MessageToDict(kept)


async def _pir_row(
    connection: AsyncConnection, *, client_id: str | None, incident_id: str, lock: bool = False
) -> Row[Any] | None:
    query = select(pirs).where(pirs.c.incident_id == incident_id)
    if client_id is not None:
        query = query.where(pirs.c.client_id == client_id)
    if lock:
        query = query.with_for_update()
    return (await connection.execute(query)).first()


async def _signatures(connection: AsyncConnection, row: Row[Any]) -> list[Row[Any]]:
    query = (
        select(pir_signatures)
        .where(
            pir_signatures.c.incident_id == row.incident_id,
            pir_signatures.c.version == row.version,
        )
        .order_by(pir_signatures.c.signed_at, pir_signatures.c.person_id)
    )
    return list((await connection.execute(query)).all())


def review_message(row: Row[Any], signatures: list[Row[Any]]) -> review_pb2.PostIncidentReview:
    review = json_format.ParseDict(row.facts, review_pb2.PostIncidentReview())
    review.incident_id = row.incident_id
    review.version = row.version
    review.status = SIGNED_OFF if any(s.capacity == MANAGER for s in signatures) else DRAFT
    for field in NARRATIVE:
        setattr(review, field, getattr(row, field))
    review.signatures.extend(
        review_pb2.Signature(
            person=events_pb2.Person(id=s.person_id, name=s.person_name),
            capacity=s.capacity,
            signed_at=to_timestamp(s.signed_at),
        )
        for s in signatures
    )
    review.drafted_by.CopyFrom(
        events_pb2.Actor(id=row.drafted_by_id, kind=row.drafted_by_kind, name=row.drafted_by_name)
    )
    review.drafted_at.CopyFrom(to_timestamp(row.drafted_at))
    review.updated_by.CopyFrom(
        events_pb2.Actor(id=row.updated_by_id, kind=row.updated_by_kind, name=row.updated_by_name)
    )
    review.updated_at.CopyFrom(to_timestamp(row.updated_at))
    return review


async def get_review(
    connection: AsyncConnection, *, client_id: str | None, incident_id: str
) -> review_pb2.PostIncidentReview:
    row = await _pir_row(connection, client_id=client_id, incident_id=incident_id)
    if row is None:
        raise NotFound(f"incident {incident_id} has no post-incident review yet: draft it first")
    return review_message(row, await _signatures(connection, row))


def _check_version(row: Row[Any], expected: int | None) -> None:
    if expected is not None and expected != row.version:
        raise StaleReview(expected=expected, current=row.version)


async def _refuse_if_closed(connection: AsyncConnection, *, incident_id: str) -> None:
    record = await pir_facts.incident_record(connection, client_id=None, incident_id=incident_id)
    if record.status == "closed":
        raise Conflict(
            "the incident is closed: its post-incident review is final (reopen the incident "
            "to change it)"
        )


def _by(prefix: str, actor: events_pb2.Actor) -> dict[str, str]:
    return {f"{prefix}_id": actor.id, f"{prefix}_kind": actor.kind, f"{prefix}_name": actor.name}


async def draft_review(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    incident_id: str,
    client_id: str,
    actor: events_pb2.Actor,
    state: events_pb2.ResponseState,
    expected_version: int | None,
    now: datetime,
) -> review_pb2.PostIncidentReview:
    """Drafts the review from the record as it is now (version 1); drafting it again takes the
    facts afresh and keeps the narrative."""
    if state.status != "resolved":
        raise Conflict(
            f"a post-incident review is drafted once the incident is resolved; it is {state.status}"
        )
    # Triage's state, handed over by the gateway, may be newer than review's copy.
    await records.apply_state(connection, incident_id=incident_id, client_id=client_id, state=state)
    facts = await pir_facts.gather_facts(
        connection, client_id=client_id, incident_id=incident_id, now=now
    )
    row = await _pir_row(connection, client_id=client_id, incident_id=incident_id, lock=True)
    values = {"facts": _facts_json(facts), "drafted_at": now, "updated_at": now}
    values |= _by("drafted_by", actor) | _by("updated_by", actor)
    if row is None:
        if expected_version:
            raise StaleReview(expected=expected_version, current=0)
        values |= {
            "incident_id": incident_id,
            "client_id": client_id,
            "version": 1,
            "summary": drafted_summary(facts),
            "impact": drafted_impact(facts),
            "what_went_well": "",
            "what_went_wrong": "",
            "lessons_learned": "",
        }
        await connection.execute(pirs.insert().values(values))
    else:
        _check_version(row, expected_version)
        values["version"] = row.version + 1
        await connection.execute(
            update(pirs).where(pirs.c.incident_id == incident_id).values(values)
        )
    drafted = await _pir_row(connection, client_id=client_id, incident_id=incident_id)
    assert drafted is not None
    await emit_about(
        connection,
        outbox,
        drafted,
        actor,
        PIR_DRAFTED,
        events_pb2.PirDrafted(version=drafted.version, redrafted=row is not None),
        now=now,
    )
    return review_message(drafted, [])


async def edit_review(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    incident_id: str,
    client_id: str,
    actor: events_pb2.Actor,
    narrative: Narrative,
    expected_version: int | None,
    now: datetime,
) -> review_pb2.PostIncidentReview:
    """Changes the narrative parts given; a new version, unsigned."""
    changes = {
        field: checked_text(field, value, limit=MAX_TEXT, required=False)
        for field in NARRATIVE
        if (value := getattr(narrative, field)) is not None
    }
    if not changes:
        raise InvalidArgument("summary", f"give at least one of {', '.join(NARRATIVE)}")
    row = await _pir_row(connection, client_id=client_id, incident_id=incident_id, lock=True)
    if row is None:
        raise NotFound(f"incident {incident_id} has no post-incident review yet: draft it first")
    _check_version(row, expected_version)
    await _refuse_if_closed(connection, incident_id=incident_id)
    was_signed = bool(await _signatures(connection, row))
    values = changes | {"version": row.version + 1, "updated_at": now} | _by("updated_by", actor)
    await connection.execute(update(pirs).where(pirs.c.incident_id == incident_id).values(values))
    edited = await _pir_row(connection, client_id=client_id, incident_id=incident_id)
    assert edited is not None
    await emit_about(
        connection,
        outbox,
        edited,
        actor,
        PIR_EDITED,
        events_pb2.PirEdited(
            version=edited.version, fields=sorted(changes), signatures_cleared=was_signed
        ),
        now=now,
    )
    return review_message(edited, [])


async def sign_review(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    incident_id: str,
    client_id: str,
    actor: events_pb2.Actor,
    capacity: str,
    expected_version: int | None,
    now: datetime,
) -> review_pb2.PostIncidentReview:
    """Signs the review's current version, as its manager or an attendee."""
    if capacity not in CAPACITIES:
        raise InvalidArgument("capacity", f"must be one of {', '.join(CAPACITIES)}")
    row = await _pir_row(connection, client_id=client_id, incident_id=incident_id, lock=True)
    if row is None:
        raise NotFound(f"incident {incident_id} has no post-incident review yet: draft it first")
    _check_version(row, expected_version)
    await _refuse_if_closed(connection, incident_id=incident_id)
    missing = [field.replace("_", " ") for field in TO_SIGN if not getattr(row, field)]
    if missing:
        raise Conflict(f"the review is not finished: write {', '.join(missing)} before signing")
    signatures = await _signatures(connection, row)
    if any(signature.person_id == actor.id for signature in signatures):
        raise Conflict(f"{actor.name} signed version {row.version} already")
    await connection.execute(
        pir_signatures.insert().values(
            incident_id=incident_id,
            version=row.version,
            person_id=actor.id,
            person_name=actor.name,
            capacity=capacity,
            signed_at=now,
        )
    )
    signatures = await _signatures(connection, row)
    review = review_message(row, signatures)
    await emit_about(
        connection,
        outbox,
        row,
        actor,
        PIR_SIGNED,
        events_pb2.PirSigned(
            version=row.version, capacity=capacity, signed_off=review.status == SIGNED_OFF
        ),
        now=now,
    )
    return review
