"""The scope token: who is calling a gRPC service through the gateway, and for which clients.

The gateway signs a short-lived JWT (Ed25519) for the principal a request is made for: a
client's holds its own client, a walled staff member's the clients inside their wall (and the
firm's own), unwalled staff's every client ("*"). Services hold only the public key, so a pod
that reaches a gRPC port, or a compromised service, cannot make one. A service refuses a request
whose `all_clients`, `client_id` or `client_ids` reach beyond the token's clients
(`check_request`), and, for a token that does not cover every client, an answer that names a
client beyond it (`check_response`; firebreak/grpc_scope.py says what else it checks). A
service verifies each token once and keeps its scope until it expires (`VerifiedTokens`).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

ISSUER = "firebreak-gateway"
ALGORITHM = "EdDSA"
ALL_CLIENTS = "*"
LIFETIME_SECONDS = 60
# A principal's token is reused for this long (signing one costs about 40 µs, verifying about
# 150 µs), so a token a service accepts always has at least 30 s left.
REUSE_SECONDS = 30
# Tokens kept, by the gateway (one per principal) and by a service (those it verified); beyond
# it the cache starts over.
CACHE_LIMIT = 4096
METADATA_KEY = "authorization"
CLIENT_FIELDS = frozenset({"all_clients", "client_id", "client_ids"})


class InvalidScopeToken(Exception):
    """A missing, malformed, expired or foreign token: the call is UNAUTHENTICATED."""


class OutOfScope(Exception):
    """A request for clients the token does not cover: the call is PERMISSION_DENIED."""


@dataclass(frozen=True)
class Scope:
    """Who calls, in which role, for which clients (None: every client)."""

    subject: str
    role: str
    clients: frozenset[str] | None

    def covers(self, client_id: str) -> bool:
        return self.clients is None or client_id in self.clients


# The scope of the request in progress; the gateway's authentication sets it, and its channels'
# interceptor reads it. Unset: the gateway's own calls, in SYSTEM_SCOPE.
current_scope: ContextVar[Scope | None] = ContextVar("current_scope", default=None)
# The gateway's calls on no principal's behalf (its status page asks only grpc.health, which
# needs no token): no client at all, so they can ask for nothing client-scoped.
SYSTEM_SCOPE = Scope(subject="gateway", role="system", clients=frozenset())


def private_key(text: str) -> Ed25519PrivateKey:
    """FIREBREAK_SCOPE_TOKEN_KEY's value: base64 of the 32-byte Ed25519 seed."""
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))


def public_key(text: str) -> Ed25519PublicKey:
    """FIREBREAK_SCOPE_TOKEN_PUBLIC_KEY's value: base64 of the 32-byte raw public key."""
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))


