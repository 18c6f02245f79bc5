"""What routes depend on: the backends, who the caller is, what they may do, and path ids.

Dependencies are async even where they need not be: FastAPI runs a plain `def` dependency in a
worker thread, a thread hop per request for nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from sqlalchemy.exc import SQLAlchemyError

from firebreak.database import reading
from firebreak.keyset_pages import ID, ID_PATTERN
from firebreak.scope_token import Scope, current_scope
from services.gateway import keys
from services.gateway.backends import Backends
from services.gateway.console import sessions
from services.gateway.permissions import Action, Grant, Principal, scope
from services.gateway.principal_cache import PrincipalCache
from services.gateway.problems import Problem
from services.gateway.rate_limits import RateLimiter

log = logging.getLogger(__name__)


async def get_backends(request: Request) -> Backends:
    backends: Backends = request.app.state.backends
    return backends


Services = Annotated[Backends, Depends(get_backends)]


async def get_page_max_bytes(request: Request) -> int:
    max_bytes: int = request.app.state.list_page_max_bytes
    return max_bytes


# FIREBREAK_LIST_PAGE_MAX_BYTES, for the lists the gateway pages itself.
PageMaxBytes = Annotated[int, Depends(get_page_max_bytes)]


async def get_principal_cache(request: Request) -> PrincipalCache:
    cache: PrincipalCache = request.app.state.principal_cache
    return cache


# What a route that changes a principal (revoking a key, changing a person) drops once its
# change is committed, so that this replica refuses or re-reads it from the next request on.
Principals = Annotated[PrincipalCache, Depends(get_principal_cache)]


async def authenticate(
    request: Request,
    backends: Services,
    cache: Principals,
    authorization: Annotated[str | None, Header()] = None,
) -> Principal:
    unauthorized = Problem(
        401,
        "A valid API key is required: Authorization: Bearer <key>.",
        headers={"WWW-Authenticate": "Bearer"},
    )
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise unauthorized
    if sessions.is_session_token(key.strip()):
        principal = await session_principal(request, backends, key.strip())
        if principal is None:
            raise unauthorized
        act_for(principal)
        return principal
    key_hash = keys.hash_key(key.strip())
    holder = cache.get(key_hash)
    if holder is None:
        generation = cache.generation()
        async with reading(backends.engine) as connection:
            holder = await keys.authenticate(connection, key_hash=key_hash)
        if holder is None:
            raise unauthorized
        cache.put(key_hash, holder, generation)
    now = datetime.now(UTC)
    if holder.touch_due(now):
        await _record_use(backends, holder.principal.key_id, now)
        cache.touched(key_hash, now)
    act_for(holder.principal)
    return holder.principal


async def session_principal(request: Request, backends: Backends, token: str) -> Principal | None:
    """Who a console session's token is (the console's pages present it as a bearer token to
    the API), unless the session ended or sat idle; recording that it was seen."""
    session = await console_session(request, backends, token)
    return None if session is None else session.principal


async def console_session(
    request: Request, backends: Backends, token: str
) -> sessions.Session | None:
    now = datetime.now(UTC)
    idle: timedelta = request.app.state.console_idle
    async with reading(backends.engine) as connection:
        session = await sessions.authenticate(connection, token=token, idle=idle, now=now)
    if session is not None and now - session.last_seen_at >= sessions.TOUCH_INTERVAL:
        # As for a key's use: its own short transaction, and a lost write is harmless.
        try:
            async with backends.engine.begin() as connection:
                await sessions.touch(connection, session_id=session.principal.key_id, now=now)
        except SQLAlchemyError:
            log.warning("could not record the use of a console session", exc_info=True)
    return session


def act_for(principal: Principal) -> None:
    """Makes the rest of the request's calls to the services carry `principal`'s scope token,
    holding the clients they may see: a client's its own client only, walled staff's the
    clients inside their wall and the firm's own, unwalled staff's every client. So a service
    refuses what the gateway's own checks (`authorize`) would: a walled staff member's reads ask
    for their wall's clients (incident_access.read_scope), never `all_clients`."""
    clients = principal.visible_clients()
    current_scope.set(Scope(subject=principal.id, role=principal.kind.value, clients=clients))


