"""Intake's composition root: builds its parts and hands them to the shared runtime."""

from __future__ import annotations

from firebreak.api.intake.v1 import intake_pb2, intake_pb2_grpc
from firebreak.consumer import IncidentOwners
from firebreak.database import create_engine
from firebreak.outbox import Outbox
from firebreak.runtime import ServiceProcess, run_service
from firebreak.settings import Settings
from services.intake import handlers, models
from services.intake.server import IntakeServicer


async def serve(settings: Settings) -> None:
    engine = create_engine(settings.database_url("intake"))
    outbox = Outbox(engine, models.outbox, poll_seconds=settings.outbox_poll_seconds)
    process = ServiceProcess(
        name="intake",
        engine=engine,
        outbox=outbox,
        servicer=IntakeServicer(engine, outbox, page_max_bytes=settings.list_page_max_bytes),
        add_servicer=intake_pb2_grpc.add_IntakeServiceServicer_to_server,
        grpc_service=intake_pb2.DESCRIPTOR.services_by_name["IntakeService"].full_name,
        handlers=handlers.HANDLERS,
        inbox=models.inbox,
        owners=IncidentOwners(models.incidents.c.id, models.incidents.c.client_id),
    )
    await run_service(settings, process)
