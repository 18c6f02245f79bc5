"""Notify's gRPC API for deadlines (issue 9, §5): flagging an incident, its deadlines, recording
one met, and each client's contractual rules. The gateway has checked who may and read the
incident; notify keeps the deadlines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import grpc
from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.notify.v1 import deadlines_pb2, deadlines_pb2_grpc
from firebreak.database import reading
from firebreak.errors import InvalidArgument
from firebreak.events import from_timestamp, to_timestamp
from firebreak.outbox import Outbox
from services.notify import contractual_rules, deadlines

# Two requests flagging the same incident at once: the loser's insert meets the winner's row,
# and its second attempt sees the flag set.
FLAG_ATTEMPTS = 2


def deadline_state(row: Row[Any]) -> deadlines_pb2.DeadlineState:
    # A deadline set aside keeps its reason where a met one keeps what met it.
    set_aside = row.status == deadlines.NOT_APPLICABLE
    state = deadlines_pb2.DeadlineState(
        id=row.id,
        kind=row.kind,
        rule=row.rule,
        flag=row.flag or "",
        source=row.source,
        due_at=to_timestamp(row.due_at),
        status=row.status,
        reference="" if set_aside else row.met_reference or "",
        not_applicable_reason=row.met_reference if set_aside else "",
        late=row.late,
        met_by=row.met_by,
        started_at=to_timestamp(row.started_at),
        cancelled_because=row.cancelled_because or "",
    )
    if row.met_at is not None:
        state.met_at.CopyFrom(to_timestamp(row.met_at))
    return state


def rules_message(rules: contractual_rules.Rules) -> deadlines_pb2.ClientRules:
    message = deadlines_pb2.ClientRules(
        client_id=rules.client_id,
        rules=[deadlines_pb2.ContractualRule(**rule) for rule in rules.rules],
    )
    if rules.updated_at is not None:
        message.updated_at.CopyFrom(to_timestamp(rules.updated_at))
    return message


def _required(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, "is required")
    return value


class DeadlineServicer(deadlines_pb2_grpc.DeadlineServiceServicer):
    def __init__(
        self, engine: AsyncEngine, outbox: Outbox, *, reminder_leads: Sequence[float]
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._leads = tuple(reminder_leads)

    async def FlagIncident(
        self, request: deadlines_pb2.FlagIncidentRequest, context: grpc.aio.ServicerContext
    ) -> deadlines_pb2.FlagIncidentResponse:
        if not request.flags:
            raise InvalidArgument("flags", "name at least one flag")
        incident = deadlines.Incident(
            id=_required("incident_id", request.incident_id),
            client_id=_required("client_id", request.client_id),
            reference=request.reference,
            title=request.title,
        )
        now = datetime.now(UTC)
        for attempt in range(FLAG_ATTEMPTS):
            try:
                async with self._outbox.transaction() as connection:
                    flagged = await deadlines.flag_incident(
                        connection,
                        outbox=self._outbox,
                        incident=incident,
                        flags=list(request.flags),
                        aware_at=from_timestamp(request.aware_at)
                        if request.HasField("aware_at")
                        else now,
                        detected_at=from_timestamp(request.detected_at)
                        if request.HasField("detected_at")
                        else now,
                        actor=request.actor,
                        leads=self._leads,
                        now=now,
                    )
                break
            except IntegrityError:
                if attempt + 1 == FLAG_ATTEMPTS:
                    raise
        return deadlines_pb2.FlagIncidentResponse(
            flagged=flagged.flagged,
            already_set=flagged.already_set,
            started=[deadline_state(row) for row in flagged.started],
        )

    async def ListDeadlines(
        self, request: deadlines_pb2.DeadlinesRequest, context: grpc.aio.ServicerContext
    ) -> deadlines_pb2.DeadlineList:
        async with reading(self._engine) as connection:
            rows = await deadlines.list_deadlines(
                connection,
                incident_id=_required("incident_id", request.incident_id),
                client_id=_required("client_id", request.client_id),
            )
        return deadlines_pb2.DeadlineList(deadlines=[deadline_state(row) for row in rows])

    async def RecordDeadlineMet(
        self, request: deadlines_pb2.RecordDeadlineMetRequest, context: grpc.aio.ServicerContext
    ) -> deadlines_pb2.DeadlineState:
        async with self._outbox.transaction() as connection:
            row = await deadlines.record_met(
                connection,
                outbox=self._outbox,
                incident_id=_required("incident_id", request.incident_id),
                client_id=_required("client_id", request.client_id),
                deadline_id=_required("deadline_id", request.deadline_id),
                reference=_required("reference", request.reference),
                actor=request.actor,
                now=datetime.now(UTC),
            )
        return deadline_state(row)

    async def MarkDeadlineNotApplicable(
        self, request: deadlines_pb2.MarkNotApplicableRequest, context: grpc.aio.ServicerContext
    ) -> deadlines_pb2.DeadlineState:
        async with self._outbox.transaction() as connection:
            row = await deadlines.mark_not_applicable(
                connection,
                outbox=self._outbox,
                incident_id=_required("incident_id", request.incident_id),
                client_id=_required("client_id", request.client_id),
                deadline_id=_required("deadline_id", request.deadline_id),
                reason=request.reason,
                actor=request.actor,
                now=datetime.now(UTC),
            )
        return deadline_state(row)

    async def GetClientRules(
        self, request: deadlines_pb2.ClientRulesRef, context: grpc.aio.ServicerContext
    ) -> deadlines_pb2.ClientRules:
        async with reading(self._engine) as connection:
            rules = await contractual_rules.get_rules(
                connection, _required("client_id", request.client_id)
            )
        return rules_message(rules)

    async def ReplaceClientRules(
        self, request: deadlines_pb2.ClientRules, context: grpc.aio.ServicerContext
    ) -> deadlines_pb2.ClientRules:
        async with self._engine.begin() as connection:
            rules = await contractual_rules.replace_rules(
                connection,
                client_id=_required("client_id", request.client_id),
                rules=[
                    {
                        "name": rule.name,
                        "description": rule.description,
                        "priorities": list(rule.priorities),
                        "within_minutes": rule.within_minutes,
                        "met_by": rule.met_by,
                    }
                    for rule in request.rules
                ],
                now=datetime.now(UTC),
            )
        return rules_message(rules)
