"""The people an incident's investigation and follow-up involve, and what the tests of notes,
time, the analysis and actions share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.gateway_client import Api, Person, Tenant
from tests.lifecycle_client import ok, report_triaged, run


@dataclass(frozen=True)
class Crew:
    client: Tenant  # the incident's client, by its system's key
    other_client: Tenant
    contact: Person  # a contact (role client) of `client`
    manager: Person
    participant: Person  # a responder who responds to the incidents worked here
    bystander: Person  # a responder who does not
    walled: Person  # a responder walled off from `client`: only `other_client`


def new_crew(api: Api, label: str) -> Crew:
    client, other = api.new_client(f"{label} LLP"), api.new_client(f"{label} Elsewhere LLP")
    return Crew(
        client=client,
        other_client=other,
        contact=api.new_person("client", client_id=client.id),
        manager=api.new_person("manager"),
        participant=api.new_person("responder"),
        bystander=api.new_person("responder"),
        walled=api.new_person("responder", clients=[other.id]),
    )


def worked_incident(api: Api, crew: Crew, **report: Any) -> str:
    """A triaged incident of the crew's client, the participant among its responders."""
    incident_id = report_triaged(api, crew.client, **report)
    ok(
        run(
            api,
            crew.manager,
            incident_id,
            "add_responder",
            {"person_id": crew.participant.person_id},
        )
    )
    return incident_id


def problem(response: httpx.Response, status: int, *, field: str | None = None) -> dict[str, Any]:
    """The problem+json body of a refusal with `status`, naming `field` when given."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.text
    body: dict[str, Any] = response.json()
    if field is not None:
        assert field in {error["field"] for error in body.get("errors", [])}, body
    return body
