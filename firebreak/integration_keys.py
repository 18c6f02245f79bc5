"""Integration keys (PagerDuty's routing keys): made by intake, which keeps only their hash, and
hashed by the gateway from what a sender presents, so the key itself reaches no service."""

from __future__ import annotations

import hashlib
import secrets

# 32 hexadecimal characters, as PagerDuty's integration keys are: senders that check a routing
# key's form accept it. 128 random bits.
KEY_LENGTH = 32
PREFIX_LENGTH = 8  # shown in lists, so that a person can tell which key a sender holds


def generate_key() -> str:
    return secrets.token_hex(KEY_LENGTH // 2)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
