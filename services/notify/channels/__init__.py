"""The channels notify delivers pages and updates through: email (SMTP), signed webhooks
(Standard Webhooks), Slack and Microsoft Teams incoming webhooks.

Every channel has one method, `deliver`, that either returns (the receiver took the message) or
raises `DeliveryFailed`, which says whether trying again later can help. Retrying, and when,
is the caller's business (`retry.backoff`); a channel makes exactly one attempt.

`delivery_id` names one delivery of one message to one target and stays the same across its
retries: it becomes the email's Message-ID and the webhook's `webhook-id`, so receivers can drop
a retry they already have.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import httpx

TargetKind = Literal["email", "webhook", "slack", "teams"]
TARGET_KINDS: tuple[TargetKind, ...] = ("email", "webhook", "slack", "teams")


@dataclass(frozen=True)
class Message:
    """What to say, already rendered for people: channels only arrange it, never reword it."""

    subject: str
    text: str
    html: str | None  # None: text only
    priority: str
    reference: str
    incident_id: str
    ack_url: str | None
    kind: str  # what it is for: "page", "status_update", "update_reminder", … (outgoing.py)


@dataclass(frozen=True)
class Target:
    """Where to say it: an email address, or the URL of a webhook, Slack or Teams receiver."""

    kind: TargetKind
    address: str
    # The webhook's signing secret (`whsec_` + base64); other kinds have none.
    secret: str | None = None
    name: str = ""


class DeliveryFailed(Exception):
    """One attempt did not deliver. The message says what went wrong (the status code, the SMTP
    reply, the timeout) and never carries a target's URL: Slack and Teams URLs are secrets."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Channel(Protocol):
    async def deliver(self, target: Target, message: Message, *, delivery_id: str) -> None: ...


@dataclass(frozen=True)
class EmailSettings:
    host: str = "localhost"
    port: int = 587
    # True: STARTTLS is required and nothing is sent in clear. False: no STARTTLS at all (a
    # relay on loopback or inside the cluster).
    starttls: bool = True
    username: str | None = None
    password: str | None = None
    from_address: str = "firebreak@localhost"
    # Bounds each SMTP step and the whole exchange.
    timeout: float = 10.0


@dataclass(frozen=True)
class ChannelSettings:
    email: EmailSettings = field(default_factory=EmailSettings)
    # Bounds one HTTP delivery from connecting to the last byte of the answer.
    http_timeout: float = 10.0


# Simple on purpose: one @, something on each side, a dot in the domain, no spaces or brackets.
# The mail server is the real judge; this only catches what is plainly not an address.
EMAIL_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\".]+")
# Letters, digits, - and _: safe as a Message-ID's left part and as a webhook-id, which the
# Standard Webhooks spec says must not contain a full stop (it delimits the signed content).
DELIVERY_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
# The spec asks for at least 24 random bytes in a symmetric signing secret.
MIN_SECRET_BYTES = 24


def validate_target(target: Target) -> None:
    """Raises ValueError naming what is wrong with a target; returns if it can be delivered to."""
    if target.kind not in TARGET_KINDS:
        raise ValueError(f"unknown target kind {target.kind!r}: expected one of {TARGET_KINDS}")
    if target.kind == "email":
        if not EMAIL_ADDRESS.fullmatch(target.address):
            raise ValueError(f"email target: {target.address!r} is not an email address")
    else:
        _validate_url(target)
    if target.kind == "webhook":
        _validate_webhook_secret(target.secret)
    if any(character in target.name for character in "\r\n"):
        raise ValueError(f"{target.kind} target: the name contains a line break")


def _validate_url(target: Target) -> None:
    if any(character.isspace() for character in target.address):
        raise ValueError(f"{target.kind} target: the URL contains whitespace")
    try:
        parts = urlsplit(target.address)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as error:
        raise ValueError(f"{target.kind} target: not a URL ({error})") from None
    if parts.scheme not in ("http", "https"):
        scheme = parts.scheme or "none"
        raise ValueError(f"{target.kind} target: the URL must be http or https, not {scheme}")
    if not parts.hostname:
        raise ValueError(f"{target.kind} target: the URL has no host")


def _validate_webhook_secret(secret: str | None) -> None:
    if not secret:
        raise ValueError("webhook target: a signing secret (whsec_…) is required")
    if not secret.startswith("whsec_"):
        raise ValueError("webhook target: the signing secret must start with whsec_")
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("webhook target: the signing secret is not base64 after whsec_") from None
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(
            f"webhook target: the signing secret has {len(key)} bytes, "
            f"at least {MIN_SECRET_BYTES} are required"
        )


def check_delivery_id(delivery_id: str) -> None:
    """Raises ValueError for a delivery id that cannot be a Message-ID part or a webhook-id."""
    if not DELIVERY_ID.fullmatch(delivery_id):
        raise ValueError(f"delivery id {delivery_id!r}: use 1 to 128 letters, digits, '-' or '_'")


def deliverable(target: Target, kind: TargetKind) -> Target:
    """The target, checked before a channel uses it. A target of another kind is a caller's
    mistake (ValueError); a malformed one is configuration that no retry will fix."""
    if target.kind != kind:
        raise ValueError(f"a {kind} channel cannot deliver to a {target.kind} target")
    try:
        validate_target(target)
    except ValueError as error:
        raise DeliveryFailed(str(error), retryable=False) from None
    return target


def channel_for(
    kind: TargetKind,
    *,
    settings: ChannelSettings,
    http_client: httpx.AsyncClient | None = None,
) -> Channel:
    """The channel that delivers to targets of this kind. HTTP channels use `http_client` when
    given (its connections are reused; its owner closes it), otherwise one client per delivery.
    """
    # Imported here because each channel module imports this module's types.
    from services.notify.channels.email import EmailChannel
    from services.notify.channels.slack import SlackChannel
    from services.notify.channels.teams import TeamsChannel
    from services.notify.channels.webhook import WebhookChannel

    if kind == "email":
        return EmailChannel(settings.email)
    if kind == "webhook":
        return WebhookChannel(timeout=settings.http_timeout, client=http_client)
    if kind == "slack":
        return SlackChannel(timeout=settings.http_timeout, client=http_client)
    if kind == "teams":
        return TeamsChannel(timeout=settings.http_timeout, client=http_client)
    raise ValueError(f"unknown target kind {kind!r}: expected one of {TARGET_KINDS}")
