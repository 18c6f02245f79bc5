"""Intake's composition root: builds its parts and hands them to the shared runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from firebreak.api.intake.v1 import intake_pb2, intake_pb2_grpc
from firebreak.consumer import IncidentOwners
from firebreak.database import create_engine
from firebreak.outbox import Outbox
from firebreak.runtime import ServiceProcess, run_service
from firebreak.settings import Settings
from firebreak.token_buckets import TokenBucket
from services.intake import handlers, models
from services.intake.heartbeats import HeartbeatWatch
from services.intake.inbound_mail import MailReports, serve_inbound_mail
from services.intake.server import IntakeServicer

Worker = tuple[str, Callable[[asyncio.Event], Coroutine[Any, Any, None]]]


async def serve(settings: Settings) -> None:
    engine = create_engine(settings.database_url("intake"))
    outbox = Outbox(engine, models.outbox, poll_seconds=settings.outbox_poll_seconds)
    # Each integration's token bucket, shared by its alerts, pings and mail.
    alert_buckets: dict[str, TokenBucket] = {}
    workers: list[Worker] = [
        ("heartbeat watch", HeartbeatWatch(engine, outbox, settings.heartbeat_tick_seconds).run)
    ]
    if settings.inbound_smtp_port:
        mail = MailReports(engine, outbox, alert_buckets, domain=settings.inbound_mail_domain)
        workers.append(("inbound mail", partial(serve_inbound_mail, settings, mail)))
    process = ServiceProcess(
        name="intake",
        engine=engine,
        outbox=outbox,
        servicer=IntakeServicer(
            engine,
            outbox,
            page_max_bytes=settings.list_page_max_bytes,
            alert_buckets=alert_buckets,
            mail_domain=settings.inbound_mail_domain,
            min_interval_seconds=settings.heartbeat_min_interval_seconds,
        ),
        add_servicer=intake_pb2_grpc.add_IntakeServiceServicer_to_server,
        grpc_service=intake_pb2.DESCRIPTOR.services_by_name["IntakeService"].full_name,
        handlers=handlers.build_handlers(outbox),
        inbox=models.inbox,
        owners=IncidentOwners(models.incidents.c.id, models.incidents.c.client_id),
        workers=tuple(workers),
    )
    await run_service(settings, process)
