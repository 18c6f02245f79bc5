"""Every route of the gateway's OpenAPI document, called by every kind of principal, against
a status written out by hand: who may do what, as the platform really answers it over HTTP.

A route the table lacks fails `test_the_table_has_every_route_and_only_those`, so a new route
cannot skip this matrix. Incident routes act on an incident of client A; every cell of a route
that changes an incident gets a fresh incident in the state the route needs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from tests.alert_client import incident_of
from tests.conftest import on_backend
from tests.evidence_client import submit_once_known
from tests.gateway_client import Api, Person, Tenant, eventually, incident_body
from tests.inbound_mail_client import new_email_integration, report_mail, send
from tests.lifecycle_client import bring_to, finish_containment, ok, run, tasks

# The columns, in the order every row below lists them.
PRINCIPALS = (
    "anonymous",  # no Authorization header
    "revoked",  # a responder's personal key, revoked with DELETE /v1/api-keys/{id}
    "client_a_system",  # client A's client key (of no person)
    "client_a_contact",  # a person with role client, of client A
    "client_b",  # client B's client key
    "responder",  # unwalled responder, not a participant of the incident
    "participant",  # a responder added to the incident's responders by a manager
    "walled_responder",  # a responder walled to client B only
    "manager",
    "admin",  # a person with role admin
)

# (method, path template as in /openapi.json), or with a third part naming which object a
# self-scoped key route is called on.
Route = tuple[str, ...]


def cells(*statuses: int) -> dict[str, int]:
    assert len(statuses) == len(PRINCIPALS)
    return dict(zip(PRINCIPALS, statuses, strict=True))


OWN_KEY, ANOTHERS_KEY = "own key", "another's key"
OWN_PERSON, ANOTHERS_PERSON = "own person", "another's person"
CONTACT_METHODS = "/v1/people/{person_id}/contact-methods"

# Written by hand from README.md's permission table; not derived from the code.
# fmt: off
EXPECTED: dict[Route, dict[str, int]] = {
    # ------------------------------------- anon revk A-sy A-co cl-B resp part wall mngr admn
    ("GET", "/healthz"):                    cells(200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/readyz"):                     cells(200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/status"):                     cells(200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    # Incidents: reporting and reading.
    ("POST", "/v1/incidents"):              cells(401, 401, 201, 201, 201, 201, 201, 201, 201, 201),
    ("GET", "/v1/incidents"):               cells(401, 401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/v1/incidents/{incident_id}"): cells(401, 401, 200, 200, 404, 200, 200, 404, 200, 200),
    ("GET", "/v1/incidents/{incident_id}/timeline"):
                                            cells(401, 401, 200, 200, 404, 200, 200, 404, 200, 200),
    # The incident's internal work: staff inside the wall; clients must not learn it exists.
    ("GET", "/v1/incidents/{incident_id}/transitions"):
                                            cells(401, 401, 404, 404, 404, 200, 200, 404, 200, 200),
    ("GET", "/v1/incidents/{incident_id}/closure-gates"):
                                            cells(401, 401, 404, 404, 404, 200, 200, 404, 200, 200),
    ("GET", "/v1/incidents/{incident_id}/tasks"):
                                            cells(401, 401, 404, 404, 404, 200, 200, 404, 200, 200),
    ("GET", "/v1/incidents/{incident_id}/notifications"):
                                            cells(401, 401, 404, 404, 404, 200, 200, 404, 200, 200),
    ("GET", "/v1/incidents/{incident_id}/deadlines"):
                                            cells(401, 401, 404, 404, 404, 200, 200, 404, 200, 200),
    # Investigation and actions: the firm's internal work, read by staff inside the wall.
    ("GET", "/v1/incidents/{incident_id}/time"):
                                            cells(401, 401, 404, 404, 404, 200, 200, 404, 200, 200),
    ("GET", "/v1/incidents/{incident_id}/analysis"):
                                            cells(401, 401, 404, 404, 404, 200, 200, 404, 200, 200),
    ("GET", "/v1/incidents/{incident_id}/analysis/history"):
                                            cells(401, 401, 404, 404, 404, 200, 200, 404, 200, 200),
    ("GET", "/v1/incidents/{incident_id}/actions"):
                                            cells(401, 401, 404, 404, 404, 200, 200, 404, 200, 200),
    # Status updates: a client reads its own incidents' client updates.
    ("GET", "/v1/incidents/{incident_id}/updates"):
                                            cells(401, 401, 200, 200, 404, 200, 200, 404, 200, 200),
    # Commands: acknowledge is for any staff inside the wall, the rest for participants.
    ("POST", "/v1/incidents/{incident_id}/acknowledge"):
                                            cells(401, 401, 404, 404, 404, 200, 200, 404, 200, 200),
    ("POST", "/v1/incidents/{incident_id}/contain"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    ("POST", "/v1/incidents/{incident_id}/resolve"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    ("POST", "/v1/incidents/{incident_id}/reopen"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    ("POST", "/v1/incidents/{incident_id}/decline"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    ("POST", "/v1/incidents/{incident_id}/merge"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    ("POST", "/v1/incidents/{incident_id}/reclassify"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    ("PUT", "/v1/incidents/{incident_id}/roles/{role}"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    ("POST", "/v1/incidents/{incident_id}/responders"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    ("DELETE", "/v1/incidents/{incident_id}/responders/{person_id}"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    ("POST", "/v1/incidents/{incident_id}/tasks"):
                                            cells(401, 401, 404, 404, 404, 403, 201, 404, 201, 201),
    ("PATCH", "/v1/incidents/{incident_id}/tasks/{task_id}"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    # Flags and deadlines met: like the commands, participants, managers and admins.
    ("POST", "/v1/incidents/{incident_id}/flags"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    ("POST", "/v1/incidents/{incident_id}/deadlines/{deadline_id}/met"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    # Status updates are posted by the communications lead or the commander (the participant
    # here is neither), a manager or an admin.
    ("POST", "/v1/incidents/{incident_id}/updates"):
                                            cells(401, 401, 404, 404, 404, 403, 403, 404, 201, 201),
    # Notes, key events, time, the analysis and actions: participants, managers and admins (an
    # action's owner too, who is none of the columns here).
    ("POST", "/v1/incidents/{incident_id}/notes"):
                                            cells(401, 401, 404, 404, 404, 403, 201, 404, 201, 201),
    ("PATCH", "/v1/incidents/{incident_id}/timeline/{entry_id}"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    ("POST", "/v1/incidents/{incident_id}/time"):
                                            cells(401, 401, 404, 404, 404, 403, 201, 404, 201, 201),
    ("PUT", "/v1/incidents/{incident_id}/analysis"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    ("POST", "/v1/incidents/{incident_id}/actions"):
                                            cells(401, 401, 404, 404, 404, 403, 201, 404, 201, 201),
    ("PATCH", "/v1/incidents/{incident_id}/actions/{action_id}"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    ("POST", "/v1/incidents/{incident_id}/actions/{action_id}/effectiveness"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    # The post-incident review: staff inside the wall read it; participants, managers and admins
    # draft, edit and sign it (participants as attendees, managers and admins signing it off).
    ("GET", "/v1/incidents/{incident_id}/review"):
                                            cells(401, 401, 404, 404, 404, 200, 200, 404, 200, 200),
    ("POST", "/v1/incidents/{incident_id}/review"):
                                            cells(401, 401, 404, 404, 404, 403, 201, 404, 201, 201),
    ("PATCH", "/v1/incidents/{incident_id}/review"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    ("POST", "/v1/incidents/{incident_id}/review/sign-off"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    # Closing: managers and admins (commanders too where the firm allows it, not by default).
    ("POST", "/v1/incidents/{incident_id}/close"):
                                            cells(401, 401, 404, 404, 404, 403, 403, 404, 200, 200),
    ("POST", "/v1/incidents/{incident_id}/deadlines/{deadline_id}/not-applicable"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    # Reports: a client reads its own incidents' client report and its own figures and monthly
    # summary (client A's here; client B's key gets B's figures); staff those inside the wall.
    ("GET", "/v1/incidents/{incident_id}/report"):
                                            cells(401, 401, 200, 200, 404, 200, 200, 404, 200, 200),
    ("GET", "/v1/reports/metrics"):         cells(401, 401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/v1/reports/clients/{client_id}/summary"):
                                            cells(401, 401, 200, 200, 404, 200, 200, 404, 200, 200),
    # Evidence: clients submit and read their own incidents' (the client-safe part), staff
    # inside the wall read it; custody is for participants, managers and admins, legal hold and
    # disposal for managers and admins; a receipt only by the receiver named (each staff cell
    # inside the wall is named by its own transfer).
    # ------------------------------------- anon revk A-sy A-co cl-B resp part wall mngr admn
    ("POST", "/v1/incidents/{incident_id}/evidence"):
                                            cells(401, 401, 201, 201, 404, 403, 201, 404, 201, 201),
    ("GET", "/v1/incidents/{incident_id}/evidence"):
                                            cells(401, 401, 200, 200, 404, 200, 200, 404, 200, 200),
    ("GET", "/v1/evidence/{evidence_id}"):  cells(401, 401, 200, 200, 404, 200, 200, 404, 200, 200),
    ("GET", "/v1/evidence/{evidence_id}/content"):
                                            cells(401, 401, 200, 200, 404, 200, 200, 404, 200, 200),
    ("POST", "/v1/evidence/{evidence_id}/transfers"):
                                            cells(401, 401, 404, 404, 404, 403, 201, 404, 201, 201),
    ("POST", "/v1/evidence/{evidence_id}/transfers/{transfer_id}/receipt"):
                                            cells(401, 401, 404, 404, 404, 200, 200, 404, 200, 200),
    ("POST", "/v1/evidence/{evidence_id}/seal"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    ("POST", "/v1/evidence/{evidence_id}/unseal"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    ("POST", "/v1/evidence/{evidence_id}/verify"):
                                            cells(401, 401, 404, 404, 404, 403, 200, 404, 200, 200),
    ("POST", "/v1/evidence/{evidence_id}/legal-hold"):
                                            cells(401, 401, 404, 404, 404, 403, 403, 404, 200, 200),
    ("DELETE", "/v1/evidence/{evidence_id}"):
                                            cells(401, 401, 404, 404, 404, 403, 403, 404, 200, 200),
    # The export and the custody report carry whole custody logs: staff inside the wall only.
    ("GET", "/v1/incidents/{incident_id}/evidence/export"):
                                            cells(401, 401, 404, 404, 404, 200, 200, 404, 200, 200),
    ("GET", "/v1/incidents/{incident_id}/evidence/custody-report"):
                                            cells(401, 401, 404, 404, 404, 200, 200, 404, 200, 200),
    # The time report: staff (a responder gets their own time), never a client.
    ("GET", "/v1/reports/time"):            cells(401, 401, 403, 403, 403, 200, 200, 200, 200, 200),
    # Clients, people and keys.
    # ------------------------------------- anon revk A-sy A-co cl-B resp part wall mngr admn
    ("POST", "/v1/clients"):                cells(401, 401, 403, 403, 403, 403, 403, 403, 403, 201),
    ("POST", "/v1/clients/{client_id}/api-keys"):
                                            cells(401, 401, 403, 403, 403, 403, 403, 403, 403, 201),
    # Clients: staff list those inside their wall, a client's key or contact its own.
    ("GET", "/v1/clients"):                 cells(401, 401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("POST", "/v1/people"):                 cells(401, 401, 403, 403, 403, 403, 403, 403, 403, 201),
    ("GET", "/v1/people"):                  cells(401, 401, 403, 403, 403, 200, 200, 200, 200, 200),
    ("GET", "/v1/people/{person_id}"):      cells(401, 401, 403, 403, 403, 200, 200, 200, 200, 200),
    ("PATCH", "/v1/people/{person_id}"):    cells(401, 401, 403, 403, 403, 403, 403, 403, 403, 200),
    ("POST", "/v1/people/{person_id}/api-keys"):
                                            cells(401, 401, 403, 403, 403, 403, 403, 403, 403, 201),
    # The console's passwords and one-time sign-in links: an admin's to set and issue.
    ("PUT", "/v1/people/{person_id}/password"):
                                            cells(401, 401, 403, 403, 403, 403, 403, 403, 403, 204),
    ("POST", "/v1/people/{person_id}/sign-in-links"):
                                            cells(401, 401, 403, 403, 403, 403, 403, 403, 403, 201),
    ("GET", "/v1/api-keys", OWN_KEY):       cells(401, 401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/v1/api-keys", ANOTHERS_KEY):  cells(401, 401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("DELETE", "/v1/api-keys/{key_id}", OWN_KEY):
                                            cells(401, 401, 204, 204, 204, 204, 204, 204, 204, 204),
    ("DELETE", "/v1/api-keys/{key_id}", ANOTHERS_KEY):
                                            cells(401, 401, 404, 404, 404, 404, 404, 404, 404, 204),
    # Contact methods: a person changes their own, an admin anyone's; the person, managers and
    # admins read them. "Own person" for a key of no person is someone else's: it has none.
    # ------------------------------------- anon revk A-sy A-co cl-B resp part wall mngr admn
    ("POST", CONTACT_METHODS, OWN_PERSON):  cells(401, 401, 403, 201, 403, 201, 201, 201, 201, 201),
    ("POST", CONTACT_METHODS, ANOTHERS_PERSON):
                                            cells(401, 401, 403, 403, 403, 403, 403, 403, 403, 201),
    ("GET", CONTACT_METHODS, OWN_PERSON):   cells(401, 401, 403, 200, 403, 200, 200, 200, 200, 200),
    ("GET", CONTACT_METHODS, ANOTHERS_PERSON):
                                            cells(401, 401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("DELETE", CONTACT_METHODS + "/{method_id}", OWN_PERSON):
                                            cells(401, 401, 403, 204, 403, 204, 204, 204, 204, 204),
    ("DELETE", CONTACT_METHODS + "/{method_id}", ANOTHERS_PERSON):
                                            cells(401, 401, 403, 403, 403, 403, 403, 403, 403, 204),
    # Escalation policies: staff read them, managers and admins change them; not incident
    # routes, so a client's key or contact gets a 403.
    # ------------------------------------- anon revk A-sy A-co cl-B resp part wall mngr admn
    ("GET", "/v1/escalation-policies"):     cells(401, 401, 403, 403, 403, 200, 200, 200, 200, 200),
    ("POST", "/v1/escalation-policies"):    cells(401, 401, 403, 403, 403, 403, 403, 403, 201, 201),
    ("GET", "/v1/escalation-policies/{policy_id}"):
                                            cells(401, 401, 403, 403, 403, 200, 200, 200, 200, 200),
    ("PATCH", "/v1/escalation-policies/{policy_id}"):
                                            cells(401, 401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("DELETE", "/v1/escalation-policies/{policy_id}"):
                                            cells(401, 401, 403, 403, 403, 403, 403, 403, 204, 204),
    # On-call schedules: staff read them, managers and admins change them (a client's 403).
    # ------------------------------------- anon revk A-sy A-co cl-B resp part wall mngr admn
    ("POST", "/v1/schedules"):              cells(401, 401, 403, 403, 403, 403, 403, 403, 201, 201),
    ("GET", "/v1/schedules"):               cells(401, 401, 403, 403, 403, 200, 200, 200, 200, 200),
    ("GET", "/v1/schedules/{schedule_id}"): cells(401, 401, 403, 403, 403, 200, 200, 200, 200, 200),
    ("PATCH", "/v1/schedules/{schedule_id}"):
                                            cells(401, 401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("DELETE", "/v1/schedules/{schedule_id}"):
                                            cells(401, 401, 403, 403, 403, 403, 403, 403, 204, 204),
    ("GET", "/v1/schedules/{schedule_id}/on-call"):
                                            cells(401, 401, 403, 403, 403, 200, 200, 200, 200, 200),
    # A client's contractual deadline rules: managers and admins (of client A, inside the wall).
    ("GET", "/v1/clients/{client_id}/deadline-rules"):
                                            cells(401, 401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("PUT", "/v1/clients/{client_id}/deadline-rules"):
                                            cells(401, 401, 403, 403, 403, 403, 403, 403, 200, 200),
    # Signing a client's custody chain heads now, and the signatures kept: managers and admins;
    # to a client's key the route is as absent as evidence's internals are.
    ("POST", "/v1/clients/{client_id}/custody-signatures"):
                                            cells(401, 401, 404, 404, 404, 403, 403, 403, 201, 201),
    ("GET", "/v1/clients/{client_id}/custody-signatures"):
                                            cells(401, 401, 404, 404, 404, 403, 403, 403, 200, 200),
    # Dead letters (every service's): admins only. The admin's replay and discard name one that
    # does not exist, so the permission is seen checked before anything is looked up.
    ("GET", "/v1/admin/dead-letters"):      cells(401, 401, 403, 403, 403, 403, 403, 403, 403, 200),
    ("POST", "/v1/admin/dead-letters/{service}/{dead_letter_id}/replay"):
                                            cells(401, 401, 403, 403, 403, 403, 403, 403, 403, 404),
    ("DELETE", "/v1/admin/dead-letters/{service}/{dead_letter_id}"):
                                            cells(401, 401, 403, 403, 403, 403, 403, 403, 403, 404),
    # A client's integrations: managers and admins (of client A, inside the wall); not incident
    # routes, so anyone else gets a 403.
    # ------------------------------------- anon revk A-sy A-co cl-B resp part wall mngr admn
    ("POST", "/v1/integrations"):           cells(401, 401, 403, 403, 403, 403, 403, 403, 201, 201),
    ("GET", "/v1/integrations"):            cells(401, 401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("GET", "/v1/integrations/{integration_id}"):
                                            cells(401, 401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("POST", "/v1/integrations/{integration_id}/rotate"):
                                            cells(401, 401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("POST", "/v1/integrations/{integration_id}/disable"):
                                            cells(401, 401, 403, 403, 403, 403, 403, 403, 200, 200),
    # Alert senders: the integration key is the credential (PagerDuty's routing key in the body,
    # Alertmanager's bearer token), whatever API key the caller also holds; an API key is none.
    ("POST", "/v2/enqueue"):                cells(202, 202, 202, 202, 202, 202, 202, 202, 202, 202),
    ("POST", "/v1/alerts/alertmanager"):    cells(401, 401, 401, 401, 401, 401, 401, 401, 401, 401),
    ("GET", "/v1/incidents/{incident_id}/alerts"):
                                            cells(401, 401, 200, 200, 404, 200, 200, 404, 200, 200),
    # A heartbeat's ping: the key in the path is the credential, whatever API key comes along.
    ("POST", "/v1/heartbeats/{key}"):       cells(200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/v1/heartbeats/{key}"):        cells(200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    # The attachments of a report by email (of client A): whoever may read the incident.
    ("GET", "/v1/incidents/{incident_id}/attachments"):
                                            cells(401, 401, 200, 200, 404, 200, 200, 404, 200, 200),
    ("GET", "/v1/incidents/{incident_id}/attachments/{attachment_id}"):
                                            cells(401, 401, 200, 200, 404, 200, 200, 404, 200, 200),
    # The audit log of administrative acts, and the check of its hash chain: admins only.
    ("GET", "/v1/audit"):                   cells(401, 401, 403, 403, 403, 403, 403, 403, 403, 200),
    ("GET", "/v1/audit/verify"):            cells(401, 401, 403, 403, 403, 403, 403, 403, 403, 200),
    # One-click acknowledge links take no key: the token is the credential, so every column,
    # anonymous included, gets the same answer for the same token. Called here with a garbage
    # token: 404, as an HTML page for a person (not problem+json), naming no incident.
    # ------------------------------------- anon revk A-sy A-co cl-B resp part wall mngr admn
    ("GET", "/v1/ack/{token}"):             cells(404, 404, 404, 404, 404, 404, 404, 404, 404, 404),
    ("POST", "/v1/ack/{token}"):            cells(404, 404, 404, 404, 404, 404, 404, 404, 404, 404),
}
# fmt: on
# Routes that answer with an HTML page for a person, not problem+json, when they refuse.
HTML_ROUTES = {("GET", "/v1/ack/{token}"), ("POST", "/v1/ack/{token}")}
GARBAGE_TOKEN = "eyJ2IjoxfQ.not-a-signature"

# Routes that change the incident: each of their cells gets a fresh incident of client A in
# the state the command needs (the others share one read-only incident).
NEEDS_STATE = {
    "acknowledge": "triaged",
    "contain": "ready to contain",
    "resolve": "contained",
    "reopen": "resolved",
    "decline": "triaged",
    "merge": "triaged",
    "reclassify": "triaged",
    "roles/{role}": "triaged",
    "responders": "triaged",
    "responders/{person_id}": "triaged",
    "tasks": "triaged",
    "tasks/{task_id}": "triaged",
    "flags": "triaged",
    "deadlines/{deadline_id}/met": "triaged",
    "updates": "triaged",
    "notes": "triaged",
    "timeline/{entry_id}": "triaged",
    "time": "triaged",
    "analysis": "triaged",
    "actions": "triaged",
    "actions/{action_id}": "triaged",
    "actions/{action_id}/effectiveness": "triaged",
    "evidence": "triaged",  # evidence_calls submits to the shared incident instead
    "review": "resolved",  # PATCH: with a review drafted first
    "review/sign-off": "resolved",  # with a review drafted and written first
    "close": "resolved",
    "deadlines/{deadline_id}/not-applicable": "triaged",
}
INCIDENT_PREFIX = "/v1/incidents/{incident_id}/"
MATRIX_RULE = {"name": "inform", "priorities": ["P1"], "within_minutes": 60, "met_by": "manual"}
# Bodies that are valid for each command, so that only permission decides the status.
COMMAND_BODIES: dict[str, dict[str, Any] | None] = {
    "acknowledge": None,
    "contain": {"summary": "Host isolated from the network"},
    "resolve": {"summary": "Service restored"},
    "reopen": {"reason": "Symptoms came back"},
    "decline": {"reason": "A planned maintenance window"},
    "reclassify": {"urgency": "low", "reason": "A workaround is in place"},
    "tasks": {"title": "Call the hosting provider"},
    "tasks/{task_id}": {"note": "Checked with the client"},
    "flags": {"flags": ["personal_data"]},
    "deadlines/{deadline_id}/met": {"reference": "Matrix-1"},
    "updates": {"audience": "internal", "body": "Matrix update"},
    "notes": {"body": "Matrix note", "audience": "internal"},
    "timeline/{entry_id}": {"key_event": True},
    "time": {"minutes": 15, "role": "responder", "activity": "Matrix work"},
    "analysis": {"summary": "Matrix", "root_cause": "Matrix"},
    "actions/{action_id}": {"status": "in_progress"},
    "actions/{action_id}/effectiveness": {"effective": False, "note": "It came back"},
    "review": {"summary": "Matrix review"},  # PATCH's; POST takes no body
    "close": {"closure_code": "resolved", "summary": "Matrix closure"},
    "deadlines/{deadline_id}/not-applicable": {"reason": "Matrix: does not apply"},
}
REVIEW_NARRATIVE = {
    "what_went_well": "Matrix",
    "what_went_wrong": "Matrix",
    "lessons_learned": "Matrix",
}


def matrix_action(owner_id: str) -> dict[str, Any]:
    due = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    return {"kind": "corrective", "title": "Matrix action", "owner_id": owner_id, "due_at": due}


def route_id(route: Route) -> str:
    return " ".join(route[:2]) + (f" ({route[2]})" if len(route) > 2 else "")


CELLS = [(route, principal) for route in EXPECTED for principal in PRINCIPALS]
CELL_IDS = [f"{route_id(route)} | {principal}" for route, principal in CELLS]


# --- The platform as the matrix needs it --------------------------------------------------


@dataclass(frozen=True)
class Caller:
    headers: dict[str, str]
    owner_id: str = ""  # the person's id, or the key's own id for a key of no person


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    caller: Caller
    json: dict[str, Any] | None = None
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    api: Api
    calls: dict[tuple[Route, str], Call]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def client_key(api: Api, client_id: str) -> Caller:
    """A fresh client-system key of `client_id`; a key of no person owns only itself."""
    key = api.http.post(
        f"/v1/clients/{client_id}/api-keys", json={"role": "client"}, headers=api.admin.headers
    )
    assert key.status_code == 201, key.text
    return Caller(bearer(key.json()["key"]), key.json()["id"])


def new_client(api: Api, name: str) -> tuple[str, Caller]:
    client = api.http.post("/v1/clients", json={"name": name}, headers=api.admin.headers)
    assert client.status_code == 201, client.text
    return client.json()["id"], client_key(api, client.json()["id"])


def person_body(role: str = "responder") -> dict[str, Any]:
    email = f"matrix-{uuid.uuid4().hex}@firm.example"
    return {"name": "Matrix Person", "email": email, "role": role}


def new_person_id(api: Api) -> str:
    person = api.http.post("/v1/people", json=person_body(), headers=api.admin.headers)
    assert person.status_code == 201, person.text
    person_id: str = person.json()["id"]
    return person_id


def report_all(api: Api, tenant: Tenant, count: int) -> list[str]:
    """Reports `count` incidents at once, then waits until triage has opened each response."""
    ids = []
    for _ in range(count):
        created = api.report(tenant, type="other", impact="moderate", urgency="medium")
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])

    def triaged(incident_id: str) -> bool:
        return api.incident(api.admin, incident_id)["status"] == "triaged"

    for incident_id in ids:
        eventually(partial(triaged, incident_id))
    return ids


def integration_calls(
    api: Api, callers: dict[str, Caller], client_a: str
) -> dict[tuple[Route, str], Call]:
    """Each principal's calls on client A's integrations (one to rotate and disable per
    principal), and as an alert sender with a key of A's (an events_v2 integration's, and its
    API key as Alertmanager's bearer token)."""
    path = "/v1/integrations"
    body = {"client_id": client_a, "kind": "events_v2", "name": "Matrix monitoring"}

    def new() -> dict[str, Any]:
        created = api.http.post(path, json=body, headers=api.admin.headers)
        assert created.status_code == 201, created.text
        made: dict[str, Any] = created.json()
        return made

    sender = new()
    heartbeat = api.http.post(
        path,
        json=body | {"kind": "heartbeat", "interval_seconds": 3600},
        headers=api.admin.headers,
    )
    assert heartbeat.status_code == 201, heartbeat.text
    calls: dict[tuple[Route, str], Call] = {}
    for principal, caller in callers.items():
        for method in ("POST", "GET"):
            calls[(method, "/v1/heartbeats/{key}"), principal] = Call(
                method, f"/v1/heartbeats/{heartbeat.json()['key']}", caller
            )
        own = f"{path}/{new()['id']}"
        calls[("POST", path), principal] = Call("POST", path, caller, body)
        calls[("GET", path), principal] = Call("GET", path, caller)
        calls[("GET", path + "/{integration_id}"), principal] = Call("GET", own, caller)
        for verb in ("rotate", "disable"):
            route = ("POST", path + "/{integration_id}/" + verb)
            calls[route, principal] = Call("POST", f"{own}/{verb}", caller)
        event = {
            "routing_key": sender["key"],
            "event_action": "trigger",
            "dedup_key": f"matrix-{principal}",
            "payload": {"summary": "Matrix alert", "source": "matrix", "severity": "info"},
        }
        calls[("POST", "/v2/enqueue"), principal] = Call("POST", "/v2/enqueue", caller, event)
        firing = {
            "version": "4",
            "status": "firing",
            "alerts": [{"status": "firing", "labels": {}, "fingerprint": f"matrix-{principal}"}],
        }
        calls[("POST", "/v1/alerts/alertmanager"), principal] = Call(
            "POST", "/v1/alerts/alertmanager", caller, firing
        )
    return calls


