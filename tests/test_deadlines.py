"""Regulatory deadlines against the real processes and a real SMTP server: flagging an incident
starts the deadlines of the rules table with the right due times, recording one met, reminders
to the communications lead and commander, a miss that pages the firm's managers, who may do
what, bad input, and a miss recorded once across a kill -9 of notify and across two replicas.

A regulatory clock runs for hours or days; the tests flag with an awareness long enough ago that
a deadline falls due seconds from now, and remind a few seconds before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import Message as EmailMessage
from functools import partial
from typing import Any
from uuid import uuid4

import httpx
import pytest

from firebreak.launcher import Platform
from firebreak.settings import Settings, SettingsError
from services.notify import deadline_rules
from services.notify.deadlines import reminder_plan as deadline_plan
from tests.conftest import on_backend
from tests.gateway_client import Api, Person, Tenant, eventually
from tests.lifecycle_client import ok, report_triaged, run
from tests.mail import Mailbox
from tests.review_client import said
from tests.test_bad_input import assert_problem

GDPR = timedelta(hours=72)


@pytest.fixture
def api(mail_platform: Platform) -> Api:
    return Api(mail_platform)


def flag(api: Api, caller: Tenant, incident_id: str, **body: Any) -> httpx.Response:
    return api.http.post(f"/v1/incidents/{incident_id}/flags", json=body, headers=caller.headers)


def deadlines(api: Api, caller: Tenant, incident_id: str) -> list[dict[str, Any]]:
    response = api.http.get(f"/v1/incidents/{incident_id}/deadlines", headers=caller.headers)
    items: list[dict[str, Any]] = ok(response)["items"]
    return items


def met(api: Api, caller: Tenant, incident_id: str, deadline_id: str, **body: Any) -> Any:
    return api.http.post(
        f"/v1/incidents/{incident_id}/deadlines/{deadline_id}/met",
        json=body,
        headers=caller.headers,
    )


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def due_in(seconds: float) -> str:
    """An awareness that makes the GDPR deadline (72 hours) fall due `seconds` from now."""
    return iso(datetime.now(UTC) - GDPR + timedelta(seconds=seconds))


def subjects(box: Mailbox, person: Person, title: str) -> list[str]:
    """The subjects of what `person` received about the incident titled `title` (references
    repeat across clients; the tests' titles do not)."""
    unfolded = [" ".join(str(message["Subject"]).split()) for message in box.to(person.email)]
    return [subject for subject in unfolded if title in subject]


def report_titled(api: Api, client: Tenant) -> dict[str, Any]:
    """A P3 incident with a title of its own, once triaged."""
    incident: dict[str, Any] = ok(
        api.report(client, impact="moderate", urgency="medium", title=f"Lost laptop {uuid4()}")
    )
    eventually(lambda: api.incident(api.admin, incident["id"])["status"] == "triaged")
    return incident


def text_of(message: EmailMessage) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text part")


def timeline_entries(api: Api, incident_id: str, event_type: str) -> list[dict[str, Any]]:
    return [entry for entry in api.timeline(api.admin, incident_id) if entry["type"] == event_type]


# --- The reminder plan ---------------------------------------------------------------------


def test_the_reminder_lead_times_are_a_setting_checked_at_start() -> None:
    variable = "FIREBREAK_DEADLINE_REMINDER_MINUTES"
    leads = Settings.from_environment({variable: "60, 1440,240,60,0.05"}).deadline_reminder_leads
    assert leads == (1440, 240, 60, 0.05)
    assert Settings.from_environment({variable: ""}).deadline_reminder_leads == ()
    assert Settings.from_environment({}).deadline_reminder_leads == (1440, 240, 60)
    for bad in ("0", "-5", "soon", "inf", "nan", "60;30"):
        with pytest.raises(SettingsError, match=variable):
            Settings.from_environment({variable: bad})


def test_reminders_already_past_when_a_deadline_starts_are_not_sent() -> None:
    due = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    leads = (1440, 240, 60)
    assert deadline_plan(due, leads, now=due - timedelta(days=2)) == (
        [1440, 240, 60],
        due - timedelta(days=1),
    )
    assert deadline_plan(due, leads, now=due - timedelta(hours=3)) == (
        [60],
        due - timedelta(hours=1),
    )
    assert deadline_plan(due, leads, now=due - timedelta(minutes=30)) == ([], due)


# --- Flags start the table's deadlines ------------------------------------------------------


def test_flags_start_the_regulatory_deadlines_of_the_rules_table(api: Api) -> None:
    client = api.new_client()
    manager = api.new_person("manager")
    now = datetime.now(UTC).replace(microsecond=0)
    detected = now - timedelta(hours=22)
    incident_id = report_triaged(api, client, detected_at=iso(detected))
    aware = now - timedelta(hours=1)

    flagged = ok(
        flag(
            api,
            manager,
            incident_id,
            flags=["personal_data", "nis2", "dora", "sec"],
            aware_at=iso(aware),
        )
    )
    assert flagged["flagged"] == ["personal_data", "nis2", "dora", "sec"]
    assert flagged["already_set"] == []
    notification = aware + timedelta(hours=72)
    dora_initial = detected + timedelta(hours=24)  # before aware + 4 h: detection caps it
    expected = {
        "gdpr_supervisory_authority": aware + timedelta(hours=72),
        "nis2_early_warning": aware + timedelta(hours=24),
        "nis2_incident_notification": notification,
        "nis2_final_report": deadline_rules.add_month(notification),
        "dora_initial_notification": dora_initial,
        "dora_intermediate_report": dora_initial + timedelta(hours=72),
        "dora_final_report": deadline_rules.add_month(dora_initial + timedelta(hours=72)),
        "sec_form_8k_item_1_05": deadline_rules.add_business_days(aware, 4),
    }
    assert {item["rule"]: at(item["due_at"]) for item in flagged["deadlines"]} == expected

    listed = deadlines(api, manager, incident_id)
    assert {item["rule"]: at(item["due_at"]) for item in listed} == expected
    assert [at(item["due_at"]) for item in listed] == sorted(expected.values())
    gdpr = next(item for item in listed if item["rule"] == "gdpr_supervisory_authority")
    assert gdpr["kind"] == "regulatory" and gdpr["flag"] == "personal_data"
    assert "Art. 33" in gdpr["source"]
    assert gdpr["status"] == "pending" and gdpr["met_at"] is None and gdpr["late"] is False

    # A flag already set starts nothing again, and says so.
    again = ok(flag(api, manager, incident_id, flags=["personal_data"]))
    assert again == {"flagged": [], "already_set": ["personal_data"], "deadlines": []}
    assert len(deadlines(api, manager, incident_id)) == len(expected)
    started = eventually(lambda: timeline_entries(api, incident_id, "deadline.started"))
    eventually(lambda: len(timeline_entries(api, incident_id, "deadline.started")) == 8 or None)
    assert any(("rule", "gdpr_supervisory_authority") in said(entry) for entry in started)
    flag_entries = timeline_entries(api, incident_id, "incident.flagged")
    assert len(flag_entries) == 1 and "personal_data" in flag_entries[0]["summary"]


def test_awareness_defaults_to_now(api: Api) -> None:
    client = api.new_client()
    manager = api.new_person("manager")
    incident_id = report_triaged(api, client)
    before = datetime.now(UTC)
    started = ok(flag(api, manager, incident_id, flags=["personal_data"]))["deadlines"]
    after = datetime.now(UTC)
    assert before + GDPR <= at(started[0]["due_at"]) <= after + GDPR


# --- Recording a deadline met ---------------------------------------------------------------


def test_a_deadline_is_recorded_met_once(api: Api) -> None:
    client = api.new_client()
    manager = api.new_person("manager")
    incident_id = report_triaged(api, client)
    started = ok(flag(api, manager, incident_id, flags=["personal_data"]))["deadlines"]
    deadline_id = started[0]["id"]

    assert_problem(met(api, manager, incident_id, deadline_id), 422, "reference")
    recorded = ok(met(api, manager, incident_id, deadline_id, reference="ICO-2026-0042"))
    assert recorded["status"] == "met" and recorded["late"] is False
    assert recorded["reference"] == "ICO-2026-0042" and recorded["met_at"]
    assert deadlines(api, manager, incident_id)[0] == recorded

    assert_problem(met(api, manager, incident_id, deadline_id, reference="again"), 409)
    unknown = "00000000-0000-0000-0000-000000000000"
    assert_problem(met(api, manager, incident_id, unknown, reference="x"), 404)
    assert_problem(met(api, manager, incident_id, "not an id", reference="x"), 404)
    entry = eventually(lambda: timeline_entries(api, incident_id, "deadline.met"))[0]
    assert ("reference", "ICO-2026-0042") in said(entry) and "late" not in entry["summary"]


# --- Who may, and bad input -----------------------------------------------------------------


def test_who_may_flag_and_read_deadlines(api: Api) -> None:
    client, other_client = api.new_client(), api.new_client("Other LLP")
    manager = api.new_person("manager")
    bystander, participant = api.new_person("responder"), api.new_person("responder")
    walled = api.new_person("responder", clients=[other_client.id])
    incident_id = report_triaged(api, client)
    ok(run(api, manager, incident_id, "add_responder", {"person_id": participant.person_id}))
    deadline_id = ok(flag(api, manager, incident_id, flags=["nis2"]))["deadlines"][0]["id"]

    for caller in (client, other_client, walled):  # not even told the incident exists
        assert_problem(flag(api, caller, incident_id, flags=["sec"]), 404)
        assert_problem(
            api.http.get(f"/v1/incidents/{incident_id}/deadlines", headers=caller.headers), 404
        )
        assert_problem(met(api, caller, incident_id, deadline_id, reference="x"), 404)
    # A client key learns nothing from a bad body either: 404 before validation.
    assert_problem(flag(api, client, incident_id, flags=["nope"]), 404)

    refused = assert_problem(flag(api, bystander, incident_id, flags=["sec"]), 403)
    assert "deadline_manage" in refused["detail"]
    assert_problem(met(api, bystander, incident_id, deadline_id, reference="x"), 403)
    assert len(deadlines(api, bystander, incident_id)) == 3  # staff inside the wall read them

    assert ok(flag(api, participant, incident_id, flags=["sec"]))["flagged"] == ["sec"]
    assert ok(met(api, participant, incident_id, deadline_id, reference="CSIRT-7"))["late"] is False


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"flags": ["personal_data", "hipaa"]}, "flags", "hipaa"),
        ({"flags": []}, "flags", None),
        ({}, "flags", None),
        ({"flags": "nis2"}, "flags", None),
        ({"flags": ["nis2"], "aware_at": "2999-01-01T00:00:00Z"}, "aware_at", "future"),
        ({"flags": ["nis2"], "aware_at": "yesterday"}, "aware_at", None),
        ({"flags": ["nis2"], "aware_at": "2026-01-01T00:00:00"}, "aware_at", None),  # no zone
        ({"flags": ["nis2"], "because": "x"}, "because", None),
    ],
)
def test_bad_flags_are_refused_naming_the_field_and_change_nothing(
    api: Api, body: dict[str, Any], field: str, words: str | None
) -> None:
    client = api.new_client()
    manager = api.new_person("manager")
    incident_id = report_triaged(api, client)
    problem = assert_problem(flag(api, manager, incident_id, **body), 422, field)
    if words:
        assert words in problem["detail"]
    assert deadlines(api, manager, incident_id) == []


