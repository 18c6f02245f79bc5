"""Dead letters (issue 12, §3): the events a service's consumer gave up on, listed across every
service, replayed once their cause is fixed, or discarded. Admins only. Each service keeps its
own; the gateway asks them all, and keeps those of its own consumer (the attachments it moves
to evidence), served in-process through the same servicer."""

from __future__ import annotations

import asyncio
from typing import Annotated, cast

import grpc
from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from firebreak.api.admin.v1 import dead_letters_pb2
from firebreak.api.admin.v1.dead_letters_pb2_grpc import DeadLetterServiceStub
from firebreak.dead_letters.server import DeadLetterServicer
from firebreak.events import from_timestamp
from firebreak.keyset_pages import (
    DEFAULT_PAGE_SIZE,
    ID,
    MAX_PAGE_SIZE,
    decode_cursor,
    encode_cursor,
)
from firebreak.settings import GRPC_SERVICES
from services.gateway import audit
from services.gateway.backends import RPC_TIMEOUT_SECONDS, Backends
from services.gateway.dependencies import Services, act_across_walls, require
from services.gateway.permissions import Action, Principal
from services.gateway.problems import Problem

router = APIRouter(tags=["admin"])

PATH = "/v1/admin/dead-letters"
# Every gRPC service consumes events, and so does the gateway: each keeps dead letters of its own.
CONSUMERS = (*GRPC_SERVICES, "gateway")
SERVICE_PATTERN = f"^({'|'.join(CONSUMERS)})$"
UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


async def dead_letter_manager(
    caller: Annotated[Principal, Depends(require(Action.DEAD_LETTER_MANAGE))],
) -> Principal:
    """An admin, whose calls carry a token of every client: dead letters are every client's,
    whatever the admin's wall."""
    act_across_walls(caller, Action.DEAD_LETTER_MANAGE)
    return caller


DeadLetterManager = Annotated[Principal, Depends(dead_letter_manager)]


class DeadLetter(BaseModel):
    service: str
    id: str
    stream_sequence: int
    subject: str
    event_id: str  # "" when the message was not an envelope that said
    event_type: str
    incident_id: str
    client_id: str
    reason: str  # handler_failed | malformed | data_refused
    error: str  # the last one: the consumer's, or a replay's
    deliveries: int
    parked_at: str


class DeadLetterList(BaseModel):
    items: list[DeadLetter]
    next_cursor: str | None
    # Services that did not answer: their dead letters are missing from this page.
    unavailable: list[str]


class Replayed(BaseModel):
    service: str
    id: str
    duplicate: bool  # the event had been applied before: nothing was done again


async def service_path(service: str) -> str:
    if service not in CONSUMERS:
        raise Problem(
            404,
            f"no service {service!r} keeps dead letters; those that do: " + ", ".join(CONSUMERS),
        )
    return service


async def dead_letter_id_path(dead_letter_id: str) -> str:
    if not ID.fullmatch(dead_letter_id):
        raise Problem(404, "Not found.")
    return dead_letter_id


ServiceName = Annotated[str, Depends(service_path)]
DeadLetterId = Annotated[str, Depends(dead_letter_id_path)]


class _OwnDeadLetters:
    """The gateway's own dead letters, answered in-process as a service answers over gRPC."""

    def __init__(self, servicer: DeadLetterServicer) -> None:
        self._servicer = servicer
        # The servicer's methods use no context: they raise domain errors, as problems.py maps;
        # and no call options (a stub's timeout): nothing here waits on the network.
        self._context = cast(grpc.aio.ServicerContext, None)

    async def ListDeadLetters(
        self, request: dead_letters_pb2.ListDeadLettersRequest, **call_options: float
    ) -> dead_letters_pb2.DeadLetterList:
        return await self._servicer.ListDeadLetters(request, self._context)

    async def ReplayDeadLetter(
        self, request: dead_letters_pb2.DeadLetterRef, **call_options: float
    ) -> dead_letters_pb2.ReplayDeadLetterResponse:
        return await self._servicer.ReplayDeadLetter(request, self._context)

    async def DiscardDeadLetter(
        self, request: dead_letters_pb2.DeadLetterRef, **call_options: float
    ) -> dead_letters_pb2.DeadLetter:
        return await self._servicer.DiscardDeadLetter(request, self._context)


