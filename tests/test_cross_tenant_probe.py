"""Client B's key, and staff walled to client B, against client A's ids on every route
of the live OpenAPI document: never a 2xx for a path naming A's object, and never a body holding
A's data (ids, names, titles, texts) that the request did not itself carry.

The routes come from /openapi.json, so a new route is probed without touching this module; a
new kind of path parameter fails `test_every_path_parameter_is_classified` until it is given
one of A's values here or named as no client's data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.gateway_client import Api, Tenant
from tests.populated_client import PopulatedClient, populated_client

# Path parameters that name no client's data: nothing of A's to put in them, so a route whose
# path takes only these is not probed with A's ids.
NOT_CLIENT_DATA = {
    "schedule_id": "on-call schedules are the firm's",
    "token": "an acknowledge link is its own credential (tests/test_ack_links.py)",
    "service": "dead letters are admins' only",
    "dead_letter_id": "dead letters are admins' only",
    "key": "an integration key is its own credential, as a heartbeat's ping shows",
}
# Path parameters that are not ids: a fixed valid value.
FIXED_VALUES = {"role": "scribe"}
# Query parameters that filter by an id: A's value of the same name (actor: a person's id).
QUERY_IDS = {"client_id": "client_id", "person_id": "person_id", "actor": "person_id"}
HTTP_METHODS = ("get", "put", "post", "patch", "delete")
OUTSIDERS = ["client_b", "walled_responder", "walled_manager"]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    def parameters(self, where: str) -> list[str]:
        return [p["name"] for p in self.spec.get("parameters", []) if p["in"] == where]


def operations(document: dict[str, Any]) -> list[Operation]:
    return [
        Operation(method.upper(), path, spec)
        for path, item in document["paths"].items()
        for method, spec in item.items()
        if method in HTTP_METHODS
    ]


@pytest.fixture(scope="module")
def document(api: Api) -> dict[str, Any]:
    response = api.http.get("/openapi.json")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def client_a(api: Api) -> PopulatedClient:
    return populated_client(api, "Probe A")


@pytest.fixture(scope="module")
def outsiders(api: Api) -> dict[str, Tenant]:
    """Client B's client-system key, and a responder and a manager walled to client B only."""
    client_b = api.new_client(f"Probe B {uuid.uuid4().hex[:6]} LLP")
    return {
        "client_b": client_b,
        "walled_responder": api.new_person("responder", clients=[client_b.id]),
        "walled_manager": api.new_person("manager", clients=[client_b.id]),
    }


def example(schema: dict[str, Any], document: dict[str, Any], ids: dict[str, str]) -> Any:
    """A small value valid for `schema`, so that a call is refused for whose object it names,
    not for its body; fields named like an id carry A's."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return example(document["components"]["schemas"][name], document, ids)
    if "anyOf" in schema:
        return example(next(s for s in schema["anyOf"] if s.get("type") != "null"), document, ids)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {
            field: ids[field] if field in ids else example(properties[field], document, ids)
            for field in schema.get("required", [])
        }
    if kind == "array":
        return [example(schema["items"], document, ids)] * schema.get("minItems", 0)
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if schema.get("format") == "date-time":
        return (datetime.now(UTC) + timedelta(days=1)).isoformat()
    if schema.get("format") == "email":
        return "probe@firm.example"
    return "probe" + "x" * max(0, schema.get("minLength", 1) - 5)


def request_arguments(
    op: Operation, document: dict[str, Any], ids: dict[str, str]
) -> dict[str, Any]:
    """A valid body and the required query parameters, for httpx."""
    required = [
        p for p in op.spec.get("parameters", []) if p["in"] == "query" and p.get("required")
    ]
    arguments: dict[str, Any] = {
        "params": {p["name"]: example(p["schema"], document, ids) for p in required}
    }
    content = op.spec.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        arguments["json"] = example(content["application/json"]["schema"], document, ids)
    elif content:  # evidence: the item itself
        arguments["content"] = b"probe"
    return arguments


def leaked(body: str, url: str, secrets: frozenset[str]) -> list[str]:
    """A's secrets in a response body, less those the request named itself."""
    return sorted(secret for secret in secrets if secret in body and secret not in url)


