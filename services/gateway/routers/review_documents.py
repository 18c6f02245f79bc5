"""An incident's post-incident review (PIR). Staff only: review drafts it from what it knows
(POST), people write its narrative (PATCH), the attendees and a manager sign it (POST
…/sign-off), and GET answers it as JSON, Markdown or PDF by the Accept header.

Drafting, editing and attendees' signatures are for the incident's participants, managers and
admins (`review_write`); a manager's or admin's signature (`review_approve`) signs it off.
Every change is a new version (the ETag); signatures are of one version, so a change leaves it
to be signed again (services/review/pir.py says why).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response

from firebreak.api.events.v1 import events_pb2
from firebreak.api.review.v1 import review_pb2
from firebreak.events import from_timestamp
from services.gateway import schemas
from services.gateway.backends import RPC_TIMEOUT_SECONDS, Backends
from services.gateway.dependencies import Caller, IncidentId, Services
from services.gateway.document_responses import client_name, download_headers, negotiate
from services.gateway.incident_access import (
    IncidentInHand,
    in_incident_trace,
    incident_for,
    report_of,
    staff_only,
    takes_part,
)
from services.gateway.incident_view import etag, parse_if_match
from services.gateway.permissions import Action, Principal, authorize
from services.gateway.pir_schemas import (
    DeadlineOutcome,
    Duration,
    EvidenceItem,
    Milestone,
    PostIncidentReview,
    ReviewEdit,
    ReviewIncident,
    RoleHolder,
    Signature,
)
from services.gateway.problems import Problem
from services.gateway.routers.actions import action_body
from services.gateway.routers.analysis import analysis_body
from services.gateway.routers.incidents import entry_body
from services.gateway.schemas import PersonSummary

router = APIRouter(
    prefix="/v1/incidents/{incident_id}/review",
    tags=["post-incident review"],
    dependencies=[Depends(staff_only)],
)

IfMatch = Annotated[
    str | None,
    Header(description="The review's ETag as last read; stale: 412 (a signature: of that one)."),
]
DOCUMENTS: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/markdown": {}, "application/pdf": {}},
        "description": "JSON, or Markdown or PDF by the Accept header",
    }
}


def _at(message: Any, field: str) -> datetime | None:
    return from_timestamp(getattr(message, field)) if message.HasField(field) else None


def _person(person: events_pb2.Person) -> PersonSummary:
    return PersonSummary(id=person.id, name=person.name)


def review_body(review: review_pb2.PostIncidentReview) -> PostIncidentReview:
    incident = review.incident
    return PostIncidentReview(
        incident_id=review.incident_id,
        version=review.version,
        status=review.status,  # type: ignore[arg-type]  # review's own
        incident=ReviewIncident(
            reference=incident.reference,
            title=incident.title,
            description=incident.description,
            type=incident.type,
            impact=incident.impact,
            urgency=incident.urgency,
            priority=incident.priority,
            highest_priority=incident.highest_priority,
            status=incident.status,
            affected_assets=list(incident.affected_assets),
            closure_code=incident.closure_code or None,  # type: ignore[arg-type]
            closure_summary=incident.closure_summary or None,
        ),
        summary=review.summary,
        impact=review.impact,
        what_went_well=review.what_went_well,
        what_went_wrong=review.what_went_wrong,
        lessons_learned=review.lessons_learned,
        milestones=[
            Milestone(name=item.name, at=_at(item, "at"), due=_at(item, "due"))
            for item in review.milestones
        ],
        durations=[
            Duration(
                name=item.name,
                seconds=item.seconds,
                from_milestone=item.from_milestone,
                to_milestone=item.to_milestone,
            )
            for item in review.durations
        ],
        roles=[
            RoleHolder(role=holder.role, person=_person(holder.person))  # type: ignore[arg-type]
            for holder in review.roles
        ],
        key_events=[entry_body(entry) for entry in review.key_events],
        analysis=analysis_body(review.analysis),
        actions=[action_body(item) for item in review.actions],
        evidence=[
            EvidenceItem(
                evidence_id=item.evidence_id,
                filename=item.filename,
                sha256=item.sha256,
                size_bytes=item.size_bytes,
                collected_by=item.collected_by,
                collected_at=_at(item, "collected_at"),
                holder=_person(item.holder),
                checked_out=item.checked_out,
                pending_receiver=_person(item.pending_receiver) if item.checked_out else None,
                disposed=item.disposed,
            )
            for item in review.evidence
        ],
        deadlines=[
            DeadlineOutcome(
                id=item.id,
                kind=item.kind,  # type: ignore[arg-type]
                rule=item.rule,
                flag=item.flag or None,
                source=item.source,
                due_at=from_timestamp(item.due_at),
                status=item.status,  # type: ignore[arg-type]
                settled_at=_at(item, "settled_at"),
                late=item.late,
                reference=item.reference or None,
                not_applicable_reason=item.not_applicable_reason or None,
            )
            for item in review.deadlines
        ],
        notifications=[entry_body(entry) for entry in review.notifications],
        signatures=[
            Signature(
                person=_person(signature.person),
                capacity=signature.capacity,  # type: ignore[arg-type]
                signed_at=from_timestamp(signature.signed_at),
            )
            for signature in review.signatures
        ],
        drafted_by=schemas.Actor(
            id=review.drafted_by.id, kind=review.drafted_by.kind, name=review.drafted_by.name
        ),
        drafted_at=from_timestamp(review.drafted_at),
        updated_by=schemas.Actor(
            id=review.updated_by.id, kind=review.updated_by.kind, name=review.updated_by.name
        ),
        updated_at=from_timestamp(review.updated_at),
    )


def _expected(if_match: str | None) -> int | None:
    version = parse_if_match(if_match)
    return version or None


def _may(caller: Principal, action: Action, incident: IncidentInHand) -> bool:
    try:
        authorize(
            caller,
            action,
            client_id=incident.client_id,
            participant=takes_part(caller, incident.state),
            incident_id=incident.incident_id,
        )
    except Problem:
        return False
    return True


async def _answer(
    services: Backends,
    incident: IncidentInHand,
    response: Response,
    name: str,
    call: Callable[[], Awaitable[review_pb2.PostIncidentReview]],
) -> PostIncidentReview:
    """Runs `call` in the incident's trace; the review it answers, with its ETag."""
    with in_incident_trace(await report_of(services, incident), name):
        review = await call()
    response.headers["ETag"] = etag(review.version)
    return review_body(review)