def attachment_calls(
    api: Api, callers: dict[str, Caller], tenant_a: Tenant
) -> dict[tuple[Route, str], Call]:
    """Each principal's reads of the attachment of a report by email of client A (sent while
    client A has few incidents, so that its newest page holds the one the mail opened)."""
    _, address = new_email_integration(api, tenant_a.id)
    mail = report_mail(address, attachments=(("matrix.txt", "text/plain", b"matrix"),))
    assert send(api.platform, mail)[0] == 250
    incident = incident_of(api, tenant_a, str(mail["Message-ID"]).strip("<>"))
    assert incident is not None
    path = f"/v1/incidents/{incident['id']}/attachments"
    (attachment,) = ok(api.http.get(path, headers=tenant_a.headers))["items"]
    calls: dict[tuple[Route, str], Call] = {}
    for principal, caller in callers.items():
        route = "/v1/incidents/{incident_id}/attachments"
        calls[("GET", route), principal] = Call("GET", path, caller)
        calls[("GET", route + "/{attachment_id}"), principal] = Call(
            "GET", f"{path}/{attachment['id']}", caller
        )
    return calls


def escalation_policy_calls(api: Api, callers: dict[str, Caller]) -> dict[tuple[Route, str], Call]:
    """Each principal's calls on escalation policies: it creates (P1), changes (P2) and deletes
    (P3) policies of a client of its own, so that no two cells clash over a priority."""
    path = "/v1/escalation-policies"
    calls: dict[tuple[Route, str], Call] = {}
    for principal, caller in callers.items():
        client_id, _ = new_client(api, f"Policy Matrix {principal}")

        def body(priority: str, client_id: str = client_id) -> dict[str, Any]:
            steps = [{"targets": [{"schedule_id": "default"}], "after_minutes": 1}]
            return {
                "name": "Matrix",
                "steps": steps,
                "repeat": 0,
                "priorities": [priority],
                "client_id": client_id,
            }

        made = {}
        for priority in ("P2", "P3"):
            created = api.http.post(path, json=body(priority), headers=api.admin.headers)
            assert created.status_code == 201, created.text
            made[priority] = created.json()["id"]
        calls[("GET", path), principal] = Call("GET", path, caller)
        calls[("POST", path), principal] = Call("POST", path, caller, body("P1"))
        # The shipped default, read by everyone.
        calls[("GET", path + "/{policy_id}"), principal] = Call(
            "GET", f"{path}/default-p1-p2", caller
        )
        calls[("PATCH", path + "/{policy_id}"), principal] = Call(
            "PATCH", f"{path}/{made['P2']}", caller, {"name": "Renamed by the matrix"}
        )
        calls[("DELETE", path + "/{policy_id}"), principal] = Call(
            "DELETE", f"{path}/{made['P3']}", caller
        )
    return calls