def _stub(services: Backends, service: str) -> DeadLetterServiceStub | _OwnDeadLetters:
    if service == "gateway":
        assert services.dead_letters is not None
        return _OwnDeadLetters(services.dead_letters)
    channel = {
        "intake": services.intake_channel,
        "triage": services.triage_channel,
        "notify": services.notify_channel,
        "evidence": services.evidence_channel,
        "review": services.review_channel,
    }[service]
    return DeadLetterServiceStub(channel)


def _body(service: str, letter: dead_letters_pb2.DeadLetter) -> DeadLetter:
    return DeadLetter(
        service=service,
        id=letter.id,
        stream_sequence=letter.stream_sequence,
        subject=letter.subject,
        event_id=letter.event_id,
        event_type=letter.event_type,
        incident_id=letter.incident_id,
        client_id=letter.client_id,
        reason=letter.reason,
        error=letter.error,
        deliveries=letter.deliveries,
        parked_at=from_timestamp(letter.parked_at).isoformat(),
    )


@router.get(PATH, response_model=DeadLetterList)
async def list_dead_letters(
    caller: DeadLetterManager,
    services: Services,
    service: Annotated[str | None, Query(pattern=SERVICE_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> DeadLetterList:
    """Every service's dead letters (or one's), newest first. Pages are keyset pages over
    (parked_at, id), which orders every service's alike: one cursor serves them all."""
    if cursor:
        decode_cursor(cursor)  # a 422 naming the cursor, before asking anyone
    names = [service] if service else list(CONSUMERS)
    request = dead_letters_pb2.ListDeadLettersRequest(limit=limit, cursor=cursor or "")
    answers = await asyncio.gather(
        *(
            _stub(services, name).ListDeadLetters(request, timeout=RPC_TIMEOUT_SECONDS)
            for name in names
        ),
        return_exceptions=True,
    )
    letters: list[tuple[str, dead_letters_pb2.DeadLetter]] = []
    unavailable, more = [], False
    for name, answer in zip(names, answers, strict=True):
        if isinstance(answer, grpc.aio.AioRpcError) and answer.code() in UNREACHABLE:
            unavailable.append(name)
            continue
        if isinstance(answer, BaseException):
            raise answer
        letters += [(name, letter) for letter in answer.dead_letters]
        more = more or bool(answer.next_cursor)
    letters.sort(key=lambda item: (item[1].parked_at.ToDatetime(), item[1].id), reverse=True)
    page = letters[:limit]
    next_cursor = None
    if page and (more or len(letters) > limit):
        last = page[-1][1]
        next_cursor = encode_cursor(from_timestamp(last.parked_at), last.id)
    return DeadLetterList(
        items=[_body(name, letter) for name, letter in page],
        next_cursor=next_cursor,
        unavailable=unavailable,
    )


@router.post(f"{PATH}/{{service}}/{{dead_letter_id}}/replay", response_model=Replayed)
async def replay_dead_letter(
    caller: DeadLetterManager,
    service: ServiceName,
    dead_letter_id: DeadLetterId,
    services: Services,
) -> Replayed:
    """Applies the parked event as its consumer would have, and removes it; when its handler
    fails again, it stays, with that error, and the answer is a 409 naming it."""
    reply = await _stub(services, service).ReplayDeadLetter(
        dead_letters_pb2.DeadLetterRef(id=dead_letter_id, actor=caller.as_actor()),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    if not reply.replayed:
        raise Problem(
            409,
            f"replaying dead letter {dead_letter_id} of {service} failed again, and it stays: "
            f"{reply.error}",
            extensions={"error": reply.error},
        )
    # The service keeps its dead letters: recorded once its call has succeeded.
    await audit.record_after(
        services.engine,
        actor=caller,
        action="dead_letter.replayed",
        target_kind="dead_letter",
        target_id=dead_letter_id,
        summary={"service": service, "duplicate": reply.duplicate},
    )
    return Replayed(service=service, id=dead_letter_id, duplicate=reply.duplicate)


@router.delete(f"{PATH}/{{service}}/{{dead_letter_id}}", status_code=204, response_class=Response)
async def discard_dead_letter(
    caller: DeadLetterManager,
    service: ServiceName,
    dead_letter_id: DeadLetterId,
    services: Services,
) -> Response:
    """Removes the dead letter unapplied (the service logs what and for whom)."""
    await _stub(services, service).DiscardDeadLetter(
        dead_letters_pb2.DeadLetterRef(id=dead_letter_id, actor=caller.as_actor()),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    await audit.record_after(
        services.engine,
        actor=caller,
        action="dead_letter.discarded",
        target_kind="dead_letter",
        target_id=dead_letter_id,
        summary={"service": service},
    )
    return Response(status_code=204)
