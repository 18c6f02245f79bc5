"""Evidence's composition root."""

from __future__ import annotations

from firebreak.api.evidence.v1 import evidence_pb2, evidence_pb2_grpc
from firebreak.database import create_engine
from firebreak.outbox import Outbox
from firebreak.runtime import ServiceProcess, run_service
from firebreak.settings import Settings
from services.evidence import handlers, models
from services.evidence.server import EvidenceServicer


async def serve(settings: Settings) -> None:
    engine = create_engine(settings.database_url("evidence"))
    outbox = Outbox(engine, models.outbox, poll_seconds=settings.outbox_poll_seconds)
    process = ServiceProcess(
        name="evidence",
        engine=engine,
        outbox=outbox,
        servicer=EvidenceServicer(engine, outbox, max_bytes=settings.evidence_max_bytes),
        add_servicer=evidence_pb2_grpc.add_EvidenceServiceServicer_to_server,
        grpc_service=evidence_pb2.DESCRIPTOR.services_by_name["EvidenceService"].full_name,
        handlers=handlers.HANDLERS,
        inbox=models.inbox,
    )
    await run_service(settings, process)