def schedule_calls(
    api: Api, callers: dict[str, Caller], person_id: str
) -> dict[tuple[Route, str], Call]:
    """Each principal's calls on on-call schedules: reading and changing a shared one, and
    deleting one of its own; `person_id` (staff) is on call in them."""
    path = "/v1/schedules"
    layer = {
        "participants": [person_id],
        "rotation": "daily",
        "handoff_time": "09:00",
        "starts_at": "2027-01-04T09:00:00Z",
    }
    body = {"name": "Matrix rota", "timezone": "Europe/London", "layers": [layer]}

    def new_schedule() -> str:
        created = api.http.post(path, json=body, headers=api.admin.headers)
        assert created.status_code == 201, created.text
        schedule_id: str = created.json()["id"]
        return schedule_id

    shared = f"{path}/{new_schedule()}"
    calls: dict[tuple[Route, str], Call] = {}
    for principal, caller in callers.items():
        calls[("POST", path), principal] = Call("POST", path, caller, body)
        calls[("GET", path), principal] = Call("GET", path, caller)
        calls[("GET", path + "/{schedule_id}"), principal] = Call("GET", shared, caller)
        calls[("PATCH", path + "/{schedule_id}"), principal] = Call(
            "PATCH", shared, caller, {"name": "Renamed by the matrix"}
        )
        calls[("DELETE", path + "/{schedule_id}"), principal] = Call(
            "DELETE", f"{path}/{new_schedule()}", caller
        )
        calls[("GET", path + "/{schedule_id}/on-call"), principal] = Call(
            "GET", f"{shared}/on-call", caller, params={"at": "2027-01-05T12:00:00Z"}
        )
    return calls


