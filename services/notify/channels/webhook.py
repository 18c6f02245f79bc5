"""Signed webhooks as the Standard Webhooks spec describes them (standardwebhooks.com).

The body is `{"type": "incident.<kind>", "timestamp": …, "data": {…}}`; the headers are
`webhook-id` (the delivery id, the same on every retry, so a receiver can drop duplicates),
`webhook-timestamp` (this attempt, Unix seconds, which the receiver checks against replays) and
`webhook-signature`: `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` under the
target's `whsec_` secret. Any Standard Webhooks library verifies it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from services.notify.channels import Message, Target, check_delivery_id, deliverable
from services.notify.channels.http_post import json_body, post_json


def webhook_payload(message: Message, *, sent_at: datetime) -> dict[str, Any]:
    return {
        "type": f"incident.{message.kind}",
        # The message carries no time of its own, so this is when it was sent.
        "timestamp": sent_at.isoformat().replace("+00:00", "Z"),
        "data": {
            "incident_id": message.incident_id,
            "reference": message.reference,
            "priority": message.priority,
            "subject": message.subject,
            "text": message.text,
            "ack_url": message.ack_url,
        },
    }


def signed_headers(
    secret: str, *, delivery_id: str, sent_at: datetime, body: bytes
) -> dict[str, str]:
    # Whole seconds, as the spec's header has them, so the signature covers exactly the value
    # the receiver reads from the header.
    timestamp = datetime.fromtimestamp(int(sent_at.timestamp()), UTC)
    signature = Webhook(secret).sign(delivery_id, timestamp, body.decode())
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }


class WebhookChannel:
    """POSTs a signed JSON event to the target's URL."""

    def __init__(self, *, timeout: float, client: httpx.AsyncClient | None = None) -> None:
        self._timeout = timeout
        self._client = client

    async def deliver(self, target: Target, message: Message, *, delivery_id: str) -> None:
        check_delivery_id(delivery_id)
        deliverable(target, "webhook")
        assert target.secret is not None  # deliverable() refuses a webhook without one
        sent_at = datetime.now(UTC)
        body = json_body(webhook_payload(message, sent_at=sent_at))
        headers = signed_headers(target.secret, delivery_id=delivery_id, sent_at=sent_at, body=body)
        await post_json(
            target.address, body, headers=headers, time_limit=self._timeout, client=self._client
        )
