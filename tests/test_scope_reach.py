"""How far a scope token short of every client reaches, calling the services straight on their
gRPC ports as a pod in the cluster could (firebreak/grpc_scope.py): a walled staff member's holds
their wall and the firm's own, a client's its own client, and neither reaches another client's
incident named by id alone, or beside a client of the token's that is not the incident's own
(NOT_FOUND, and a write changes nothing), nor an item a service finds by an id of its own (an
escalation policy, a person's contact methods), nor dead letters. Through the gateway, walled
staff still do all their grants allow: inside their wall, every route answers them as it answers
unwalled staff. And a service verifies each token once, until it expires."""

from __future__ import annotations

import contextvars
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firebreak.api.admin.v1 import dead_letters_pb2, dead_letters_pb2_grpc
from firebreak.api.intake.v1 import intake_pb2, intake_pb2_grpc
from firebreak.api.notify.v1 import deadlines_pb2, deadlines_pb2_grpc, notify_pb2, notify_pb2_grpc
from firebreak.api.review.v1 import review_pb2, review_pb2_grpc
from firebreak.api.triage.v1 import triage_pb2, triage_pb2_grpc
from firebreak.grpc_scope import ScopeCheckInterceptor
from firebreak.launcher import Platform
from firebreak.scope_token import (
    LIFETIME_SECONDS,
    METADATA_KEY,
    InvalidScopeToken,
    Scope,
    ScopeTokens,
    VerifiedTokens,
    current_scope,
)
from services.gateway.dependencies import act_for
from services.gateway.permissions import OPERATOR_CLIENT_ID, Principal, PrincipalKind
from tests.conftest import on_backend
from tests.gateway_client import Api, Person, Tenant, eventually
from tests.lifecycle_client import report_triaged
from tests.populated_client import populated_client
from tests.test_cross_tenant_probe import FIXED_VALUES, operations, request_arguments
from tests.test_escalation_policies import PATH as POLICIES
from tests.test_escalation_policies import policy_body

STUBS: dict[type, str] = {
    intake_pb2_grpc.IntakeServiceStub: "intake",
    triage_pb2_grpc.TriageServiceStub: "triage",
    review_pb2_grpc.ReviewServiceStub: "review",
    deadlines_pb2_grpc.DeadlineServiceStub: "notify",
    notify_pb2_grpc.EscalationPolicyServiceStub: "notify",
    notify_pb2_grpc.ContactMethodServiceStub: "notify",
    dead_letters_pb2_grpc.DeadLetterServiceStub: "notify",
}


@dataclass(frozen=True)
class Direct:
    """Calls a service's port with a token for `clients` (None: every client)."""

    platform: Platform
    clients: frozenset[str] | None

    def call(self, stub: type, method: str, request: Any) -> Any:
        token = self.platform.scope_token(self.clients)
        address = f"127.0.0.1:{self.platform.grpc_ports[STUBS[stub]]}"
        with grpc.insecure_channel(address) as channel:
            return getattr(stub(channel), method)(
                request, metadata=((METADATA_KEY, f"Bearer {token}"),), timeout=10
            )

    def refusal(self, stub: type, method: str, request: Any) -> grpc.StatusCode:
        with pytest.raises(grpc.RpcError) as caught:
            self.call(stub, method, request)
        code: grpc.StatusCode = caught.value.code()  # type: ignore[attr-defined]
        return code


@dataclass(frozen=True)
class Scene:
    client_a: Tenant
    client_b: Tenant
    incident_a: str  # triaged; review and notify know it
    incident_b: str
    walled: Person  # a responder walled to client B


@pytest.fixture(scope="module")
def scene(api: Api) -> Scene:
    mark = uuid.uuid4().hex[:6]
    client_a, client_b = api.new_client(f"Reach A {mark}"), api.new_client(f"Reach B {mark}")
    incident_a, incident_b = report_triaged(api, client_a), report_triaged(api, client_b)
    api.wait_for_timeline(api.admin, incident_a, 1)  # review knows it
    api.wait_until_notified(api.admin, incident_a)  # notify knows it
    walled = api.new_person("responder", clients=[client_b.id])
    return Scene(client_a, client_b, incident_a, incident_b, walled)


def walled_token(platform: Platform, scene: Scene) -> Direct:
    """The token the gateway signs for the walled responder."""
    return Direct(platform, frozenset({scene.client_b.id, OPERATOR_CLIENT_ID}))


def note(client_id: str, incident_id: str, body: str) -> review_pb2.AddNoteRequest:
    return review_pb2.AddNoteRequest(
        incident=review_pb2.IncidentRef(client_id=client_id, incident_id=incident_id),
        body=body,
        audience="internal",
    )