def evidence_calls(
    api: Api,
    callers: dict[str, Caller],
    *,
    tenant_a: Tenant,
    shared: str,
    driver: Person,
    receivers: dict[str, Person],
    helper: Person,
) -> dict[tuple[Route, str], Call]:
    """Each principal's calls on evidence of client A: reads, downloads and verification of one
    shared item; an item of its own for each custody command (a pending transfer naming it, if
    it may receive one, for the receipt); disposal of its own item of a declined incident."""
    calls: dict[tuple[Route, str], Call] = {}
    submitted = {"filename": "matrix.json"}
    shared_item = submit_once_known(api, driver, shared, b"matrix: the shared item")["id"]
    declined = report_all(api, tenant_a, 1)[0]
    submit_once_known(api, driver, declined, b"matrix: evidence knows the incident")
    ok(run(api, driver, declined, "decline", {"reason": "A planned maintenance window"}))

    def own_item(incident: str = shared) -> str:
        item = submit_once_known(api, driver, incident, f"matrix {uuid.uuid4()}".encode())
        return str(item["id"])

    def dispose_once_ended(evidence_id: str) -> bool:
        response = api.http.delete(
            f"/v1/evidence/{evidence_id}",
            params={"authorised_by": "matrix"},
            headers=driver.headers,
        )
        return response.status_code == 200

    eventually(partial(dispose_once_ended, own_item(declined)))  # evidence saw the decline
    for principal, caller in callers.items():
        base = f"/v1/evidence/{shared_item}"
        calls[("POST", "/v1/incidents/{incident_id}/evidence"), principal] = Call(
            "POST", f"/v1/incidents/{shared}/evidence", caller, {"matrix": 1}, submitted
        )
        calls[("GET", "/v1/incidents/{incident_id}/evidence"), principal] = Call(
            "GET", f"/v1/incidents/{shared}/evidence", caller
        )
        calls[("GET", "/v1/evidence/{evidence_id}"), principal] = Call("GET", base, caller)
        calls[("GET", "/v1/evidence/{evidence_id}/content"), principal] = Call(
            "GET", f"{base}/content", caller
        )
        calls[("POST", "/v1/evidence/{evidence_id}/verify"), principal] = Call(
            "POST", f"{base}/verify", caller
        )
        to = {"to": helper.person_id, "purpose": "imaging", "location": "lab"}
        calls[("POST", "/v1/evidence/{evidence_id}/transfers"), principal] = Call(
            "POST", f"/v1/evidence/{own_item()}/transfers", caller, to
        )
        pending = own_item()
        receiver = receivers.get(principal, helper)
        released = api.http.post(
            f"/v1/evidence/{pending}/transfers",
            json=to | {"to": receiver.person_id},
            headers=driver.headers,
        )
        receipt = f"/v1/evidence/{pending}/transfers/{ok(released)['id']}/receipt"
        calls[("POST", "/v1/evidence/{evidence_id}/transfers/{transfer_id}/receipt"), principal] = (
            Call("POST", receipt, caller, {})
        )
        calls[("POST", "/v1/evidence/{evidence_id}/seal"), principal] = Call(
            "POST", f"/v1/evidence/{own_item()}/seal", caller, {"reason": "matrix"}
        )
        sealed = own_item()
        ok(api.http.post(f"/v1/evidence/{sealed}/seal", headers=driver.headers))
        calls[("POST", "/v1/evidence/{evidence_id}/unseal"), principal] = Call(
            "POST", f"/v1/evidence/{sealed}/unseal", caller
        )
        calls[("POST", "/v1/evidence/{evidence_id}/legal-hold"), principal] = Call(
            "POST", f"/v1/evidence/{own_item()}/legal-hold", caller, {"held": True, "reason": "x"}
        )
        calls[("DELETE", "/v1/evidence/{evidence_id}"), principal] = Call(
            "DELETE", f"/v1/evidence/{own_item(declined)}", caller, None, {"authorised_by": "x"}
        )
        calls[("GET", "/v1/incidents/{incident_id}/evidence/export"), principal] = Call(
            "GET", f"/v1/incidents/{shared}/evidence/export", caller
        )
        calls[("GET", "/v1/incidents/{incident_id}/evidence/custody-report"), principal] = Call(
            "GET", f"/v1/incidents/{shared}/evidence/custody-report", caller
        )
    return calls


