"""People: the firm's staff and clients' contacts; their personal API keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response

from firebreak.database import reading
from services.gateway import audit, keys, people, schemas
from services.gateway.console import sessions
from services.gateway.dependencies import (
    IdFilter,
    KeyIssuer,
    PageMaxBytes,
    PersonId,
    PersonManager,
    PersonReader,
    Principals,
    Services,
)
from services.gateway.permissions import Action, authorize

router = APIRouter(tags=["people"])


@router.post("/v1/people", status_code=201, response_model=schemas.Person)
async def create_person(
    caller: PersonManager, body: schemas.NewPerson, services: Services
) -> schemas.Person:
    """Adds a member of staff (responder, manager, admin; optionally walled to `clients`) or a
    client's contact (role client, with `client_id`)."""
    async with services.outbox.transaction() as connection:
        person = await people.create_person(
            connection,
            name=body.name,
            email=body.email,
            role=body.role,
            client_id=body.client_id,
            phone=body.phone,
            timezone=body.timezone,
            clients=body.clients,
            created_by=caller.id,
        )
        event = people.person_event(person, registered=True, actor=caller.as_actor())
        await services.outbox.add(connection, event)
        await audit.record(
            connection,
            actor=caller,
            action="person.created",
            target_kind="person",
            target_id=person["id"],
            summary={key: person[key] for key in ("role", "client_id", "clients")},
        )
    return schemas.Person.model_validate(person)


@router.get("/v1/people", response_model=schemas.PersonPage)
async def list_people(
    caller: PersonReader,
    services: Services,
    max_bytes: PageMaxBytes,
    role: schemas.PersonRole | None = None,
    client_id: IdFilter = None,
    active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> schemas.PersonPage:
    """People, newest first; pass next_cursor back for the next page. Walled staff see the
    firm's staff and the contacts of the clients inside their wall."""
    async with reading(services.engine) as connection:
        items, next_cursor = await people.list_people(
            connection,
            role=role,
            client_id=client_id,
            visible_clients=caller.visible_clients(),
            active=active,
            limit=limit,
            cursor=cursor,
            max_bytes=max_bytes,
        )
    return schemas.PersonPage(
        items=[schemas.Person.model_validate(item) for item in items], next_cursor=next_cursor
    )


@router.get("/v1/people/{person_id}", response_model=schemas.Person)
async def get_person(
    caller: PersonReader, person_id: PersonId, services: Services
) -> schemas.Person:
    async with reading(services.engine) as connection:
        person = await people.get_person(connection, person_id)
    authorize(caller, Action.PERSON_READ, client_id=person["client_id"], owner_id=person_id)
    return schemas.Person.model_validate(person)


@router.patch("/v1/people/{person_id}", response_model=schemas.Person)
async def update_person(
    caller: PersonManager,
    person_id: PersonId,
    body: schemas.PersonChanges,
    services: Services,
    principals: Principals,
) -> schemas.Person:
    """Changes only the fields given. `active: false` deactivates: the person's keys stop
    working from the next request on, and a new role or wall applies from then on, in every
    gateway replica."""
    changes = body.model_dump(include=body.model_fields_set)
    async with services.outbox.transaction() as connection:
        person = await people.update_person(connection, person_id, dict(changes))
        event = people.person_event(person, registered=False, actor=caller.as_actor())
        await services.outbox.add(connection, event)
        if changes:
            await audit.record(
                connection,
                actor=caller,
                action="person.changed",
                target_kind="person",
                target_id=person_id,
                summary=_changes_summary(changes, person),
            )
    # Committed: this replica reads the person's keys afresh; the others on person.changed.
    principals.drop_person(person_id)
    return schemas.Person.model_validate(person)


def _changes_summary(changes: dict[str, Any], person: dict[str, Any]) -> dict[str, Any]:
    """The fields a change named; and the new values of those that decide what the person may
    do (role, wall, active). Contact details are personal data the log need not copy."""
    decisive = {key: person[key] for key in ("role", "clients", "active") if key in changes}
    return {"changed": sorted(changes)} | decisive


@router.post("/v1/people/{person_id}/api-keys", status_code=201, response_model=schemas.ApiKey)
async def issue_personal_key(
    caller: KeyIssuer,
    person_id: PersonId,
    services: Services,
    body: Annotated[schemas.NewPersonalKey | None, Body()] = None,
) -> schemas.ApiKey:
    """Issues the person a key of their own, shown once; it acts with their current role and
    wall, and stops working when they are deactivated or at `expires_at`."""
    expires_at = body.expires_at if body is not None else None
    async with services.engine.begin() as connection:
        issued = await keys.issue_personal_key(
            connection, person_id=person_id, expires_at=expires_at, created_by=caller.id
        )
        await keys.audit_issued(connection, caller, issued)
    return schemas.ApiKey.model_validate(issued)


@router.put("/v1/people/{person_id}/password", status_code=204, response_class=Response)
async def set_password(
    caller: PersonManager, person_id: PersonId, body: schemas.NewPassword, services: Services
) -> Response:
    """Sets the person's console password (an admin setting a first one, or a new one); their
    open console sessions end."""
    async with services.engine.begin() as connection:
        await people.get_person(connection, person_id)  # 404 for no such person
        await sessions.set_password(connection, person_id=person_id, password=body.password)
        await audit.record(
            connection,
            actor=caller,
            action="person.password_set",
            target_kind="person",
            target_id=person_id,
            summary={},
        )
    return Response(status_code=204)


@router.post(
    "/v1/people/{person_id}/sign-in-links", status_code=201, response_model=schemas.SignInLink
)
async def issue_sign_in_link(
    caller: PersonManager, person_id: PersonId, request: Request, services: Services
) -> schemas.SignInLink:
    """A one-time link with which the person sets their console password, for the admin to
    send them."""
    async with services.engine.begin() as connection:
        token, expires_at = await sessions.issue_link(
            connection, person_id=person_id, created_by=caller.id
        )
        await audit.record(
            connection,
            actor=caller,
            action="person.sign_in_link_issued",
            target_kind="person",
            target_id=person_id,
            summary={"expires_at": expires_at.isoformat()},
        )
    # Where people reach the gateway (FIREBREAK_PUBLIC_URL), else the address asked at.
    public: str | None = request.app.state.public_url
    path = request.app.url_path_for("welcome", token=token)
    url = f"{public.rstrip('/')}{path}" if public else str(request.url_for("welcome", token=token))
    return schemas.SignInLink(url=url, expires_at=expires_at)
