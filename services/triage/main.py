"""Triage's composition root."""

from __future__ import annotations

import grpc

from firebreak.api.triage.v1 import triage_pb2, triage_pb2_grpc
from firebreak.consumer import EventConsumer
from firebreak.database import create_engine
from firebreak.outbox import Outbox
from firebreak.runtime import ServiceProcess, run_service
from firebreak.settings import Settings
from services.triage import models
from services.triage.handlers import build_handlers
from services.triage.server import TriageServicer


async def serve(settings: Settings) -> None:
    engine = create_engine(settings.database_url("triage"))
    outbox = Outbox(engine, models.outbox, poll_seconds=settings.outbox_poll_seconds)
    servicer = TriageServicer(engine)

    def register(server: grpc.aio.Server) -> None:
        triage_pb2_grpc.add_TriageServiceServicer_to_server(servicer, server)

    await run_service(
        settings,
        ServiceProcess(
            name="triage",
            engine=engine,
            metadata=models.metadata,
            grpc_services=[triage_pb2.DESCRIPTOR.services_by_name["TriageService"].full_name],
            register=register,
            outbox=outbox,
            consumer=EventConsumer(
                durable="triage",
                handlers=build_handlers(outbox=outbox, instance_id=settings.instance_id),
                outbox=outbox,
                inbox=models.inbox,
                batch_size=settings.consumer_batch_size,
            ),
        ),
    )
