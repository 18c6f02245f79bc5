"""One-click acknowledge links: notify signs one for each page, the gateway verifies it.

A link is `<public URL>/v1/ack/<token>`. The token is the whole credential: it names one
delivery of one page to one person about one incident, expires, and can be used once (the
gateway records each delivery id it was used for). Services never import each other, so both
sides use this module, keyed by the same FIREBREAK_LINK_SECRET.

The token, version 1:

    <payload>.<signature>

    payload    base64url, unpadded, of compact JSON with exactly the keys
               {"v": 1, "incident_id": str, "client_id": str, "person_id": str,
                "delivery_id": str, "exp": int (Unix seconds, UTC)}
    signature  base64url, unpadded, of HMAC-SHA256(key = the secret's UTF-8 bytes,
               message = b"firebreak-ack-link." + the payload's ASCII bytes)

The fixed prefix in the signed message keeps a signature made for this purpose from standing
for anything else signed with the same secret. Signatures are compared in constant time, and
a token is decoded only once its signature has been checked. A new format gets a new `v`;
a version this module does not know is not valid.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

VERSION = 1
PATH = "/v1/ack/"
SIGNING_CONTEXT = b"firebreak-ack-link."
MIN_SECRET_LENGTH = 32
# Three UUIDs, a client id and the rest come to about 330 characters; anything much longer
# was not made here, and is refused before any work is spent on it.
MAX_TOKEN_LENGTH = 1024
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_FIELDS = ("incident_id", "client_id", "person_id", "delivery_id")


class InvalidLink(Exception):
    """Not a token this platform made: altered, truncated, signed with another secret, or
    garbage. Says nothing about what it names."""


class ExpiredLink(Exception):
    """A genuine token whose time is up."""


@dataclass(frozen=True)
class AckClaim:
    """What a genuine token says: who may acknowledge which incident, for which page, until
    when."""

    incident_id: str
    client_id: str
    person_id: str
    delivery_id: str
    expires_at: datetime


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _signature(secret: str, payload: str) -> bytes:
    return hmac.new(
        secret.encode("utf-8"), SIGNING_CONTEXT + payload.encode("ascii"), hashlib.sha256
    ).digest()


def sign(claim: AckClaim, *, secret: str) -> str:
    """The token for `claim`."""
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"the link secret must be at least {MIN_SECRET_LENGTH} characters")
    body = {
        "v": VERSION,
        "incident_id": claim.incident_id,
        "client_id": claim.client_id,
        "person_id": claim.person_id,
        "delivery_id": claim.delivery_id,
        "exp": int(claim.expires_at.timestamp()),
    }
    payload = _encode(json.dumps(body, separators=(",", ":")).encode("utf-8"))
    return f"{payload}.{_encode(_signature(secret, payload))}"


def verify(token: str, *, secret: str | None, now: datetime) -> AckClaim:
    """The claim of a genuine, unexpired token; raises InvalidLink or ExpiredLink."""
    if not secret or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidLink
    payload, dot, signature = token.partition(".")
    if not dot or not _SEGMENT.fullmatch(payload) or not _SEGMENT.fullmatch(signature):
        raise InvalidLink
    try:
        given = _decode(signature)
    except (binascii.Error, ValueError):
        raise InvalidLink from None
    if not hmac.compare_digest(given, _signature(secret, payload)):
        raise InvalidLink
    claim = _claim(payload)
    if now >= claim.expires_at:
        raise ExpiredLink
    return claim


def _claim(payload: str) -> AckClaim:
    """The claim in a payload whose signature is good; anything unexpected is still refused."""
    try:
        body = json.loads(_decode(payload))
    except (binascii.Error, ValueError):
        raise InvalidLink from None
    if not isinstance(body, dict) or set(body) != {"v", "exp", *_FIELDS}:
        raise InvalidLink
    if body["v"] != VERSION or type(body["exp"]) is not int:
        raise InvalidLink
    if not all(isinstance(body[name], str) and body[name] for name in _FIELDS):
        raise InvalidLink
    try:
        expires_at = datetime.fromtimestamp(body["exp"], UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidLink from None
    return AckClaim(
        incident_id=body["incident_id"],
        client_id=body["client_id"],
        person_id=body["person_id"],
        delivery_id=body["delivery_id"],
        expires_at=expires_at,
    )


@dataclass(frozen=True)
class LinkMaker:
    """Notify's side: makes the link a page carries."""

    secret: str
    public_url: str  # the gateway as people reach it, without a trailing slash
    lifetime: timedelta

    def url(
        self, *, incident_id: str, client_id: str, person_id: str, delivery_id: str, now: datetime
    ) -> str:
        token = sign(
            AckClaim(
                incident_id=incident_id,
                client_id=client_id,
                person_id=person_id,
                delivery_id=delivery_id,
                expires_at=now + self.lifetime,
            ),
            secret=self.secret,
        )
        return f"{self.public_url.rstrip('/')}{PATH}{token}"
