"""Review's action alarms against the real processes and a real SMTP server, on SQLite and
PostgreSQL: an action past its due time is shown overdue on the incident and its owner is
reminded by email, once, even when review is killed while the action waits; a done corrective
action's effectiveness check falls due, reminds its owner, and is confirmed or reopens it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from firebreak.launcher import Platform
from tests.conftest import EFFECTIVENESS_CHECK_SECONDS, on_backend
from tests.follow_up_client import Crew, new_crew, worked_incident
from tests.gateway_client import Api, Person, eventually
from tests.lifecycle_client import ok
from tests.mail import Mailbox
from tests.review_client import said
from tests.test_actions import add, change, confirm

DUE_SECONDS = 3.0  # an action due a few seconds ahead: tests never wait days


@pytest.fixture(scope="module")
def crew(mail_platform: Platform) -> Crew:
    return new_crew(Api(mail_platform), "Alarms")


def soon(seconds: float = DUE_SECONDS) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def subjects(box: Mailbox, person: Person, containing: str) -> list[str]:
    return [str(m["Subject"]) for m in box.to(person.email) if containing in str(m["Subject"])]


def entries(api: Api, incident_id: str, kind: str) -> list[dict[str, Any]]:
    return [entry for entry in api.timeline(api.admin, incident_id) if entry["type"] == kind]


def deliveries(api: Api, incident_id: str, purpose: str) -> list[dict[str, Any]]:
    response = api.http.get(f"/v1/incidents/{incident_id}/notifications", headers=api.admin.headers)
    return [item for item in ok(response)["items"] if item["purpose"] == purpose]


@on_backend("sqlite", "mail_platform")
def test_an_overdue_action_shows_on_the_incident_and_reminds_its_owner_once(
    mail_platform: Platform, mailbox: tuple[Mailbox, int], crew: Crew
) -> None:
    api, (box, _) = Api(mail_platform), mailbox
    incident_id = worked_incident(api, crew)
    owner = crew.participant
    action = ok(
        add(api, crew.manager, incident_id, owner, title="Rotate the leaked key", due_at=soon())
    )
    finished = ok(add(api, crew.manager, incident_id, owner, title="Block the IP", due_at=soon()))
    ok(change(api, owner, incident_id, finished["id"], status="done"))

    overdue = eventually(
        lambda: entries(api, incident_id, "action.overdue"), timeout=DUE_SECONDS * 10
    )
    assert ("title", "Rotate the leaked key") in said(overdue[0])
    listed = ok(api.http.get(f"/v1/incidents/{incident_id}/actions", headers=crew.manager.headers))
    assert {item["title"]: item["overdue"] for item in listed["items"]} == {
        "Rotate the leaked key": True,
        "Block the IP": False,  # done in time: never overdue
    }
    mails = eventually(lambda: subjects(box, owner, "action overdue"))
    assert mails == [mails[0]] and "Rotate the leaked key" in mails[0]
    message = next(m for m in box.to(owner.email) if "action overdue" in str(m["Subject"]))
    text = message.get_payload(0).get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert f"/v1/incidents/{incident_id}/actions/{action['id']}" in text
    assert [item["status"] for item in deliveries(api, incident_id, "action_overdue")] in (
        ["delivered"],
        ["sending"],
        ["pending"],
    )
    # Moved on, an overdue action is no longer shown overdue; it is reminded of once.
    ok(change(api, owner, incident_id, action["id"], status="done"))
    assert len(entries(api, incident_id, "action.overdue")) == 1
    assert len(subjects(box, owner, "action overdue")) == 1


def test_a_review_killed_while_an_action_waits_still_reminds_once(
    mail_platform: Platform, mailbox: tuple[Mailbox, int], crew: Crew
) -> None:
    api, (box, _) = Api(mail_platform), mailbox
    incident_id = worked_incident(api, crew)
    owner = crew.bystander  # its owner need not take part in the incident
    ok(
        add(
            api,
            crew.manager,
            incident_id,
            owner,
            title="Patch the VPN",
            due_at=soon(2 * DUE_SECONDS),
        )
    )

    review = mail_platform.processes["review"]
    review.kill()  # kill -9: the due time is all that survives, in the database
    review.wait()
    mail_platform.start_service("review")
    mail_platform.wait_until_ready()

    eventually(lambda: entries(api, incident_id, "action.overdue"), timeout=DUE_SECONDS * 20)
    eventually(lambda: subjects(box, owner, "action overdue: Patch the VPN"))
    eventually(lambda: deliveries(api, incident_id, "action_overdue")[0]["status"] == "delivered")
    assert len(entries(api, incident_id, "action.overdue")) == 1
    assert len(subjects(box, owner, "action overdue: Patch the VPN")) == 1


@on_backend("postgresql", "mail_platform")
def test_a_done_corrective_action_gets_an_effectiveness_check_that_reminds_its_owner(
    mail_platform: Platform, mailbox: tuple[Mailbox, int], crew: Crew
) -> None:
    api, (box, _) = Api(mail_platform), mailbox
    incident_id = worked_incident(api, crew)
    owner = crew.participant
    kept = ok(add(api, crew.manager, incident_id, owner, title="Expiry alerts", due_at=soon(3600)))
    failed = ok(add(api, crew.manager, incident_id, owner, title="Rate limits", due_at=soon(3600)))
    for action in (kept, failed):
        done = ok(change(api, owner, incident_id, action["id"], status="done"))
        assert done["effectiveness"]["status"] == "scheduled"

    def checks_due() -> bool:
        listed = ok(api.http.get(f"/v1/incidents/{incident_id}/actions", headers=owner.headers))
        return all(item["effectiveness"]["status"] == "due" for item in listed["items"])

    eventually(checks_due, timeout=EFFECTIVENESS_CHECK_SECONDS * 10)
    assert len(entries(api, incident_id, "action.effectiveness_check_due")) == 2
    # Waited for as "at least", so that a reminder sent twice fails below, saying so.
    eventually(lambda: len(subjects(box, owner, "effectiveness check due")) >= 2, timeout=60)
    reminded = subjects(box, owner, "effectiveness check due")
    assert sorted(line.rsplit(": ", 1)[1] for line in reminded) == [
        "Expiry alerts",
        "Rate limits",
    ], reminded

    effective = ok(confirm(api, crew.manager, incident_id, kept["id"], effective=True))
    assert effective["status"] == "done"
    assert effective["effectiveness"]["status"] == "effective"
    assert effective["effectiveness"]["checked_by"]["id"] == crew.manager.person_id
    reopened = ok(confirm(api, owner, incident_id, failed["id"], effective=False))
    assert reopened["status"] == "open"
    assert reopened["effectiveness"]["status"] == "not_effective"
    checked = entries(api, incident_id, "action.effectiveness_checked")
    assert any(
        ("title", "Expiry alerts") in said(e) and "confirmed effective" in e["summary"]
        for e in checked
    )
    assert any(
        ("title", "Rate limits") in said(e) and "not effective, reopened" in e["summary"]
        for e in checked
    )
