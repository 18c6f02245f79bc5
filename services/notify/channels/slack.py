"""Slack incoming webhooks: a Block Kit message with a plain-text fallback.

`text` is what notifications and screen readers show; `blocks` is what the channel shows: a
header (the subject), a section (the text), a context line (reference, priority) and, when the
message has one, a button that opens the acknowledge URL. Slack answers 200 `ok`, or a 4xx
naming the problem (`invalid_payload`, `no_service`, `channel_is_archived`).
"""

from __future__ import annotations

from typing import Any

import httpx

from services.notify.channels import Message, Target, check_delivery_id, deliverable
from services.notify.channels.http_post import json_body, post_json

# Block Kit's limits: longer text makes Slack refuse the whole message.
HEADER_MAX = 150
SECTION_MAX = 3000
ACK_BUTTON = "Acknowledge"


def _truncated(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn_escaped(text: str) -> str:
    """Slack reads &, < and > as markup (links, mentions); rendered text means them literally."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(message: Message) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _truncated(message.subject, HEADER_MAX)},
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _truncated(_mrkdwn_escaped(message.text), SECTION_MAX),
            },
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _mrkdwn_escaped(f"{message.reference} · {message.priority}"),
                }
            ],
        },
    ]
    if message.ack_url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": ACK_BUTTON},
                        "url": message.ack_url,
                        "style": "primary",
                        "action_id": "acknowledge",
                    }
                ],
            }
        )
    # The fallback is read as mrkdwn too: escaped, or "<!channel>" in the text would ping.
    return {"text": _mrkdwn_escaped(f"{message.subject}\n{message.text}"), "blocks": blocks}


class SlackChannel:
    """POSTs a Block Kit message to a Slack incoming-webhook URL."""

    def __init__(self, *, timeout: float, client: httpx.AsyncClient | None = None) -> None:
        self._timeout = timeout
        self._client = client

    async def deliver(self, target: Target, message: Message, *, delivery_id: str) -> None:
        # Slack has no idempotency key for incoming webhooks; the id is checked for the
        # caller's sake all the same, so every channel refuses the same bad ids.
        check_delivery_id(delivery_id)
        deliverable(target, "slack")
        await post_json(
            target.address,
            json_body(slack_payload(message)),
            time_limit=self._timeout,
            client=self._client,
        )