def test_every_path_parameter_is_classified(
    document: dict[str, Any], client_a: PopulatedClient
) -> None:
    known = set(client_a.ids) | set(NOT_CLIENT_DATA) | set(FIXED_VALUES)
    unknown = {
        (op.method, op.path, name)
        for op in operations(document)
        for name in op.parameters("path")
        if name not in known
    }
    assert not unknown, "give each a value of client A's, or name it in NOT_CLIENT_DATA"


@pytest.mark.parametrize("outsider", OUTSIDERS)
def test_an_outsider_gets_nothing_of_client_a_by_its_ids(
    api: Api,
    document: dict[str, Any],
    client_a: PopulatedClient,
    outsiders: dict[str, Tenant],
    outsider: str,
) -> None:
    caller = outsiders[outsider]
    values = client_a.ids | FIXED_VALUES
    probed, failures = 0, []
    for op in operations(document):
        path_names = op.parameters("path")
        if not any(name in client_a.ids for name in path_names):
            continue
        if any(name in NOT_CLIENT_DATA for name in path_names):
            continue
        url = op.path.format(**{name: values[name] for name in path_names})
        response = api.http.request(
            op.method, url, headers=caller.headers, **request_arguments(op, document, client_a.ids)
        )
        probed += 1
        secrets = leaked(response.text, url, client_a.secrets)
        if response.is_success or secrets:
            failures.append(f"{op.method} {url}: {response.status_code} {secrets}")
    assert probed > 40  # every route taking an id of A's
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("outsider", OUTSIDERS)
def test_no_list_or_filter_shows_an_outsider_client_a(
    api: Api,
    document: dict[str, Any],
    client_a: PopulatedClient,
    outsiders: dict[str, Tenant],
    outsider: str,
) -> None:
    """Every read without a path parameter, plain and with each id filter set to A's: it may
    answer (the outsider's own, or nothing), but without any of A's data."""
    caller = outsiders[outsider]
    failures = []
    reads = [op for op in operations(document) if op.method == "GET" and not op.parameters("path")]
    for op in reads:
        queries: list[dict[str, str]] = [{}] + [
            {name: client_a.ids[QUERY_IDS[name]]}
            for name in op.parameters("query")
            if name in QUERY_IDS
        ]
        for query in queries:
            response = api.http.get(op.path, params=query, headers=caller.headers)
            secrets = leaked(response.text, str(response.request.url), client_a.secrets)
            if secrets:
                failures.append(f"GET {response.request.url}: {response.status_code} {secrets}")
    assert len(reads) > 10
    assert not failures, "\n".join(failures)


def test_client_a_itself_is_answered(api: Api, client_a: PopulatedClient) -> None:
    """The probe's ids are real: A's own staff reach them (else every 404 above proves
    nothing)."""
    ids = client_a.ids
    for path in (
        f"/v1/incidents/{ids['incident_id']}",
        f"/v1/evidence/{ids['evidence_id']}",
        f"/v1/people/{ids['person_id']}",
        f"/v1/escalation-policies/{ids['policy_id']}",
    ):
        response = api.http.get(path, headers=api.admin.headers)
        assert response.status_code == 200, (path, response.text)


def test_a_manager_walled_off_cannot_give_client_a_a_policy(
    api: Api, client_a: PopulatedClient, outsiders: dict[str, Tenant]
) -> None:
    """Creating a policy for a client outside the wall: that client does not exist."""
    steps = [{"targets": [{"schedule_id": "default"}], "after_minutes": 5}]
    body = {"name": "Walled", "steps": steps, "priorities": ["P3"]}
    response = api.http.post(
        "/v1/escalation-policies",
        json=body | {"client_id": client_a.ids["client_id"]},
        headers=outsiders["walled_manager"].headers,
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "client_id"
