"""Review's composition root."""

from __future__ import annotations

from firebreak.api.review.v1 import review_pb2, review_pb2_grpc
from firebreak.database import create_engine
from firebreak.outbox import Outbox
from firebreak.runtime import ServiceProcess, run_service
from firebreak.settings import Settings
from services.review import handlers, models
from services.review.server import ReviewServicer


async def serve(settings: Settings) -> None:
    engine = create_engine(settings.database_url("review"))
    outbox = Outbox(engine, models.outbox, poll_seconds=settings.outbox_poll_seconds)
    process = ServiceProcess(
        name="review",
        engine=engine,
        outbox=outbox,
        servicer=ReviewServicer(engine),
        add_servicer=review_pb2_grpc.add_ReviewServiceServicer_to_server,
        grpc_service=review_pb2.DESCRIPTOR.services_by_name["ReviewService"].full_name,
        handlers=handlers.HANDLERS,
        inbox=models.inbox,
    )
    await run_service(settings, process)