def timeline_texts(api: Api, incident_id: str) -> str:
    return str(api.timeline(api.admin, incident_id))


def test_the_gateway_signs_walled_staff_their_wall_and_the_firms_own() -> None:
    def principal(kind: PrincipalKind, client_id: str, wall: set[str] | None) -> Principal:
        clients = None if wall is None else frozenset(wall)
        return Principal(
            kind=kind, id="p-1", name="Pat", client_id=client_id, key_id="k-1", clients=clients
        )

    def token_clients(who: Principal) -> frozenset[str] | None:
        context = contextvars.copy_context()
        context.run(act_for, who)
        scope = context[current_scope]
        assert scope is not None
        return scope.clients

    walled = principal(PrincipalKind.MANAGER, OPERATOR_CLIENT_ID, {"b-1", "b-2"})
    assert token_clients(walled) == {"b-1", "b-2", OPERATOR_CLIENT_ID}
    assert token_clients(principal(PrincipalKind.ADMIN, OPERATOR_CLIENT_ID, None)) is None
    contact = principal(PrincipalKind.CLIENT_CONTACT, "a-1", {"a-1"})
    assert token_clients(contact) == {"a-1"}


def test_a_walled_token_does_not_reach_an_incident_beyond_the_wall(api: Api, scene: Scene) -> None:
    as_walled = walled_token(api.platform, scene)
    intake, triage = intake_pb2_grpc.IntakeServiceStub, triage_pb2_grpc.TriageServiceStub
    wall = sorted(as_walled.clients or ())
    # The incident by its id alone, by the wall's clients, or beside a client of the wall.
    for request in (
        intake_pb2.GetIncidentRequest(incident_id=scene.incident_a),
        intake_pb2.GetIncidentRequest(incident_id=scene.incident_a, client_ids=wall),
        intake_pb2.GetIncidentRequest(incident_id=scene.incident_a, client_id=scene.client_b.id),
    ):
        assert as_walled.refusal(intake, "GetIncident", request) == grpc.StatusCode.NOT_FOUND
    every = intake_pb2.GetIncidentRequest(incident_id=scene.incident_a, all_clients=True)
    assert as_walled.refusal(intake, "GetIncident", every) == grpc.StatusCode.PERMISSION_DENIED
    beside = triage_pb2.IncidentRef(incident_id=scene.incident_a, client_id=scene.client_b.id)
    assert as_walled.refusal(triage, "GetResponse", beside) == grpc.StatusCode.NOT_FOUND
    # A write: refused before review changes anything.
    body = f"walled note {uuid.uuid4().hex}"
    assert (
        as_walled.refusal(
            review_pb2_grpc.ReviewServiceStub,
            "AddNote",
            note(scene.client_b.id, scene.incident_a, body),
        )
        == grpc.StatusCode.NOT_FOUND
    )
    assert body not in timeline_texts(api, scene.incident_a)
    # Inside the wall, the same reads are answered.
    inside = triage_pb2.IncidentRef(incident_id=scene.incident_b, client_ids=wall)
    assert as_walled.call(triage, "GetResponse", inside).client_id == scene.client_b.id


def test_another_clients_token_gets_not_found_by_id_and_changes_nothing(
    api: Api, scene: Scene
) -> None:
    as_b = Direct(api.platform, frozenset({scene.client_b.id}))
    alone = intake_pb2.GetIncidentRequest(incident_id=scene.incident_a)
    refusal = as_b.refusal(intake_pb2_grpc.IntakeServiceStub, "GetIncident", alone)
    assert refusal == grpc.StatusCode.NOT_FOUND
    body = f"forged note {uuid.uuid4().hex}"
    forged = note(scene.client_b.id, scene.incident_a, body)
    refusal = as_b.refusal(review_pb2_grpc.ReviewServiceStub, "AddNote", forged)
    assert refusal == grpc.StatusCode.NOT_FOUND
    assert body not in timeline_texts(api, scene.incident_a)
    flag = deadlines_pb2.FlagIncidentRequest(
        incident_id=scene.incident_a, client_id=scene.client_b.id, flags=["personal_data"]
    )
    refusal = as_b.refusal(deadlines_pb2_grpc.DeadlineServiceStub, "FlagIncident", flag)
    assert refusal == grpc.StatusCode.NOT_FOUND
    deadlines = api.http.get(
        f"/v1/incidents/{scene.incident_a}/deadlines", headers=api.admin.headers
    )
    assert deadlines.status_code == 200, deadlines.text
    assert deadlines.json()["items"] == []


