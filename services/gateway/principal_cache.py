"""Who an API key is, kept for a few seconds per gateway replica, so that a busy key costs no
database read per request (issue 16).

Entries are keyed by the key's hash (never the key), live `FIREBREAK_PRINCIPAL_CACHE_SECONDS`
at most and never past the key's own expiry. Whatever changes a principal drops it at once:
the request that revokes a key or changes its person (a deactivation, a new role, wall or
name) drops it in its own replica once committed, before it answers; every other replica
drops it when that change's event arrives (`api_key.revoked`, `person.changed`), which each
follows for itself. Should a replica miss an event, the TTL bounds how long it trusts the
entry. Console sessions are not cached: they are read on every request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from firebreak import events
from services.gateway import bus_follower
from services.gateway.keys import KeyHolder

log = logging.getLogger(__name__)

# A bound on memory whatever the number of keys in use; beyond it the oldest entry goes.
MAX_ENTRIES = 4096
FOLLOWED = (events.API_KEY_REVOKED, events.PERSON_CHANGED)


@dataclass(frozen=True)
class _Entry:
    holder: KeyHolder
    fresh_until: float  # on `clock`


class PrincipalCache:
    def __init__(
        self,
        seconds: float,
        *,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._seconds = seconds
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        # Counts drops: a read of the database that began before one may have seen the row
        # as it was before the change, and is not kept (see `put`).
        self._drops = 0

    @property
    def enabled(self) -> bool:
        return self._seconds > 0

    def get(self, key_hash: str) -> KeyHolder | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        if entry.fresh_until <= self._clock():
            del self._entries[key_hash]
            return None
        return entry.holder

    def generation(self) -> int:
        """To take before reading a key from the database, and give back to `put`."""
        return self._drops

    def put(self, key_hash: str, holder: KeyHolder, generation: int) -> None:
        """Keeps what was read, unless something was dropped since `generation` was taken: the
        read may have been of a row as it was before that change."""
        if not self.enabled or generation != self._drops:
            return
        now = self._clock()
        fresh_until = now + self._seconds
        if holder.expires_at is not None:
            left = (holder.expires_at - datetime.now(UTC)).total_seconds()
            fresh_until = min(fresh_until, now + left)
        self._entries.pop(key_hash, None)  # re-inserted last: the dict is oldest first
        if len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key_hash] = _Entry(holder, fresh_until)

    def touched(self, key_hash: str, at: datetime) -> None:
        """The key's use was recorded `at`: no other request need record it for a minute."""
        entry = self._entries.get(key_hash)
        if entry is not None:
            holder = replace(entry.holder, last_used_at=at)
            self._entries[key_hash] = replace(entry, holder=holder)

    def drop_key(self, key_id: str) -> None:
        self._drop(lambda holder: holder.principal.key_id == key_id)

    def drop_person(self, person_id: str) -> None:
        self._drop(lambda holder: holder.principal.person_id == person_id)

    def clear(self) -> None:
        self._drop(lambda holder: True)

    def _drop(self, matches: Callable[[KeyHolder], bool]) -> None:
        # A scan: drops are rare (an admin's act) and the cache is small.
        self._drops += 1
        for key_hash in [key for key, entry in self._entries.items() if matches(entry.holder)]:
            del self._entries[key_hash]

    async def follow(self, nats: Callable[[], NATS | None], stopping: asyncio.Event) -> None:
        """Drops what other replicas' changes make stale, as their events arrive, until
        `stopping` (this replica's own arrive too: dropped already, they change nothing)."""
        if self.enabled:
            subjects = list(FOLLOWED)
            await bus_follower.follow(
                nats, subjects, self._on_message, stopping, purpose="the principal cache"
            )

    async def _on_message(self, message: Msg) -> None:
        try:
            envelope = events.parse_event(message.data, subject=message.subject)
        except Exception:
            # Which principal it was about cannot be told: forgetting them all is safe.
            log.warning("unreadable event on %s: principal cache cleared", message.subject)
            self.clear()
            return
        if envelope.type == events.API_KEY_REVOKED:
            self.drop_key(envelope.api_key_revoked.key_id)
        elif envelope.type == events.PERSON_CHANGED:
            self.drop_person(envelope.person_changed.person.id)
