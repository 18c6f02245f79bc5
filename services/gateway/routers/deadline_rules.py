"""A client's contractual deadline rules (issue 9, §5), e.g. "inform the client within 1 hour of
a P1 being declared". Notify keeps them and starts a deadline from each applicable rule when an
incident of the client is triaged. Managers and admins read and set them, for the clients
inside their wall; a client outside it is as absent as one that does not exist.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from firebreak.api.notify.v1 import deadlines_pb2
from firebreak.database import reading
from firebreak.events import from_timestamp
from services.gateway import audit, clients, schemas
from services.gateway.backends import RPC_TIMEOUT_SECONDS, Backends
from services.gateway.dependencies import ClientId, Services, require
from services.gateway.permissions import Action, Principal, authorize
from services.gateway.problems import Problem

router = APIRouter(tags=["deadlines"])

PATH = "/v1/clients/{client_id}/deadline-rules"
RulesManager = Annotated[Principal, Depends(require(Action.DEADLINE_RULES_MANAGE))]


async def _check_client(services: Backends, caller: Principal, client_id: str) -> None:
    authorize(caller, Action.DEADLINE_RULES_MANAGE, client_id=client_id)
    async with reading(services.engine) as connection:
        if not await clients.client_exists(connection, client_id):
            raise Problem(404, f"client {client_id} not found")


def rules_body(rules: deadlines_pb2.ClientRules) -> schemas.DeadlineRules:
    return schemas.DeadlineRules(
        client_id=rules.client_id,
        rules=[
            schemas.ContractualRule(
                name=rule.name,
                description=rule.description,
                priorities=list(rule.priorities),  # type: ignore[arg-type]  # as validated
                within_minutes=rule.within_minutes,
                met_by=rule.met_by,  # type: ignore[arg-type]
            )
            for rule in rules.rules
        ],
        updated_at=from_timestamp(rules.updated_at) if rules.HasField("updated_at") else None,
    )


@router.get(PATH, response_model=schemas.DeadlineRules)
async def get_deadline_rules(
    caller: RulesManager, client_id: ClientId, services: Services
) -> schemas.DeadlineRules:
    """The client's contractual deadline rules (none until set)."""
    await _check_client(services, caller, client_id)
    rules = await services.deadlines.GetClientRules(
        deadlines_pb2.ClientRulesRef(client_id=client_id), timeout=RPC_TIMEOUT_SECONDS
    )
    return rules_body(rules)


@router.put(PATH, response_model=schemas.DeadlineRules)
async def replace_deadline_rules(
    caller: RulesManager, client_id: ClientId, body: schemas.NewDeadlineRules, services: Services
) -> schemas.DeadlineRules:
    """Sets the client's rules whole. Incidents triaged from now on start a deadline from each
    rule listing their priority; deadlines already started keep the rule they started with."""
    await _check_client(services, caller, client_id)
    rules = await services.deadlines.ReplaceClientRules(
        deadlines_pb2.ClientRules(
            client_id=client_id,
            rules=[deadlines_pb2.ContractualRule(**rule.model_dump()) for rule in body.rules],
        ),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    # Notify keeps the rules: recorded once its call has succeeded (audit.record_after).
    await audit.record_after(
        services.engine,
        actor=caller,
        action="deadline_rules.replaced",
        target_kind="deadline_rules",
        target_id=client_id,
        summary={"rules": [rule.name for rule in rules.rules]},
    )
    return rules_body(rules)
