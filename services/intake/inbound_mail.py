"""Intake's SMTP listener (issue 14 §5): reports by email, each sent to an email integration's
address, `<its key>@<FIREBREAK_INBOUND_MAIL_DOMAIN>`.

It runs in intake, beside its gRPC server (docs/architecture.md, "Reports by email"): a mail
becomes an alert trigger of the integration (`alerts.apply_all`), the path every alert takes, so
the same mail sent again counts on its incident, and the integration's token bucket limits mail
as it limits events. The SMTP replies say what happened:

- RCPT TO an address of another domain, or of no enabled email integration: 550 5.1.1; a second
  recipient in one transaction: 452 4.5.3 (the sending server sends it again on its own);
- a message over FIREBREAK_INBOUND_MAIL_MAX_BYTES: 552 (aiosmtpd, from the SIZE it advertises);
- a From: the integration does not allow: 550 5.7.1, naming the address;
- a message that cannot be read (mail_reports.py): 550 5.6.0;
- over the integration's rate, or the database unavailable: 451, so the sending server tries
  again later and nothing is lost; 250 only once the report is committed.

Each replica listens on the same port with SO_REUSEPORT, as gRPC's server does: on one host
(`make run`, the tests' replicas) the kernel spreads connections over them, as a Service spreads
them over pods.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from opentelemetry import trace
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from firebreak.api.events.v1.events_pb2 import AttachmentReceived
from firebreak.api.intake.v1.intake_pb2 import AlertEvent, AlertOutcome, Reporter
from firebreak.database import reading
from firebreak.errors import InvalidArgument
from firebreak.events import ATTACHMENT_RECEIVED, new_event, to_timestamp
from firebreak.integration_keys import KEY_LENGTH, hash_key
from firebreak.outbox import Outbox
from firebreak.settings import Settings
from firebreak.token_buckets import TokenBucket
from services.intake import alerts, integrations
from services.intake.alert_server import bucket_for
from services.intake.mail_reports import MailReport, Refused, may_report, read_report
from services.intake.models import report_attachments

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
# aiosmtpd logs every command line at INFO, RCPT TO included: the address holds the
# integration's key, which must never reach a log.
logging.getLogger("mail.log").setLevel(logging.WARNING)

KEY = re.compile(rf"[0-9a-f]{{{KEY_LENGTH}}}")
MAX_DESCRIPTION = alerts.MAX_DESCRIPTION
SEVERITY = "error"  # an email's; the integration's severity_mapping says what it means
UNAVAILABLE = "451 4.3.0 Firebreak could not take the report just now; try again later"
RESULTS = {
    "opened": "opened an incident",
    "added": "counted on its open incident",
    "reopened": "reopened its incident",
}


class MailReports:
    """aiosmtpd's handler: RCPT TO finds the integration, DATA makes the report."""

    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Outbox,
        buckets: dict[str, TokenBucket],
        *,
        domain: str,
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._buckets = buckets
        self._domain = domain.lower()

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if envelope.rcpt_tos:
            # One integration per message: the sending server delivers to the next in a
            # transaction of its own, so each report is taken or refused on its own.
            return "452 4.5.3 One recipient per message here; send to the others separately"
        try:
            integration = await self._integration(address)
        except Exception:
            log.exception("looking up an email integration failed")
            return UNAVAILABLE
        if integration is None:
            return (
                f"550 5.1.1 No such address: mail is taken for an email integration's "
                f"address at {self._domain} only"
            )
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        try:
            # Again: it may have been disabled, or its key rotated, since RCPT TO.
            integration = await self._integration(envelope.rcpt_tos[0])
        except Exception:
            log.exception("looking up an email integration failed")
            return UNAVAILABLE
        if integration is None:
            return "550 5.1.1 No such address: its integration was disabled or its key rotated"
        try:
            report = read_report(envelope.original_content or b"")
        except Refused as refused:
            log.info("a mail to %s was refused: %s", _label(integration), refused.reply)
            return refused.reply
        if not may_report(report.author_address, integration.allowed_senders):
            log.info(
                "a mail to %s from a sender it does not allow was refused", _label(integration)
            )
            return (
                f"550 5.7.1 {report.author_address} may not report to this address: the "
                f"integration takes mail from its allowed senders only"
            )
        wait = bucket_for(self._buckets, integration).refusal(time.monotonic())
        if wait:
            return f"451 4.7.1 Too many reports to this address; try again in {wait} s"
        try:
            # The report's trace starts here, as a reported incident's starts at the gateway.
            with tracer.start_as_current_span("report by email"):
                (outcome,) = await alerts.apply_all(
                    self._outbox,
                    alerts.Sender(integration),
                    [_event(report, integration)],
                    then=_keeping(report, integration, self._outbox),
                )
        except InvalidArgument as invalid:  # what a report is held to (service.validate_report)
            return f"550 5.6.0 The report is not one Firebreak can take: {invalid}"
        except Exception:
            log.exception("a report by email to %s was not recorded", _label(integration))
            return UNAVAILABLE
        return f"250 2.0.0 Report taken: it {RESULTS.get(outcome.result, outcome.result)}"

    async def _integration(self, address: str) -> Row[Any] | None:
        """The enabled email integration whose address this is."""
        local, _, domain = address.rpartition("@")
        local = local.lower()
        if domain.lower() != self._domain or not KEY.fullmatch(local):
            return None
        async with reading(self._engine) as connection:
            found = await connection.execute(
                integrations.FIND_BY_KEY, {"key_hash": hash_key(local), "kind": "email"}
            )
            return found.first()


