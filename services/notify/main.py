"""Notify's composition root."""

from __future__ import annotations

from firebreak.api.notify.v1 import notify_pb2, notify_pb2_grpc
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
    process = ServiceProcess(
        name="notify",
        engine=engine,
        outbox=outbox,
        servicer=NotifyServicer(engine),
        add_servicer=notify_pb2_grpc.add_NotifyServiceServicer_to_server,
        grpc_service=notify_pb2.DESCRIPTOR.services_by_name["NotifyService"].full_name,
        handlers=build_handlers(outbox=outbox),
        inbox=models.inbox,
    )
    await run_service(settings, process)
