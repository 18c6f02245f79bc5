"""The paging phase's receivers, a process of their own: `python -m bench.receivers CONFIG_JSON`.

An SMTP server (aiosmtpd) and an HTTP server that verifies each POST's Standard Webhooks
signature with the endpoint's secret, as a receiver would. Both note the wall-clock time
(`time.time()`, comparable with the load process's send times) at which each page had fully
arrived, and print one JSON line per arrival on stdout:

- `{"ready": true}` once both listen;
- `{"channel": "email", "at", "to", "subject", "incident", "id"}`: `incident` is the mail's
  `X-Firebreak-Incident` header, `id` its Message-ID;
- `{"channel": "email_refused", "at", "to"}`: a recipient at `REFUSED_DOMAIN`, answered 550
  (a permanent refusal, so notify moves on to that person's next contact method at once);
- `{"channel": "webhook", "at", "incident", "reference", "priority", "id"}`: a verified POST
  (answered 204), `id` its `webhook-id`;
- `{"channel": "webhook_unverified", "at", "error"}`: a POST whose signature did not verify
  (answered 401).

They run apart from the harness so that its reading of the stream cannot delay the moment a page
is seen to arrive, and so that their CPU is not counted as the platform's.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from email.parser import BytesHeaderParser
from email.policy import default as email_policy
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

REFUSED_DOMAIN = "refused.bench.example"
HEAD_LIMIT = 64 * 1024
BODY_LIMIT = 1024 * 1024


def report(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class Mailbox:
    """aiosmtpd's handler: refuses REFUSED_DOMAIN, notes every mail it takes."""

    def __init__(self) -> None:
        self.headers = BytesHeaderParser(policy=email_policy)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower().endswith("@" + REFUSED_DOMAIN):
            report({"channel": "email_refused", "at": time.time(), "to": address})
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        at = time.time()  # aiosmtpd calls this once the whole message has been read
        mail = self.headers.parsebytes(envelope.original_content or b"")
        for recipient in envelope.rcpt_tos:
            report(
                {
                    "channel": "email",
                    "at": at,
                    "to": recipient,
                    "subject": str(mail["Subject"] or ""),
                    "incident": str(mail["X-Firebreak-Incident"] or ""),
                    "id": str(mail["Message-ID"] or ""),
                }
            )
        return "250 OK"


class WebhookReceiver:
    """A minimal HTTP/1.1 server (keep-alive, Content-Length bodies): notify's HTTP client reuses
    its connections, and a full framework would spend the CPU the platform is measured with."""

    def __init__(self, secret: str) -> None:
        self.webhook = Webhook(secret)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines[1:] if line)
                }
                length = int(headers.get("content-length", "0"))
                if length > BODY_LIMIT:
                    raise ValueError("body too large")
                body = await reader.readexactly(length)
                status = self.received(body, headers, at=time.time())
                writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
            ValueError,
        ):
            return  # the client closed the connection, or sent something that is not HTTP
        finally:
            writer.close()

    def received(self, body: bytes, headers: dict[str, str], *, at: float) -> str:
        try:
            payload = self.webhook.verify(body, headers)
            data = payload["data"]
        except (WebhookVerificationError, ValueError, KeyError, TypeError) as error:
            report({"channel": "webhook_unverified", "at": at, "error": repr(error)[:200]})
            return "401 Unauthorized"
        report(
            {
                "channel": "webhook",
                "at": at,
                "incident": data.get("incident_id"),
                "reference": data.get("reference"),
                "priority": data.get("priority"),
                "id": headers.get("webhook-id", ""),
            }
        )
        return "204 No Content"


async def run(config: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    mailbox = Mailbox()
    smtp = await loop.create_server(
        lambda: SMTP(mailbox, hostname="bench-receiver", loop=loop),
        "127.0.0.1",
        int(config["smtp_port"]),
    )
    http = await asyncio.start_server(
        WebhookReceiver(config["secret"]).serve,
        "127.0.0.1",
        int(config["http_port"]),
        limit=HEAD_LIMIT,
    )
    report({"ready": True})
    async with smtp, http:
        await stopping.wait()


def main() -> None:
    asyncio.run(run(json.loads(sys.argv[1])))


if __name__ == "__main__":
    main()
