"""Notify's composition root."""

from __future__ import annotations

import logging
from datetime import timedelta

from firebreak.ack_links import LinkMaker
from firebreak.api.notify.v1 import (
    deadlines_pb2,
    deadlines_pb2_grpc,
    notify_pb2,
    notify_pb2_grpc,
    updates_pb2,
    updates_pb2_grpc,
)
from firebreak.consumer import IncidentOwners
from firebreak.database import create_engine
from firebreak.outbox import Outbox
from firebreak.runtime import ServiceProcess, run_service
from firebreak.settings import Settings
from services.notify import models
from services.notify.action_reminders import reminder_handlers
from services.notify.channels import EmailSettings
from services.notify.channels.email import EmailChannel
from services.notify.contact_method_server import ContactMethodServicer
from services.notify.deadline_server import DeadlineServicer
from services.notify.deadline_watch import DeadlineWatch
from services.notify.handlers import build_handlers
from services.notify.integrity_alerts import integrity_handlers
from services.notify.paging import Pager
from services.notify.policy_server import PolicyServicer
from services.notify.schedule_server import ScheduleServicer
from services.notify.server import NotifyServicer
from services.notify.status_updates import Posting
from services.notify.templating import Templates
from services.notify.update_cadence import Cadence
from services.notify.update_reminders import UpdateReminders
from services.notify.update_server import StatusUpdateServicer

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
    # Loaded and checked once: a firm's template that shows a client an internal field stops
    # notify here, naming the template and the field.
    templates = Templates.load(settings.template_dir)
    engine = create_engine(settings.database_url("notify"))
    outbox = Outbox(engine, models.outbox, poll_seconds=settings.outbox_poll_seconds)
    ack_lapse = (
        timedelta(minutes=settings.ack_lapse_minutes) if settings.ack_lapse_minutes else None
    )
    cadence = Cadence(settings.update_cadence)
    posting = Posting(outbox, templates, cadence, ack_lapse=ack_lapse, firm_name=settings.firm_name)
    process = ServiceProcess(
        name="notify",
        engine=engine,
        outbox=outbox,
        servicer=NotifyServicer(engine),
        add_servicer=notify_pb2_grpc.add_NotifyServiceServicer_to_server,
        grpc_service=notify_pb2.DESCRIPTOR.services_by_name["NotifyService"].full_name,
        handlers=build_handlers(
            outbox=outbox,
            ack_lapse=ack_lapse,
            cadence=cadence,
            reminder_leads=settings.deadline_reminder_leads,
        )
        # Review's action alarms remind the action's owner.
        | reminder_handlers(templates)
        # Evidence that failed verification pages the commander and the managers.
        | integrity_handlers(templates),
        inbox=models.inbox,
        owners=IncidentOwners(models.notifications.c.incident_id, models.notifications.c.client_id),
        more_servicers=(
            (
                ScheduleServicer(engine, page_max_bytes=settings.list_page_max_bytes),
                notify_pb2_grpc.add_ScheduleServiceServicer_to_server,
                notify_pb2.DESCRIPTOR.services_by_name["ScheduleService"].full_name,
            ),
            (
                PolicyServicer(engine, page_max_bytes=settings.list_page_max_bytes),
                notify_pb2_grpc.add_EscalationPolicyServiceServicer_to_server,
                notify_pb2.DESCRIPTOR.services_by_name["EscalationPolicyService"].full_name,
            ),
            (
                ContactMethodServicer(engine),
                notify_pb2_grpc.add_ContactMethodServiceServicer_to_server,
                notify_pb2.DESCRIPTOR.services_by_name["ContactMethodService"].full_name,
            ),
            (
                DeadlineServicer(engine, outbox, reminder_leads=settings.deadline_reminder_leads),
                deadlines_pb2_grpc.add_DeadlineServiceServicer_to_server,
                deadlines_pb2.DESCRIPTOR.services_by_name["DeadlineService"].full_name,
            ),
            (
                StatusUpdateServicer(engine, posting),
                updates_pb2_grpc.add_StatusUpdateServiceServicer_to_server,
                updates_pb2.DESCRIPTOR.services_by_name["StatusUpdateService"].full_name,
            ),
        ),
        workers=(
            (
                "paging",
                Pager(
                    engine,
                    outbox,
                    email=email_channel(settings),
                    templates=templates,
                    links=ack_link_maker(settings),
                ).run,
            ),
            (
                "deadlines",
                DeadlineWatch(outbox, templates, tick_seconds=settings.paging_tick_seconds).run,
            ),
            (
                "update reminders",
                UpdateReminders(
                    outbox, templates, cadence, tick_seconds=settings.paging_tick_seconds
                ).run,
            ),
        ),
    )
    await run_service(settings, process)
