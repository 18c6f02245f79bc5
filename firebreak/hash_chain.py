"""The encoding both of Firebreak's hash chains use (evidence's custody log and the gateway's
audit log): an entry's hash is SHA-256 over the UTF-8 bytes of its canonical JSON, which names
the previous entry's hash, so changing, removing, inserting or reordering any entry changes
every hash after it.

Canonical JSON here is keys sorted, no whitespace (separators "," and ":"), non-ASCII
characters as themselves: RFC 8785's form for objects of strings, integers, booleans, null,
nested objects and arrays, and no floats. Times are UTC ISO 8601 with microseconds and a Z
("2026-11-26T09:10:02.000000Z"). Pure: an offline verifier can use exactly this."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64  # the "previous hash" of a chain's first entry


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def timestamp(moment: datetime) -> str:
    """UTC, microseconds, Z. SQLite hands back naive datetimes: everything stored is UTC."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chained_hash(fields: Mapping[str, Any]) -> str:
    """An entry's hash: `fields` must include the previous entry's hash."""
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()
