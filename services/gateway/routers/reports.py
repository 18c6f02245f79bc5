"""Follow-up reporting: an incident's client report (PDF or Markdown), the response metrics
(JSON or CSV) and a client's monthly summary (PDF or Markdown). Review assembles and renders
them; the gateway decides whose figures a caller may see.

A client's key or contact reads its own client's: the report of its own incidents, the metrics
of its own incidents only, its own monthly summary; another client's is a 404. Staff read those
of the clients inside their wall.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Response

from firebreak.api.review.v1 import review_pb2
from firebreak.database import reading
from firebreak.events import to_timestamp
from services.gateway import clients
from services.gateway.backends import RPC_TIMEOUT_SECONDS, Backends
from services.gateway.dependencies import ClientId, IdFilter, IncidentId, Services, require
from services.gateway.document_responses import (
    MARKDOWN,
    PDF,
    client_name,
    download_headers,
    negotiate,
)
from services.gateway.incident_access import incident_for
from services.gateway.permissions import Action, Grant, Principal, scope
from services.gateway.pir_schemas import Count, DurationStats, Metrics, TargetOutcome
from services.gateway.problems import Problem
from services.gateway.review_schemas import Moment

router = APIRouter(tags=["reports"])

Reader = Annotated[Principal, Depends(require(Action.REPORT_READ))]
CSV = "text/csv"
DOCUMENTS: dict[int | str, dict[str, Any]] = {
    200: {"content": {PDF: {}, MARKDOWN: {}}, "description": "PDF, or Markdown by Accept"}
}
Priority = Literal["P1", "P2", "P3", "P4"]
Type = Annotated[str, Query(pattern=r"^[a-z_]{1,40}$", description="An incident type.")]
Month = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM (UTC).")]


def _document(document: review_pb2.Document) -> Response:
    return Response(
        document.content, media_type=document.media_type, headers=download_headers(document)
    )


@router.get("/v1/incidents/{incident_id}/report", responses=DOCUMENTS)
async def client_report(
    incident_id: IncidentId,
    caller: Annotated[Principal, Depends(require(Action.INCIDENT_READ))],
    services: Services,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """The incident's report to its client, client-safe: what happened, its impact, what was
    done (the timeline entries meant for the client), the follow-up actions and their state.
    PDF, or Markdown with `Accept: text/markdown`."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_READ)
    wanted = negotiate(accept, (PDF, MARKDOWN))
    document = await services.review.RenderClientReport(
        review_pb2.RenderRequest(
            incident=incident.review_ref(),
            format=wanted,
            client_name=await client_name(services.engine, incident.client_id),
        ),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    return _document(document)


async def _visible_client(services: Backends, caller: Principal, client_id: str) -> None:
    """A 404 for a client the caller may not see, as for one that does not exist."""
    async with reading(services.engine) as connection:
        known = await clients.client_exists(connection, client_id)
    if not known or not caller.can_see_client(client_id):
        raise Problem(404, f"client {client_id} not found")


def _stats(stats: review_pb2.DurationStats) -> DurationStats:
    counted = stats.count > 0
    return DurationStats(
        count=stats.count,
        mean_seconds=stats.mean_seconds if counted else None,
        p50_seconds=stats.p50_seconds if counted else None,
        p90_seconds=stats.p90_seconds if counted else None,
    )


def _counts(counts: list[review_pb2.Count]) -> list[Count]:
    return [Count(key=count.key, count=count.count) for count in counts]


def metrics_csv(metrics: Metrics) -> str:
    """One figure a row: measure, key, value (seconds for the times)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["measure", "key", "value"])
    writer.writerow(["incidents", "", metrics.incidents])
    for name in ("by_priority", "by_status", "by_type", "deadline_outcomes"):
        for count in getattr(metrics, name):
            writer.writerow([name, count.key, count.count])
    for name in ("time_to_acknowledge", "time_to_contain", "time_to_resolve", "time_to_close"):
        stats: DurationStats = getattr(metrics, name)
        writer.writerow([name, "count", stats.count])
        for key in ("mean_seconds", "p50_seconds", "p90_seconds"):
            value = getattr(stats, key)
            writer.writerow([name, key, "" if value is None else f"{value:g}"])
    for outcome in metrics.targets:
        for key in ("met", "missed", "pending"):
            writer.writerow(
                [f"target_{outcome.target}", f"{outcome.priority} {key}", getattr(outcome, key)]
            )
    writer.writerow(["overdue_actions", "", metrics.overdue_actions])
    return out.getvalue()


@router.get(
    "/v1/reports/metrics",
    response_model=Metrics,
    response_model_by_alias=True,
    responses={200: {"content": {CSV: {}}, "description": "JSON, or CSV by Accept or format"}},
)
async def response_metrics(
    caller: Reader,
    services: Services,
    start: Annotated[Moment | None, Query(alias="from")] = None,
    to: Moment | None = None,
    client_id: IdFilter = None,
    priority: Priority | None = None,
    type: Type | None = None,
    format: Literal["json", "csv"] | None = None,
    accept: Annotated[str | None, Header()] = None,
) -> Metrics | Response:
    """Counts, time to acknowledge, contain, resolve and close (mean, p50, p90, in seconds),
    response targets met or missed per priority, overdue actions and deadline outcomes, over
    the incidents reported in [from, to). A client key gets its own client's figures only.
    `format=csv` or `Accept: text/csv` answers CSV."""
    request = review_pb2.MetricsRequest(priority=priority or "", type=type or "")
    if start is not None:
        getattr(request, "from").CopyFrom(to_timestamp(start))
    if to is not None:
        request.to.CopyFrom(to_timestamp(to))
    if client_id is not None:
        await _visible_client(services, caller, client_id)
        request.client_ids.append(client_id)
    elif scope(caller, Action.REPORT_READ) is Grant.OWN_CLIENT:
        request.client_ids.append(caller.client_id)
    elif (visible := caller.visible_clients()) is None:
        request.all_clients = True
    else:
        request.client_ids.extend(sorted(visible))
    found = await services.review.GetMetrics(request, timeout=RPC_TIMEOUT_SECONDS)
    metrics = Metrics.model_validate(
        {
            "from": start,
            "to": to,
            "client_id": client_id,
            "priority": priority,
            "type": type,
            "incidents": found.incidents,
            "by_priority": _counts(list(found.by_priority)),
            "by_status": _counts(list(found.by_status)),
            "by_type": _counts(list(found.by_type)),
            "time_to_acknowledge": _stats(found.time_to_acknowledge),
            "time_to_contain": _stats(found.time_to_contain),
            "time_to_resolve": _stats(found.time_to_resolve),
            "time_to_close": _stats(found.time_to_close),
            "targets": [
                TargetOutcome(
                    priority=outcome.priority,
                    target=outcome.target,  # type: ignore[arg-type]  # review's own
                    met=outcome.met,
                    missed=outcome.missed,
                    pending=outcome.pending,
                )
                for outcome in found.targets
            ],
            "overdue_actions": found.overdue_actions,
            "deadline_outcomes": _counts(list(found.deadline_outcomes)),
        }
    )
    if format == "csv" or (format is None and CSV in (accept or "")):
        return Response(
            metrics_csv(metrics),
            media_type=f"{CSV}; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="metrics.csv"'},
        )
    return metrics


@router.get("/v1/reports/clients/{client_id}/summary", responses=DOCUMENTS)
async def monthly_summary(
    client_id: ClientId,
    month: Month,
    caller: Reader,
    services: Services,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Every incident of the client reported in the month (UTC), with its response times and
    targets: PDF, or Markdown with `Accept: text/markdown`."""
    await _visible_client(services, caller, client_id)
    wanted = negotiate(accept, (PDF, MARKDOWN))
    document = await services.review.RenderClientSummary(
        review_pb2.ClientSummaryRequest(
            client_id=client_id,
            month=month,
            client_name=await client_name(services.engine, client_id),
            format=wanted,
        ),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    return _document(document)