def contact_method_calls(
    api: Api, callers: dict[str, Caller], person_ids: dict[str, str]
) -> dict[tuple[Route, str], Call]:
    """Each principal's calls on its own contact methods and on someone else's (a member of
    staff of its own, so no one collects more methods than a person may have); a key of no
    person has none of its own, so its "own" calls are on that someone's too. Every cell adds an
    address of its own and deletes a method made for it."""
    calls: dict[tuple[Route, str], Call] = {}

    def method() -> dict[str, str]:
        return {"kind": "email", "address": f"matrix-{uuid.uuid4().hex}@home.example"}

    def existing(person_id: str) -> str:
        path = CONTACT_METHODS.format(person_id=person_id)
        created = api.http.post(path, json=method(), headers=api.admin.headers)
        assert created.status_code == 201, created.text
        return f"{path}/{created.json()['id']}"

    for principal, caller in callers.items():
        someone = new_person_id(api)
        for which, person_id in (
            (OWN_PERSON, person_ids.get(principal, someone)),
            (ANOTHERS_PERSON, someone),
        ):
            path = CONTACT_METHODS.format(person_id=person_id)
            calls[("POST", CONTACT_METHODS, which), principal] = Call(
                "POST", path, caller, method()
            )
            calls[("GET", CONTACT_METHODS, which), principal] = Call("GET", path, caller)
            calls[("DELETE", CONTACT_METHODS + "/{method_id}", which), principal] = Call(
                "DELETE", existing(person_id), caller
            )
    return calls


