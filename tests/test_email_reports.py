"""Reports by email (issue 14 §5) on the shared platform: a real SMTP client sends to intake's
listener; the mail opens an incident through the alert path, its attachments kept with it, and
what is not taken is refused with the SMTP reply a sending server understands."""

from __future__ import annotations

import hashlib
import smtplib
from typing import Any

import pytest

from firebreak.launcher import Platform
from tests.alert_client import incident_of
from tests.conftest import on_backend
from tests.gateway_client import Api, Tenant
from tests.inbound_mail_client import (
    SENDER,
    new_email_integration,
    report_mail,
    send,
    smtp,
    unknown_address,
    wire,
)
from tests.lifecycle_client import ok

PDF = b"%PDF-1.4\n% a log export\n" + bytes(range(256)) * 64


def attachments_of(api: Api, tenant: Tenant, incident_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ok(
        api.http.get(f"/v1/incidents/{incident_id}/attachments", headers=tenant.headers)
    )["items"]
    return items


def test_a_mail_opens_an_incident_with_its_attachment_and_the_same_mail_joins_it(
    platform: Platform, api: Api
) -> None:
    client = api.new_client("Mailing LLP")
    integration, address = new_email_integration(
        api, client.id, severity_mapping={"error": {"impact": "moderate", "urgency": "high"}}
    )
    assert address == f"{integration['key']}@localhost"
    assert integration["allowed_senders"] == ["@client.example"]
    message = report_mail(
        address,
        attachments=(("../../etc/bank-log.pdf", "application/pdf", PDF),),
        message_id="<payroll-0207@client.example>",
    )
    code, reply = send(platform, message)
    assert code == 250 and b"opened an incident" in reply, reply

    incident = incident_of(api, client, "payroll-0207@client.example")
    assert incident is not None
    assert incident["title"] == "Payroll export failed"
    assert incident["description"].startswith("The 02:00 payroll export to the bank failed twice.")
    assert "bank-log.pdf" in incident["description"]
    assert incident["reporter"] == {"name": "Ops Desk", "email": SENDER}
    assert (incident["impact"], incident["urgency"]) == ("moderate", "high")
    assert incident["labels"] == ["alert", "email"]
    assert len(incident["trace_id"]) == 32  # its trace starts at the listener

    (attachment,) = attachments_of(api, client, incident["id"])
    assert attachment["filename"] == "bank-log.pdf"  # never a path
    assert attachment["size_bytes"] == len(PDF)
    assert attachment["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert attachment["sender"] == SENDER
    download = api.http.get(
        f"/v1/incidents/{incident['id']}/attachments/{attachment['id']}", headers=client.headers
    )
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert 'filename="bank-log.pdf"' in download.headers["content-disposition"]

    # The same mail again (a sending server retrying, a person resending): the same incident,
    # counted, the file kept once.
    code, reply = send(platform, message)
    assert code == 250 and b"counted on its open incident" in reply, reply
    again = incident_of(api, client, "payroll-0207@client.example")
    assert again is not None and again["id"] == incident["id"] and again["alert_count"] == 2
    assert len(attachments_of(api, client, incident["id"])) == 1
    assert len(api.list_ids(client)) == 1
    # Another client's key learns nothing of them.
    other = api.new_client("Elsewhere LLP")
    path = f"/v1/incidents/{incident['id']}/attachments"
    assert api.http.get(path, headers=other.headers).status_code == 404
    assert api.http.get(f"{path}/{attachment['id']}", headers=other.headers).status_code == 404
    # The address holds the key: no log has it (aiosmtpd logs RCPT TO at INFO).
    assert str(integration["key"]) not in (platform.var_dir / "logs" / "intake.log").read_text()


@on_backend("sqlite", "platform")
def test_an_html_mail_is_read_as_text_and_one_without_a_message_id_is_known_by_its_subject(
    platform: Platform, api: Api
) -> None:
    client = api.new_client()
    _, address = new_email_integration(api, client.id, allowed=[SENDER])
    html = (
        "<html><head><style>p {color: red}</style></head><body><p>The <b>VPN</b> is down"
        "</p><script>alert('x')</script><p>Since 09:12 &amp; counting</p></body></html>"
    )
    message = report_mail(address, subject="VPN down", text=None, html=html)
    del message["Message-ID"]
    assert send(platform, message)[0] == 250
    assert send(platform, message)[0] == 250  # the same author and subject: the same report
    (incident_id,) = api.list_ids(client)
    incident = api.incident(client, incident_id)
    assert incident["description"].startswith("The VPN is down\n\nSince 09:12 & counting")
    assert "alert(" not in incident["description"] and "color" not in incident["description"]
    assert incident["alert_count"] == 2
    assert incident["dedup_key"].startswith("email-sha256:")


@on_backend("postgresql", "platform")
def test_mail_the_listener_does_not_take_is_refused_with_a_clear_reply(
    platform: Platform, api: Api
) -> None:
    client = api.new_client()
    integration, address = new_email_integration(api, client.id, allowed=[SENDER, "@ok.example"])

    # No integration has the address, or it is not of the domain: refused at RCPT TO.
    for to in (unknown_address(), unknown_address("elsewhere.example"), "postmaster@localhost"):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            send(platform, report_mail(to))
        ((code, reply),) = refused.value.recipients.values()
        assert code == 550 and reply.startswith(b"5.1.1 No such address"), reply

    # One recipient per message: the second waits for a transaction of its own.
    with smtp(platform) as session:
        session.ehlo("mx.client.example")
        session.mail(SENDER)
        assert session.rcpt(address)[0] == 250
        code, reply = session.rcpt(address)
        assert code == 452, reply

    # A sender the integration does not allow: 550 at the end of DATA, naming the address.
    stranger = report_mail(address, sender="Mallory <mallory@evil.example>")
    code, reply = send(platform, stranger)
    assert code == 550 and reply.startswith(b"5.7.1 mallory@evil.example may not report"), reply
    # A domain allowed whole lets any of its addresses in; a subdomain is another domain.
    assert send(platform, report_mail(address, sender="anyone@ok.example"))[0] == 250
    assert send(platform, report_mail(address, sender="a@sub.ok.example"))[0] == 550

    # A subject with an escape sequence: refused, not made the incident's title.
    code, reply = send(platform, report_mail(address, subject="Disk \x1b[31mfull"))
    assert code == 550 and b"U+001B" in reply, reply

    # Over FIREBREAK_INBOUND_MAIL_MAX_BYTES (10 MiB), sent without announcing its SIZE: 552.
    with smtp(platform) as session:
        session.ehlo("mx.client.example")
        session.mail(SENDER)
        session.rcpt(address)
        big = report_mail(
            address,
            attachments=(("dump.bin", "application/octet-stream", b"\0" * (8 * 1024 * 1024)),),
        )
        code, reply = session.data(wire(big))
        assert code == 552, reply

    # The only mail taken was the allowed domain's.
    assert len(api.list_ids(client)) == 1

    # A disabled integration's address is no one's.
    ok(api.http.post(f"/v1/integrations/{integration['id']}/disable", headers=api.admin.headers))
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send(platform, report_mail(address))


@on_backend("sqlite", "platform")
def test_an_email_integration_names_its_senders(api: Api) -> None:
    client = api.new_client()
    for settings in (
        {},  # no one could report to it
        {"allowed_senders": ["not an address"]},
        {"allowed_senders": ["@"]},
        {"allowed_senders": [SENDER], "interval_seconds": 60},
    ):
        body = {"client_id": client.id, "kind": "email", "name": "Mail"} | settings
        answer = api.http.post("/v1/integrations", json=body, headers=api.admin.headers)
        assert answer.status_code == 422, (settings, answer.text)
    events = {"client_id": client.id, "kind": "events_v2", "name": "x", "allowed_senders": [SENDER]}
    answer = api.http.post("/v1/integrations", json=events, headers=api.admin.headers)
    assert answer.status_code == 422, answer.text
    # Rotated, the key makes a new address; the old one is refused from then on.
    made, address = new_email_integration(api, client.id)
    rotated = ok(api.http.post(f"/v1/integrations/{made['id']}/rotate", headers=api.admin.headers))
    assert rotated["email_address"] == f"{rotated['key']}@localhost" != address
    listed = ok(api.http.get(f"/v1/integrations/{made['id']}", headers=api.admin.headers))
    assert listed["allowed_senders"] == ["@client.example"] and "email_address" not in listed
