"""A client with one of everything a client's data holds, for the probes that aim at its ids."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.alert_client import incident_of
from tests.evidence_client import submit_once_known
from tests.gateway_client import Api, Person, Tenant, eventually
from tests.inbound_mail_client import new_email_integration, report_mail, send
from tests.lifecycle_client import ok, report_triaged, run


@dataclass(frozen=True)
class PopulatedClient:
    system: Tenant  # the client's client-system key
    system_key_id: str
    contact: Person  # a person of the client (role client)
    manager: Person  # unwalled staff, the incident's commander
    responder: Person  # unwalled staff, the receiver of the pending evidence transfer
    ids: dict[str, str]  # a path parameter's name -> the client's object of that kind
    secrets: frozenset[str]  # every id and text of the client's no other client may read


def populated_client(api: Api, label: str) -> PopulatedClient:
    """A new client with an incident its manager works: a task, an action, a note, a
    deadline, a client status update and the notification it queued, evidence with a pending
    transfer; a contact with a contact method and a key, an escalation policy, an integration
    whose alert opened an incident of its own, and a report by email with an attachment."""
    mark = uuid.uuid4().hex[:10]
    name = f"{label} {mark} LLP"
    client = ok(api.http.post("/v1/clients", json={"name": name}, headers=api.admin.headers))
    key = ok(
        api.http.post(
            f"/v1/clients/{client['id']}/api-keys",
            json={"role": "client"},
            headers=api.admin.headers,
        )
    )
    system = Tenant(client["id"], {"Authorization": f"Bearer {key['key']}"})
    contact = api.new_person("client", client_id=client["id"], name=f"Contact {mark}")
    manager, responder = api.new_person("manager"), api.new_person("responder")
    title = f"{label} incident {mark}"
    incident = report_triaged(api, system, title=title)
    ok(run(api, manager, incident, "acknowledge"))
    base = f"/v1/incidents/{incident}"

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        return ok(api.http.post(path, json=body, headers=manager.headers))

    task = post(f"{base}/tasks", {"title": f"{label} task {mark}"})
    due = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    action = post(
        f"{base}/actions",
        {"kind": "corrective", "title": f"{label} action {mark}", "owner_id": manager.person_id}
        | {"due_at": due},
    )
    note = post(f"{base}/notes", {"body": f"{label} note {mark}", "audience": "internal"})
    deadline = post(f"{base}/flags", {"flags": ["personal_data"]})["deadlines"][0]
    update = post(f"{base}/updates", {"audience": "client", "body": f"{label} update {mark}"})
    notification = eventually(
        lambda: ok(api.http.get(f"{base}/notifications", headers=manager.headers))["items"]
    )[0]
    evidence = submit_once_known(
        api, manager, incident, f"{label} {mark}".encode(), filename=f"evidence-{mark}.log"
    )
    transfer = post(
        f"/v1/evidence/{evidence['id']}/transfers",
        {"to": responder.person_id, "purpose": "Imaging", "location": "Safe 1"},
    )
    method = ok(
        api.http.post(
            f"/v1/people/{contact.person_id}/contact-methods",
            json={"kind": "email", "address": f"contact-{mark}@client.example"},
            headers=api.admin.headers,
        )
    )
    steps = [{"targets": [{"person_id": manager.person_id}], "after_minutes": 5}]
    policy = ok(
        api.http.post(
            "/v1/escalation-policies",
            json={"name": f"{label} policy {mark}", "steps": steps, "priorities": ["P4"]}
            | {"client_id": client["id"]},
            headers=api.admin.headers,
        )
    )
    integration = ok(
        api.http.post(
            "/v1/integrations",
            json={"client_id": client["id"], "kind": "events_v2", "name": f"{label} {mark} mon"},
            headers=api.admin.headers,
        )
    )
    alert = {"summary": f"{label} alert {mark}", "source": f"host-{mark}", "severity": "info"}
    enqueued = api.http.post(
        "/v2/enqueue",
        json={"routing_key": integration["key"], "event_action": "trigger", "payload": alert}
        | {"dedup_key": f"alert-{mark}"},
    )
    assert enqueued.status_code == 202, enqueued.text
    attachment = _mailed_attachment(api, system, f"{label} {mark}")
    ids = {
        "client_id": client["id"],
        "incident_id": incident,
        "task_id": task["id"],
        "action_id": action["id"],
        "entry_id": note["event_id"],
        "deadline_id": deadline["id"],
        "evidence_id": evidence["id"],
        "transfer_id": transfer["id"],
        "person_id": contact.person_id,
        "method_id": method["id"],
        "key_id": key["id"],
        "policy_id": policy["id"],
        "integration_id": integration["id"],
        "attachment_id": attachment["id"],
    }
    texts = {name, title, mark, contact.email, contact.key_id, update["id"], notification["id"]}
    texts |= {integration["key"], attachment["filename"]}
    return PopulatedClient(
        system=system,
        system_key_id=key["id"],
        contact=contact,
        manager=manager,
        responder=responder,
        ids=ids,
        secrets=frozenset(ids.values()) | texts,
    )


def _mailed_attachment(api: Api, system: Tenant, label: str) -> dict[str, Any]:
    """The attachment of a report the client mailed to an email integration of its own."""
    _, address = new_email_integration(api, system.id)
    filename = f"{label.replace(' ', '-')}.log"
    mail = report_mail(
        address, subject=f"{label} by email", attachments=((filename, "text/plain", b"log"),)
    )
    assert send(api.platform, mail)[0] == 250
    incident = incident_of(api, system, str(mail["Message-ID"]).strip("<>"))
    assert incident is not None
    path = f"/v1/incidents/{incident['id']}/attachments"
    (attachment,) = ok(api.http.get(path, headers=system.headers))["items"]
    found: dict[str, Any] = attachment
    return found