@pytest.fixture(scope="module")
def world(api: Api) -> World:
    """Every principal, and every cell's call, prepared before any cell runs."""
    client_a, system_a = new_client(api, "Alpha Matrix LLP")
    client_b, system_b = new_client(api, "Beta Matrix LLP")
    people = {
        "client_a_contact": api.new_person("client", client_id=client_a),
        "responder": api.new_person("responder"),
        "participant": api.new_person("responder"),
        "walled_responder": api.new_person("responder", clients=[client_b]),
        "manager": api.new_person("manager"),
        "admin": api.new_person("admin"),
        "revoked": api.new_person("responder"),
    }
    revoked = api.http.delete(f"/v1/api-keys/{people['revoked'].key_id}", headers=api.admin.headers)
    assert revoked.status_code == 204, revoked.text
    callers = {"anonymous": Caller({}), "client_a_system": system_a, "client_b": system_b} | {
        kind: Caller(person.headers, person.person_id) for kind, person in people.items()
    }
    driver = api.new_person("manager")  # sets incidents up; becomes their commander
    helper = api.new_person("responder")  # given roles, added and removed as a responder
    bystander = api.new_person("responder")  # someone else, for people and key routes
    tenant_a = Tenant(client_a, system_a.headers)
    participant_id = people["participant"].person_id
    calls = attachment_calls(api, callers, tenant_a)

    # The shared read-only incident, with the participant among its responders.
    shared = report_all(api, tenant_a, 1)[0]
    ok(run(api, driver, shared, "add_responder", {"person_id": participant_id}))
    # A resolved incident with its post-incident review drafted, read by every cell.
    reviewed = report_all(api, tenant_a, 1)[0]
    bring_to(api, driver, reviewed, "resolved")
    ok(api.http.post(f"/v1/incidents/{reviewed}/review", headers=driver.headers))

    # A fresh incident for every cell of every route that changes one, reported all at once.
    commands = [
        route for route in EXPECTED if route[1].startswith(INCIDENT_PREFIX) and route[0] != "GET"
    ]
    assert {route[1].removeprefix(INCIDENT_PREFIX) for route in commands} == set(NEEDS_STATE)
    fresh_ids = iter(report_all(api, tenant_a, (len(commands) + 1) * len(PRINCIPALS)))
    fresh = {(route, principal): next(fresh_ids) for route in commands for principal in PRINCIPALS}
    merge_targets = {principal: next(fresh_ids) for principal in PRINCIPALS}

    for (route, principal), incident_id in fresh.items():
        method, path = route[:2]
        command = path.removeprefix(INCIDENT_PREFIX)
        state = NEEDS_STATE[command]
        if state == "ready to contain":
            bring_to(api, driver, incident_id, "acknowledged")
            finish_containment(api, driver, incident_id)
        else:
            bring_to(api, driver, incident_id, state)
        if principal == "participant":
            ok(run(api, driver, incident_id, "add_responder", {"person_id": participant_id}))
        url = f"/v1/incidents/{incident_id}/{command}"
        body = COMMAND_BODIES.get(command)
        if command == "merge":
            body = {"into": merge_targets[principal]}
        elif command in ("roles/{role}", "responders"):
            url = url.replace("{role}", "scribe")
            body = {"person_id": helper.person_id}
        elif command == "responders/{person_id}":
            ok(run(api, driver, incident_id, "add_responder", {"person_id": helper.person_id}))
            url = url.replace("{person_id}", helper.person_id)
        elif command == "tasks/{task_id}":
            playbook_task = tasks(api, driver, incident_id)[0]
            url = url.replace("{task_id}", playbook_task["id"])
        elif command.startswith("review") and (method == "PATCH" or command != "review"):
            review = f"/v1/incidents/{incident_id}/review"
            ok(api.http.post(review, headers=driver.headers))
            ok(api.http.patch(review, json=REVIEW_NARRATIVE, headers=driver.headers))
        elif command.startswith("deadlines/{deadline_id}/"):
            flagged = api.http.post(
                f"/v1/incidents/{incident_id}/flags",
                json={"flags": ["personal_data"]},
                headers=driver.headers,
            )
            url = url.replace("{deadline_id}", ok(flagged)["deadlines"][0]["id"])
        elif command == "timeline/{entry_id}":
            entries = eventually(partial(api.timeline, driver, incident_id))
            url = url.replace("{entry_id}", entries[0]["event_id"])
        elif command == "actions":
            body = matrix_action(helper.person_id)
        elif command.startswith("actions/{action_id}"):
            actions = f"/v1/incidents/{incident_id}/actions"
            new_action = matrix_action(helper.person_id)
            action = ok(api.http.post(actions, json=new_action, headers=driver.headers))
            if command.endswith("/effectiveness"):
                done = {"status": "done"}
                ok(api.http.patch(f"{actions}/{action['id']}", json=done, headers=driver.headers))
            url = url.replace("{action_id}", action["id"])
        calls[route, principal] = Call(method, url, callers[principal], body)

    for principal, caller in callers.items():
        other_key = api.issue_key(bystander.person_id)["id"]
        if principal in ("client_a_system", "client_b"):
            # A system key owns only itself: a second key of the same client revokes itself.
            own_caller = client_key(api, client_a if principal == "client_a_system" else client_b)
            own_key = own_caller.owner_id
        elif principal == "revoked":
            own_caller, own_key = caller, people["revoked"].key_id
        elif principal == "anonymous":
            own_caller, own_key = caller, other_key
        else:
            own_caller, own_key = caller, api.issue_key(caller.owner_id)["id"]
        by_route: dict[Route, Call] = {
            ("GET", "/healthz"): Call("GET", "/healthz", caller),
            ("GET", "/readyz"): Call("GET", "/readyz", caller),
            ("GET", "/status"): Call("GET", "/status", caller),
            ("POST", "/v1/incidents"): Call(
                "POST", "/v1/incidents", caller, incident_body(title=f"Reported by {principal}")
            ),
            ("GET", "/v1/incidents"): Call("GET", "/v1/incidents", caller),
            ("POST", "/v1/clients"): Call("POST", "/v1/clients", caller, {"name": "Gamma LLP"}),
            ("POST", "/v1/clients/{client_id}/api-keys"): Call(
                "POST", f"/v1/clients/{client_a}/api-keys", caller, {"role": "client"}
            ),
            ("POST", "/v1/people"): Call("POST", "/v1/people", caller, person_body()),
            ("GET", "/v1/people"): Call("GET", "/v1/people", caller),
            ("GET", "/v1/people/{person_id}"): Call(
                "GET", f"/v1/people/{bystander.person_id}", caller
            ),
            ("PATCH", "/v1/people/{person_id}"): Call(
                "PATCH", f"/v1/people/{new_person_id(api)}", caller, {"name": "Renamed Person"}
            ),
            ("POST", "/v1/people/{person_id}/api-keys"): Call(
                "POST", f"/v1/people/{bystander.person_id}/api-keys", caller
            ),
            ("PUT", "/v1/people/{person_id}/password"): Call(
                "PUT",
                f"/v1/people/{bystander.person_id}/password",
                caller,
                {"password": "a long enough password"},
            ),
            ("POST", "/v1/people/{person_id}/sign-in-links"): Call(
                "POST", f"/v1/people/{bystander.person_id}/sign-in-links", caller
            ),
            ("GET", "/v1/clients"): Call("GET", "/v1/clients", caller),
            ("GET", "/v1/api-keys", OWN_KEY): Call(
                "GET", "/v1/api-keys", caller, params={"limit": "200"}
            ),
            ("GET", "/v1/api-keys", ANOTHERS_KEY): Call(
                "GET",
                "/v1/api-keys",
                caller,
                params={"limit": "200", "person_id": bystander.person_id},
            ),
            ("DELETE", "/v1/api-keys/{key_id}", OWN_KEY): Call(
                "DELETE", f"/v1/api-keys/{own_key}", own_caller
            ),
            ("DELETE", "/v1/api-keys/{key_id}", ANOTHERS_KEY): Call(
                "DELETE", f"/v1/api-keys/{other_key}", caller
            ),
        }
        for method in ("GET", "POST"):
            by_route[method, "/v1/ack/{token}"] = Call(method, f"/v1/ack/{GARBAGE_TOKEN}", caller)
        dead_letter = f"/v1/admin/dead-letters/triage/{uuid.uuid4()}"
        by_route["GET", "/v1/admin/dead-letters"] = Call("GET", "/v1/admin/dead-letters", caller)
        by_route["POST", "/v1/admin/dead-letters/{service}/{dead_letter_id}/replay"] = Call(
            "POST", f"{dead_letter}/replay", caller
        )
        by_route["DELETE", "/v1/admin/dead-letters/{service}/{dead_letter_id}"] = Call(
            "DELETE", dead_letter, caller
        )
        by_route["GET", "/v1/audit"] = Call("GET", "/v1/audit", caller)
        by_route["GET", "/v1/audit/verify"] = Call("GET", "/v1/audit/verify", caller)
        reads = (
            "",
            "/timeline",
            "/transitions",
            "/closure-gates",
            "/tasks",
            "/notifications",
            "/deadlines",
            "/alerts",
        )
        follow_up = ("/time", "/analysis", "/analysis/history", "/actions")
        for read in (*reads, "/updates", *follow_up):
            path = "/v1/incidents/{incident_id}" + read
            by_route["GET", path] = Call("GET", f"/v1/incidents/{shared}{read}", caller)
        by_route["GET", "/v1/reports/time"] = Call("GET", "/v1/reports/time", caller)
        by_route["GET", "/v1/incidents/{incident_id}/review"] = Call(
            "GET", f"/v1/incidents/{reviewed}/review", caller
        )
        by_route["GET", "/v1/incidents/{incident_id}/report"] = Call(
            "GET", f"/v1/incidents/{shared}/report", caller
        )
        by_route["GET", "/v1/reports/metrics"] = Call("GET", "/v1/reports/metrics", caller)
        by_route["GET", "/v1/reports/clients/{client_id}/summary"] = Call(
            "GET", f"/v1/reports/clients/{client_a}/summary", caller, params={"month": "2026-11"}
        )
        rules_path = f"/v1/clients/{client_a}/deadline-rules"
        by_route["GET", "/v1/clients/{client_id}/deadline-rules"] = Call("GET", rules_path, caller)
        by_route["PUT", "/v1/clients/{client_id}/deadline-rules"] = Call(
            "PUT", rules_path, caller, {"rules": [MATRIX_RULE]}
        )
        signatures_path = f"/v1/clients/{client_a}/custody-signatures"
        for method in ("POST", "GET"):
            by_route[method, "/v1/clients/{client_id}/custody-signatures"] = Call(
                method, signatures_path, caller
            )
        for route, call in by_route.items():
            calls[route, principal] = call
    calls.update(escalation_policy_calls(api, callers))
    calls.update(integration_calls(api, callers, client_a))
    calls.update(schedule_calls(api, callers, helper.person_id))
    person_ids = {kind: person.person_id for kind, person in people.items()}
    calls.update(contact_method_calls(api, callers, person_ids))
    receivers = {kind: people[kind] for kind in ("responder", "participant", "manager", "admin")}
    calls.update(
        evidence_calls(
            api,
            callers,
            tenant_a=tenant_a,
            shared=shared,
            driver=driver,
            receivers=receivers,
            helper=helper,
        )
    )
    unprepared = set(CELLS) - set(calls)
    assert not unprepared, f"rows of EXPECTED with no call prepared here: {unprepared}"
    return World(api, calls)


