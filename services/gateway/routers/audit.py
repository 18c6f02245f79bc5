"""The audit log of administrative acts (audit.py): admins read it and verify its hash chain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, Field

from firebreak.database import reading
from services.gateway import audit
from services.gateway.dependencies import IdFilter, PageMaxBytes, Services, require
from services.gateway.permissions import Action, Principal

router = APIRouter(tags=["audit"])

AuditReader = Annotated[Principal, Depends(require(Action.AUDIT_READ))]


class AuditActor(BaseModel):
    id: str = Field(description="The person's id, or the key's own id for a key of no person.")
    kind: str
    name: str
    key_id: str = Field(description="The key the act was done with.")


class AuditTarget(BaseModel):
    kind: str
    id: str


class AuditEntry(BaseModel):
    id: str
    position: int = Field(description="Its place in the chain, from 0.")
    at: datetime
    actor: AuditActor
    action: str = Field(description="`<target kind>.<what was done>`, e.g. `person.changed`.")
    target: AuditTarget
    summary: dict[str, Any] = Field(description="What the act set; never a secret.")
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None


class AuditFault(BaseModel):
    position: int | None = Field(description="The first bad entry; null: the log's end.")
    id: str | None
    problem: str


class AuditVerification(BaseModel):
    valid: bool
    entries: int = Field(description="Entries checked, up to the first bad one.")
    first_bad: AuditFault | None


@router.get("/v1/audit", response_model=AuditPage)
async def list_audit_entries(
    _: AuditReader,
    services: Services,
    max_bytes: PageMaxBytes,
    actor: IdFilter = None,
    kind: Annotated[audit.TargetKind | None, Query(description="The target's kind.")] = None,
    since: Annotated[AwareDatetime | None, Query(description="ISO 8601 with an offset.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
) -> AuditPage:
    """Entries newest first, of one actor (`actor`: a person's id, or a key's of no person),
    one kind of target, from `since` on; pass next_cursor back for the next page."""
    async with reading(services.engine) as connection:
        items, next_cursor = await audit.list_entries(
            connection,
            actor_id=actor,
            target_kind=kind,
            since=since,
            limit=limit,
            before_position=None if cursor is None else int(cursor),
            max_bytes=max_bytes,
        )
    return AuditPage(
        items=[AuditEntry.model_validate(item) for item in items], next_cursor=next_cursor
    )


@router.get("/v1/audit/verify", response_model=AuditVerification)
async def verify_audit_log(_: AuditReader, services: Services) -> AuditVerification:
    """Recomputes every entry's hash from the first on: `valid`, or the first bad entry (an
    entry changed, one removed, or the end of the log cut off)."""
    async with reading(services.engine) as connection:
        checked, fault = await audit.verify(connection)
    return AuditVerification(
        valid=fault is None,
        entries=checked,
        first_bad=None if fault is None else AuditFault.model_validate(fault, from_attributes=True),
    )
