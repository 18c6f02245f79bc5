"""The gateway keeps who an API key is for a few seconds (services/gateway/principal_cache.py):
a busy key costs no database read per request, yet revoking it, or deactivating or changing its
person, takes effect from the very next request, in the replica that made the change at once
and in every other on the change's event; a key still expires on time, and a TTL of 0 reads
the key on every request.

Gateways here are the real application in this process (so that a test can count its reads),
on a real database and nats-server, without the services, which these routes do not call.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak import events
from firebreak.settings import Settings
from services.gateway.app import create_app
from services.gateway.keys import KeyHolder
from services.gateway.permissions import Principal, PrincipalKind
from services.gateway.principal_cache import PrincipalCache
from tests.conftest import NatsServer

ADMIN_KEY = "fbk_test_" + secrets.token_urlsafe(24)
# Longer than any wait below: what makes a cached key refused in time must be its drop, or the
# key's own expiry, never the cache's lapse.
LONG_TTL = 60.0
WAIT_SECONDS = 30.0


class KeyReads:
    """Counts the statements that read api_keys, as they reach the database driver."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "api_keys" in statement:
            self.count += 1


@dataclass
class Gateway:
    http: httpx.AsyncClient
    reads: KeyReads
    admin: dict[str, str]

    async def person(self, role: str = "responder", **key: Any) -> Holder:
        """A new person and a personal key of theirs."""
        email = f"{uuid.uuid4().hex[:12]}@example.com"
        added = await self.http.post(
            "/v1/people", json={"name": "Pat", "email": email, "role": role}, headers=self.admin
        )
        assert added.status_code == 201, added.text
        person_id = added.json()["id"]
        issued = await self.http.post(
            f"/v1/people/{person_id}/api-keys", json=key, headers=self.admin
        )
        assert issued.status_code == 201, issued.text
        return Holder(person_id, issued.json()["id"], bearer(issued.json()["key"]))

    async def own_record(self, holder: Holder) -> int:
        """The status of the holder reading their own person (a read of the database alone)."""
        response = await self.http.get(f"/v1/people/{holder.person_id}", headers=holder.headers)
        return response.status_code


@dataclass(frozen=True)
class Holder:
    person_id: str
    key_id: str
    headers: dict[str, str]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@asynccontextmanager
