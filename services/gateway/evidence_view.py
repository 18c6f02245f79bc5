"""Evidence as the HTTP API shows it, and what of it a client's key may see.

Staff see everything: the item, who holds it, its pending transfer, and the whole custody log
with each entry's hashes. A client's key (its system or a contact) sees its own incidents'
items with their hashes and metadata, and of the custody log only the client-safe entries:
`collected` (the item's facts), `verified` (the result only) and `disposed` (the method only);
the firm's people are "Response team"; no holder, transfer, access, seal or legal hold, and no
entry positions or hashes (a partial chain cannot be checked, and gaps or hashes of hidden
entries would tell they exist).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from google.protobuf.message import Message
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from firebreak.api.events.v1 import events_pb2
from firebreak.api.evidence.v1 import evidence_pb2
from firebreak.events import from_timestamp
from firebreak.keyset_pages import ID_PATTERN
from services.gateway import schemas
from services.gateway.permissions import Principal
from services.gateway.plain_text import MultiLine

CLIENT_KINDS = frozenset({"client_system", "client_contact"})
RESPONSE_TEAM = schemas.Actor(id="", kind="staff", name="Response team")
# What a client may read of each entry kind it may see.
CLIENT_DETAILS: dict[str, tuple[str, ...] | None] = {
    "collected": None,  # all: the item's own facts
    "verified": ("result",),
    "disposed": ("method",),
}

Acquisition = Literal["copy", "image", "export", "photo", "statement"]
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=1000),
    MultiLine,
]
OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000), MultiLine]


class Transfer(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    holder: schemas.Actor = Field(alias="from", description="Who released it.")
    to: schemas.PersonSummary
    purpose: str
    location: str
    status: Literal["pending", "received"]
    released_at: datetime
    received_at: datetime | None
    content_matches: bool | None = Field(
        description="At receipt: whether the content, re-hashed then, is as collected."
    )


class CustodyEntry(BaseModel):
    position: int | None = Field(description="Staff only: gaps would tell of hidden entries.")
    kind: str
    actor: schemas.Actor
    recorded_at: datetime
    details: dict[str, Any]
    prev_hash: str | None = Field(description="Staff only.")
    entry_hash: str | None = Field(description="Staff only.")


class EvidenceItem(BaseModel):
    id: str
    incident_id: str
    filename: str
    description: str
    source: str
    acquisition: str
    content_type: str = Field(description="As submitted; downloads are application/octet-stream.")
    sha256: str
    sha512: str
    size_bytes: int
    collected_at: datetime = Field(description="When it was collected, as the collector said.")
    received_at: datetime
    collected_by: schemas.Actor
    holder: schemas.Actor | None = Field(description="Staff only.")
    sealed: bool
    legal_hold: bool
    disposed_at: datetime | None
    pending_transfer: Transfer | None = Field(description="Staff only.")
    custody_length: int | None = Field(description="Staff only.")
    custody_head: str | None = Field(description="Staff only.")
    last_verified_at: datetime | None
    last_verification: Literal["intact", "tampered"] | None
    collection_method: Literal["api", "email"] = Field(
        description="How it reached Firebreak: submitted through the API, or attached to a "
        "report by email (moved from the report's attachments by the platform)."
    )
    source_reference: str | None = Field(
        description="What it was collected from: an email's attachment, "
        "`report-attachment:<attachment id>`."
    )


class EvidenceRecord(EvidenceItem):
    custody: list[CustodyEntry]


class EvidenceList(BaseModel):
    items: list[EvidenceItem]


class Difference(BaseModel):
    what: str
    detail: str


class Verification(BaseModel):
    evidence_id: str
    result: Literal["intact", "tampered"]
    differences: list[Difference]
    verified_at: datetime


class NewTransfer(schemas.Strict):
    to: Annotated[str, StringConstraints(strip_whitespace=True, pattern=ID_PATTERN)] = Field(
        description="The receiving person: active staff inside the client's wall."
    )
    purpose: Text
    location: Text


class Receipt(schemas.Strict):
    location: OptionalText = Field(default="", description="Empty: where it was released to.")


class SealChange(schemas.Strict):
    reason: OptionalText = ""


class LegalHoldChange(schemas.Strict):
    held: bool = Field(description="true: set the hold; false: release it.")
    reason: Text


def _moment(message: Message, field: str) -> datetime | None:
    return from_timestamp(getattr(message, field)) if message.HasField(field) else None


def actor_body(actor: events_pb2.Actor, caller: Principal) -> schemas.Actor:
    if caller.is_staff or actor.kind in CLIENT_KINDS:
        return schemas.Actor(id=actor.id, kind=actor.kind, name=actor.name)
    return RESPONSE_TEAM


def transfer_body(transfer: evidence_pb2.Transfer) -> Transfer:
    holder = transfer.holder
    return Transfer.model_validate(
        {
            "id": transfer.id,
            "from": schemas.Actor(id=holder.id, kind=holder.kind, name=holder.name),
            "to": schemas.PersonSummary(id=transfer.receiver.id, name=transfer.receiver.name),
            "purpose": transfer.purpose,
            "location": transfer.location,
            "status": transfer.status,
            "released_at": from_timestamp(transfer.released_at),
            "received_at": _moment(transfer, "received_at"),
            "content_matches": transfer.content_matches if transfer.status == "received" else None,
        }
    )


def item_body(item: evidence_pb2.EvidenceItem, caller: Principal) -> dict[str, Any]:
    staff = caller.is_staff
    return {
        "id": item.id,
        "incident_id": item.incident_id,
        "filename": item.filename,
        "description": item.description,
        "source": item.source,
        "acquisition": item.acquisition,
        "content_type": item.content_type,
        "sha256": item.sha256,
        "sha512": item.sha512,
        "size_bytes": item.size_bytes,
        "collected_at": from_timestamp(item.collected_at),
        "received_at": from_timestamp(item.received_at),
        "collected_by": actor_body(item.collector, caller),
        "holder": actor_body(item.holder, caller) if staff else None,
        "sealed": item.sealed,
        "legal_hold": item.legal_hold,
        "disposed_at": _moment(item, "disposed_at"),
        "pending_transfer": transfer_body(item.pending_transfer)
        if staff and item.HasField("pending_transfer")
        else None,
        "custody_length": item.custody_length if staff else None,
        "custody_head": item.custody_head if staff else None,
        "last_verified_at": _moment(item, "last_verified_at"),
        "last_verification": item.last_verification or None,
        "collection_method": item.collection_method or "api",
        "source_reference": item.source_reference or None,
    }


def item_view(item: evidence_pb2.EvidenceItem, caller: Principal) -> EvidenceItem:
    return EvidenceItem(**item_body(item, caller))


def entry_body(entry: evidence_pb2.CustodyEntry, caller: Principal) -> CustodyEntry | None:
    """The entry as the caller may see it; None when a client may not see it at all."""
    details: dict[str, Any] = json.loads(entry.details_json)
    if not caller.is_staff:
        if entry.kind not in CLIENT_DETAILS:
            return None
        shown = CLIENT_DETAILS[entry.kind]
        if shown is not None:
            details = {key: value for key, value in details.items() if key in shown}
    return CustodyEntry(
        position=entry.position if caller.is_staff else None,
        kind=entry.kind,
        actor=actor_body(entry.actor, caller),
        recorded_at=from_timestamp(entry.recorded_at),
        details=details,
        prev_hash=entry.prev_hash if caller.is_staff else None,
        entry_hash=entry.entry_hash if caller.is_staff else None,
    )


def record_view(record: evidence_pb2.EvidenceRecord, caller: Principal) -> EvidenceRecord:
    entries = [entry_body(entry, caller) for entry in record.custody]
    return EvidenceRecord(
        **item_body(record.item, caller),
        custody=[entry for entry in entries if entry is not None],
    )


def verification_view(verification: evidence_pb2.Verification) -> Verification:
    return Verification(
        evidence_id=verification.evidence_id,
        result=verification.result,  # type: ignore[arg-type]  # evidence's own results
        differences=[
            Difference(what=difference.what, detail=difference.detail)
            for difference in verification.differences
        ],
        verified_at=from_timestamp(verification.verified_at),
    )