# --- Reminders and misses, against a real SMTP server ---------------------------------------


@on_backend("postgresql", "mail_platform")
def test_reminders_go_to_the_role_holders_and_a_miss_pages_the_managers(
    api: Api, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    client, other_client = api.new_client(), api.new_client("Walled Off LLP")
    commander, comms = api.new_person("responder"), api.new_person("responder")
    manager = api.new_person("manager")
    walled_manager = api.new_person("manager", clients=[other_client.id])
    incident = report_titled(api, client)
    ok(run(api, commander, incident["id"], "acknowledge"))  # becomes commander
    ok(
        run(
            api,
            commander,
            incident["id"],
            "assign_role",
            {"role": "communications_lead", "person_id": comms.person_id},
        )
    )

    ok(flag(api, commander, incident["id"], flags=["personal_data"], aware_at=due_in(8)))
    title = incident["title"]

    # The reminder, a few seconds before: to the communications lead and the commander.
    for holder in (comms, commander):
        reminder = eventually(partial(subjects, box, holder, title), timeout=20)
        assert "gdpr_supervisory_authority" in reminder[0] and "due in 3 seconds" in reminder[0]
    message = box.to(comms.email)[-1]
    assert "Art. 33" in text_of(message)
    assert f"/v1/incidents/{incident['id']}/deadlines/" in text_of(message)
    sent = eventually(lambda: timeline_entries(api, incident["id"], "deadline.reminder_sent"))
    assert "0.05 minutes" in sent[0]["summary"]

    # At the due time: missed, and the firm's managers inside the wall are paged.
    missed = eventually(lambda: subjects(box, manager, title), timeout=20)
    assert "MISSED" in missed[0]
    entry = eventually(lambda: timeline_entries(api, incident["id"], "deadline.missed"))[0]
    assert ("rule", "gdpr_supervisory_authority") in said(entry) and manager.email not in str(entry)
    (deadline,) = deadlines(api, manager, incident["id"])
    assert deadline["status"] == "missed"
    assert not subjects(box, walled_manager, title)
    # The role holders got their reminder only, not the managers' page.
    assert len(subjects(box, comms, title)) == 1

    # Recorded met after all: late.
    recorded = ok(met(api, manager, incident["id"], deadline["id"], reference="ICO-late"))
    assert recorded["status"] == "met" and recorded["late"] is True


@on_backend("sqlite", "mail_platform")
def test_without_role_holders_the_managers_are_reminded(
    api: Api, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    client = api.new_client()
    manager = api.new_person("manager")
    incident = report_titled(api, client)
    ok(flag(api, manager, incident["id"], flags=["personal_data"], aware_at=due_in(6)))

    def reminded() -> list[str]:
        return [s for s in subjects(box, manager, incident["title"]) if "due in" in s]

    eventually(reminded, timeout=20)
    eventually(lambda: timeline_entries(api, incident["id"], "deadline.missed"), timeout=20)


# --- Durable: kill -9, and two replicas -----------------------------------------------------


def _missed_once(api: Api, box: Mailbox, manager: Person, incident: dict[str, Any]) -> None:
    eventually(lambda: timeline_entries(api, incident["id"], "deadline.missed"), timeout=30)
    # Once: one event, and one page to each manager.
    eventually(lambda: [s for s in subjects(box, manager, incident["title"]) if "MISSED" in s])
    assert len(timeline_entries(api, incident["id"], "deadline.missed")) == 1
    pages = [s for s in subjects(box, manager, incident["title"]) if "MISSED" in s]
    assert len(pages) == 1
    assert [item["status"] for item in deadlines(api, manager, incident["id"])] == ["missed"]


def test_a_miss_is_recorded_once_across_a_notify_killed_while_it_is_pending(
    mail_platform: Platform, api: Api, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    client = api.new_client()
    manager = api.new_person("manager")
    incident = report_titled(api, client)
    ok(flag(api, manager, incident["id"], flags=["personal_data"], aware_at=due_in(6)))

    notify = mail_platform.processes["notify"]
    notify.kill()  # kill -9: the due time in the database is all that survives
    notify.wait()
    mail_platform.start_service("notify")
    _missed_once(api, box, manager, incident)


def test_two_notify_replicas_record_each_miss_once(
    mail_platform: Platform, api: Api, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    client = api.new_client()
    manager = api.new_person("manager")
    mail_platform.start_service("notify", label="notify-2")
    try:
        incidents = [report_titled(api, client) for _ in range(6)]
        for incident in incidents:
            ok(flag(api, manager, incident["id"], flags=["personal_data"], aware_at=due_in(5)))
        for incident in incidents:
            _missed_once(api, box, manager, incident)
    finally:
        mail_platform.stop_process("notify-2")
