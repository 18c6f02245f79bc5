"""API keys as their holders see them: listing (never the key or its hash) and revoking.
Issuing lives with what a key belongs to: routers/clients.py and routers/people.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from firebreak.database import reading
from firebreak.errors import NotFound
from services.gateway import audit, keys, schemas
from services.gateway.dependencies import (
    IdFilter,
    KeyId,
    KeyLister,
    KeyRevoker,
    PageMaxBytes,
    Principals,
    Services,
)
from services.gateway.permissions import Action, Grant, authorize, scope

router = APIRouter(tags=["api keys"])


@router.get("/v1/api-keys", response_model=schemas.ApiKeyPage)
async def list_api_keys(
    caller: KeyLister,
    services: Services,
    max_bytes: PageMaxBytes,
    person_id: IdFilter = None,
    client_id: IdFilter = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> schemas.ApiKeyPage:
    """Keys newest first, revoked ones included: an admin sees every key, anyone else only
    their own (a client system's key: only itself)."""
    only_own = scope(caller, Action.KEY_LIST) is Grant.SELF
    async with reading(services.engine) as connection:
        items, next_cursor = await keys.list_keys(
            connection,
            only_of=caller if only_own else None,
            person_id=person_id,
            client_id=client_id,
            limit=limit,
            cursor=cursor,
            max_bytes=max_bytes,
        )
    return schemas.ApiKeyPage(
        items=[schemas.ApiKeyInfo.model_validate(item) for item in items], next_cursor=next_cursor
    )


@router.delete("/v1/api-keys/{key_id}", status_code=204, response_class=Response)
async def revoke_api_key(
    caller: KeyRevoker, key_id: KeyId, services: Services, principals: Principals
) -> Response:
    """Revokes a key: it is refused from the next request on, by every gateway replica.
    Revoking it again is a no-op."""
    async with services.outbox.transaction() as connection:
        owner_id, client_id = await keys.key_owner(connection, key_id=key_id)
        if owner_id != caller.id and scope(caller, Action.KEY_REVOKE) is Grant.SELF:
            # Someone else's key is as absent as one that never existed: its id is not theirs
            # to learn about.
            raise NotFound(f"API key {key_id} not found")
        authorize(caller, Action.KEY_REVOKE, owner_id=owner_id)
        if await keys.revoke_key(connection, key_id=key_id):
            event = keys.revoked_event(
                key_id=key_id, owner_id=owner_id, client_id=client_id, actor=caller.as_actor()
            )
            await services.outbox.add(connection, event)
            await audit.record(
                connection,
                actor=caller,
                action="api_key.revoked",
                target_kind="api_key",
                target_id=key_id,
                summary={"owner_id": owner_id},
            )
    # Committed: this replica forgets the key now; the others on the event.
    principals.drop_key(key_id)
    return Response(status_code=204)
