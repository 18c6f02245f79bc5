"""Triage's composition root."""

from __future__ import annotations

from firebreak.api.triage.v1 import triage_pb2, triage_pb2_grpc
from firebreak.consumer import IncidentOwners
from firebreak.database import create_engine
from firebreak.outbox import Outbox
from firebreak.runtime import ServiceProcess, run_service
from firebreak.settings import Settings
from services.triage import models
from services.triage.handlers import build_handlers
from services.triage.playbooks import load_playbooks
from services.triage.policy import load_response_policy
from services.triage.server import TriageServicer
from services.triage.service import Rules


async def serve(settings: Settings) -> None:
    # First: a bad policy or playbook file stops the service before it touches anything.
    rules = Rules(
        policy=load_response_policy(settings.response_policy),
        playbooks=load_playbooks(settings.playbooks),
    )
    engine = create_engine(settings.database_url("triage"))
    outbox = Outbox(engine, models.outbox, poll_seconds=settings.outbox_poll_seconds)
    process = ServiceProcess(
        name="triage",
        engine=engine,
        outbox=outbox,
        servicer=TriageServicer(engine, outbox, rules),
        add_servicer=triage_pb2_grpc.add_TriageServiceServicer_to_server,
        grpc_service=triage_pb2.DESCRIPTOR.services_by_name["TriageService"].full_name,
        handlers=build_handlers(outbox=outbox, rules=rules, instance_id=settings.instance_id),
        inbox=models.inbox,
        owners=IncidentOwners(models.decisions.c.incident_id, models.decisions.c.client_id),
    )
    await run_service(settings, process)