def test_items_found_by_their_own_id_are_checked_against_the_token(api: Api, scene: Scene) -> None:
    created = api.http.post(
        POLICIES, json=policy_body(scene.client_a.id, priorities=["P4"]), headers=api.admin.headers
    )
    assert created.status_code == 201, created.text
    policy_id = created.json()["id"]
    as_b = Direct(api.platform, frozenset({scene.client_b.id}))
    policies = notify_pb2_grpc.EscalationPolicyServiceStub
    ref = notify_pb2.PolicyRef(id=policy_id)
    # A read is checked on its answer; a write before anything changes.
    assert as_b.refusal(policies, "GetPolicy", ref) == grpc.StatusCode.NOT_FOUND
    assert as_b.refusal(policies, "DeletePolicy", ref) == grpc.StatusCode.NOT_FOUND
    renamed = notify_pb2.PolicyInput(id=policy_id, name="Taken over", client_id=scene.client_b.id)
    assert as_b.refusal(policies, "ReplacePolicy", renamed) == grpc.StatusCode.NOT_FOUND
    kept = api.http.get(f"{POLICIES}/{policy_id}", headers=api.admin.headers)
    assert kept.status_code == 200 and kept.json()["name"] == created.json()["name"]
    # A list that would hold it is refused; one of B's clients and the defaults is answered.
    listing = notify_pb2.ListPoliciesRequest(page_size=200)
    assert as_b.refusal(policies, "ListPolicies", listing) == grpc.StatusCode.NOT_FOUND
    listing.client_ids.append(scene.client_b.id)
    answered = as_b.call(policies, "ListPolicies", listing).policies
    assert answered and {policy.client_id for policy in answered} <= {"", scene.client_b.id}

    contact = api.new_person("client", client_id=scene.client_a.id)
    methods = notify_pb2_grpc.ContactMethodServiceStub
    theirs = notify_pb2.ContactMethodsRequest(person_id=contact.person_id)
    every = Direct(api.platform, None)
    # Once notify has heard of the person (their email is then its first method).
    eventually(lambda: every.call(methods, "ListContactMethods", theirs).methods)
    assert as_b.refusal(methods, "ListContactMethods", theirs) == grpc.StatusCode.NOT_FOUND
    hook = notify_pb2.ContactMethodInput(
        person_id=contact.person_id, kind="email", address="b@forged.example"
    )
    assert as_b.refusal(methods, "AddContactMethod", hook) == grpc.StatusCode.NOT_FOUND
    assert len(every.call(methods, "ListContactMethods", theirs).methods) == 1

    letters = dead_letters_pb2_grpc.DeadLetterServiceStub
    listing_letters = dead_letters_pb2.ListDeadLettersRequest()
    refusal = as_b.refusal(letters, "ListDeadLetters", listing_letters)
    assert refusal == grpc.StatusCode.PERMISSION_DENIED


def test_through_the_gateway_walled_staff_still_do_what_their_grants_allow(
    api: Api, scene: Scene
) -> None:
    admin = api.new_person("admin", clients=[scene.client_b.id])
    # Their wall's incidents and none other.
    assert api.incident(admin, scene.incident_b)["id"] == scene.incident_b
    beyond = api.http.get(f"/v1/incidents/{scene.incident_a}", headers=admin.headers)
    assert beyond.status_code == 404, beyond.text
    assert beyond.json()["detail"] == f"incident {scene.incident_a} not found"
    listed = api.list_ids(admin)
    assert scene.incident_b in listed and scene.incident_a not in listed
    assert api.timeline(admin, scene.incident_b)
    # An admin's grants of every client, whatever the wall: dead letters, anyone's contact
    # methods.
    letters = api.http.get("/v1/admin/dead-letters", headers=admin.headers)
    assert letters.status_code == 200, letters.text
    contact = api.new_person("client", client_id=scene.client_a.id)
    added = api.http.post(
        f"/v1/people/{contact.person_id}/contact-methods",
        json={"kind": "email", "address": f"{uuid.uuid4().hex[:8]}@client.example"},
        headers=admin.headers,
    )
    assert added.status_code == 201, added.text
    # Escalation policies: their wall's clients' and the firm's defaults.
    theirs = api.http.post(
        POLICIES, json=policy_body(scene.client_b.id, priorities=["P3"]), headers=api.admin.headers
    )
    assert theirs.status_code == 201, theirs.text
    seen = {policy["client_id"] for policy in api.pages(POLICIES, admin, limit=200)}
    assert scene.client_b.id in seen and None in seen and scene.client_a.id not in seen
    elsewhere = api.pages(POLICIES, admin, client_id=scene.client_a.id)
    assert elsewhere == []


