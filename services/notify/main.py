"""Notify's composition root."""

from __future__ import annotations

from firebreak.api.notify.v1 import notify_pb2, notify_pb2_grpc
from firebreak.consumer import EventConsumer
from firebreak.database import create_engine
from firebreak.outbox import Outbox
from firebreak.runtime import ServiceProcess, run_service
from firebreak.settings import Settings
from services.notify import models
from services.notify.handlers import build_handlers
from services.notify.server import NotifyServicer


async def serve(settings: Settings) -> None:
    engine = create_engine(settings.database_url("notify"))
    outbox = Outbox(engine, models.outbox, poll_seconds=settings.outbox_poll_seconds)
    servicer = NotifyServicer(engine)
    await run_service(
        settings,
        ServiceProcess(
            name="notify",
            engine=engine,
            metadata=models.metadata,
            grpc_services=[notify_pb2.DESCRIPTOR.services_by_name["NotifyService"].full_name],
            register=lambda server: notify_pb2_grpc.add_NotifyServiceServicer_to_server(
                servicer, server
            ),
            outbox=outbox,
            consumer=EventConsumer(
                durable="notify",
                handlers=build_handlers(outbox=outbox),
                outbox=outbox,
                inbox=models.inbox,
                batch_size=settings.consumer_batch_size,
            ),
        ),
    )
