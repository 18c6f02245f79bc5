"""Review's gRPC API: an incident's timeline, notes and key events, time spent, the analysis and
the actions. Writes name the incident's own client (the gateway checked the caller may act on
it); reads are scoped as every read is (firebreak/tenancy.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.events.v1 import events_pb2
from firebreak.api.review.v1 import review_pb2, review_pb2_grpc
from firebreak.database import reading
from firebreak.errors import Conflict, InvalidArgument
from firebreak.events import from_timestamp, to_timestamp
from firebreak.outbox import Outbox
from firebreak.tenancy import client_scope
from services.review import actions, analysis, notes, service, time_entries
from services.review.closure_gates import ClosurePolicy
from services.review.pir_server import PirAndReportsServicer

AUDIENCES = ("", "internal", service.CLIENT)


def written_client(ref: review_pb2.IncidentRef) -> str:
    """The client a write's rows belong to: the incident's own, never 'every client'."""
    if not ref.client_id:
        raise InvalidArgument("client_id", "a write names the incident's client")
    return ref.client_id


def time_message(row: Row[Any]) -> review_pb2.TimeEntry:
    return review_pb2.TimeEntry(
        id=row.id,
        incident_id=row.incident_id,
        client_id=row.client_id,
        person=events_pb2.Person(id=row.person_id, name=row.person_name),
        role=row.role,
        activity=row.activity,
        minutes=row.minutes,
        at=to_timestamp(row.at),
        recorded_at=to_timestamp(row.recorded_at),
    )


def analysis_message(row: Row[Any] | None, *, incident_id: str) -> review_pb2.Analysis:
    if row is None:
        return review_pb2.Analysis(incident_id=incident_id, version=0)
    return review_pb2.Analysis(
        incident_id=row.incident_id,
        version=row.version,
        summary=row.summary,
        root_cause=row.root_cause,
        five_whys=row.five_whys,
        contributing_factors=[
            events_pb2.ContributingFactor(**factor) for factor in row.contributing_factors
        ],
        updated_by=events_pb2.Actor(id=row.author_id, kind=row.author_kind, name=row.author_name),
        updated_at=to_timestamp(row.created_at),
    )


def optional_time(message: Any, field: str) -> datetime | None:
    return from_timestamp(getattr(message, field)) if message.HasField(field) else None


class ReviewServicer(PirAndReportsServicer, review_pb2_grpc.ReviewServiceServicer):
    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Outbox,
        *,
        check_delay: timedelta,
        closure: ClosurePolicy,
        firm_name: str,
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._check_delay = check_delay  # from a corrective action done to its check
        self._closure = closure  # the firm's closure gates (pir_server.py)
        self._firm_name = firm_name  # as review's documents name the firm

    # --- the timeline --------------------------------------------------------------------

    async def GetTimeline(
        self, request: review_pb2.GetTimelineRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.Timeline:
        if request.audience not in AUDIENCES:
            raise InvalidArgument("audience", "must be internal or client")
        async with reading(self._engine) as connection:
            rows = await service.get_timeline(
                connection,
                client_id=client_scope(request),
                incident_id=request.incident_id,
                audience=request.audience,
                key_events_only=request.key_events_only,
            )
        return review_pb2.Timeline(
            incident_id=request.incident_id,
            entries=[service.entry_message(row, audience=request.audience) for row in rows],
        )

    async def AddNote(
        self, request: review_pb2.AddNoteRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.TimelineEntry:
        async with self._outbox.transaction() as connection:
            row = await notes.add_note(
                connection,
                outbox=self._outbox,
                incident_id=request.incident.incident_id,
                client_id=written_client(request.incident),
                actor=request.actor,
                body=request.body,
                audience=request.audience,
                occurred_at=optional_time(request, "occurred_at"),
                now=datetime.now(UTC),
            )
        return service.entry_message(row)

    async def MarkKeyEvent(
        self, request: review_pb2.MarkKeyEventRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.TimelineEntry:
        async with self._outbox.transaction() as connection:
            row = await service.mark_key_event(
                connection,
                client_id=written_client(request.incident),
                incident_id=request.incident.incident_id,
                event_id=request.event_id,
                key_event=request.key_event,
            )
        return service.entry_message(row)

    # --- time spent ----------------------------------------------------------------------

    async def LogTime(
        self, request: review_pb2.LogTimeRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.TimeEntry:
        async with self._outbox.transaction() as connection:
            row = await time_entries.log_time(
                connection,
                incident_id=request.incident.incident_id,
                client_id=written_client(request.incident),
                person=request.person,
                role=request.role,
                activity=request.activity,
                minutes=request.minutes,
                at=optional_time(request, "at"),
                now=datetime.now(UTC),
            )
        return time_message(row)

    async def ListTime(
        self, request: review_pb2.IncidentRef, context: grpc.aio.ServicerContext
    ) -> review_pb2.TimeEntries:
        async with reading(self._engine) as connection:
            rows = await time_entries.list_time(
                connection, client_id=client_scope(request), incident_id=request.incident_id
            )
        return review_pb2.TimeEntries(
            entries=[time_message(row) for row in rows],
            total_minutes=sum(row.minutes for row in rows),
        )

    async def ReportTime(
        self, request: review_pb2.TimeReportRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.TimeReport:
        if request.client_id:
            client_ids: list[str] | None = [request.client_id]
        elif request.all_clients:
            client_ids = None
        else:
            client_ids = list(request.client_ids)  # a walled caller's; none: nothing
        async with reading(self._engine) as connection:
            rows = await time_entries.time_totals(
                connection,
                client_ids=client_ids,
                person_id=request.person_id,
                start=optional_time(request, "from"),
                end=optional_time(request, "to"),
            )
        return review_pb2.TimeReport(
            totals=[
                review_pb2.TimeTotal(
                    client_id=row.client_id,
                    person=events_pb2.Person(id=row.person_id, name=row.person_name),
                    role=row.role,
                    entries=row.entries,
                    minutes=row.minutes,
                )
                for row in rows
            ]
        )

    # --- the analysis --------------------------------------------------------------------

    async def PutAnalysis(
        self, request: review_pb2.PutAnalysisRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.Analysis:
        try:
            async with self._outbox.transaction() as connection:
                row = await analysis.put_analysis(
                    connection,
                    outbox=self._outbox,
                    incident_id=request.incident.incident_id,
                    client_id=written_client(request.incident),
                    actor=request.actor,
                    expected_version=request.expected_version
                    if request.HasField("expected_version")
                    else None,
                    summary=request.summary,
                    root_cause=request.root_cause,
                    five_whys=list(request.five_whys),
                    contributing_factors=list(request.contributing_factors),
                    now=datetime.now(UTC),
                )
        except IntegrityError:
            # Another writer saved the same version a moment earlier (PostgreSQL; SQLite's
            # one writer makes them take turns).
            raise Conflict(
                "another change to the analysis was saved at the same moment; read it and retry"
            ) from None
        return analysis_message(row, incident_id=request.incident.incident_id)

    async def GetAnalysis(
        self, request: review_pb2.IncidentRef, context: grpc.aio.ServicerContext
    ) -> review_pb2.Analysis:
        async with reading(self._engine) as connection:
            row = await analysis.latest_analysis(
                connection, client_id=client_scope(request), incident_id=request.incident_id
            )
        return analysis_message(row, incident_id=request.incident_id)

    async def ListAnalysisVersions(
        self, request: review_pb2.IncidentRef, context: grpc.aio.ServicerContext
    ) -> review_pb2.AnalysisHistory:
        async with reading(self._engine) as connection:
            rows = await analysis.analysis_history(
                connection, client_id=client_scope(request), incident_id=request.incident_id
            )
        return review_pb2.AnalysisHistory(
            versions=[analysis_message(row, incident_id=request.incident_id) for row in rows]
        )

    # --- actions -------------------------------------------------------------------------

    async def AddAction(
        self, request: review_pb2.AddActionRequest, context: grpc.aio.ServicerContext
    ) -> events_pb2.ActionItem:
        now = datetime.now(UTC)
        if not request.HasField("due_at"):
            raise InvalidArgument("due_at", "is required")
        async with self._outbox.transaction() as connection:
            row = await actions.add_action(
                connection,
                outbox=self._outbox,
                incident_id=request.incident.incident_id,
                client_id=written_client(request.incident),
                actor=request.actor,
                kind=request.kind,
                title=request.title,
                description=request.description,
                owner=request.owner,
                due_at=from_timestamp(request.due_at),
                verification_required=request.verification_required,
                incident_reference=request.incident_reference,
                incident_title=request.incident_title,
                now=now,
            )
        return actions.action_message(row, now=now)

    async def GetAction(
        self, request: review_pb2.ActionRef, context: grpc.aio.ServicerContext
    ) -> events_pb2.ActionItem:
        async with reading(self._engine) as connection:
            row = await actions.get_action(
                connection,
                client_id=client_scope(request.incident),
                incident_id=request.incident.incident_id,
                action_id=request.action_id,
            )
        return actions.action_message(row, now=datetime.now(UTC))

    async def ListActions(
        self, request: review_pb2.IncidentRef, context: grpc.aio.ServicerContext
    ) -> review_pb2.ActionList:
        async with reading(self._engine) as connection:
            rows = await actions.list_actions(
                connection, client_id=client_scope(request), incident_id=request.incident_id
            )
        now = datetime.now(UTC)
        return review_pb2.ActionList(actions=[actions.action_message(row, now=now) for row in rows])

    async def ChangeAction(
        self, request: review_pb2.ChangeActionRequest, context: grpc.aio.ServicerContext
    ) -> events_pb2.ActionItem:
        now = datetime.now(UTC)
        async with self._outbox.transaction() as connection:
            row = await actions.change_action(
                connection,
                outbox=self._outbox,
                client_id=written_client(request.action.incident),
                incident_id=request.action.incident.incident_id,
                action_id=request.action.action_id,
                actor=request.actor,
                status=request.status,
                reason=request.reason,
                approver=request.approver,
                owner=request.owner if request.HasField("owner") else None,
                due_at=optional_time(request, "due_at"),
                check_delay=self._check_delay,
                now=now,
            )
        return actions.action_message(row, now=now)

    async def CheckEffectiveness(
        self, request: review_pb2.CheckEffectivenessRequest, context: grpc.aio.ServicerContext
    ) -> events_pb2.ActionItem:
        now = datetime.now(UTC)
        async with self._outbox.transaction() as connection:
            row = await actions.check_effectiveness(
                connection,
                outbox=self._outbox,
                client_id=written_client(request.action.incident),
                incident_id=request.action.incident.incident_id,
                action_id=request.action.action_id,
                actor=request.actor,
                effective=request.effective,
                note=request.note,
                now=now,
            )
        return actions.action_message(row, now=now)