async def gateway(
    database_url: str,
    nats_url: str,
    var_dir: Path,
    environment: pytest.MonkeyPatch,
    *,
    cache_seconds: float,
) -> AsyncIterator[Gateway]:
    # The gateway migrates its database in a child process, which reads the environment.
    environment.setenv("FIREBREAK_VAR_DIR", str(var_dir))
    environment.setenv("FIREBREAK_GATEWAY_DATABASE_URL", database_url)
    settings = Settings(
        var_dir=var_dir,
        admin_key=ADMIN_KEY,
        scope_token_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        gateway_database_url=database_url,
        nats_url=nats_url,
        principal_cache_seconds=cache_seconds,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        reads = KeyReads(app.state.backends.engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield Gateway(http, reads, bearer(ADMIN_KEY))


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Polls `check` until it holds; fails after WAIT_SECONDS, well inside LONG_TTL."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {WAIT_SECONDS} s")
        await asyncio.sleep(0.05)


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture
async def one(
    new_database: Callable[[str], str],
    nats_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Gateway]:
    """A gateway whose cache outlives every wait here."""
    url = new_database("gateway")
    async with gateway(url, nats_url, tmp_path, monkeypatch, cache_seconds=LONG_TTL) as started:
        yield started


async def assert_cached(gateway: Gateway, holder: Holder) -> None:
    """The holder's requests succeed, the second without reading the key."""
    assert await gateway.own_record(holder) == 200
    reads = gateway.reads.count
    assert await gateway.own_record(holder) == 200
    assert gateway.reads.count == reads, "the second request read the key again"


async def test_a_revoked_key_is_refused_on_the_very_next_request(one: Gateway) -> None:
    holder = await one.person()
    await assert_cached(one, holder)
    revoked = await one.http.delete(f"/v1/api-keys/{holder.key_id}", headers=one.admin)
    assert revoked.status_code == 204
    assert await one.own_record(holder) == 401


async def test_a_deactivated_persons_key_is_refused_on_the_very_next_request(one: Gateway) -> None:
    holder = await one.person()
    await assert_cached(one, holder)
    changed = await one.http.patch(
        f"/v1/people/{holder.person_id}", json={"active": False}, headers=one.admin
    )
    assert changed.status_code == 200, changed.text
    assert await one.own_record(holder) == 401


async def test_a_new_role_applies_from_the_very_next_request(one: Gateway) -> None:
    holder = await one.person("admin")
    await assert_cached(one, holder)
    audit = await one.http.get("/v1/audit", params={"limit": 1}, headers=holder.headers)
    assert audit.status_code == 200
    changed = await one.http.patch(
        f"/v1/people/{holder.person_id}", json={"role": "responder"}, headers=one.admin
    )
    assert changed.status_code == 200, changed.text
    audit = await one.http.get("/v1/audit", params={"limit": 1}, headers=holder.headers)
    assert audit.status_code == 403  # the audit log is admins' alone
    assert await one.own_record(holder) == 200  # still staff


async def test_a_key_that_expires_while_cached_is_refused_once_it_expires(one: Gateway) -> None:
    expires_at = datetime.now(UTC) + timedelta(seconds=5)
    holder = await one.person(expires_at=expires_at.isoformat())
    await assert_cached(one, holder)

    async def refused() -> bool:
        return await one.own_record(holder) == 401

    await until(refused, "the expired key was still taken")
    assert datetime.now(UTC) >= expires_at


async def test_a_ttl_of_0_reads_the_key_on_every_request(
    new_database: Callable[[str], str],
    nats_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = new_database("gateway")
    async with gateway(url, nats_url, tmp_path, monkeypatch, cache_seconds=0) as one:
        holder = await one.person()
        for _ in range(3):
            reads = one.reads.count
            assert await one.own_record(holder) == 200
            assert one.reads.count == reads + 1


async def followers_of(nats_url: str, event_type: str) -> int:
    """How many consumers of the stream follow `event_type` alone."""
    client = await nats.connect(nats_url)
    try:
        consumers = await client.jetstream().consumers_info(events.STREAM)
    finally:
        await client.close()
    subject = events.subject_for(event_type)
    return sum(1 for consumer in consumers if consumer.config.filter_subject == subject)


@pytest.mark.postgres
async def test_a_change_in_one_gateway_reaches_another_on_its_event(
    postgres: Callable[[str], str],
    nats_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = postgres("gateway")
    async with (
        gateway(url, nats_url, tmp_path / "a", monkeypatch, cache_seconds=LONG_TTL) as one,
        gateway(url, nats_url, tmp_path / "b", monkeypatch, cache_seconds=LONG_TTL) as other,
    ):
        # Each follows from new events on: wait until both do, or the change would go unheard.
        for event_type in (events.API_KEY_REVOKED, events.PERSON_CHANGED):

            async def both_follow(event_type: str = event_type) -> bool:
                return await followers_of(nats_url, event_type) == 2

            await until(both_follow, f"two gateways following {event_type}")
        revoked, deactivated = await one.person(), await one.person()
        for holder in (revoked, deactivated):
            await assert_cached(other, holder)

        response = await one.http.delete(f"/v1/api-keys/{revoked.key_id}", headers=one.admin)
        assert response.status_code == 204
        assert await one.own_record(revoked) == 401

        async def revoked_refused() -> bool:
            return await other.own_record(revoked) == 401

        await until(revoked_refused, "the other gateway still took the revoked key")

        response = await one.http.patch(
            f"/v1/people/{deactivated.person_id}", json={"active": False}, headers=one.admin
        )
        assert response.status_code == 200, response.text

        async def deactivated_refused() -> bool:
            return await other.own_record(deactivated) == 401

        await until(deactivated_refused, "the other gateway still took the deactivated key")


# --- The cache's own rules, on a clock of the test's ---------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def holder_of(key_id: str, person_id: str | None = None) -> KeyHolder:
    principal = Principal(
        kind=PrincipalKind.RESPONDER,
        id=person_id or key_id,
        name="Pat",
        client_id="operator",
        key_id=key_id,
        clients=None,
    )
    return KeyHolder(principal, last_used_at=None, expires_at=None)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_an_entry_lapses_after_the_ttl(clock: Clock) -> None:
    cache = PrincipalCache(5, clock=clock)
    cache.put("h", holder_of("k"), cache.generation())
    clock.now = 4.9
    assert cache.get("h") is not None
    clock.now = 5.0
    assert cache.get("h") is None


def test_an_entry_never_outlives_its_keys_expiry(clock: Clock) -> None:
    cache = PrincipalCache(60, clock=clock)
    expiring = holder_of("k")
    expiring = KeyHolder(
        expiring.principal, last_used_at=None, expires_at=datetime.now(UTC) + timedelta(seconds=2)
    )
    cache.put("h", expiring, cache.generation())
    clock.now = 2.0
    assert cache.get("h") is None


def test_a_read_begun_before_a_drop_is_not_kept(clock: Clock) -> None:
    """A request that read the key just before another revoked it must not cache what it read
    (the row as it was), or the drop would be undone until the TTL lapsed."""
    cache = PrincipalCache(60, clock=clock)
    generation = cache.generation()  # the request starts reading the key
    cache.drop_key("k")  # meanwhile another request revokes it
    cache.put("h", holder_of("k"), generation)
    assert cache.get("h") is None


def test_drops_take_only_what_they_name(clock: Clock) -> None:
    cache = PrincipalCache(60, clock=clock)
    for key_hash, key_id, person_id in (("a", "ka", "p"), ("b", "kb", "p"), ("c", "kc", "q")):
        cache.put(key_hash, holder_of(key_id, person_id), cache.generation())
    cache.drop_person("p")
    assert (cache.get("a"), cache.get("b")) == (None, None)
    assert cache.get("c") is not None
    cache.drop_key("kc")
    assert cache.get("c") is None


def test_the_oldest_entry_goes_when_full(clock: Clock) -> None:
    cache = PrincipalCache(60, max_entries=2, clock=clock)
    for key_hash in ("a", "b", "c"):
        cache.put(key_hash, holder_of(key_hash), cache.generation())
    assert cache.get("a") is None
    assert cache.get("b") is not None and cache.get("c") is not None