def act_across_walls(principal: Principal, action: Action) -> None:
    """For an action whose grant reaches every client whatever the principal's wall (an
    admin's dead letters, or anyone's contact methods): the rest of the request's calls carry a
    token of every client."""
    if scope(principal, action) is Grant.ALL:
        current_scope.set(Scope(subject=principal.id, role=principal.kind.value, clients=None))


async def _record_use(backends: Backends, key_id: str, now: datetime) -> None:
    # Its own short transaction, at most once a minute per key (keys.TOUCH_INTERVAL), so a busy
    # key costs no write per request. Losing one such write is harmless; failing the request
    # for it would not be.
    try:
        async with backends.engine.begin() as connection:
            await keys.touch(connection, key_id=key_id, now=now)
    except SQLAlchemyError:
        log.warning("could not record the use of API key %s", key_id, exc_info=True)


async def rate_limited(
    request: Request, principal: Annotated[Principal, Depends(authenticate)]
) -> Principal:
    """The caller, unless over its key's or its client's rate limit (429)."""
    limiter: RateLimiter = request.app.state.rate_limiter
    limiter.admit(principal)
    return principal


Caller = Annotated[Principal, Depends(rate_limited)]


def require(action: Action) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the caller, if they hold any grant for `action` (permissions.scope), for
    routes whose check needs no incident. SELF-scoped callers still need `authorize` on the
    object, or a listing narrowed to their own."""

    async def dependency(principal: Caller) -> Principal:
        scope(principal, action)
        return principal

    return dependency


def _known_id(value: str) -> str:
    # Ids are UUIDs (or "operator", "bootstrap"): anything else cannot exist, whatever the store
    # would say.
    if not ID.fullmatch(value):
        raise Problem(404, "Not found.")
    return value


async def incident_id_path(incident_id: str) -> str:
    return _known_id(incident_id)


async def client_id_path(client_id: str) -> str:
    return _known_id(client_id)


async def person_id_path(person_id: str) -> str:
    return _known_id(person_id)


async def key_id_path(key_id: str) -> str:
    return _known_id(key_id)


async def task_id_path(task_id: str) -> str:
    return _known_id(task_id)


async def schedule_id_path(schedule_id: str) -> str:
    return _known_id(schedule_id)


async def policy_id_path(policy_id: str) -> str:
    return _known_id(policy_id)


async def method_id_path(method_id: str) -> str:
    return _known_id(method_id)


async def deadline_id_path(deadline_id: str) -> str:
    return _known_id(deadline_id)


async def entry_id_path(entry_id: str) -> str:
    return _known_id(entry_id)


async def action_id_path(action_id: str) -> str:
    return _known_id(action_id)


IncidentId = Annotated[str, Depends(incident_id_path)]
ClientId = Annotated[str, Depends(client_id_path)]
PersonId = Annotated[str, Depends(person_id_path)]
KeyId = Annotated[str, Depends(key_id_path)]
TaskId = Annotated[str, Depends(task_id_path)]
ScheduleId = Annotated[str, Depends(schedule_id_path)]
PolicyId = Annotated[str, Depends(policy_id_path)]
MethodId = Annotated[str, Depends(method_id_path)]
DeadlineId = Annotated[str, Depends(deadline_id_path)]
EntryId = Annotated[str, Depends(entry_id_path)]
ActionId = Annotated[str, Depends(action_id_path)]
# An id given as a filter: a malformed one is a 422 naming the parameter.
IdFilter = Annotated[str | None, Query(pattern=ID_PATTERN)]

ClientManager = Annotated[Principal, Depends(require(Action.CLIENT_MANAGE))]
ClientReader = Annotated[Principal, Depends(require(Action.CLIENT_READ))]
PersonReader = Annotated[Principal, Depends(require(Action.PERSON_READ))]
PersonManager = Annotated[Principal, Depends(require(Action.PERSON_MANAGE))]
KeyIssuer = Annotated[Principal, Depends(require(Action.KEY_ISSUE))]
KeyLister = Annotated[Principal, Depends(require(Action.KEY_LIST))]
KeyRevoker = Annotated[Principal, Depends(require(Action.KEY_REVOKE))]
OnCallReader = Annotated[Principal, Depends(require(Action.ONCALL_READ))]
OnCallManager = Annotated[Principal, Depends(require(Action.ONCALL_MANAGE))]