# --- The matrix -----------------------------------------------------------------------------


def test_the_table_has_every_route_and_only_those(api: Api) -> None:
    document = api.http.get("/openapi.json")
    assert document.status_code == 200, document.text
    documented = {
        (method.upper(), path)
        for path, operations in document.json()["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete", "head", "options", "trace")
    }
    tabled = {(route[0], route[1]) for route in EXPECTED}
    missing, gone = sorted(documented - tabled), sorted(tabled - documented)
    assert not missing, f"routes missing from EXPECTED (add a row for each): {missing}"
    assert not gone, f"rows of EXPECTED for routes the gateway no longer has: {gone}"
    assert all(list(row) == list(PRINCIPALS) for row in EXPECTED.values())


# On SQLite alone: who may call what is the gateway's to decide, whatever the database; the
# cross-tenant probe (tests/test_cross_tenant_probe.py) runs on both.
@on_backend("sqlite", "platform")
@pytest.mark.parametrize(("route", "principal"), CELLS, ids=CELL_IDS)
def test_who_may_call_what(world: World, route: Route, principal: str) -> None:
    call = world.calls[route, principal]
    response = world.api.http.request(
        call.method, call.url, headers=call.caller.headers, json=call.json, params=call.params
    )
    expected = EXPECTED[route][principal]
    where = f"{route_id(route)} as {principal}"
    assert response.status_code == expected, f"{where}: {response.status_code} {response.text}"
    if route[:2] in HTML_ROUTES:
        assert response.headers["content-type"].startswith("text/html"), where
        assert "not valid" in response.text, where
    elif not 200 <= response.status_code < 300:
        assert response.headers["content-type"].startswith("application/problem+json"), where
        assert response.json()["status"] == response.status_code, response.text
    elif route[:2] == ("GET", "/v1/api-keys") and principal != "admin":
        # Anyone but an admin lists only their own keys, whatever they filter by.
        owners = {key["owner"]["id"] for key in response.json()["items"]}
        assert owners <= {call.caller.owner_id}, f"{where}: {owners}"