@on_backend("sqlite", "platform")
def test_inside_their_wall_staff_are_answered_on_every_route_as_unwalled_staff(
    platform: Platform, api: Api
) -> None:
    """Every route, with the ids of a client inside the wall: never a 5xx nor a service's scope
    refusal, and each read answers the walled responder, manager and admin with the status the
    unwalled one gets."""
    document = api.http.get("/openapi.json").json()
    inside = populated_client(api, "Inside")
    kinds = ("responder", "manager", "admin")
    walled = {kind: api.new_person(kind, clients=[inside.ids["client_id"]]) for kind in kinds}
    unwalled = {kind: api.new_person(kind) for kind in kinds}
    values = inside.ids | FIXED_VALUES
    # Reads first: the writes after them change what there is to read.
    ordered = sorted(operations(document), key=lambda op: op.method != "GET")
    failures = []
    for op in ordered:
        names = op.parameters("path")
        if not all(name in values for name in names):
            continue  # no value of the client's for it (NOT_CLIENT_DATA)
        url = op.path.format(**{name: values[name] for name in names})
        arguments = request_arguments(op, document, inside.ids)
        for kind in kinds:
            answer = api.http.request(op.method, url, headers=walled[kind].headers, **arguments)
            if answer.status_code >= 500 or "beyond the caller's scope" in answer.text:
                failures.append(f"{kind} {op.method} {url}: {answer.status_code} {answer.text}")
            if op.method == "GET":
                expected = api.http.get(url, headers=unwalled[kind].headers, **arguments)
                if answer.status_code != expected.status_code:
                    failures.append(
                        f"{kind} GET {url}: {answer.status_code}, unwalled {expected.status_code}"
                    )
    assert not failures, "\n".join(failures)


# --- The verified-token cache ----------------------------------------------------------------


class Echo(intake_pb2_grpc.IntakeServiceServicer):
    async def GetIncident(
        self, request: intake_pb2.GetIncidentRequest, context: grpc.aio.ServicerContext
    ) -> intake_pb2.Incident:
        return intake_pb2.Incident(id=request.incident_id, client_id=request.client_id)


@dataclass(frozen=True)
class Served:
    address: str
    key: Ed25519PrivateKey
    now: list[float]  # the server's token clock


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    """A real server with the scope check, whose token clock the test moves."""
    key, now = Ed25519PrivateKey.generate(), [time.time()]
    server = grpc.aio.server(
        interceptors=[ScopeCheckInterceptor(key.public_key(), clock=lambda: now[0])]
    )
    intake_pb2_grpc.add_IntakeServiceServicer_to_server(Echo(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield Served(f"127.0.0.1:{port}", key, now)
    await server.stop(None)


async def test_a_cached_token_is_refused_once_it_has_expired(served: Served) -> None:
    issued = int(served.now[0])
    token = ScopeTokens(served.key).sign(
        Scope(subject="client-a", role="client_system", clients=frozenset({"a"})),
        issued_at=issued,
        expires_at=issued + LIFETIME_SECONDS,
    )
    request = intake_pb2.GetIncidentRequest(incident_id="i-1", client_id="a")

    async def call() -> grpc.StatusCode:
        async with grpc.aio.insecure_channel(served.address) as channel:
            try:
                await intake_pb2_grpc.IntakeServiceStub(channel).GetIncident(
                    request, metadata=((METADATA_KEY, f"Bearer {token}"),), timeout=10
                )
            except grpc.aio.AioRpcError as error:
                return error.code()
            return grpc.StatusCode.OK

    assert await call() == grpc.StatusCode.OK  # verified, and cached while valid
    served.now[0] = issued + LIFETIME_SECONDS - 1
    assert await call() == grpc.StatusCode.OK
    served.now[0] = issued + LIFETIME_SECONDS
    assert await call() == grpc.StatusCode.UNAUTHENTICATED


def test_a_token_is_verified_once_and_its_scope_kept_until_it_expires() -> None:
    key, now = Ed25519PrivateKey.generate(), [time.time()]
    tokens = VerifiedTokens(key.public_key(), clock=lambda: now[0])
    issued = int(now[0])

    def sign(expires_at: int) -> str:
        scope = Scope(subject="s", role="admin", clients=None)
        return ScopeTokens(key).sign(scope, issued_at=issued, expires_at=expires_at)

    token = sign(issued + LIFETIME_SECONDS)
    first = tokens.scope(token)
    assert tokens.scope(token) is first  # the very scope kept, not verified again
    foreign = ScopeTokens(Ed25519PrivateKey.generate()).sign(
        first, issued_at=issued, expires_at=issued + LIFETIME_SECONDS
    )
    with pytest.raises(InvalidScopeToken):
        tokens.scope(foreign)
    now[0] = issued + LIFETIME_SECONDS
    with pytest.raises(InvalidScopeToken):
        tokens.scope(token)
    # Expired by the cache's clock before it was ever verified: refused all the same.
    with pytest.raises(InvalidScopeToken):
        tokens.scope(sign(issued + 2))