def _label(integration: Row[Any]) -> str:
    """How a log names an integration: never by its address, which holds its key."""
    return f"integration {integration.id} (key {integration.key_prefix}…)"


def _event(report: MailReport, integration: Row[Any]) -> AlertEvent:
    """The mail as an alert trigger: subject the summary and title, body the description, the
    author the reporter, its Message-ID the dedup key."""
    summary = report.subject or f"Report by email from {report.author_address}"
    event = AlertEvent(
        action="trigger",
        dedup_key=report.dedup_key,
        summary=summary,
        severity=SEVERITY,
        source=report.author_address[: alerts.MAX_SOURCE],
        details_json=json.dumps(
            {
                "from": report.author_address,
                "subject": report.subject,
                "message_id": report.message_id,
                "attachments": [
                    {"filename": item.filename, "size": len(item.content), "sha256": item.sha256}
                    for item in report.attachments
                ],
            }
        ),
        description=_description(report, integration),
        reporter=Reporter(name=report.author_name, email=report.author_address),
    )
    if report.sent_at is not None:
        event.detected_at.CopyFrom(to_timestamp(report.sent_at))
    return event


def _description(report: MailReport, integration: Row[Any]) -> str:
    """The body, then where the report came from and what was attached."""
    kept = "; ".join(
        f"{item.filename} ({len(item.content)} bytes, SHA-256 {item.sha256})"
        for item in report.attachments
    )
    footer = (
        f"\n\n---\nReported by email from {report.author_name} <{report.author_address}> to "
        f"{integration.name}"
        + (f"; Message-ID <{report.message_id}>" if report.message_id else "")
        + (f".\nAttachments kept with the report: {kept}" if kept else ".")
    )
    footer = footer[: MAX_DESCRIPTION // 2]
    body = report.body or "(The message had no text.)"
    room = MAX_DESCRIPTION - len(footer)
    if len(body) > room:
        body = body[: room - 40] + f"\n[… {len(body) - room + 40} more characters]"
    return body + footer


KeepAttachments = Callable[[AsyncConnection, list[AlertOutcome], datetime], Awaitable[None]]


def _keeping(report: MailReport, integration: Row[Any], outbox: Outbox) -> KeepAttachments:
    """Keeps the mail's attachments with the incident it opened or counted on, in the alert's
    transaction, each with its attachment.received (the gateway collects it as evidence); a
    file the incident has already (the same mail sent again) is kept once."""

    async def keep(
        connection: AsyncConnection, outcomes: list[AlertOutcome], now: datetime
    ) -> None:
        incident_id = outcomes[0].incident_id
        for attachment in report.attachments:
            already = await connection.execute(
                select(report_attachments.c.id).where(
                    report_attachments.c.incident_id == incident_id,
                    report_attachments.c.sha256 == attachment.sha256,
                )
            )
            if already.first() is not None:
                continue
            attachment_id = str(uuid.uuid4())
            await connection.execute(
                report_attachments.insert().values(
                    id=attachment_id,
                    incident_id=incident_id,
                    client_id=integration.client_id,
                    integration_id=integration.id,
                    filename=attachment.filename,
                    content_type=attachment.content_type,
                    size_bytes=len(attachment.content),
                    sha256=attachment.sha256,
                    sender=report.author_address,
                    message_id=report.message_id[:255],
                    received_at=now,
                    content=attachment.content,
                )
            )
            await outbox.add(
                connection,
                new_event(
                    ATTACHMENT_RECEIVED,
                    incident_id=incident_id,
                    client_id=integration.client_id,
                    producer="intake",
                    occurred_at=now,
                    actor=alerts.Sender(integration).actor(),
                    payload=AttachmentReceived(
                        attachment_id=attachment_id,
                        filename=attachment.filename,
                        content_type=attachment.content_type,
                        size_bytes=len(attachment.content),
                        sha256=attachment.sha256,
                        sender=report.author_address,
                        message_id=report.message_id[:255],
                        subject=report.subject,
                    ),
                ),
            )

    return keep


async def serve_inbound_mail(
    settings: Settings, handler: MailReports, stopping: asyncio.Event
) -> None:
    """Takes mail on FIREBREAK_INBOUND_SMTP_HOST:PORT until `stopping` is set."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            handler,
            data_size_limit=settings.inbound_mail_max_bytes,
            enable_SMTPUTF8=True,
            hostname=settings.inbound_mail_domain,
            ident="Firebreak",
        ),
        host=settings.inbound_smtp_host,
        port=settings.inbound_smtp_port,
        reuse_port=True,
    )
    log.info(
        "taking reports by email on %s:%d for <key>@%s",
        settings.inbound_smtp_host,
        settings.inbound_smtp_port,
        settings.inbound_mail_domain,
    )
    try:
        await stopping.wait()
    finally:
        server.close()
        await server.wait_closed()
