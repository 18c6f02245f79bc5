"""An incident's analysis: summary, root cause, five whys, contributing factors. Every change is
a version (who, when); GET shows the newest, with its version as the ETag, and a PUT with a
stale If-Match is a 412, so two people cannot overwrite each other. Staff only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response

from firebreak.api.events.v1 import events_pb2
from firebreak.api.review.v1 import review_pb2
from firebreak.events import from_timestamp
from services.gateway import schemas
from services.gateway.backends import RPC_TIMEOUT_SECONDS
from services.gateway.dependencies import Caller, IncidentId, Services
from services.gateway.incident_access import (
    in_incident_trace,
    incident_for,
    report_of,
    staff_only,
)
from services.gateway.incident_view import etag, parse_if_match
from services.gateway.permissions import Action
from services.gateway.review_schemas import (
    Analysis,
    AnalysisHistory,
    AnalysisIn,
    ContributingFactor,
)

router = APIRouter(
    prefix="/v1/incidents/{incident_id}/analysis",
    tags=["investigation"],
    dependencies=[Depends(staff_only)],
)

IfMatch = Annotated[
    str | None,
    Header(description='The analysis\'s ETag as last read ("0": none yet); stale: 412.'),
]


def analysis_body(analysis: review_pb2.Analysis) -> Analysis:
    written = analysis.version > 0
    return Analysis(
        incident_id=analysis.incident_id,
        version=analysis.version,
        summary=analysis.summary,
        root_cause=analysis.root_cause,
        five_whys=list(analysis.five_whys),
        contributing_factors=[
            ContributingFactor(
                category=factor.category,  # type: ignore[arg-type]  # review checked it
                description=factor.description,
            )
            for factor in analysis.contributing_factors
        ],
        updated_by=schemas.Actor(
            id=analysis.updated_by.id, kind=analysis.updated_by.kind, name=analysis.updated_by.name
        )
        if written
        else None,
        updated_at=from_timestamp(analysis.updated_at) if written else None,
    )


@router.put("", response_model=Analysis)
async def put_analysis(
    body: AnalysisIn,
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
    response: Response,
    if_match: IfMatch = None,
) -> Analysis:
    """Saves the analysis whole as its next version."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_INVESTIGATE)
    request = review_pb2.PutAnalysisRequest(
        incident=incident.review_ref(),
        actor=caller.as_actor(),
        summary=body.summary,
        root_cause=body.root_cause,
        five_whys=body.five_whys,
        contributing_factors=[
            events_pb2.ContributingFactor(category=factor.category, description=factor.description)
            for factor in body.contributing_factors
        ],
    )
    if if_match is not None and if_match.strip() != "*":
        request.expected_version = parse_if_match(if_match)
    with in_incident_trace(await report_of(services, incident), "put_analysis"):
        saved = await services.review.PutAnalysis(request, timeout=RPC_TIMEOUT_SECONDS)
    response.headers["ETag"] = etag(saved.version)
    return analysis_body(saved)


@router.get("", response_model=Analysis)
async def get_analysis(
    incident_id: IncidentId, caller: Caller, services: Services, response: Response
) -> Analysis:
    """The newest version; version 0 and empty before anyone wrote one."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_WORK_READ)
    analysis = await services.review.GetAnalysis(incident.review_ref(), timeout=RPC_TIMEOUT_SECONDS)
    response.headers["ETag"] = etag(analysis.version)
    return analysis_body(analysis)


@router.get("/history", response_model=AnalysisHistory)
async def analysis_history(
    incident_id: IncidentId, caller: Caller, services: Services
) -> AnalysisHistory:
    """Every version, newest first, each with who wrote it and when."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_WORK_READ)
    history = await services.review.ListAnalysisVersions(
        incident.review_ref(), timeout=RPC_TIMEOUT_SECONDS
    )
    return AnalysisHistory(items=[analysis_body(version) for version in history.versions])
