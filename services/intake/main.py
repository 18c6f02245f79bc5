"""Intake's composition root: builds its parts and hands them to the shared runtime."""

from __future__ import annotations

import grpc

from firebreak.api.intake.v1 import intake_pb2, intake_pb2_grpc
from firebreak.consumer import EventConsumer
from firebreak.database import create_engine
from firebreak.outbox import Outbox
from firebreak.runtime import ServiceProcess, run_service
from firebreak.settings import Settings
from services.intake import handlers, models
from services.intake.server import IntakeServicer


async def serve(settings: Settings) -> None:
    engine = create_engine(settings.database_url("intake"))
    outbox = Outbox(engine, models.outbox, poll_seconds=settings.outbox_poll_seconds)
    servicer = IntakeServicer(engine, outbox)

    def register(server: grpc.aio.Server) -> None:
        intake_pb2_grpc.add_IntakeServiceServicer_to_server(servicer, server)

    await run_service(
        settings,
        ServiceProcess(
            name="intake",
            engine=engine,
            metadata=models.metadata,
            grpc_services=[intake_pb2.DESCRIPTOR.services_by_name["IntakeService"].full_name],
            register=register,
            outbox=outbox,
            consumer=EventConsumer(
                durable="intake",
                handlers=handlers.HANDLERS,
                outbox=outbox,
                inbox=models.inbox,
                batch_size=settings.consumer_batch_size,
            ),
        ),
    )
