"""Notify's channels against real receivers on loopback: an aiosmtpd SMTP server, and a small
HTTP/1.1 server that records each request and answers as a test tells it (a status, or never).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from http import HTTPStatus
from typing import Any, cast

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from standardwebhooks import Webhook, WebhookVerificationError

from firebreak.launcher import free_port
from services.notify.channels import (
    Channel,
    ChannelSettings,
    DeliveryFailed,
    EmailSettings,
    Message,
    Target,
    TargetKind,
    channel_for,
    validate_target,
)
from services.notify.channels.email import EmailChannel
from services.notify.channels.retry import backoff
from services.notify.channels.slack import SlackChannel
from services.notify.channels.teams import TeamsChannel
from services.notify.channels.webhook import WebhookChannel

HTTP_TIMEOUT = 0.5
REFUSED = "gone@example.com"  # the SMTP server answers 550 for this recipient
BUSY = "busy@example.com"  # and 450 for this one
ACK_URL = "https://firebreak.example/ack/7f3c"


def a_message(**changes: Any) -> Message:
    message = Message(
        subject="[P1] ACME-42: VPN down",
        text="No one at ACME can connect to the VPN.",
        html="<p>No one at <b>ACME</b> can connect to the VPN.</p>",
        priority="P1",
        reference="ACME-42",
        incident_id="0f6c1b9e-2d4a-4c8e-9a51-3f2b7d6e8c10",
        ack_url=ACK_URL,
        kind="page",
    )
    return replace(message, **changes)


def a_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


# --- a real SMTP server --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    recipients: list[str]
    email: EmailMessage
    over_tls: bool


class RecordingHandler:
    """aiosmtpd handler: refuses two recipients (one for good, one for now), keeps the rest."""

    def __init__(self) -> None:
        self.received: list[ReceivedMail] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address == REFUSED:
            return "550 5.1.1 No such mailbox"
        if address == BUSY:
            return "450 4.2.1 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = cast(bytes, envelope.original_content)
        self.received.append(
            ReceivedMail(
                mail_from=cast(str, envelope.mail_from),
                recipients=list(envelope.rcpt_tos),
                email=cast(EmailMessage, message_from_bytes(content, policy=policy.default)),
                over_tls=session.ssl is not None,
            )
        )
        return "250 Message accepted for delivery"


@dataclass(frozen=True)
class SmtpServer:
    port: int
    handler: RecordingHandler

    def settings(self, **changes: Any) -> EmailSettings:
        defaults = EmailSettings(
            host="127.0.0.1",
            port=self.port,
            starttls=False,
            from_address="pager@firebreak.example",
            timeout=5.0,
        )
        return replace(defaults, **changes)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """aiosmtpd's Controller runs the server on its own thread and event loop. It has no TLS
    context, so it does not offer STARTTLS."""
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield SmtpServer(port=controller.port, handler=handler)
    finally:
        controller.stop()


async def test_email_arrives_as_text_and_html_with_its_ids(smtp_server: SmtpServer) -> None:
    channel = EmailChannel(smtp_server.settings())
    target = Target(kind="email", address="oncall@acme.example", name="ACME on-call")

    await channel.deliver(target, a_message(), delivery_id="dlv-1")

    [mail] = smtp_server.handler.received
    assert mail.mail_from == "pager@firebreak.example"
    assert mail.recipients == ["oncall@acme.example"]
    email = mail.email
    assert "ACME-42" in email["Subject"] and "P1" in email["Subject"]
    assert email["Subject"] == "[P1] ACME-42: VPN down"
    assert email["Message-ID"] == "<dlv-1@firebreak>"
    assert email["X-Firebreak-Incident"] == "0f6c1b9e-2d4a-4c8e-9a51-3f2b7d6e8c10"
    assert email["X-Firebreak-Reference"] == "ACME-42"
    assert email["To"].addresses[0].display_name == "ACME on-call"
    assert email.get_content_type() == "multipart/alternative"
    plain = email.get_body(preferencelist=("plain",))
    html = email.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    assert plain.get_content().strip() == "No one at ACME can connect to the VPN."
    assert "<b>ACME</b>" in html.get_content()
    # STARTTLS off: the server offers none and the mail went in clear, as configured.
    assert not mail.over_tls


async def test_a_retried_email_keeps_its_message_id(smtp_server: SmtpServer) -> None:
    channel = EmailChannel(smtp_server.settings())
    target = Target(kind="email", address="oncall@acme.example")

    for _ in range(2):
        await channel.deliver(target, a_message(), delivery_id="dlv-retried")

    assert [mail.email["Message-ID"] for mail in smtp_server.handler.received] == [
        "<dlv-retried@firebreak>"
    ] * 2


async def test_a_line_break_in_the_subject_cannot_start_a_header(smtp_server: SmtpServer) -> None:
    channel = EmailChannel(smtp_server.settings())
    subject = "[P1] ACME-42: VPN down\r\nBcc: everyone@acme.example"

    await channel.deliver(
        Target("email", "oncall@acme.example"), a_message(subject=subject), delivery_id="dlv-15"
    )

    [mail] = smtp_server.handler.received
    assert mail.email["Subject"] == "[P1] ACME-42: VPN down Bcc: everyone@acme.example"
    assert mail.email["Bcc"] is None and mail.recipients == ["oncall@acme.example"]


async def test_a_550_reply_is_permanent(smtp_server: SmtpServer) -> None:
    channel = EmailChannel(smtp_server.settings())

    with pytest.raises(DeliveryFailed) as failure:
        await channel.deliver(Target("email", REFUSED), a_message(), delivery_id="dlv-2")

    assert not failure.value.retryable
    assert "550" in str(failure.value)
    assert smtp_server.handler.received == []


async def test_a_450_reply_is_worth_retrying(smtp_server: SmtpServer) -> None:
    channel = EmailChannel(smtp_server.settings())

    with pytest.raises(DeliveryFailed) as failure:
        await channel.deliver(Target("email", BUSY), a_message(), delivery_id="dlv-3")

    assert failure.value.retryable
    assert "450" in str(failure.value)


async def test_required_starttls_that_the_server_lacks_sends_nothing(
    smtp_server: SmtpServer,
) -> None:
    channel = EmailChannel(smtp_server.settings(starttls=True))

    with pytest.raises(DeliveryFailed) as failure:
        await channel.deliver(Target("email", "oncall@acme.example"), a_message(), delivery_id="x")

    assert not failure.value.retryable
    assert "STARTTLS" in str(failure.value)
    assert smtp_server.handler.received == []


async def test_email_with_nothing_listening_is_worth_retrying() -> None:
    settings = EmailSettings(host="127.0.0.1", port=free_port(), starttls=False, timeout=5.0)

    with pytest.raises(DeliveryFailed) as failure:
        await EmailChannel(settings).deliver(
            Target("email", "oncall@acme.example"), a_message(), delivery_id="dlv-4"
        )

    assert failure.value.retryable


async def test_a_silent_smtp_server_times_out_worth_retrying() -> None:
    connections: list[asyncio.StreamWriter] = []

    async def never_greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)  # and say nothing

    server = await asyncio.start_server(never_greet, "127.0.0.1", free_port())
    port = server.sockets[0].getsockname()[1]
    settings = EmailSettings(host="127.0.0.1", port=port, starttls=False, timeout=HTTP_TIMEOUT)
    try:
        async with asyncio.timeout(10):  # only a guard against a hung test
            with pytest.raises(DeliveryFailed) as failure:
                await EmailChannel(settings).deliver(
                    Target("email", "oncall@acme.example"), a_message(), delivery_id="dlv-5"
                )
    finally:
        server.close()
        for connection in connections:
            connection.close()
        await server.wait_closed()

    assert failure.value.retryable
    assert "within" in str(failure.value) or "Timed out" in str(failure.value)


# --- a real HTTP server --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpReceiver:
    """A minimal HTTP/1.1 server: reads a request, records it, then answers `status`, or, with
    `hang`, never answers until the receiver stops."""

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self.status = 200
        self.hang = False
        self._stopping = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", free_port())

    async def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.close()
            # Python 3.11's server leaves open connections open: a hanging one is closed here.
            for connection in self._connections:
                connection.close()
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/hooks/secret-path"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            method, path, _ = (await reader.readline()).decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(ReceivedRequest(method, path, headers, body))
            if self.hang:
                await self._stopping.wait()
                return
            answer = b"ok" if 200 <= self.status < 300 else b"refused by the test receiver"
            writer.write(
                f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}\r\n"
                f"Content-Type: text/plain\r\nContent-Length: {len(answer)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + answer
            )
            await writer.drain()
        finally:
            self._connections.discard(writer)
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    receiver = HttpReceiver()
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


def http_target(kind: TargetKind, url: str) -> Target:
    return Target(kind=kind, address=url, secret=a_secret() if kind == "webhook" else None)


def http_channel(kind: TargetKind) -> Channel:
    if kind == "webhook":
        return WebhookChannel(timeout=HTTP_TIMEOUT)
    if kind == "slack":
        return SlackChannel(timeout=HTTP_TIMEOUT)
    return TeamsChannel(timeout=HTTP_TIMEOUT)


def signed_as_the_spec_says(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Standard Webhooks verification written from the spec, not from the library: HMAC-SHA256
    under the base64 key after `whsec_`, over `{webhook-id}.{webhook-timestamp}.{body}`, sent
    as a space-separated list of `v1,<base64>`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = hmac.new(key, signed, hashlib.sha256).digest()
    for entry in headers["webhook-signature"].split(" "):
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(base64.b64decode(signature), expected):
            return True
    return False


async def test_webhook_is_signed_as_standard_webhooks_says(receiver: HttpReceiver) -> None:
    secret = a_secret()
    target = Target(kind="webhook", address=receiver.url, secret=secret)

    await WebhookChannel(timeout=HTTP_TIMEOUT).deliver(target, a_message(), delivery_id="dlv-6")

    [request] = receiver.requests
    assert request.method == "POST" and request.path == "/hooks/secret-path"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == "dlv-6"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    # As a receiver would, with the reference library (which also checks the timestamp)...
    payload = Webhook(secret).verify(request.body, request.headers)
    # ...and independently, from the spec.
    assert signed_as_the_spec_says(secret, request.headers, request.body)
    assert payload["type"] == "incident.page"
    assert payload["timestamp"].endswith("Z")
    assert payload["data"] == {
        "incident_id": "0f6c1b9e-2d4a-4c8e-9a51-3f2b7d6e8c10",
        "reference": "ACME-42",
        "priority": "P1",
        "subject": "[P1] ACME-42: VPN down",
        "text": "No one at ACME can connect to the VPN.",
        "ack_url": ACK_URL,
    }


async def test_a_tampered_webhook_fails_verification(receiver: HttpReceiver) -> None:
    secret = a_secret()
    target = Target(kind="webhook", address=receiver.url, secret=secret)
    await WebhookChannel(timeout=HTTP_TIMEOUT).deliver(
        target, a_message(kind="update"), delivery_id="dlv-7"
    )
    [request] = receiver.requests
    tampered = request.body.replace(b'"P1"', b'"P4"')
    assert tampered != request.body

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, request.headers)
    assert not signed_as_the_spec_says(secret, request.headers, tampered)
    # Under another secret even the untouched body fails.
    with pytest.raises(WebhookVerificationError):
        Webhook(a_secret()).verify(request.body, request.headers)
    assert request.json()["type"] == "incident.update"


async def test_a_retried_webhook_keeps_its_id(receiver: HttpReceiver) -> None:
    target = Target(kind="webhook", address=receiver.url, secret=a_secret())
    channel = WebhookChannel(timeout=HTTP_TIMEOUT)

    for _ in range(2):
        await channel.deliver(target, a_message(kind="reminder"), delivery_id="dlv-8")

    assert [request.headers["webhook-id"] for request in receiver.requests] == ["dlv-8"] * 2


async def test_slack_gets_blocks_and_an_acknowledge_button(receiver: HttpReceiver) -> None:
    await SlackChannel(timeout=HTTP_TIMEOUT).deliver(
        Target(kind="slack", address=receiver.url), a_message(), delivery_id="dlv-9"
    )

    payload = receiver.requests[0].json()
    assert "[P1] ACME-42: VPN down" in payload["text"]  # the notification's fallback
    blocks = payload["blocks"]
    assert [block["type"] for block in blocks] == ["header", "section", "context", "actions"]
    assert blocks[0]["text"] == {"type": "plain_text", "text": "[P1] ACME-42: VPN down"}
    assert blocks[1]["text"]["text"] == "No one at ACME can connect to the VPN."
    [button] = blocks[3]["elements"]
    assert button["type"] == "button" and button["url"] == ACK_URL


async def test_slack_without_an_ack_url_has_no_button(receiver: HttpReceiver) -> None:
    await SlackChannel(timeout=HTTP_TIMEOUT).deliver(
        Target(kind="slack", address=receiver.url),
        a_message(ack_url=None, text="a <!channel> & co"),
        delivery_id="dlv-10",
    )

    payload = receiver.requests[0].json()
    blocks = payload["blocks"]
    assert "actions" not in [block["type"] for block in blocks]
    # Rendered text is shown as written, not read as Slack markup (no @channel ping).
    assert blocks[1]["text"]["text"] == "a &lt;!channel&gt; &amp; co"
    assert payload["text"].endswith("a &lt;!channel&gt; &amp; co")


async def test_teams_gets_an_adaptive_card_that_opens_the_ack_url(
    receiver: HttpReceiver,
) -> None:
    await TeamsChannel(timeout=HTTP_TIMEOUT).deliver(
        Target(kind="teams", address=receiver.url), a_message(), delivery_id="dlv-11"
    )

    payload = receiver.requests[0].json()
    assert payload["type"] == "message"
    [attachment] = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    texts = [item["text"] for item in card["body"] if item["type"] == "TextBlock"]
    assert texts == ["[P1] ACME-42: VPN down", "No one at ACME can connect to the VPN."]
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Acknowledge", "url": ACK_URL}]


@pytest.mark.parametrize("kind", ["webhook", "slack", "teams"])
@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (500, True),
        (503, True),
        (408, True),
        (429, True),
        (400, False),
        (404, False),
        (410, False),
        (302, False),  # redirects are not followed: the URL needs updating
    ],
)
async def test_refusals_say_whether_to_retry(
    receiver: HttpReceiver, kind: TargetKind, status: int, retryable: bool
) -> None:
    receiver.status = status

    with pytest.raises(DeliveryFailed) as failure:
        await http_channel(kind).deliver(
            http_target(kind, receiver.url), a_message(), delivery_id="dlv-12"
        )

    assert failure.value.retryable is retryable
    assert str(status) in str(failure.value)
    assert "secret-path" not in str(failure.value)  # Slack and Teams URLs are secrets
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("kind", ["webhook", "slack", "teams"])
async def test_a_receiver_that_never_answers_times_out_worth_retrying(
    receiver: HttpReceiver, kind: TargetKind
) -> None:
    receiver.hang = True

    async with asyncio.timeout(10):  # only a guard against a hung test
        with pytest.raises(DeliveryFailed) as failure:
            await http_channel(kind).deliver(
                http_target(kind, receiver.url), a_message(), delivery_id="dlv-13"
            )

    assert failure.value.retryable
    assert f"no answer within {HTTP_TIMEOUT} s" in str(failure.value)


@pytest.mark.parametrize("kind", ["webhook", "slack", "teams"])
async def test_http_with_nothing_listening_is_worth_retrying(kind: TargetKind) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"

    with pytest.raises(DeliveryFailed) as failure:
        await http_channel(kind).deliver(http_target(kind, url), a_message(), delivery_id="d")

    assert failure.value.retryable


async def test_channels_from_settings_share_a_given_http_client(receiver: HttpReceiver) -> None:
    settings = ChannelSettings(http_timeout=HTTP_TIMEOUT)
    kinds: tuple[TargetKind, ...] = ("webhook", "slack", "teams")
    async with httpx.AsyncClient() as client:
        for kind in kinds:
            channel = channel_for(kind, settings=settings, http_client=client)
            await channel.deliver(http_target(kind, receiver.url), a_message(), delivery_id="d")

    assert len(receiver.requests) == 3
    assert isinstance(channel_for("email", settings=settings), EmailChannel)


# --- what a channel refuses before sending -------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "complaint"),
    [
        (Target("email", "not-an-address"), "not an email address"),
        (Target("email", "two@@example.com"), "not an email address"),
        (Target("email", "oncall@example.com\r\nBcc: x@evil.example"), "not an email address"),
        (Target("slack", "ftp://hooks.example/x"), "http or https"),
        (Target("teams", "hooks.example/x"), "http or https"),
        (Target("slack", "https:///no-host"), "no host"),
        (Target("teams", "https://hooks.example/a b"), "whitespace"),
        (Target("webhook", "https://hooks.example/x"), "signing secret"),
        (Target("webhook", "https://hooks.example/x", secret="not-whsec"), "whsec_"),
        (Target("webhook", "https://hooks.example/x", secret="whsec_!!!"), "base64"),
        (Target("webhook", "https://hooks.example/x", secret="whsec_c2hvcnQ="), "at least 24"),
        (Target(cast(TargetKind, "pager"), "555"), "unknown target kind"),
    ],
)
def test_validate_target_names_what_is_wrong(target: Target, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        validate_target(target)


def test_validate_target_accepts_good_targets() -> None:
    validate_target(Target("email", "oncall@acme.example", name="ACME on-call"))
    validate_target(Target("slack", "https://hooks.slack.com/services/T0/B0/x"))
    validate_target(Target("teams", "http://127.0.0.1:8080/teams"))
    validate_target(Target("webhook", "https://hooks.example/x", secret=a_secret()))


async def test_an_invalid_target_is_a_permanent_failure(receiver: HttpReceiver) -> None:
    with pytest.raises(DeliveryFailed) as failure:
        await WebhookChannel(timeout=HTTP_TIMEOUT).deliver(
            Target("webhook", receiver.url), a_message(), delivery_id="dlv-14"
        )

    assert not failure.value.retryable
    assert receiver.requests == []


@pytest.mark.parametrize("delivery_id", ["", "has.a.dot", "has space", "<angle>", "x" * 129])
async def test_a_delivery_id_that_cannot_be_an_id_is_refused(
    receiver: HttpReceiver, delivery_id: str
) -> None:
    target = Target(kind="webhook", address=receiver.url, secret=a_secret())
    with pytest.raises(ValueError, match="delivery id"):
        await WebhookChannel(timeout=HTTP_TIMEOUT).deliver(
            target, a_message(), delivery_id=delivery_id
        )
    assert receiver.requests == []


async def test_a_channel_refuses_a_target_of_another_kind() -> None:
    with pytest.raises(ValueError, match="slack channel cannot deliver to a teams target"):
        await SlackChannel(timeout=HTTP_TIMEOUT).deliver(
            Target("teams", "https://hooks.example/x"), a_message(), delivery_id="d"
        )


# --- backoff -------------------------------------------------------------------------------------


def test_backoff_stays_within_its_exponential_ceiling() -> None:
    rng = random.Random(7)
    for attempt in range(12):
        ceiling = min(60.0, 0.5 * 2**attempt)
        waits = [backoff(attempt, base=0.5, cap=60.0, rng=rng) for _ in range(500)]
        assert all(0.0 <= wait <= ceiling for wait in waits)
        # Full jitter: the draws cover the whole range up to the ceiling, not a band near it.
        assert min(waits) < 0.1 * ceiling and max(waits) > 0.9 * ceiling


def test_backoff_grows_then_holds_at_the_cap() -> None:
    rng = random.Random(11)

    def mean_wait(attempt: int) -> float:
        return sum(backoff(attempt, base=1.0, cap=30.0, rng=rng) for _ in range(2000)) / 2000

    means = [mean_wait(attempt) for attempt in range(8)]
    assert means[:5] == sorted(means[:5])  # ceilings 1, 2, 4, 8, 16: each mean about doubles
    assert means[4] > 3 * means[2]
    assert 13 < means[6] < 17 and 13 < means[7] < 17  # capped at 30: a mean of about 15
    assert backoff(10_000, base=1.0, cap=30.0, rng=rng) <= 30.0  # no overflow far past the cap


def test_backoff_is_reproducible_and_checks_its_arguments() -> None:
    first = [backoff(n, base=0.1, cap=5.0, rng=random.Random(3)) for n in range(6)]
    second = [backoff(n, base=0.1, cap=5.0, rng=random.Random(3)) for n in range(6)]
    assert first == second
    for attempt, base, cap in [(-1, 1.0, 2.0), (0, 0.0, 2.0), (0, 3.0, 2.0)]:
        with pytest.raises(ValueError):
            backoff(attempt, base=base, cap=cap, rng=random.Random())
