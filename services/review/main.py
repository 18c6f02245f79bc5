"""Review's composition root."""

from __future__ import annotations

from firebreak.api.review.v1 import review_pb2, review_pb2_grpc
from firebreak.consumer import EventConsumer
from firebreak.database import create_engine
from firebreak.outbox import Outbox
from firebreak.runtime import ServiceProcess, run_service
from firebreak.settings import Settings
from services.review import handlers, models
from services.review.server import ReviewServicer


async def serve(settings: Settings) -> None:
    engine = create_engine(settings.database_url("review"))
    outbox = Outbox(engine, models.outbox, poll_seconds=settings.outbox_poll_seconds)
    servicer = ReviewServicer(engine)
    await run_service(
        settings,
        ServiceProcess(
            name="review",
            engine=engine,
            metadata=models.metadata,
            grpc_services=[review_pb2.DESCRIPTOR.services_by_name["ReviewService"].full_name],
            register=lambda server: review_pb2_grpc.add_ReviewServiceServicer_to_server(
                servicer, server
            ),
            outbox=outbox,
            consumer=EventConsumer(
                durable="review",
                handlers=handlers.HANDLERS,
                outbox=outbox,
                inbox=models.inbox,
                batch_size=settings.consumer_batch_size,
            ),
        ),
    )
