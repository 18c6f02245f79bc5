"""Review's composition root."""

from __future__ import annotations

from datetime import timedelta

from firebreak.api.review.v1 import review_pb2, review_pb2_grpc
from firebreak.consumer import IncidentOwners
from firebreak.database import create_engine
from firebreak.outbox import Outbox
from firebreak.runtime import ServiceProcess, run_service
from firebreak.settings import Settings
from services.review import handlers, models
from services.review.action_alarms import ActionAlarms
from services.review.closure_gates import ClosurePolicy
from services.review.server import ReviewServicer


async def serve(settings: Settings) -> None:
    engine = create_engine(settings.database_url("review"))
    outbox = Outbox(engine, models.outbox, poll_seconds=settings.outbox_poll_seconds)
    process = ServiceProcess(
        name="review",
        engine=engine,
        outbox=outbox,
        servicer=ReviewServicer(
            engine,
            outbox,
            check_delay=timedelta(days=settings.effectiveness_check_days),
            closure=ClosurePolicy(
                gates=settings.closure_gate_set, pir_priorities=settings.closure_pir_priority_set
            ),
            firm_name=settings.firm_name,
        ),
        add_servicer=review_pb2_grpc.add_ReviewServiceServicer_to_server,
        grpc_service=review_pb2.DESCRIPTOR.services_by_name["ReviewService"].full_name,
        handlers=handlers.HANDLERS,
        inbox=models.inbox,
        owners=IncidentOwners(
            models.incident_records.c.incident_id, models.incident_records.c.client_id
        ),
        workers=(("action alarms", ActionAlarms(outbox).run),),
    )
    await run_service(settings, process)
