"""Microsoft Teams: an Adaptive Card posted to an incoming webhook or a Workflows webhook.

Both take the same message: `{"type": "message", "attachments": [one Adaptive Card]}`. The card
(schema version 1.4) has the subject, the text, the reference and priority as facts and, when the
message has one, an Action.OpenUrl to the acknowledge URL.
Incoming webhooks answer 200, Workflows 202; both are delivered.
"""

from __future__ import annotations

from typing import Any

import httpx

from services.notify.channels import Message, Target, check_delivery_id, deliverable
from services.notify.channels.http_post import json_body, post_json

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"
ACK_ACTION = "Acknowledge"


def adaptive_card(message: Message) -> dict[str, Any]:
    card: dict[str, Any] = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": [
            {
                "type": "TextBlock",
                "text": message.subject,
                "size": "Large",
                "weight": "Bolder",
                "wrap": True,
            },
            {"type": "TextBlock", "text": message.text, "wrap": True},
            {
                "type": "FactSet",
                "facts": [
                    {"title": "Reference", "value": message.reference},
                    {"title": "Priority", "value": message.priority},
                ],
            },
        ],
    }
    if message.ack_url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": ACK_ACTION, "url": message.ack_url}]
    return card


def teams_payload(message: Message) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": adaptive_card(message)}
        ],
    }


class TeamsChannel:
    """POSTs an Adaptive Card to a Teams incoming-webhook or Workflows URL."""

    def __init__(self, *, timeout: float, client: httpx.AsyncClient | None = None) -> None:
        self._timeout = timeout
        self._client = client

    async def deliver(self, target: Target, message: Message, *, delivery_id: str) -> None:
        # Teams has no idempotency key for webhooks; the id is checked so that every channel
        # refuses the same bad ids.
        check_delivery_id(delivery_id)
        deliverable(target, "teams")
        await post_json(
            target.address,
            json_body(teams_payload(message)),
            time_limit=self._timeout,
            client=self._client,
        )
