"""Notify's composition root."""

from __future__ import annotations

import logging
from datetime import timedelta

from firebreak.ack_links import LinkMaker
from firebreak.api.notify.v1 import notify_pb2, notify_pb2_grpc
from firebreak.database import create_engine
from firebreak.outbox import Outbox
from firebreak.runtime import ServiceProcess, run_service
from firebreak.settings import Settings
from services.notify import models
from services.notify.channels import EmailSettings
from services.notify.channels.email import EmailChannel
from services.notify.contact_method_server import ContactMethodServicer
from services.notify.handlers import build_handlers
from services.notify.paging import Pager
from services.notify.policy_server import PolicyServicer
from services.notify.schedule_server import ScheduleServicer
from services.notify.server import NotifyServicer

log = logging.getLogger(__name__)


def email_channel(settings: Settings) -> EmailChannel | None:
    if settings.smtp_host is None:
        return None
    return EmailChannel(
        EmailSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=settings.smtp_password,
            from_address=settings.smtp_from,
        )
    )


def ack_link_maker(settings: Settings) -> LinkMaker | None:
    """Signs each page's one-click acknowledge link, pointing at the gateway's public URL."""
    if settings.link_secret is None:
        log.warning("FIREBREAK_LINK_SECRET is not set: pages carry no acknowledge link")
        return None
    return LinkMaker(
        secret=settings.link_secret,
        public_url=settings.gateway_public_url,
        lifetime=timedelta(minutes=settings.ack_link_minutes),
    )


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
        handlers=build_handlers(
            outbox=outbox,
            ack_lapse=timedelta(minutes=settings.ack_lapse_minutes)
            if settings.ack_lapse_minutes
            else None,
        ),
        inbox=models.inbox,
        more_servicers=(
            (
                ScheduleServicer(engine),
                notify_pb2_grpc.add_ScheduleServiceServicer_to_server,
                notify_pb2.DESCRIPTOR.services_by_name["ScheduleService"].full_name,
            ),
            (
                PolicyServicer(engine),
                notify_pb2_grpc.add_EscalationPolicyServiceServicer_to_server,
                notify_pb2.DESCRIPTOR.services_by_name["EscalationPolicyService"].full_name,
            ),
            (
                ContactMethodServicer(engine),
                notify_pb2_grpc.add_ContactMethodServiceServicer_to_server,
                notify_pb2.DESCRIPTOR.services_by_name["ContactMethodService"].full_name,
            ),
        ),
        workers=(
            (
                "paging",
                Pager(
                    engine, outbox, email=email_channel(settings), links=ack_link_maker(settings)
                ).run,
            ),
        ),
    )
    await run_service(settings, process)