@router.post("", response_model=PostIncidentReview, status_code=201)
async def draft_review(
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
    response: Response,
    if_match: IfMatch = None,
) -> PostIncidentReview:
    """Drafts the review of a resolved incident from what Firebreak knows: `201` the first
    time; again (`200`), the facts are drafted afresh, the narrative kept, a new version."""
    incident = await incident_for(services, caller, incident_id, Action.REVIEW_WRITE)
    request = review_pb2.DraftReviewRequest(
        incident=incident.review_ref(), actor=caller.as_actor(), state=incident.state
    )
    if (expected := _expected(if_match)) is not None:
        request.expected_version = expected
    body = await _answer(
        services,
        incident,
        response,
        "draft_review",
        lambda: services.review.DraftReview(request, timeout=RPC_TIMEOUT_SECONDS),
    )
    if body.version > 1:
        response.status_code = 200
    return body


@router.get("", response_model=PostIncidentReview, responses=DOCUMENTS)
async def get_review(
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
    response: Response,
    accept: Annotated[str | None, Header()] = None,
) -> PostIncidentReview | Response:
    """The review: JSON, or `Accept: text/markdown` or `application/pdf` for the document."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_WORK_READ)
    wanted = negotiate(accept)
    if wanted == "json":
        review = await services.review.GetReview(incident.review_ref(), timeout=RPC_TIMEOUT_SECONDS)
        response.headers["ETag"] = etag(review.version)
        return review_body(review)
    document = await services.review.RenderReview(
        review_pb2.RenderRequest(
            incident=incident.review_ref(),
            format=wanted,
            client_name=await client_name(services.engine, incident.client_id),
        ),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    return Response(
        document.content, media_type=document.media_type, headers=download_headers(document)
    )


@router.patch("", response_model=PostIncidentReview)
async def edit_review(
    body: ReviewEdit,
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
    response: Response,
    if_match: IfMatch = None,
) -> PostIncidentReview:
    """Changes the narrative parts given (summary, impact, what went well, what did not,
    lessons learned): a new version, to be signed again."""
    incident = await incident_for(services, caller, incident_id, Action.REVIEW_WRITE)
    request = review_pb2.EditReviewRequest(
        incident=incident.review_ref(),
        actor=caller.as_actor(),
        **body.model_dump(exclude_none=True),
    )
    if (expected := _expected(if_match)) is not None:
        request.expected_version = expected
    return await _answer(
        services,
        incident,
        response,
        "edit_review",
        lambda: services.review.EditReview(request, timeout=RPC_TIMEOUT_SECONDS),
    )


@router.post("/sign-off", response_model=PostIncidentReview)
async def sign_review(
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
    response: Response,
    if_match: IfMatch = None,
) -> PostIncidentReview:
    """Signs the review's current version (or the If-Match one, refused once it changed): a
    manager or admin signs it off; the incident's commander, role holders and responders sign
    as attendees."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_WORK_READ)
    if _may(caller, Action.REVIEW_APPROVE, incident):
        capacity = "manager"
    else:
        authorize(
            caller,
            Action.REVIEW_WRITE,
            client_id=incident.client_id,
            participant=takes_part(caller, incident.state),
            incident_id=incident_id,
        )
        capacity = "attendee"
    if caller.person_id is None:
        raise Problem(403, "A review is signed by a person: a key of no person cannot sign.")
    request = review_pb2.SignReviewRequest(
        incident=incident.review_ref(), actor=caller.as_actor(), capacity=capacity
    )
    if (expected := _expected(if_match)) is not None:
        request.expected_version = expected
    return await _answer(
        services,
        incident,
        response,
        "sign_review",
        lambda: services.review.SignReview(request, timeout=RPC_TIMEOUT_SECONDS),
    )
