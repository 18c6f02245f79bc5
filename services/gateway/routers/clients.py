"""Client organisations (tenants) and the keys of their systems: admins add them; staff list
those inside their wall, a client its own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from firebreak.database import reading
from services.gateway import audit, clients, keys, schemas
from services.gateway.dependencies import (
    ClientId,
    ClientManager,
    ClientReader,
    PageMaxBytes,
    Services,
)

router = APIRouter(tags=["clients"])


@router.post("/v1/clients", status_code=201, response_model=schemas.Client)
async def create_client(
    body: schemas.NewClient, caller: ClientManager, services: Services
) -> schemas.Client:
    async with services.engine.begin() as connection:
        client = await clients.create_client(connection, name=body.name, created_by=caller.id)
        await audit.record(
            connection,
            actor=caller,
            action="client.created",
            target_kind="client",
            target_id=client["id"],
            summary={"name": client["name"]},
        )
    return schemas.Client.model_validate(client)


@router.get("/v1/clients", response_model=schemas.ClientPage)
async def list_clients(
    caller: ClientReader,
    services: Services,
    max_bytes: PageMaxBytes,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> schemas.ClientPage:
    """Client organisations the caller may see, newest first: staff those inside their wall
    (and the firm itself), a client's key or contact its own."""
    async with reading(services.engine) as connection:
        items, next_cursor = await clients.list_clients(
            connection,
            visible_clients=caller.visible_clients(),
            limit=limit,
            cursor=cursor,
            max_bytes=max_bytes,
        )
    return schemas.ClientPage(
        items=[schemas.Client.model_validate(item) for item in items], next_cursor=next_cursor
    )


@router.post("/v1/clients/{client_id}/api-keys", status_code=201, response_model=schemas.ApiKey)
async def create_api_key(
    caller: ClientManager, client_id: ClientId, body: schemas.NewApiKey, services: Services
) -> schemas.ApiKey:
    """A key of the client's systems (role client), or an operator admin key (role admin, for
    the client operator only); it belongs to no person. Shown once; refused from `expires_at`
    on, when given."""
    async with services.engine.begin() as connection:
        issued = await keys.issue_client_key(
            connection,
            client_id=client_id,
            role=body.role,
            expires_at=body.expires_at,
            created_by=caller.id,
        )
        await keys.audit_issued(connection, caller, issued)
    return schemas.ApiKey.model_validate(issued)