def public_key_text(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


class ScopeTokens:
    """Signs scope tokens, reusing each scope's for REUSE_SECONDS."""

    def __init__(self, key: Ed25519PrivateKey, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._clock = clock
        self._minted: dict[Scope, tuple[float, str]] = {}

    def token(self, scope: Scope) -> str:
        now = self._clock()
        minted = self._minted.get(scope)
        if minted is not None and now - minted[0] < REUSE_SECONDS:
            return minted[1]
        if len(self._minted) >= CACHE_LIMIT:
            self._minted.clear()
        issued = int(now)
        token = self.sign(scope, issued_at=issued, expires_at=issued + LIFETIME_SECONDS)
        self._minted[scope] = (issued, token)
        return token

    def sign(self, scope: Scope, *, issued_at: int, expires_at: int) -> str:
        claims = {
            "iss": ISSUER,
            "sub": scope.subject,
            "role": scope.role,
            "clients": ALL_CLIENTS if scope.clients is None else sorted(scope.clients),
            "iat": issued_at,
            "exp": expires_at,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)


def verify(key: Ed25519PublicKey, token: str) -> Scope:
    """The scope a token carries; InvalidScopeToken if it is not one the gateway signed, or it
    has expired."""
    return _scope(_claims(key, token))


def _claims(key: Ed25519PublicKey, token: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["iss", "sub", "iat", "exp"]},
        )
    except jwt.InvalidTokenError as error:
        raise InvalidScopeToken(f"invalid scope token: {error}") from None
    return claims


def _scope(claims: dict[str, Any]) -> Scope:
    clients = claims.get("clients")
    role = claims.get("role")
    if not isinstance(role, str):
        raise InvalidScopeToken("invalid scope token: no role")
    if clients == ALL_CLIENTS:
        return Scope(subject=claims["sub"], role=role, clients=None)
    if not isinstance(clients, list) or not all(isinstance(item, str) for item in clients):
        raise InvalidScopeToken("invalid scope token: clients must be a list or '*'")
    return Scope(subject=claims["sub"], role=role, clients=frozenset(clients))


class VerifiedTokens:
    """The scopes of tokens verified before, each kept until its token expires: verifying costs
    about 150 µs, and the gateway sends a principal the same token for REUSE_SECONDS. The cache
    is keyed by the whole token, signature included, so only the very token verified is found;
    beyond CACHE_LIMIT tokens it starts over."""

    def __init__(self, key: Ed25519PublicKey, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._clock = clock
        self._verified: dict[str, tuple[float, Scope]] = {}

    def scope(self, token: str) -> Scope:
        """The token's scope; InvalidScopeToken if it is not one the gateway signed, or it has
        expired (by this cache's clock as well as by the signature check's)."""
        now = self._clock()
        verified = self._verified.get(token)
        if verified is None:
            claims = _claims(self._key, token)
            verified = (float(claims["exp"]), _scope(claims))
            if len(self._verified) >= CACHE_LIMIT:
                self._verified.clear()
            self._verified[token] = verified
        expires_at, scope = verified
        if now >= expires_at:
            del self._verified[token]
            raise InvalidScopeToken("invalid scope token: Signature has expired")
        return scope


def bearer(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The token in a call's `authorization: Bearer <jwt>` metadata."""
    for key, value in metadata or ():
        if key == METADATA_KEY and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token:
                return token.strip()
    raise InvalidScopeToken("a scope token is required: authorization: Bearer <token>")


def check_request(scope: Scope, request: Message) -> None:
    """OutOfScope if the request, or a message inside it, asks for `all_clients` or names a
    client (`client_id`, `client_ids`) beyond the scope."""
    if scope.clients is not None and (beyond := _beyond(scope, request)):
        raise OutOfScope(beyond)


def check_response(scope: Scope, response: Message) -> None:
    """OutOfScope if an answer, or a message inside it, names a client beyond the scope: a
    read by id (which names no client) of another client's item, or a list with one."""
    if scope.clients is not None and (beyond := _beyond(scope, response)):
        raise OutOfScope(beyond)


def _beyond(scope: Scope, message: Message) -> str:
    """What in `message` reaches beyond the scope; "" if nothing does."""
    for field, value in message.ListFields():
        if field.name == "all_clients" and value and scope.clients is not None:
            return "all_clients is beyond the caller's scope"
        elif field.name == "client_id" and not scope.covers(value):
            return f"client {value} is beyond the caller's scope"
        elif field.name == "client_ids" and not all(map(scope.covers, value)):
            return "client_ids reach beyond the caller's scope"
        elif field.message_type is not None and holds_any(field.message_type, CLIENT_FIELDS):
            for inner in value if field.is_repeated else [value]:
                if beyond := _beyond(scope, inner):
                    return beyond
    return ""


_HOLDS: dict[tuple[str, frozenset[str]], bool] = {}


def holds_any(descriptor: Descriptor, names: frozenset[str]) -> bool:
    """Whether a message of this type can hold a field of one of `names`, itself or in a
    message inside it (map entries aside): the checks skip whatever cannot. Known per type once
    asked, so a check walks only the parts of a message that may name a client."""
    key = (descriptor.full_name, names)
    known = _HOLDS.get(key)
    if known is None:
        known = _HOLDS[key] = _reachable(descriptor, names)
    return known


def _reachable(descriptor: Descriptor, names: frozenset[str]) -> bool:
    seen, pending = set(), [descriptor]
    while pending:
        current = pending.pop()
        if current.full_name in seen or current.GetOptions().map_entry:
            continue
        seen.add(current.full_name)
        for field in current.fields:
            if field.name in names:
                return True
            if field.message_type is not None:
                pending.append(field.message_type)
    return False
